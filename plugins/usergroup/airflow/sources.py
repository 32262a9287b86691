"""A bulk run's list of names: given in its params, or read from a text file in object storage (one a line)."""

import os
from pathlib import Path

from airflow.sdk import ObjectStoragePath, Variable

from usergroup.engine.items import SourceError
from usergroup.settings import Settings, settings


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


def read_source(source: str) -> list[str]:
    """The names in the file at `source`, if bulk runs may read from there (the Airflow Variable says where)."""
    return read_names(source, allowed_sources())
