"""The values bulkcopy itself writes into a task's record, named once.

Error codes of its own (beside S3's: ``NoSuchKey``, ``SlowDown``), the states
of a move's delete (``tasks.delete_state``) and the marker a multipart upload
carries while it is being created (``parts``/``tasks.upload_id``).
"""

from __future__ import annotations

# tasks.error_code, given by bulkcopy rather than S3
INVALID_ROW = "InvalidManifestRow"  # a malformed manifest row, kept (--skip-invalid)
DESTINATION_EXISTS = "DestinationExists"  # skipped: the destination holds it
VERIFICATION_FAILED = "VerificationFailed"  # the copy does not match its source
SOURCE_CHANGED = "SourceChanged"  # overwritten since it was copied
SAME_OBJECT = "SameObject"  # a move onto itself
SOURCE_VANISHED = "SourceVanished"  # not found for its delete, nothing deleted it
# a streamed body unlike its source's or destination's digest (retried)
CHECKSUM_MISMATCH = "ChecksumMismatch"

# tasks.delete_state
PENDING = "pending"  # copied and recorded; the delete is due
DELETED = "deleted"
GONE = "gone"  # not found for its delete, after a delete of ours may have gone out
KEPT = "kept"
# the source is no longer there (``JobCounts.sources_deleted``)
REMOVED = (DELETED, GONE)

# the upload id recorded before CreateMultipartUpload answers (a run killed in
# that window leaves an upload the next attempt's sweep of the key aborts)
CREATING = "creating:"
