"""One conversation: a ``Listener`` that hears the user and one ``Reply`` at a time that answers.

A ``Session`` owns everything of one peer: the listener, the current reply, the turn state
(``ConversationState``), the history, the voice and emotion settings, and every task either of them
starts, so barge-in and close cancel everything in one place. Models are shared (``AgentStack``).

Data path of one turn::

    push_audio ─▶ Listener: VAD ──pause──▶ STT ─▶ propose ─▶ Reply: retrieve ─▶ LLM ─▶ pieces ─▶ TTS ─┐
                                ├──resume─▶ interrupt the uncommitted Reply                             │
                                └──end────▶ confirm: the Reply's held audio goes to the AudioSink ◀─────┘

Typed text starts a committed Reply directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

import numpy as np

from tara.core.conversation.events import (
    AgentState,
    AgentText,
    ErrorEvent,
    Event,
    SettingsChanged,
    StateChanged,
    UserTranscript,
)
from tara.core.conversation.guards import is_greeting_or_farewell
from tara.core.conversation.listener import Listener
from tara.core.conversation.phrases import NOT_HEARD_PHRASE
from tara.core.conversation.reply import Reply
from tara.core.conversation.sink import AudioSink
from tara.core.conversation.state import ConversationState
from tara.core.conversation.turn import Turn, TurnClock
from tara.core.emotion import EmotionSettings, reply_emotion
from tara.core.emotion.empathy import Empathy
from tara.core.emotion.prosody import ProsodyFeatures
from tara.core.stack import AgentStack
from tara.core.stages.llm import ChatMessage
from tara.core.stages.mic.echo import EchoLedger
from tara.core.stages.tts import VoiceContext

log = logging.getLogger(__name__)

MISHEARD_FOREIGN_WORDS = 2  # an unsure transcript with this many words no document has is asked again


class Session:
    def __init__(
        self,
        stack: AgentStack,
        sink: AudioSink,
        emotion: EmotionSettings | None = None,
        echo_ledger: EchoLedger | None = None,
    ) -> None:
        """``echo_ledger``: what the call's echo canceller takes out of the mic (the listener weighs it)."""
        self.stack = stack
        self.config = stack.config
        self.sink = sink
        self.emotion = emotion or EmotionSettings.from_preset(self.config.emotion.preset)
        self.empathy = Empathy()  # how the user sounds, against their usual; picks the reply's emotion in auto
        self.voice = stack.tts.default_voice
        self.voice_context = VoiceContext(stack.tts)  # a conversational voice (CSM) hears the exchange
        self.muted = False
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.history: list[ChatMessage] = []
        self.state = ConversationState(self._state_changed)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.listener = Listener(stack, self, self.empathy, self._spawn, echo_ledger)
        self._closed = False
        self._unanswered = ""  # a spoken question the user talked over before hearing any answer
        self._asked_to_repeat = False  # the last reply asked the user to say it again
        stack.callers.join(self)

    # ------------------------------------------------------------------ inputs

    def push_audio(self, pcm16k: np.ndarray) -> None:
        """Feed mono int16 microphone audio at 16 kHz, in chunks of any size."""
        if self._closed:
            return
        # a copy (callers may reuse their buffer); muted, the mic is heard as silence so turns still end
        self.listener.push(np.zeros(len(pcm16k), dtype=np.int16) if self.muted else np.array(pcm16k, dtype=np.int16))

    def say_text(self, text: str) -> None:
        """A typed message, answered by voice like a spoken one."""
        if self._closed:  # a message racing the hang-up: nothing would cancel what it started
            return
        text = text.strip()
        if not text:
            self.emit(ErrorEvent("empty text message", stage="input"))
            return
        turn_id = self.state.end_user_turn()
        self.emit(UserTranscript(text, final=True, turn_id=turn_id))
        self._reply(Turn(turn_id, text, TurnClock()), committed=True)

    def interrupt(self) -> bool:
        """Barge-in: stop generating and speaking at once. Returns whether anything was stopped."""
        reply = self.state.reply
        stopped = reply is not None and reply.interrupt()
        self.sink.clear()
        return stopped

    @property
    def busy(self) -> bool:
        """Whether anything is still in flight: a transcription, a reply, or speech being heard."""
        return self.listener.hearing or any(not task.done() for task in self._tasks)

    def set_emotion(self, emotion: EmotionSettings) -> None:
        self.emotion = emotion
        self.announce_settings()

    def set_voice(self, voice: str) -> None:
        """Speak with ``voice`` from the next sentence on; ``UnknownVoiceError`` if the TTS lacks it."""
        self.voice = self.stack.tts.check_voice(voice)
        self.announce_settings()

    def set_muted(self, muted: bool) -> None:
        self.muted = muted
        self.announce_settings()

    def voices_changed(self) -> None:
        """The TTS gained or lost a voice: a session whose voice is gone falls back to the default one."""
        if self.voice not in self.stack.tts.voices:
            log.info("voice %r was removed; the session speaks with %r", self.voice, self.stack.tts.default_voice)
            self.voice = self.stack.tts.default_voice
        self.announce_settings()

    def announce_settings(self) -> None:
        self.emit(SettingsChanged(self.voice, self.muted, self.emotion.model_dump(), self.stack.tts.voices))

    async def close(self) -> None:
        """Cancel every task this session started."""
        self._closed = True
        self.stack.callers.leave(self)
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sink.clear()

    # ------------------------------------------------------------------ the listener's hooks

    def emit(self, event: Event) -> None:
        if isinstance(event, AgentText):
            self.listener.agent_said(event.text)
        self.events.put_nowait(event)

    def pause_agent(self) -> None:
        self.sink.pause()

    def resume_agent(self) -> None:
        self.sink.resume()

    def propose(
        self,
        turn_id: int,
        text: str,
        clock: TurnClock,
        audio: np.ndarray,
        prosody: asyncio.Future[ProsodyFeatures | None] | None,
        speculative_end: int | None,
        avg_logprob: float = 0.0,
    ) -> None:
        if self._misheard(text, avg_logprob):
            turn = Turn(turn_id, text, clock, speculative_end=speculative_end, canned=NOT_HEARD_PHRASE)
        else:
            queries = (self._unanswered, text) if self._unanswered else (text,)  # each looked up on its own
            turn = Turn(
                turn_id,
                self._with_unanswered(text),
                clock,
                speculative_end=speculative_end,
                audio=audio,
                prosody=prosody,
                queries=queries,
            )
        if speculative_end is None:
            self.emit(UserTranscript(text, final=True, turn_id=turn_id))
        self._reply(turn, committed=speculative_end is None)

    def confirm(self, speech_stopped: float | None) -> None:
        reply = self.state.reply
        assert reply is not None and not reply.committed
        clock = reply.turn.clock
        clock.speech_end, clock.speech_stopped = time.perf_counter(), speech_stopped
        self.emit(UserTranscript(reply.turn.question, final=True, turn_id=reply.turn.id))
        reply.commit()

    def not_understood(self, turn_id: int, clock: TurnClock) -> None:
        self._reply(Turn(turn_id, "", clock, canned=NOT_HEARD_PHRASE), committed=True)

    def _misheard(self, text: str, avg_logprob: float) -> bool:
        """Whether words the recogniser was unsure of (``stt.ask_again_logprob``) are likely not what was
        said: ``MISHEARD_FOREIGN_WORDS`` or more of them are in no document ("Dusty, where it's on home
        base." for "Does he work on Mondays?"). Asked again once; a repeat heard as unsure is answered.

        Answered, such words got a confident answer to a question nobody asked ("Dusty is located at 42
        Millbrook Road."). In the held-out runs' transcripts under -0.45 with two such words, 26 of 29
        were misheard (a third of the words or more wrong); the others were near misses ("Can I borrow a
        wheel chair?")."""
        facts = self.stack.prompts.known_facts
        if self._asked_to_repeat or avg_logprob >= self.stack.config.stt.ask_again_logprob or not facts.words:
            return False  # (with no documents, no word tells a misheard one)
        if is_greeting_or_farewell(text):
            return False  # answered the same whatever its other words ("Hi there, Business Mike Rentals.")
        foreign = facts.foreign(text)
        if len(foreign) < MISHEARD_FOREIGN_WORDS:
            return False
        log.info("asked to repeat %r (%.2f): %s in no document", text, avg_logprob, ", ".join(sorted(foreign)))
        return True

    async def prefill(self, text: str) -> None:
        """Let the LLM read the prompt the words so far make, while the user is still talking: the
        final question then shares all of it but its last words (first token ~0.5 → ~0.2 s)."""
        question = self._with_unanswered(text)
        passages = await self.stack.retriever.retrieve(question)
        emotion = reply_emotion(self.emotion, None)
        prompt = self.stack.prompts.build(
            self.history, question, passages, emotion.style_instruction(), self.stack.llm.writes_carefully()
        )
        await self.stack.llm.prefill(prompt.messages)

    # ------------------------------------------------------------------ the reply's hooks

    def replied(self, turn: Turn, heard: str, interrupted: bool) -> None:
        self._asked_to_repeat = turn.canned == NOT_HEARD_PHRASE
        # "Tell me about the ferry, and ... its timetable": a turn ended too early and cut off by the
        # user going on is asked again together with what they say next
        self._unanswered = turn.question if interrupted and not heard and turn.audio is not None else ""
        if heard:  # the history holds what the user actually heard
            self.history += [ChatMessage("user", turn.question), ChatMessage("assistant", heard)]

    # ------------------------------------------------------------------ plumbing

    def _with_unanswered(self, text: str) -> str:
        """A question the user talked over before hearing any answer is asked again with these words."""
        return f"{self._unanswered} {text}" if self._unanswered else text

    def _reply(self, turn: Turn, committed: bool) -> Reply:
        previous = self.state.reply
        self.interrupt()
        reply = Reply(turn, self, self._spawn, after=previous)
        self.state.take_floor(reply)
        if committed:
            reply.commit()
        return reply

    def _state_changed(self, state: AgentState) -> None:
        self.listener.agent_speaking(state is AgentState.SPEAKING)
        self.emit(StateChanged(state))

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
