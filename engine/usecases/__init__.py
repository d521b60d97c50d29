"""What a user asks bulkcopy to do: submit (ingest), verify, report, clean up,
estimate.  The CLI calls these; they call the run and the adapters."""
