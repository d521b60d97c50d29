"""Endpoints outside the S3 API: ``/__stats``, ``/__stats/reset``, ``/__seed``.

(No bucket name starts with ``_``, so these never shadow a path-style bucket.)

``POST /__seed`` takes one JSON object or a list of them:

- ``{"bucket": "b"}`` creates a bucket;
- ``{"bucket": "b", "prefix": "p/", "count": 1000, "size": "1KiB"}`` creates
  ``p/000000`` ... ``p/000999``;
- ``{"bucket": "b", "key": "k", "size": "20GiB"}`` creates one object, with
  optional ``metadata`` (dict), ``tags`` (dict), ``content_type``, ``headers``
  (other stored headers, e.g. ``cache-control``) and ``part_size`` (to make it a
  multipart object with that layout).
"""

from __future__ import annotations

import json
from typing import Any

from bench.fake.env import Env
from bench.fake.http import Request, Response
from bench.fake.store import Properties, Store
from bench.units import parse_size

PATHS = frozenset({"/__stats", "/__stats/reset", "/__seed"})
JSON = ("Content-Type", "application/json")


def _json(data: Any, status: int = 200) -> Response:
    return Response(status, [JSON], json.dumps(data, indent=1).encode())


def _size(value: int | str) -> int:
    return value if isinstance(value, int) else parse_size(value)


def apply_seed(store: Store, spec: dict[str, Any]) -> int:
    """Create what ``spec`` describes; returns the number of objects created."""
    bucket = spec["bucket"]
    if "prefix" in spec:
        count = int(spec["count"])
        store.seed_prefix(bucket, spec["prefix"], count, _size(spec.get("size", 0)))
        return count
    if "key" in spec:
        props = Properties(
            spec.get("content_type") or "binary/octet-stream",
            dict(spec.get("metadata") or {}),
            {k.lower(): v for k, v in (spec.get("headers") or {}).items()},
        )
        part_size = spec.get("part_size")
        store.seed_object(
            bucket,
            spec["key"],
            _size(spec["size"]),
            props=props,
            tags=list((spec.get("tags") or {}).items()),
            part_size=_size(part_size) if part_size else None,
        )
        return 1
    store.create_bucket(bucket)
    return 0


def handle(env: Env, req: Request, settings: dict[str, Any]) -> Response:
    if req.path == "/__stats" and req.method == "GET":
        return _json({**env.stats.snapshot(), "settings": settings})
    if req.path == "/__stats/reset" and req.method == "POST":
        env.stats.reset()
        return _json({"reset": True})
    if req.path == "/__seed" and req.method == "POST":
        try:
            data = json.loads(req.body or b"null")
            specs = data if isinstance(data, list) else [data]
            seeded = sum(apply_seed(env.store, spec) for spec in specs)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _json({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return _json({"seeded": seeded})
    return _json({"error": f"{req.method} {req.path} is not an admin endpoint"}, 405)
