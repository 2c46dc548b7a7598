"""The whole pipeline from a recording: feed a question's audio to a real session, collect the reply.

Used by ``tara chat``, the tests and the latency benchmark. With ``realtime`` the audio is fed at the
pace of a live microphone, so partial and speculative transcription overlap speech as they would live.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tara.core.audio import PIPELINE_RATE, AudioChunk
from tara.core.conversation.events import AgentText, ErrorEvent, Event, Sources, TurnMetrics, UserTranscript
from tara.core.conversation.session import Session
from tara.core.conversation.sink import BufferSink
from tara.core.emotion import EmotionSettings
from tara.core.stack import AgentStack

FRAME = PIPELINE_RATE // 50  # 20 ms, like a WebRTC frame
TRAILING_SILENCE_S = 1.5


class NoSpeechError(ValueError):
    pass


@dataclass
class FileTurn:
    transcript: str = ""
    answer: str = ""
    grounded: bool = False
    sources: list[dict[str, Any]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    reply: AudioChunk | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript,
            "answer": self.answer,
            "grounded": self.grounded,
            "sources": [{"source": s["source"], "score": round(s["score"], 3)} for s in self.sources],
            "timings_ms": self.timings_ms,
            "errors": self.errors,
            "reply_seconds": round(self.reply.duration, 2) if self.reply else 0.0,
        }


async def feed(
    session: Session, audio: np.ndarray, realtime: bool, trailing_silence: float = TRAILING_SILENCE_S
) -> None:
    """Push audio plus trailing silence in 20 ms frames, optionally paced to the wall clock."""
    padded = np.concatenate([audio, np.zeros(int(trailing_silence * PIPELINE_RATE), dtype=np.int16)])
    started = time.perf_counter()
    for index, offset in enumerate(range(0, len(padded), FRAME)):
        session.push_audio(padded[offset : offset + FRAME])
        if realtime:
            delay = started + (index + 1) * FRAME / PIPELINE_RATE - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))
        elif index % 25 == 0:
            await asyncio.sleep(0)


async def converse(
    stack: AgentStack,
    audio: np.ndarray,
    *,
    realtime: bool = False,
    emotion: EmotionSettings | None = None,
    timeout: float = 120.0,
) -> FileTurn:
    """Ask one spoken question (16 kHz mono int16) and return what the agent heard, found and said."""
    sink = BufferSink()
    session = Session(stack, sink, emotion)
    result = FileTurn()
    try:
        await asyncio.wait_for(_run(session, audio, realtime, result), timeout)
        result.reply = sink.audio()
    finally:
        await session.close()
    return result


async def _run(session: Session, audio: np.ndarray, realtime: bool, result: FileTurn) -> None:
    await feed(session, audio, realtime)
    await collect_turn(session, result)


async def collect_turn(session: Session, result: FileTurn) -> None:
    """What ``session`` heard, found and said for the turn under way, into ``result``, until its metrics
    (the last event of a turn); a session that goes idle with no turn heard no speech."""
    while True:
        try:
            event: Event = await asyncio.wait_for(session.events.get(), timeout=0.5)
        except TimeoutError:
            # (the turn may have ended, its last event queued, just as the wait ran out)
            if not session.busy and session.events.empty():
                raise NoSpeechError("no speech was recognised in the input audio") from None
            continue
        if isinstance(event, UserTranscript) and event.final:
            result.transcript = event.text
        elif isinstance(event, Sources):
            result.sources, result.grounded = event.passages, event.grounded
        elif isinstance(event, AgentText):
            result.answer = f"{result.answer} {event.text}".strip()
        elif isinstance(event, ErrorEvent):
            result.errors.append(event.message)
        elif isinstance(event, TurnMetrics):
            result.timings_ms = event.stages
            return
