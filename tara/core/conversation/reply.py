"""One reply of the agent as a handle: retrieve → prompt → LLM → speakable pieces → TTS → sink.

A ``Reply`` is one cancellable unit (livekit's ``speech_handle.py`` plays the same part): ``interrupt()``
stops its thinking and its voice together, ``done`` says whether it is over and ``played_out`` is set once
its last audio has left the sink. Each piece is shown (``AgentText``) as it starts playing, with its word
times; an interrupted reply keeps only the words played before the cut (``heard.py``).

A reply started on a pause in the user's speech is *speculative*: it retrieves, thinks and synthesises,
but nothing is heard or shown until ``commit()``. Cancelled before that, it leaves no trace.

A heard reply is never silent: a holding phrase covers a model with nothing to say after
``HOLDING_AFTER_S``, a reply that ends with nothing said gets an honest phrase, and a failure says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, Protocol

from tara.core.audio import without_leading_silence
from tara.core.concurrency import Urgency
from tara.core.conversation.events import AgentText, AgentTurnDone, ErrorEvent, Event, Sources, TurnMetrics
from tara.core.conversation.guards import CUT_NOT_IN_DOCUMENTS, NOT_IN_DOCUMENTS, ReplyCheck
from tara.core.conversation.heard import SpokenPiece, heard_text
from tara.core.conversation.phrases import FAILED_PHRASE, HOLDING_PHRASE
from tara.core.conversation.prompt import insisting
from tara.core.conversation.sink import AudioSink
from tara.core.conversation.state import ConversationState
from tara.core.conversation.stream_adapter import written
from tara.core.conversation.turn import Turn
from tara.core.emotion import EmotionSettings, reply_emotion
from tara.core.emotion.empathy import Empathy
from tara.core.stack import AgentStack
from tara.core.stages.llm import ChatMessage, GenerationParams
from tara.core.stages.rag import Passage
from tara.core.stages.tts import VoiceContext

log = logging.getLogger(__name__)
TTS_AHEAD_S = 2.5  # synthesise the next sentence once no more than this is left to play
HOLDING_AFTER_S = 2.0  # a reply with nothing to say this long after the user stopped says HOLDING_PHRASE
RUNNING_DRY_S = 1.0  # less than this left to play: the reply's next words are as urgent as a first audio

Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class ReplyHost(Protocol):
    """What a reply reads from its conversation, and where it reports."""

    stack: AgentStack
    sink: AudioSink
    state: ConversationState
    history: list[ChatMessage]
    emotion: EmotionSettings  # the user's chosen settings; a reply may adapt them to how the user sounded
    voice: str  # read per piece: a voice picked mid-reply speaks from the next piece on
    voice_context: VoiceContext  # what a conversational voice (CSM) has heard of the exchange
    empathy: Empathy

    def emit(self, event: Event) -> None: ...

    def replied(self, turn: Turn, heard: str, interrupted: bool) -> None:
        """The reply is over; ``heard`` is what the user heard of it, marked "…" where it was cut off."""


class Reply:
    def __init__(self, turn: Turn, host: ReplyHost, spawn: Spawn, after: Reply | None = None) -> None:
        self.turn = turn
        self.played_out = asyncio.Event()
        self._host = host
        self._committed = asyncio.Event()
        self._started = self._stop_at_start = False
        self._pieces: list[SpokenPiece] = []  # the reply's own pieces (no holding phrase), as they are voiced
        self._task = spawn(self._run(after._task if after else None))

    @property
    def committed(self) -> bool:
        return self._committed.is_set()

    def commit(self) -> None:
        """Let it be heard: the user has finished the turn it answers."""
        self._committed.set()

    def interrupt(self) -> bool:
        """Stop thinking and speaking at once. Returns whether it was still running."""
        running = not self._task.done()
        if self._started:
            self._task.cancel()
        else:  # a task cancelled before its first step never runs its ``finally`` (no agent_done): stop there
            self._stop_at_start = True
        return running

    @property
    def done(self) -> bool:
        return self._task.done()

    async def wait(self) -> None:
        await asyncio.gather(self._task, return_exceptions=True)

    # ---------------------------------------------------------------- the run

    async def _run(self, previous: asyncio.Task[None] | None) -> None:
        self._started = True
        host, turn = self._host, self.turn
        spoken: list[str] = []
        interrupted = failed = False
        try:
            if self._stop_at_start:
                raise asyncio.CancelledError
            if previous is not None:  # let an interrupted reply record its history first
                await asyncio.gather(previous, return_exceptions=True)
            await self._respond(spoken)
        except asyncio.CancelledError:
            interrupted = True
            raise
        except Exception as exc:
            failed = True
            log.exception("turn %d failed", turn.id)
            while isinstance(exc, ExceptionGroup):  # report the stage's own error, not the TaskGroup's
                exc = exc.exceptions[0]
            await self._committed.wait()  # a speculative reply reports only once it is real
            host.emit(ErrorEvent(f"the agent could not answer: {exc}", stage="turn"))
            if not spoken:  # the user asked and heard nothing: say so, if the voice still works
                try:
                    await self._voice(FAILED_PHRASE, reply_emotion(host.emotion, None), None, asyncio.Lock())
                except Exception:
                    log.exception("could not say that the turn failed")
        finally:
            if self.committed:  # an uncommitted speculative reply leaves no trace
                # cut off, the user heard what had played; otherwise everything voiced plays out
                reply = heard_text(self._pieces, host.sink.played_s) if interrupted else " ".join(spoken)
                # unmarked, the model takes "It is called Big" for a whole answer and copies it next time
                host.replied(turn, f"{reply} …" if reply and (interrupted or failed) else reply, interrupted)
                host.emit(AgentTurnDone(turn.id, reply, interrupted))
                host.state.listen()
                host.emit(TurnMetrics(turn.id, turn.clock.report()))  # last event of a turn

    async def _respond(self, spoken: list[str]) -> None:
        host, turn, clock = self._host, self.turn, self.turn.clock
        stack = host.stack
        if self.committed:
            host.state.think()
        if turn.canned is not None:  # nothing to think about
            await self._voice(turn.canned, reply_emotion(host.emotion, None), None, asyncio.Lock())
            await self._played()
            return

        passages, heard = await asyncio.gather(
            self._retrieve(), host.empathy.hear(turn.audio, turn.prosody, turn.question)
        )
        emotion = reply_emotion(host.emotion, heard.estimate.label)
        prompt = stack.prompts.build(
            host.history, turn.question, passages, emotion.style_instruction(), stack.llm.writes_carefully()
        )
        # the LLM runs at most a sentence ahead of the voice, the voice a few seconds ahead of playback:
        # what is not needed yet leaves the CPU to other sessions' first sentences
        sentences: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1)
        voice_lock = asyncio.Lock()  # the holding phrase and the reply never talk over each other
        started_speaking = asyncio.Event()

        def running_dry() -> bool:
            """Past its first audio a reply can wait for other callers' first words, until its voice runs dry."""
            return host.sink.queued_s < RUNNING_DRY_S

        params = replace(generation_params(stack), hurry=running_dry)

        async def think() -> None:
            check = ReplyCheck(
                turn.question, stack.prompts.known_facts, prompt.grounded, stack.config.llm.system_prompt
            )
            async for piece in written(stack.llm, prompt, params, check, clock):
                await sentences.put(piece)
            if check.parroted and (check.said_nothing or check.cut_short):  # it only said the question back
                # (maybe after the first words of an answer were out): once more, insisting, on from those words
                again = insisting(prompt, check.go_on())
                async for piece in written(stack.llm, again, replace(params, second_try=True), check, clock):
                    await sentences.put(piece)
            if check.said_nothing:
                await sentences.put(NOT_IN_DOCUMENTS)  # a heard turn is never silent
            elif check.cut_short:  # its first words said, the rest the question back twice: never stop mid-sentence
                await sentences.put(CUT_NOT_IN_DOCUMENTS)
            await sentences.put(None)

        async def speak() -> None:
            if turn.audio is not None:
                await host.voice_context.hear(turn.question, turn.audio)
            while (piece := await sentences.get()) is not None:
                started_speaking.set()
                await host.sink.ahead_at_most(TTS_AHEAD_S)
                # only the first sentence is on the way to the first audio
                await self._voice(piece, emotion, spoken, voice_lock, urgent=True if not spoken else running_dry)
            holding.cancel()
            await self._played()

        async def hold() -> None:
            """Nothing to say yet, long after the user stopped: say so, then go on. The wait counts from
            when their voice stopped, as they hear it, not from the end-of-turn decision a silence later."""
            await self._committed.wait()
            stopped = clock.speech_stopped if clock.speech_stopped is not None else clock.speech_end
            await asyncio.sleep(stopped + HOLDING_AFTER_S - time.perf_counter())
            async with voice_lock:
                if not started_speaking.is_set():
                    clock.mark("holding")
                    await self._voice(HOLDING_PHRASE, emotion, None, asyncio.Lock())

        async with asyncio.TaskGroup() as group:
            group.create_task(think())
            holding = group.create_task(hold())
            group.create_task(speak())
            await self._committed.wait()
            host.state.think()
            host.emit(host.empathy.remember(turn.id, heard, emotion, host.emotion))
            cited = stack.prompts.relevant(passages)  # what the page names under the reply ("from kettle.md")
            host.emit(Sources(turn.id, [p.to_dict() for p in cited], prompt.grounded))

    async def _retrieve(self) -> list[Passage]:
        """Passages for each of the turn's questions on their own; a follow-up that finds nothing
        ("And on Sundays?") is looked up together with the question before it."""
        host, turn = self._host, self.turn
        retriever, prompts = host.stack.retriever, host.stack.prompts
        found = await asyncio.gather(*(retriever.retrieve(query) for query in turn.queries))
        passages = [p for ps in found for p in ps]
        previous = prompts.question_followed(host.history)
        if not prompts.is_relevant(sorted(passages, key=lambda p: -p.score)) and previous:
            passages += await retriever.retrieve(f"{previous} {turn.queries[-1]}")
        turn.clock.mark("retrieval")
        best: dict[tuple[str, str], Passage] = {}
        for passage in passages:
            key = (passage.source, passage.text)
            if key not in best or passage.score > best[key].score:
                best[key] = passage
        return sorted(best.values(), key=lambda p: -p.score)[: host.stack.config.rag.top_k]

    async def _voice(
        self,
        piece: str,
        emotion: EmotionSettings,
        spoken: list[str] | None,
        lock: asyncio.Lock,
        urgent: Urgency = True,
    ) -> None:
        """Speak ``piece`` once the reply is committed; ``spoken`` (the history) records it. ``urgent``:
        on the way to audio the user waits for, now or once it says so (the voice then goes before others'
        later sentences)."""
        host = self._host
        voiced = SpokenPiece(piece)
        first = True
        async with lock:
            async for chunk in host.stack.speech.stream(
                piece, emotion, host.voice, host.voice_context.state, urgent=urgent
            ):
                await self._committed.wait()  # a speculative reply stays silent until committed
                self.turn.clock.mark("first_audio")
                if first:
                    first = False
                    trimmed = without_leading_silence(chunk)
                    host.state.speak()
                    if spoken is not None:
                        spoken.append(piece)
                        self._pieces.append(voiced)
                    voiced.add(trimmed, chunk.duration - trimmed.duration)
                    host.sink.write(trimmed, on_play=lambda position: self._playing(voiced, position))
                else:
                    voiced.add(chunk)
                    host.sink.write(chunk)
            voiced.finished = True
            if voiced.start is not None:  # it is playing already: its words can be shown now
                self._show(voiced)

    def _playing(self, piece: SpokenPiece, position: float) -> None:
        """The sink plays ``piece``'s first sample: show it, once its word times are known."""
        piece.start = position
        if piece.finished:
            self._show(piece)

    def _show(self, piece: SpokenPiece) -> None:
        assert piece.start is not None
        words = [{"text": word.text, "start_ms": round(word.start * 1000)} for word in piece.words]
        played_ms = round((self._host.sink.played_s - piece.start) * 1000)
        self._host.emit(AgentText(piece.text, self.turn.id, words, played_ms))

    async def _played(self) -> None:
        await self._host.sink.drain()
        self.played_out.set()


def generation_params(stack: AgentStack) -> GenerationParams:
    llm = stack.config.llm
    return GenerationParams(llm.temperature, llm.top_p, llm.max_tokens)
