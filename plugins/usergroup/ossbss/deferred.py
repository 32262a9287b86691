"""Deferred: an OSS/BSS client built at its first use."""

from collections.abc import Callable
from functools import cached_property
from typing import Any


class Deferred:
    """The client `build` returns, built when first used: a task whose step never calls the OSS/BSS does not pay
    for importing its library (SCIM's takes ~0.8 s of CPU)."""

    def __init__(self, build: Callable[[], Any]):
        self._build = build

    @cached_property
    def client(self) -> Any:
        return self._build()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
