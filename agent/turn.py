"""The records of one exchange: the user's utterance being heard, and the agent's reply (``Turn``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np

from agent.prosody import ProsodyFeatures
from agent.stt import Transcript


@dataclass
class Utterance:
    """The user's current utterance: its audio and the transcripts made of it."""

    start_sample: int
    pause_sample: int | None = None
    paused_at: float | None = None
    final_job: asyncio.Task[Transcript | None] | None = None
    final_job_end: int | None = None
    partial_job: asyncio.Task[None] | None = None
    partial_audio_seconds: float = 0.0
    over_agent: bool = False  # started while the agent spoke; the agent is paused until we know what it is
    dismissed: bool = False  # a backchannel: the agent spoke on and this utterance is not a turn


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
    """One reply of the agent: a single cancellable unit, from retrieval to the last audio chunk.

    A turn may start *speculatively* on a pause in the user's speech, before the end-of-turn silence
    has run out: it retrieves, thinks and synthesises, but nothing is heard or shown until it is
    committed. If the user goes on talking it is cancelled without a trace.
    """

    id: int
    question: str
    clock: TurnClock
    committed: asyncio.Event = field(default_factory=asyncio.Event)
    speculative_end: int | None = None  # the pause (stream sample) a speculative turn answers
    audio: np.ndarray | None = None  # the user's speech (16 kHz) for a spoken turn
    prosody: asyncio.Future[ProsodyFeatures | None] | None = None  # its prosody, measured with the transcript
    queries: tuple[str, ...] = ()  # what to look up: each question the turn answers, on its own
    canned: str | None = None  # a fixed reply (the user was not understood): no retrieval, no LLM
    task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.queries = self.queries or (self.question,)

    @property
    def active(self) -> bool:
        return self.task is not None and not self.task.done()
