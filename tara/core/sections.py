"""The pieces every config section is built from, kept apart from ``tara.core.config``.

Each backend declares its own settings next to its code (``tara/core/stages/<stage>/settings.py``);
``tara.core.config`` assembles them into one tree. Those modules and the backend registry import this
leaf module, not ``tara.core.config``, so assembling the tree imports no cycle and no heavy library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag

Device = Literal["auto", "cpu", "cuda"]


class ConfigError(Exception):
    """A configuration problem, phrased for the person who runs Tara."""


class Section(BaseModel):
    """A config section: an unknown key is an error (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid")


def existing_path(value: str) -> str:
    path = Path(os.path.expanduser(value))
    if not path.exists():
        raise ValueError(f"path does not exist: {path}")
    return str(path)


def bundled_or_existing_path(value: str) -> str:
    """Accept a bundled model name (``bundled:NAME``) or a path that exists."""
    return value if value.startswith("bundled:") else existing_path(value)


def optional_path(value: str) -> str:
    """Empty, or a path that exists."""
    return existing_path(value) if value else value


def by_backend(*members: type[Section]) -> Any:
    """The type of a section that holds the settings of whichever backend its ``backend`` key names.

    Each member declares ``backend: Literal[NAME] = NAME``. The first member is the default: a section
    (or an environment override) that leaves ``backend`` out selects it, as the CPU profile expects.
    Validation errors are located under the member's name (``llm.llama-cpp.model``);
    ``tara.core.config`` drops that tag when it names the key.
    """
    names = [backend_name(member) for member in members]

    def tag(value: Any) -> str | None:
        return value.get("backend", names[0]) if isinstance(value, dict) else getattr(value, "backend", None)

    tagged = tuple(Annotated[member, Tag(name)] for member, name in zip(members, names, strict=True))
    return Annotated[Union[tagged], Discriminator(tag)]  # noqa: UP007 - a Union built at runtime


def backend_name(member: type[BaseModel]) -> str:
    """The name a settings class answers to in ``backend:``."""
    return member.model_fields["backend"].default
