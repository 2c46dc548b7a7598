"""Text to speech: one small async interface, backends picked by ``tts.backend``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from agent.audio import AudioChunk
from agent.emotion import EmotionSettings
from agent.registry import Registry


class UnknownVoiceError(ValueError):
    pass


class TTS(ABC):
    sample_rate: int
    default_voice: str

    @property
    @abstractmethod
    def voices(self) -> list[str]:
        """Names of the voices this backend can speak with; ``default_voice`` is one of them."""

    def check_voice(self, voice: str) -> str:
        if voice not in self.voices:
            raise UnknownVoiceError(f"unknown voice {voice!r}; choose one of {', '.join(self.voices)}")
        return voice

    @abstractmethod
    def stream(self, text: str, emotion: EmotionSettings, voice: str | None = None,
               context: Any = None) -> AsyncIterator[AudioChunk]:
        """Speak one sentence or clause (``voice`` or the default); yields PCM chunks at the native rate.

        ``context`` is what ``new_context`` made for this conversation (None for voices without one).
        """

    def new_context(self) -> Any:
        """Per-conversation state for voices whose prosody follows the exchange (CSM); None here."""
        return None

    async def hear(self, context: Any, text: str, pcm16k: np.ndarray) -> None:
        """Tell a conversational voice what the user said (16 kHz audio and its transcript)."""


TTS_BACKENDS: Registry[TTS] = Registry(
    "tts.backend", {"piper": "agent.tts.piper:PiperTTS", "csm": "agent.tts.csm.backend:CSMTTS"}
)
