"""The domain: records, enums, errors, the job spec and the pure decisions.

Nothing here does I/O or imports another layer of bulkcopy; every other layer
may import it.
"""
