"""The records of one exchange: the user's utterance being heard, and what a reply answers (``Turn``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from tara.core.emotion.prosody import ProsodyFeatures
from tara.core.stages.stt import Transcript


class Hearing(Enum):
    """What the utterance being heard is to the agent's voice."""

    USER = "user"  # a turn of the user's (also speech over the agent judged real: the agent was interrupted)
    UNDECIDED = "undecided"  # started over the agent's voice: the agent is paused until the words decide
    BACKCHANNEL = "backchannel"  # "mm-hm": the agent spoke on, and this utterance is not a turn


@dataclass
class Utterance:
    """The user's current utterance: where it is in the stream and the transcriptions made of it."""

    start_sample: int
    hearing: Hearing = Hearing.USER
    pause_sample: int | None = None
    voice_stopped_at: float | None = None  # perf_counter, when the silence of the current pause began
    final_job: asyncio.Task[Transcript | None] | None = None
    final_job_end: int | None = None
    partial_job: asyncio.Task[None] | None = None
    partial_audio_seconds: float = 0.0
    echo_check: asyncio.Task[None] | None = None  # long speech over the agent: its words, or its own echo?


@dataclass
class TurnClock:
    """Stage timestamps of one turn (perf_counter seconds)."""

    speech_stopped: float | None = None  # when the user's voice actually stopped (spoken turns only)
    speech_end: float = field(default_factory=time.perf_counter)  # when the turn was declared over
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str, at: float | None = None) -> None:
        self.marks.setdefault(stage, at if at is not None else time.perf_counter())

    def report(self) -> dict[str, float]:
        """Milliseconds from the end-of-turn decision; ``endpointing`` is the silence waited for it, and
        ``voice_to_first_audio`` counts from the moment the user's voice stopped."""
        stages = {name: round((at - self.speech_end) * 1000, 1) for name, at in self.marks.items()}
        if self.speech_stopped is not None:
            stages["endpointing"] = round((self.speech_end - self.speech_stopped) * 1000, 1)
            if "first_audio" in self.marks:
                stages["voice_to_first_audio"] = round((self.marks["first_audio"] - self.speech_stopped) * 1000, 1)
        return stages


@dataclass
class Turn:
    """What one reply answers: the question, how it was heard, and the clock of its stages."""

    id: int
    question: str
    clock: TurnClock
    speculative_end: int | None = None  # the pause (stream sample) a speculative reply answers
    audio: np.ndarray | None = None  # the user's speech (16 kHz) for a spoken turn
    prosody: asyncio.Future[ProsodyFeatures | None] | None = None  # its prosody, measured with the transcript
    queries: tuple[str, ...] = ()  # what to look up: each question the turn answers, on its own
    canned: str | None = None  # a fixed reply (the user was not understood): no retrieval, no LLM

    def __post_init__(self) -> None:
        self.queries = self.queries or (self.question,)
