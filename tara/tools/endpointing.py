"""How soon each ``endpointing.backend`` ends a turn, and how often it cuts the user off.

Finished requests and requests with a pause mid-sentence ("Tell me about the museum, and ... its
opening hours") are spoken by three espeak-ng voices and Piper and fed to the real ``Listener``, with
Silero, whisper and the turn model, once per backend. Decisions are counted in audio positions, not wall
time: after a pause the feed stops until the pause's transcription and turn model have answered (as if
they took ``latency_ms`` of audio), so the figures do not depend on how busy the CPU is. A turn ended
before the last words were spoken is a cut-off; for the rest, the silence waited after the voice stopped.

    tara eval --endpointing [--latency-ms 450] [--out bench-results/endpointing]
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tara.core.audio import PIPELINE_RATE
from tara.core.concurrency import Callers, Compute
from tara.core.config import TaraConfig, VADConfig, backends_of
from tara.core.conversation.events import Event
from tara.core.conversation.listener import Listener
from tara.core.conversation.state import ConversationState
from tara.core.conversation.turn import TurnClock
from tara.core.emotion.empathy import Empathy
from tara.core.stages.endpointing import TURN_MODELS, TurnModel
from tara.core.stages.stt import STT, STT_BACKENDS, Transcript
from tara.core.stages.vad import VAD_BACKENDS, WINDOW, Endpointer, VADEvent, VADKind
from tara.tools.measure import stats
from tara.tools.spoken import Voices

FINISHED = [
    "How long is the warranty on the Brightline kettle?",
    "What time does the museum open on Sundays?",
    "Can I bring my dog to the pool?",
    "I need to cancel my appointment.",
    "Thank you, that was very helpful.",
    "Where can I park my bike?",
    "Hello Tara.",
    "Is the cafe open today?",
    "Book me a table for two at seven.",
    "What is the price of a day ticket?",
]
UNFINISHED = [  # the first part, a pause, then the rest
    ("Tell me about the museum,", "and its opening hours."),
    ("I would like to book a table", "for four people on Friday."),
    ("How much does it cost", "for a family of four?"),
    ("Can you tell me", "when the pool opens on Sunday?"),
    ("My bike has a flat tyre", "and I need it fixed today."),
    ("What time does the ferry leave", "on Saturday morning?"),
    ("I was wondering whether", "you have any rooms free tonight."),
    ("The kettle I bought last week", "stopped working yesterday."),
    ("Do you know if the cafe", "serves vegan food?"),
    ("So the thing is", "my appointment is on Monday."),
]
VOICES = ("us", "gb", "f3", "piper")
PAUSE_S = 0.7  # the pause put into the sentence
SPEECH_LEVEL = 300  # int16 amplitude (-40 dBFS): quieter is the synthesiser's trailing silence
TAIL_S = 2.0  # quiet after the last words: longer than any end-of-turn silence


class WatchedEndpointer(Endpointer):
    """The real endpointer, keeping the events it reports (with the position each was decided at)."""

    def __init__(self, config: VADConfig) -> None:
        super().__init__(VAD_BACKENDS.create(config.backend, config), config)
        self.decided: list[tuple[VADEvent, int]] = []
        self.fed = 0

    def feed(self, pcm16k: np.ndarray) -> list[VADEvent]:
        events = super().feed(pcm16k)
        self.fed += len(pcm16k)
        self.decided += [(event, self.fed) for event in events]
        return events


@dataclass
class HearingParts:
    """The parts of the stack a ``Listener`` uses (``HearingStack``), without the LLM and the voice."""

    config: TaraConfig
    stt: STT
    turn_model: TurnModel
    callers: Callers = field(default_factory=Callers)  # (one caller: partial transcripts as in a lone call)

    def new_vad(self) -> WatchedEndpointer:
        return WatchedEndpointer(self.config.vad)


class RecordingModel:
    """A turn model that remembers what it said, for the report."""

    def __init__(self, model: TurnModel) -> None:
        self._model = model
        self.said: list[float | None] = []

    async def probability_done(self, audio: np.ndarray) -> float | None:
        probability = await self._model.probability_done(audio)
        self.said.append(probability)
        return probability


class RecordingSTT(STT):
    """The recogniser, remembering each transcript, for the report."""

    def __init__(self, stt: STT) -> None:
        self._stt = stt
        self.heard: list[str] = []

    async def transcribe(self, audio: np.ndarray, urgent: bool = True, thorough: bool = True) -> Transcript:
        transcript = await self._stt.transcribe(audio, urgent, thorough)
        self.heard.append(transcript.text)
        return transcript


class QuietHooks:
    """The listener's session, reduced to what deciding turns needs: nobody answers."""

    def __init__(self) -> None:
        self.state = ConversationState(lambda _state: None)

    def emit(self, event: Event) -> None:
        pass

    def pause_agent(self) -> None:
        pass

    def resume_agent(self) -> None:
        pass

    def interrupt(self) -> bool:
        return False

    def propose(
        self, turn_id: int, text: str, clock: TurnClock, audio, prosody, speculative_end, avg_logprob: float = 0.0
    ) -> None:
        pass

    def confirm(self, speech_stopped: float | None) -> None:
        pass

    def not_understood(self, turn_id: int, clock: TurnClock) -> None:
        pass

    async def prefill(self, text: str) -> None:
        pass


@dataclass
class Clip:
    text: str
    voice: str
    audio: np.ndarray
    last_words_at: int  # sample where the last part begins: a turn ended before it cut the user off


@dataclass
class Heard:
    """One clip through one backend: where each turn ended, and what the turn model said at each pause."""

    ends: list[int] = field(default_factory=list)  # the position the end-of-turn was decided at
    silences_ms: list[float] = field(default_factory=list)  # silence waited after the voice stopped, per end
    probabilities: list[float | None] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)


async def spoken_set(voices: Voices) -> list[Clip]:
    clips = []
    for voice in VOICES:
        for text in FINISHED:
            speech = await voices.speak(text, voice)
            clips.append(Clip(text, voice, _with_tail(speech), last_words_at=0))
        for first, rest in UNFINISHED:
            whole, head = await voices.speak(f"{first} {rest}", voice), await voices.speak(first, voice)
            cut = _word_boundary(whole, near=int(np.nonzero(np.abs(head) > SPEECH_LEVEL)[0][-1]))
            gap = np.zeros(int(PAUSE_S * PIPELINE_RATE), dtype=np.int16)
            audio = np.concatenate([whole[:cut], gap, whole[cut:]])
            clips.append(Clip(f"{first} ... {rest}", voice, _with_tail(audio), last_words_at=cut + len(gap)))
    return clips


def _word_boundary(speech: np.ndarray, near: int) -> int:
    """The quietest 10 ms within 80 ms of ``near``: where the first part ends inside the whole sentence.

    The pause goes into the sentence spoken whole, not between two parts spoken apart: a synthesiser ends
    every text it is given with a finished sentence's falling voice, which a mid-sentence pause has not.
    """
    frame = PIPELINE_RATE // 100
    starts = range(max(0, near - 8 * frame), min(len(speech) - frame, near + 8 * frame), frame // 2)
    return min(starts, key=lambda start: float(np.mean(speech[start : start + frame].astype(np.float64) ** 2)))


def _with_tail(speech: np.ndarray) -> np.ndarray:
    return np.concatenate([speech, np.zeros(int(TAIL_S * PIPELINE_RATE), dtype=np.int16)])


async def hear(parts: HearingParts, model: RecordingModel, stt: RecordingSTT, clip: Clip, latency_ms: int) -> Heard:
    """Feed ``clip`` to a fresh listener window by window; a pause's jobs answer ``latency_ms`` of audio later."""
    spawned: list[asyncio.Task[Any]] = []

    def spawn(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        spawned.append(asyncio.ensure_future(coroutine))
        return spawned[-1]

    listener = Listener(parts, QuietHooks(), Empathy(), spawn)
    vad = listener.vad
    assert isinstance(vad, WatchedEndpointer)
    heard, said_before, heard_before = Heard(), len(model.said), len(stt.heard)
    pad = parts.config.vad.end_pad_ms * PIPELINE_RATE // 1000
    latency = latency_ms * PIPELINE_RATE // 1000
    waiting: list[tuple[int, list[asyncio.Task[Any]]]] = []  # (position due, the jobs a pause or an end started)
    for position in range(WINDOW, len(clip.audio) + 1, WINDOW):
        before, seen = len(spawned), len(vad.decided)
        listener.push(clip.audio[position - WINDOW : position])
        await asyncio.sleep(0)
        kinds = {event.kind for event, _ in vad.decided[seen:]}
        for event, decided_at in vad.decided[seen:]:
            if event.kind is VADKind.END:  # END is placed end_pad_ms after the voice stopped
                heard.ends.append(decided_at)
                heard.silences_ms.append((decided_at - (event.sample - pad)) * 1000 / PIPELINE_RATE)
        if kinds & {VADKind.PAUSE, VADKind.END} and not kinds & {VADKind.START, VADKind.RESUME}:
            waiting.append((position + latency, spawned[before:]))
        while waiting and waiting[0][0] <= position:
            await asyncio.gather(*waiting.pop(0)[1], return_exceptions=True)
    for task in spawned:
        task.cancel()
    await asyncio.gather(*spawned, return_exceptions=True)
    heard.probabilities, heard.transcripts = model.said[said_before:], stt.heard[heard_before:]
    return heard


async def evaluate_endpointing(config: TaraConfig, latency_ms: int, folder: Path) -> dict[str, Any]:
    """Every backend of ``endpointing`` over the same spoken set; its shared keys (silences, words) from ``config``."""
    compute = Compute()
    stt = RecordingSTT(STT_BACKENDS.create(config.stt.backend, config.stt, config.data_path, compute=compute))
    await stt.transcribe(np.zeros(PIPELINE_RATE, dtype=np.int16))  # the first decode is the slowest
    clips = await spoken_set(Voices(folder))
    no_partials = config.stt.model_copy(update={"partial_interval_ms": 3_600_000})  # shown to nobody here
    shared = config.endpointing.model_dump(exclude={"backend"})
    report: dict[str, Any] = {"latency_ms": latency_ms, "pause_s": PAUSE_S, "backends": {}}
    for name, settings_class in backends_of("endpointing").items():
        keys = {key: value for key, value in shared.items() if key in settings_class.model_fields}
        settings = config.endpointing if config.endpointing.backend == name else settings_class(**keys)
        model = RecordingModel(TURN_MODELS.create(name, settings, compute=compute))
        await model.probability_done(np.zeros(PIPELINE_RATE, dtype=np.int16))  # warm, and not counted below
        parts = HearingParts(config.model_copy(update={"endpointing": settings, "stt": no_partials}), stt, model)
        heard = [await hear(parts, model, stt, clip, latency_ms) for clip in clips]
        report["backends"][name] = summary(clips, heard)
    return report


def summary(clips: list[Clip], heard: list[Heard]) -> dict[str, Any]:
    """Per kind of clip: how many turns were cut off early, and the silence after the last words of the rest."""
    rows: list[dict[str, Any]] = []
    kinds: dict[str, list[dict[str, Any]]] = {}
    for clip, result in zip(clips, heard, strict=True):
        early = result.ends[:-1] + [end for end in result.ends[-1:] if end < clip.last_words_at]
        row = {
            "text": clip.text,
            "voice": clip.voice,
            "kind": "unfinished" if clip.last_words_at else "finished",
            "cut_off": bool(early),
            "ended": len(result.ends),
            "silence_ms": result.silences_ms[-1] if result.ends and not early else None,
            "probabilities": [None if p is None else round(p, 3) for p in result.probabilities],
            "transcripts": result.transcripts,
        }
        rows.append(row)
        kinds.setdefault(row["kind"], []).append(row)
    by_kind = {}
    for kind, group in kinds.items():
        silences = [row["silence_ms"] for row in group if row["silence_ms"] is not None]
        mean = round(float(np.mean(silences)), 1) if silences else float("nan")
        by_kind[kind] = {
            "clips": len(group),
            "cut_off": sum(row["cut_off"] for row in group),
            "silence_ms": {**stats(silences), "mean": mean},
        }
    return {"kinds": by_kind, "clips": rows}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"End of turn, decided in audio positions (the pause's jobs answer {report['latency_ms']} ms of audio later; "
        f"pause mid-sentence {report['pause_s']} s)",
        "",
        "| backend | clips | cut off early | silence after the last words p50 / p95 / mean (ms) |",
        "|---|---|---|---|",
    ]
    for name, result in report["backends"].items():
        for kind, figures in result["kinds"].items():
            silence = figures["silence_ms"]
            lines.append(
                f"| {name}, {kind} | {figures['clips']} | {figures['cut_off']} | "
                f"{silence['p50']:.0f} / {silence['p95']:.0f} / {silence['mean']:.0f} |"
            )
    return "\n".join(lines)


def run(config: TaraConfig, latency_ms: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(evaluate_endpointing(config, latency_ms, Path(folder)))
