"""Backends by name. Entries are import strings, so a backend's heavy (or GPU-only) imports happen
only when config actually selects it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tara.core.sections import ConfigError

if TYPE_CHECKING:
    from tara.core.concurrency import Compute

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, key: str, entries: dict[str, str]) -> None:
        self.key = key  # the config key that selects a backend, named in errors
        self._entries = dict(entries)

    def register(self, name: str, target: str) -> None:
        """Add a backend as ``"package.module:ClassName"``."""
        self._entries[name] = target

    @property
    def names(self) -> list[str]:
        return sorted(self._entries)

    def resolve(self, name: str) -> type[T]:
        if name not in self._entries:
            raise ConfigError(f"{self.key}: unknown backend {name!r}; choose one of {', '.join(self.names)}")
        module_name, _, attr = self._entries[name].partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def create(self, name: str, *args: Any, compute: Compute | None = None, **kwargs: Any) -> T:
        """A backend; one that declares ``needs_compute`` (it computes on the shared CPU) gets ``compute``."""
        backend = self.resolve(name)
        if getattr(backend, "needs_compute", False):
            if compute is None:
                raise TypeError(f"{self.key}: {name} computes on the CPU; pass the process's Compute")
            kwargs["compute"] = compute
        return backend(*args, **kwargs)
