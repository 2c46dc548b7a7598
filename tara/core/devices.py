"""``device: auto|cpu|cuda`` for every stage: one rule, and a clear error naming the key."""

from __future__ import annotations

from tara.core.config import ConfigError


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(setting: str, key: str) -> str:
    """``auto`` → cuda when torch sees a GPU, else cpu; ``cuda`` without one is a ConfigError naming ``key``."""
    if setting == "auto":
        return "cuda" if cuda_available() else "cpu"
    if setting == "cuda" and not cuda_available():
        raise ConfigError(f"{key}: cuda requested but torch sees no CUDA device (use cpu or auto)")
    return setting
