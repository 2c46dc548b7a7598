"""Text to speech: one small async interface, backends picked by ``tts.backend``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from agent.audio import AudioChunk
from agent.emotion import EmotionSettings
from agent.registry import Registry


class TTS(ABC):
    sample_rate: int

    @abstractmethod
    def stream(self, text: str, emotion: EmotionSettings) -> AsyncIterator[AudioChunk]:
        """Speak one sentence or clause; yields PCM chunks at the backend's native rate."""


TTS_BACKENDS: Registry[TTS] = Registry("tts.backend", {"piper": "agent.tts.piper:PiperTTS"})
