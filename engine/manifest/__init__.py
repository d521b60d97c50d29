"""Manifest readers: each streams its rows in batches (:mod:`.rows`).

A reader never holds the whole manifest in memory; malformed rows come out
with an error set, and the ingest decides whether that fails the submit or
becomes a failed task (``--skip-invalid``).  :mod:`.sources` picks the reader
for a manifest and resumes it from a checkpoint.
"""
