"""The run: the worker pool, its ledgers, pre-flight checks, the scheduler,
the governor of concurrency, and the events a run emits."""
