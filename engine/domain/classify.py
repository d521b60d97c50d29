"""Sort S3 outcomes by what to do about them: retry, back off harder, or give up.

Pure functions over codes and statuses; no network.  Every S3 call bulkcopy
makes is classified here and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum

from engine.domain import codes


class Disposition(StrEnum):
    """What the engine does after a failed attempt."""

    RETRY = "retry"  # transient: try again after a short backoff
    THROTTLE = "throttle"  # the service asks us to slow down: longer backoff
    FATAL = "fatal"  # retrying cannot help: record the failure


THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
        "TransactionInProgressException",
    }
)

RETRY_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "RequestTimeTooSkewed",
        "PriorRequestNotComplete",
        "OperationAborted",
        "ExpiredToken",
        "ExpiredTokenException",
        "IDPCommunicationError",
        "BadGateway",
        "GatewayTimeout",
        # our own names for answers that carry no S3 error code
        "ConnectionError",
        "ReadTimeout",
        "EmptyResponse",
        "MissingETag",
        "IncompleteBody",
        "ResponseParseError",
    }
)

FATAL_CODES = frozenset(
    {
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchVersion",
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidObjectState",
        "ObjectNotInActiveTierError",
        "PreconditionFailed",
        "InvalidRequest",
        "InvalidArgument",
        "InvalidBucketName",
        "KeyTooLongError",
        "EntityTooLarge",
        "MethodNotAllowed",
        "NotImplemented",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoCredentials",
        "ParamValidation",
        "KMS.DisabledException",
        "KMS.NotFoundException",
        "KMS.KMSInvalidStateException",
        # ours: a copy that does not match (verify, a move's check), a move's
        # source changed since it was copied, a move onto itself
        codes.VERIFICATION_FAILED,
        codes.SOURCE_CHANGED,
        codes.SAME_OBJECT,
    }
)


# the object cannot be copied in the state it is in (an archived object that
# is not restored): the task is recorded as skipped, with the reason
# (InvalidObjectState is what S3 answers; ObjectNotInActiveTierError is the
# name botocore's model gives it, and what some S3-compatible servers send)
SKIP_CODES = frozenset(
    {
        "InvalidObjectState",
        "ObjectNotInActiveTierError",
        "ObjectArchived",
        "DestinationExists",  # --skip-existing (engine.copy.skip)
    }
)


def skipped(code: str | None) -> bool:
    """Whether a task that failed for good with ``code`` is recorded as
    skipped (nothing was copied, nothing is wrong with the job) not failed."""
    return code in SKIP_CODES


def classify(code: str | None, http_status: int | None) -> Disposition:
    """Classify one failed attempt by its error code and HTTP status.

    Codes win over statuses: ``SlowDown`` is throttling whatever the status,
    ``NoSuchKey`` is fatal.  A code botocore invented from a status (``"500"``,
    ``"503"``) and any unknown code fall back to the status: 429 and 503 are
    throttling, other 5xx and no status at all (the connection failed) are
    transient, and the remaining 4xx are fatal.
    """
    if code:
        if code in THROTTLE_CODES:
            return Disposition.THROTTLE
        if code in FATAL_CODES:
            return Disposition.FATAL
        if code in RETRY_CODES:
            return Disposition.RETRY
        if code.isdigit() and http_status is None:
            http_status = int(code)
    if http_status is None:
        return Disposition.RETRY
    if http_status in (429, 503):
        return Disposition.THROTTLE
    if http_status >= 500 or http_status in (408, 409):
        return Disposition.RETRY
    if http_status == 200:
        # an error that arrived inside a 200 OK: S3 failed while copying
        return Disposition.RETRY
    return Disposition.FATAL


HEAD_STATUS_CODES = {
    400: "BadRequest",
    403: "AccessDenied",
    404: "NoSuchKey",
    405: "MethodNotAllowed",
    412: "PreconditionFailed",
}


def name_status_code(code: str, http_status: int | None) -> str:
    """Give a bare numeric code (HEAD answers have no body) a readable name."""
    if code.isdigit() and http_status in HEAD_STATUS_CODES:
        return HEAD_STATUS_CODES[http_status]
    return code


# answers that say the job cannot start, not that its input is malformed: the
# bucket is missing, or these credentials may not use it (exit 3, not 2)
CANNOT_START_CODES = frozenset(
    {
        "NoSuchBucket",
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoCredentials",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
    }
)


def cannot_start(code: str | None, http_status: int | None) -> bool:
    """Whether a failure to read a job's input (a listing, a manifest in S3)
    means the job cannot start (bucket missing, no access) rather than that
    the input is bad."""
    return code in CANNOT_START_CODES or http_status in (401, 403)


# operations on an upload that do not read the source: there ``NoSuchKey``
# also means the upload is gone (Ceph RGW answers ListParts of an aborted
# upload so), where UploadPartCopy's ``NoSuchKey`` is the source's
_UPLOAD_ONLY = frozenset(
    {"ListParts", "CompleteMultipartUpload", "AbortMultipartUpload"}
)


def upload_gone(code: str | None, operation: str) -> bool:
    """Whether ``code`` from ``operation`` says the multipart upload no
    longer exists (aborted, expired, completed): start a new one."""
    if code == "NoSuchUpload":
        return True
    return code == "NoSuchKey" and operation in _UPLOAD_ONLY
