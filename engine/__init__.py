"""bulkcopy: bulk server-side S3 copy jobs with a durable job table."""

from __future__ import annotations

__version__ = "0.1.0"
