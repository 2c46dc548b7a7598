"""``device: auto|cpu|cuda`` for every stage: one rule, and a clear error naming the key.

Whether a GPU can be used is the runtime's to say: torch for most stages, CTranslate2 for whisper (a
CPU-only CTranslate2 build sees no GPU even where torch does, and the other way round).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tara.core.config import ConfigError


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def ctranslate2_cuda_available() -> bool:
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0


@dataclass(frozen=True)
class Runtime:
    """A library that runs a stage's model, and its own test for a usable GPU."""

    name: str
    has_cuda: Callable[[], bool]


TORCH = Runtime("torch", cuda_available)
CTRANSLATE2 = Runtime("CTranslate2", ctranslate2_cuda_available)


def resolve_device(setting: str, key: str, runtime: Runtime = TORCH) -> str:
    """``auto`` → cuda when ``runtime`` sees a GPU, else cpu; ``cuda`` without one is a ConfigError naming ``key``."""
    if setting == "auto":
        return "cuda" if runtime.has_cuda() else "cpu"
    if setting == "cuda" and not runtime.has_cuda():
        raise ConfigError(f"{key}: cuda requested but {runtime.name} sees no CUDA device (use cpu or auto)")
    return setting
