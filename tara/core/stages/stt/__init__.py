"""Speech to text: one small async interface, backends picked by ``stt.backend``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from tara.core.registry import Registry


@dataclass(frozen=True)
class Transcript:
    text: str
    audio_seconds: float
    elapsed_seconds: float
    rejected: str | None = None  # why the recogniser's text was not trusted (``text`` is then empty)
    doubtful: str = ""  # that untrusted text, for the log
    avg_logprob: float = 0.0  # the recogniser's confidence, its mean token log-probability (0: sure)


class STT(ABC):
    needs_compute: bool = False  # computes on the shared CPU: its constructor takes the process's Compute

    @abstractmethod
    async def transcribe(self, audio: np.ndarray, urgent: bool = True, thorough: bool = True) -> Transcript:
        """Transcribe mono int16 audio at 16 kHz (a whole utterance, or the part heard so far).

        ``urgent=False`` marks optional work (a partial transcript for display): a backend sharing the
        CPU lets everyone's replies go first. ``thorough=False`` asks for the quick reading alone (a
        partial transcript; speech over the agent, judged by how sure that reading is): a backend may
        then skip a slower second search.
        """

    def set_vocabulary(self, terms: list[str], words: Collection[str] = ()) -> None:
        """Bias recognition toward these terms (names, products) and the documents' ``words``
        (lower case); backends may ignore it."""


STT_BACKENDS: Registry[STT] = Registry(
    "stt.backend", {"faster-whisper": "tara.core.stages.stt.whisper:FasterWhisperSTT"}
)
