"""Scripted stand-ins for the model stages, to test the turn engine's logic around them.

Real models cannot be told to stall, loop or fail on cue; these can. Each records what it was asked,
so a test can check what the session sent. Capabilities are tested with the real models elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tara.core.audio import PIPELINE_RATE, AudioChunk, TimedWord, rms_dbfs
from tara.core.concurrency import Compute, Urgency
from tara.core.config import TaraConfig
from tara.core.conversation.prompt import PromptBuilder
from tara.core.conversation.sink import BufferSink, OnPlay
from tara.core.emotion import EmotionSettings
from tara.core.stack import AgentStack
from tara.core.stages.endpointing import TurnModel, WordsOnly
from tara.core.stages.llm import LLM, ChatMessage, GenerationParams
from tara.core.stages.rag import Document, Passage, Progress, Retriever
from tara.core.stages.stt import STT, Transcript
from tara.core.stages.tts import TTS
from tara.core.stages.vad import VAD_BACKENDS

Reply = Sequence[str | float | Exception]  # text deltas; a float sleeps that long; an exception is raised


class ScriptedLLM(LLM):
    """Streams one scripted reply per call (the last one repeats); ``delay`` between deltas."""

    def __init__(self, *replies: Reply, delay: float = 0.0) -> None:
        self.replies = list(replies)
        self.delay = delay
        self.prompts: list[list[ChatMessage]] = []
        self.params: list[GenerationParams] = []  # each call's
        self.prefilled: list[list[ChatMessage]] = []
        self.closed_early = 0  # streams whose consumer stopped before the script ended

    async def prefill(self, messages: list[ChatMessage]) -> None:
        self.prefilled.append(messages)

    async def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        self.prompts.append(messages)
        self.params.append(params)
        script = self.replies[min(len(self.prompts), len(self.replies)) - 1]
        finished = False
        try:
            for item in script:
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, (int, float)):  # (a float annotation admits an int too)
                    await asyncio.sleep(item)
                    continue
                await asyncio.sleep(self.delay)
                yield item
            finished = True
        finally:
            self.closed_early += not finished


def words(text: str) -> list[str]:
    """``text`` as an LLM streams it: words with their leading spaces."""
    parts = text.split(" ")
    return [parts[0]] + [" " + part for part in parts[1:]]


class ScriptedSTT(STT):
    """Returns the scripted transcripts in turn (the last one repeats)."""

    def __init__(self, *transcripts: str | Transcript) -> None:
        self.transcripts = [t if isinstance(t, Transcript) else Transcript(t, 1.0, 0.0) for t in transcripts]
        self.calls = 0
        self.thorough: list[bool] = []  # each call's ``thorough``

    async def transcribe(self, audio: np.ndarray, urgent: bool = True, thorough: bool = True) -> Transcript:
        self.calls += 1
        self.thorough.append(thorough)
        return self.transcripts[min(self.calls, len(self.transcripts)) - 1]


class FailingSTT(ScriptedSTT):
    """Raises on its first ``failures`` calls, then transcribes ``then``."""

    def __init__(self, failures: int, then: str) -> None:
        super().__init__(then)
        self.failures = failures

    async def transcribe(self, audio: np.ndarray, urgent: bool = True, thorough: bool = True) -> Transcript:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the recogniser broke")
        return await super().transcribe(audio, urgent)


class ToneTTS(TTS):
    """Speaks every piece as 0.2 s of tone, at once; remembers what it said."""

    sample_rate = 16000
    default_voice = "tone"

    def __init__(self) -> None:
        self.said: list[str] = []

    @property
    def voices(self) -> list[str]:
        return [self.default_voice]

    async def stream(
        self,
        text: str,
        emotion: EmotionSettings,
        voice: str | None = None,
        context: object = None,
        urgent: Urgency = True,
    ) -> AsyncIterator[AudioChunk]:
        self.said.append(text)
        tone = (3000 * np.sin(np.arange(self.sample_rate // 5) * 0.05)).astype(np.int16)
        yield AudioChunk(tone, self.sample_rate)


class WordTTS(ToneTTS):
    """Says each word as ``WORD_S`` of tone, in chunks of two words, each chunk carrying its words' times."""

    WORD_S = 0.25

    async def stream(
        self,
        text: str,
        emotion: EmotionSettings,
        voice: str | None = None,
        context: object = None,
        urgent: Urgency = True,
    ) -> AsyncIterator[AudioChunk]:
        self.said.append(text)
        written = text.split()
        word_samples = int(self.WORD_S * self.sample_rate)
        for first in range(0, len(written), 2):
            pair = written[first : first + 2]
            tone = (3000 * np.sin(np.arange(word_samples * len(pair)) * 0.05)).astype(np.int16)
            starts = (i * self.WORD_S for i in range(len(pair)))
            yield AudioChunk(tone, self.sample_rate, tuple(map(TimedWord, pair, starts)))


class PlayedSink(BufferSink):
    """A sink that plays only when a test says so (``play``): playback positions as a WebRTC track gives them."""

    def __init__(self) -> None:
        super().__init__()
        self.written_s = 0.0
        self._starts: list[tuple[float, OnPlay]] = []
        self._played = asyncio.Event()  # set whenever it plays or clears

    def write(self, chunk: AudioChunk, on_play: OnPlay | None = None) -> None:
        if on_play is not None:
            self._starts.append((self.written_s, on_play))
        self.chunks.append(chunk)
        self.written_s += chunk.duration

    def play(self, seconds: float) -> None:
        """Play ``seconds`` more of what is queued."""
        self.played_s = min(self.written_s, self.played_s + seconds)
        while self._starts and self._starts[0][0] < self.played_s:
            start, on_play = self._starts.pop(0)
            on_play(start)
        self._played.set()

    def clear(self) -> None:
        super().clear()
        self.written_s = self.played_s  # what was queued is never played
        self._starts.clear()
        self._played.set()

    async def drain(self) -> None:
        await self.ahead_at_most(0.0)

    @property
    def queued_s(self) -> float:
        return self.written_s - self.played_s

    async def ahead_at_most(self, seconds: float) -> None:
        while self.written_s - self.played_s > seconds:
            self._played.clear()
            await self._played.wait()


@dataclass
class KeywordRetriever(Retriever):
    """Scores each document by how many of the query's longer words it contains (three make 1.0)."""

    documents: list[Document] = field(default_factory=list)
    kb_dir: Path = Path(".")
    skipped: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    async def retrieve(self, query: str, k: int | None = None) -> list[Passage]:
        self.queries.append(query)
        asked = {w.strip("?.,!").lower() for w in query.split() if len(w) > 3}
        scored = [
            Passage(d.text, d.source, min(1.0, len(asked & set(d.text.lower().replace(".", " ").split())) / 3))
            for d in self.documents
        ]
        return sorted(scored, key=lambda p: -p.score)[: k or 3]

    def refreshed(self, progress: Progress | None = None) -> Retriever:
        return self


class LoudVAD:
    """A VAD model that hears any window louder than -40 dBFS as speech: ``loud(s)`` is speech, zeros silence."""

    def __init__(self, config: object = None) -> None:
        self.windows = 0

    def probability(self, window: np.ndarray) -> float:
        self.windows += 1
        return 1.0 if rms_dbfs(window) > -40 else 0.0

    def reset(self) -> None:
        self.windows = 0


VAD_BACKENDS.register("loud", "tests.fakes:LoudVAD")


class ScriptedTurnModel:
    """An end-of-turn model that says the same probability of "done" for every pause, and counts the pauses."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.calls = 0

    async def probability_done(self, audio: np.ndarray) -> float | None:
        self.calls += 1
        return self.probability


def loud(seconds: float) -> np.ndarray:
    """``seconds`` of "speech" for ``LoudVAD`` (a tone; its transcript comes from ``ScriptedSTT``)."""
    return (8000 * np.sin(np.arange(int(seconds * PIPELINE_RATE)) * 0.07)).astype(np.int16)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * PIPELINE_RATE), dtype=np.int16)


def fake_stack(
    config: TaraConfig,
    llm: LLM,
    stt: STT | None = None,
    documents: list[Document] | None = None,
    tts: TTS | None = None,
    vad: str = "silero",
    turn_model: TurnModel | None = None,
) -> AgentStack:
    """An ``AgentStack`` of fakes; ``vad="loud"`` swaps Silero for ``LoudVAD`` (the endpointer stays real)."""
    config = config.model_copy(update={"vad": config.vad.model_copy(update={"backend": vad})})
    retriever = KeywordRetriever(documents or [])
    prompts = PromptBuilder(config.llm, config.rag, retriever.documents, llm.count_tokens)
    stt, tts = stt or ScriptedSTT("Hello."), tts or ToneTTS()
    return AgentStack(config, stt, retriever, llm, tts, prompts, Compute(), turn_model=turn_model or WordsOnly())


async def events_until(session, kind: type, timeout: float = 60.0) -> list:
    """A session's events up to and including the first of ``kind``."""
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            event = await session.events.get()
            seen.append(event)
            if isinstance(event, kind):
                return seen


def queued_events(session) -> list:
    """Every event a session has queued so far, without waiting."""
    events = []
    while not session.events.empty():
        events.append(session.events.get_nowait())
    return events
