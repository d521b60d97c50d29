"""``submit --dry-run``: print what a job would hold."""

from __future__ import annotations

import json

import click

from engine.domain.models import Destination
from engine.manifest.sources import Source
from engine.usecases.estimate import Estimate
from engine.usecases.report import human_bytes


def print_estimate(
    estimate: Estimate, source: Source, destination: Destination, as_json: bool
) -> None:
    e = estimate
    if as_json:
        data = {
            "source": source.to_dict(),
            "destination": destination.uri(),
            **e.to_dict(),
        }
        click.echo(json.dumps(data, sort_keys=True))
        return
    lines = [
        f"dry run    {source.describe()} -> {destination.uri()} (nothing written)",
        f"rows       {e.rows:,} read, {e.filtered:,} left out by filters, "
        f"{e.invalid:,} malformed",
        f"objects    {e.objects:,}"
        + (f" + {_n(e.delete_markers, 'delete marker')}" if e.delete_markers else ""),
    ]
    if e.sized:
        unknown = e.objects - e.sized
        lines.append(
            f"bytes      {human_bytes(e.bytes)} ({e.bytes:,})"
            + (f"; {unknown:,} objects of unknown size" if unknown else "")
        )
    else:
        lines.append("bytes      unknown (the manifest gives no sizes)")
    lines.append(
        f"multipart  {_n(e.multipart, 'object')} above the threshold, "
        f"{_n(e.parts, 'part')}"
    )
    if e.by_storage_class:
        classes = ", ".join(f"{c} {n:,}" for c, n in e.by_storage_class.items())
        lines.append(f"storage    {classes}")
    if e.archived:
        lines.append(
            f"archived   {_n(e.archived, 'object')} in archive tiers: copied only "
            "if restored, otherwise recorded as skipped"
        )
    how = " (streamed: read with GetObject, written with PutObject/UploadPart)"
    lines.append(
        f"requests   ~{e.requests:,} S3 requests" + (how if e.streamed else "")
    )
    click.echo("\n".join(lines))


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
