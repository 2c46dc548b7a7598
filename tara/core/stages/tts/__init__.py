"""Text to speech: one small async interface, backends picked by ``tts.backend``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from tara.core.audio import AudioChunk
from tara.core.concurrency import Urgency
from tara.core.emotion import EmotionSettings
from tara.core.registry import Registry


class UnknownVoiceError(ValueError):
    pass


class CloningUnsupportedError(ValueError):
    """This backend cannot make a voice from a recording."""


class TTS(ABC):
    sample_rate: int
    default_voice: str
    needs_compute: bool = False  # computes on the shared CPU: its constructor takes the process's Compute
    can_clone: bool = False  # add_voice makes a voice from a reference recording and its transcript
    clone_limitation = "this voice backend cannot clone a voice from a recording (tts.backend: csm can)"

    @property
    def device(self) -> str:
        """Where synthesis runs: ``cpu`` or ``cuda``."""
        return "cpu"

    @property
    @abstractmethod
    def voices(self) -> list[str]:
        """Names of the voices this backend can speak with; ``default_voice`` is one of them."""

    def check_voice(self, voice: str) -> str:
        if voice not in self.voices:
            raise UnknownVoiceError(f"unknown voice {voice!r}; choose one of {', '.join(self.voices)}")
        return voice

    @abstractmethod
    def stream(
        self,
        text: str,
        emotion: EmotionSettings,
        voice: str | None = None,
        context: Any = None,
        urgent: Urgency = True,
    ) -> AsyncIterator[AudioChunk]:
        """Speak one sentence or clause (``voice`` or the default); yields PCM chunks at the native rate.

        ``context`` is the conversation's ``VoiceContext.state`` (None for voices that keep none).
        ``urgent=False`` marks speech not on the way to a turn's first audio (a reply's later sentences,
        with seconds of playback in hand): a backend sharing the CPU lets first sentences go first; a
        callable says when it becomes urgent (the playback in hand is running out).
        A chunk may carry the ``words`` it says with their starts (Piper does); a voice that cannot tell
        leaves them out and the reply spreads the piece's words over its audio (``SpokenPiece.words``).
        """

    def add_voice(self, name: str, samples: np.ndarray, sample_rate: int, transcript: str) -> None:
        """Make voice ``name`` from a reference recording (mono int16) and what it says. Blocking: run it
        in a thread. ``ValueError`` when the recording cannot be a voice; backends that cannot clone say so."""
        raise CloningUnsupportedError(self.clone_limitation)

    def remove_voice(self, name: str) -> None:
        """Forget a voice made by ``add_voice``; the default voice stays."""
        if name == self.default_voice:
            raise ValueError(f"voice {name!r} is the default voice")
        raise UnknownVoiceError(f"unknown voice {name!r}")


class ConversationalTTS(TTS):
    """A voice whose delivery follows the exchange (CSM): it hears the user's turns and its own sentences.

    Each conversation keeps its own context (the model is shared); ``VoiceContext`` is how a session holds it.
    """

    @abstractmethod
    def new_context(self) -> Any:
        """A fresh conversation's context, to pass to ``stream`` and ``hear``."""

    @abstractmethod
    async def hear(self, context: Any, text: str, pcm16k: np.ndarray) -> None:
        """Add what the user said (16 kHz audio and its transcript) to ``context``."""


class VoiceContext:
    """One conversation's side of its voice: what a conversational TTS has heard of it, nothing for another.

    The one place that asks whether the voice is conversational, so sessions and replies need not.
    """

    def __init__(self, tts: TTS) -> None:
        self._tts = tts if isinstance(tts, ConversationalTTS) else None
        self.state: Any = self._tts.new_context() if self._tts is not None else None  # ``stream``'s context

    async def hear(self, text: str, pcm16k: np.ndarray) -> None:
        """Tell the voice what the user said; a voice that does not listen ignores it."""
        if self._tts is not None:
            await self._tts.hear(self.state, text, pcm16k)


async def synthesize(tts: TTS, text: str, emotion: EmotionSettings, voice: str | None = None) -> AudioChunk:
    """All of ``text`` spoken at once (files, samples, API tasks)."""
    chunks = [chunk async for chunk in tts.stream(text, emotion, voice)]
    samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, dtype=np.int16)
    return AudioChunk(samples, chunks[0].sample_rate if chunks else tts.sample_rate)


TTS_BACKENDS: Registry[TTS] = Registry(
    "tts.backend", {"piper": "tara.core.stages.tts.piper:PiperTTS", "csm": "tara.core.stages.tts.csm.backend:CSMTTS"}
)
