"""A bulk run's items: the names it gives, as a list or as a source the caller reads (`names_of`)."""

from collections.abc import Callable
from typing import Any

from usergroup.settings import settings


class SourceError(ValueError):
    """The names could not be read: the message says why."""


def names_of(params: dict[str, Any], field: str, read_source: Callable[[str], list[str]]) -> list[str]:
    """The names a run gives: `<field>s` (a list) or `source` (read by `read_source`: the engine does no I/O),
    exactly one of the two, 1 to `max_items` names."""
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
        names = read_source(source)
    if not 1 <= len(names) <= settings().max_items:
        raise SourceError(f"{len(names):,} names given: a run takes 1 to {settings().max_items:,}")
    return names
