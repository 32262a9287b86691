"""A bulk run's list of names: given in its params, or read from a text file in object storage (one a line)."""

import os
from pathlib import Path
from typing import Any

from airflow.sdk import ObjectStoragePath, Variable

from usergroup.settings import Settings, settings


class SourceError(ValueError):
    """The names could not be read: the message says why."""


def allowed_sources() -> list[str]:
    """Where a `source` may be: the Airflow Variable's prefixes, else the Airflow home's `bulk/` folder and S3."""
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").resolve()
    default = f"file://{home}/bulk/,s3://"
    return [p.strip() for p in Variable.get(Settings.sources_variable, default=default).split(",") if p.strip()]


def read_names(source: str, allowed: list[str]) -> list[str]:
    """The non-empty lines of the UTF-8 text file at `source` (a URI: file:///..., s3://[conn_id@]bucket/key),
    if it is in one of the `allowed` places (a local path after resolving `..` and links)."""
    if not any(_within(source, prefix) for prefix in allowed):
        raise SourceError(f"source {source!r} is not in a place bulk runs may read from ({', '.join(allowed)}; "
                          f"the Airflow Variable {Settings.sources_variable} lists them)")
    # A local file is read at the path that was checked (a link changed since cannot lead elsewhere).
    read = f"file://{_local(source)}" if source.startswith("file://") else source
    limit = settings().max_source_bytes
    try:
        with ObjectStoragePath(read).open("rb") as f:
            data = f.read(limit + 1)
    except ImportError as exc:
        raise SourceError(f"source {source!r} cannot be read here: {exc} (s3:// needs the Amazon provider and "
                          "s3fs)") from None
    except Exception as exc:  # noqa: BLE001 - any storage's error: missing, denied, unreachable
        raise SourceError(f"source {source!r} cannot be read: {type(exc).__name__}: {exc}") from None
    if len(data) > limit:
        raise SourceError(f"source {source!r} is larger than {limit / 2**20:g} MiB: at most "
                          f"{settings().max_items:,} names a run")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SourceError(f"source {source!r} is not UTF-8 text: line {line} has an invalid byte") from None
    return [line.removesuffix("\r") for line in text.split("\n") if line.removesuffix("\r")]


def _within(source: str, prefix: str) -> bool:
    if prefix.startswith("file://"):
        return source.startswith("file://") and _local(source).is_relative_to(_local(prefix))
    return source.startswith(prefix)


def _local(uri: str) -> Path:
    """The path a file:// URI names, with `..` and links resolved."""
    return Path(uri.removeprefix("file://")).resolve()


def names_of(params: dict[str, Any], field: str) -> list[str]:
    """The names a run gives: `<field>s` (a list) or `source`, exactly one of the two, 1 to `max_items` names."""
    listed, source = params.get(f"{field}s"), params.get("source")
    if (listed is None) == (source is None):
        raise SourceError(f"give either {field}s (a list of names) or source (the URI of a text file with one "
                          f"name a line), {'not both' if listed is not None else 'one of the two'}")
    if listed is not None:
        if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
            raise SourceError(f"{field}s must be a list of names (strings)")
        names = listed
    elif not isinstance(source, str):
        raise SourceError("source must be a URI (a string)")
    else:
        names = read_names(source, allowed_sources())
    if not 1 <= len(names) <= settings().max_items:
        raise SourceError(f"{len(names):,} names given: a run takes 1 to {settings().max_items:,}")
    return names
