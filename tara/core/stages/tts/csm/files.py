"""Where CSM's three files come from: local paths in config, or the tiny model made on first use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tara.core.config import ConfigError
from tara.core.stages.tts.settings import CSMSettings


@dataclass(frozen=True)
class CSMFiles:
    weights: Path  # CSM model.safetensors
    tokenizer: Path  # Llama-3.2 tokenizer.model (tiktoken)
    mimi: Path  # Mimi .safetensors


_WHAT = {
    "weights": "CSM-1B's model.safetensors",
    "tokenizer": "Llama-3.2's original/tokenizer.model",
    "mimi": "Mimi's tokenizer-e351c8d8-checkpoint125.safetensors",
}


def resolve_files(settings: CSMSettings, data_dir: Path) -> CSMFiles:
    """Configured paths (checked to exist at config load); ``model: tiny`` fills the empty ones."""
    given = {key: getattr(settings, key) for key in ("weights", "tokenizer", "mimi")}
    if settings.model == "tiny" and not all(given.values()):
        from tara.core.stages.tts.csm.tiny import ensure_tiny

        tiny = ensure_tiny(data_dir)
        return CSMFiles(**{key: Path(value) if value else getattr(tiny, key) for key, value in given.items()})
    for key, value in given.items():
        if not value:
            raise ConfigError(f"tts.{key}: required for model {settings.model!r}: a local path to {_WHAT[key]}")
    return CSMFiles(**{key: Path(value) for key, value in given.items()})
