"""The errors S3 answers with: a code, a message and an HTTP status."""

from __future__ import annotations


class S3Error(Exception):
    """An error S3 would answer with: its code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error(
        "NoSuchBucket", f"The specified bucket does not exist: {bucket}", 404
    )


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", f"The specified key does not exist: {key}", 404)


def precondition_failed() -> S3Error:
    return S3Error(
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        412,
    )
