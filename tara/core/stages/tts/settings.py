"""Each TTS backend's settings, selected by ``tts.backend``; light, so ``tara.core.config`` imports it at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

from pydantic import Field, field_validator, model_validator

from tara.core.emotion import PRESETS
from tara.core.sections import Device, Section, bundled_or_existing_path, by_backend, existing_path, optional_path


class PiperSettings(Section):
    """Piper (the CPU profile): trained voices, bundled or local ``.onnx`` files."""

    backend: Literal["piper"] = "piper"
    voice: str = "bundled:joe"  # the default voice
    voices: dict[str, str] = {}  # more voices the page can pick, by name: {name: bundled:NAME or a path}

    _check_voice = field_validator("voice")(bundled_or_existing_path)

    @field_validator("voices")
    @classmethod
    def _check_voices(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: bundled_or_existing_path(path) for name, path in value.items()}


class CSMPrompt(Section):
    """A recording and its transcript: CSM continues in the voice (and mood) it hears here."""

    audio: str  # any file FFmpeg reads; a few seconds of clean speech
    text: str

    _check_audio = field_validator("audio")(existing_path)


class CSMVoice(Section):
    speaker: int = Field(default=0, ge=0, le=99)  # the [N] speaker tag CSM sees
    prompt: CSMPrompt | None = None  # none: an unprompted voice, which drifts between sentences
    emotions: dict[str, CSMPrompt] = {}  # emotion preset -> a prompt spoken in that mood

    @field_validator("emotions")
    @classmethod
    def _known_presets(cls, value: dict[str, CSMPrompt]) -> dict[str, CSMPrompt]:
        unknown = sorted(set(value) - set(PRESETS))
        if unknown:
            raise ValueError(f"unknown emotion preset {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
        return value


class CSMSettings(Section):
    """Sesame CSM (the GPU profile). ``model: tiny`` is a random 2-layer model for tests, made on first use."""

    backend: Literal["csm"] = "csm"
    model: Literal["1b", "tiny"] = "1b"
    weights: str = ""  # CSM model.safetensors; empty only for model: tiny (generated into data_dir)
    tokenizer: str = ""  # Llama-3.2 tokenizer.model (tiktoken format)
    mimi: str = ""  # Mimi codec weights (.safetensors)
    device: Device = "auto"
    frames_per_chunk: int = Field(default=2, ge=1, le=50)  # audio is yielded every N frames of 80 ms
    max_audio_ms: int = Field(default=10000, ge=80, le=60000)  # per sentence, if CSM never ends it
    context_segments: int = Field(default=4, ge=0, le=32)  # recent conversation segments CSM hears
    seed: int | None = None  # fixed sampling seed (repeatable output)
    default_voice: str = "default"
    voices: dict[str, CSMVoice] = {"default": CSMVoice()}

    _check_paths = field_validator("weights", "tokenizer", "mimi")(optional_path)

    @model_validator(mode="after")
    def _default_voice_exists(self) -> CSMSettings:
        if self.default_voice not in self.voices:
            raise ValueError(f"default_voice {self.default_voice!r} is not in voices ({', '.join(self.voices)})")
        return self


# The ``tts`` section: the first is the default (the checker sees the plain union, as for ``llm``).
if TYPE_CHECKING:
    TTSConfig: TypeAlias = PiperSettings | CSMSettings
else:
    TTSConfig = by_backend(PiperSettings, CSMSettings)
