"""Backends by name. Entries are import strings, so a backend's heavy (or GPU-only) imports happen
only when config actually selects it."""

from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

from tara.core.sections import ConfigError

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

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.resolve(name)(*args, **kwargs)
