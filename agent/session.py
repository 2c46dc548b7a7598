"""One conversation: the turn engine between a microphone stream and a speaker.

A ``Session`` owns everything of one peer: its VAD, the turn state machine
(listening → thinking → speaking), the history, the emotion settings and every task it starts, so
barge-in and close cancel everything in one place. Models are shared (``AgentStack``).

Data path of one turn::

    push_audio ─▶ VAD ──pause──▶ STT ─▶ Turn: retrieve ─▶ LLM deltas ─▶ SentenceChunker ─▶ TTS ─┐
                     ├──resume─▶ cancel the uncommitted Turn                                      │
                     └──end────▶ commit the Turn: its held audio goes to the AudioSink ◀──────────┘

Typed text starts a committed Turn directly.

Speech over the agent pauses its audio at once; ``BargeInPolicy`` (``agent/barge_in.py``) says what
counts as speech while the agent talks and which transcripts are only backchannels, which resume it.

A turn that was heard is never silent: the reply is cut into pieces on time (``SentenceChunker``),
checked before it is voiced (``agent/guards.py``: no question said back, no loop, no number the
documents lack), a holding phrase covers a reply with nothing to say after ``HOLDING_AFTER_S``, and a
reply that ends with nothing said, or a transcript the recogniser did not trust, gets an honest phrase.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from agent.audio import PIPELINE_RATE, RollingAudio, without_leading_silence
from agent.barge_in import BargeInPolicy
from agent.concurrency import URGENT
from agent.emotion import EmotionSettings, reply_emotion
from agent.empathy import Empathy
from agent.endpointing import EndOfTurnPolicy
from agent.events import (
    AgentState,
    AgentText,
    AgentTurnDone,
    ErrorEvent,
    Event,
    SettingsChanged,
    Sources,
    StateChanged,
    TurnMetrics,
    UserSpeechStarted,
    UserTranscript,
)
from agent.guards import NOT_IN_DOCUMENTS, ReplyCheck
from agent.llm import ChatMessage, GenerationParams
from agent.phrases import FAILED_PHRASE, HOLDING_PHRASE, NOT_HEARD_PHRASE
from agent.prompt import insisting
from agent.rag import Passage
from agent.reply import written
from agent.sink import AudioSink
from agent.stack import AgentStack
from agent.stt import Transcript
from agent.turn import Turn, TurnClock, Utterance
from agent.vad import VADEvent, VADKind

log = logging.getLogger(__name__)
PARTIAL_MIN_NEW_AUDIO = 0.4  # seconds of new speech before another partial transcript is worth it
PARTIAL_POLL_S = 0.1
TTS_AHEAD_S = 2.5  # synthesise the next sentence once no more than this is left to play
HOLDING_AFTER_S = 2.0  # a reply with nothing to say this long after the turn ended says HOLDING_PHRASE


class Session:
    def __init__(self, stack: AgentStack, sink: AudioSink, emotion: EmotionSettings | None = None) -> None:
        self.stack = stack
        self.config = stack.config
        self.sink = sink
        self.emotion = emotion or EmotionSettings.from_preset(self.config.emotion.preset)
        self._empathy = Empathy()  # how the user sounds, against their usual; picks the reply's emotion in auto
        self.voice = stack.tts.default_voice
        self._voice_context = stack.tts.new_context()  # a conversational voice (CSM) hears the exchange
        self.muted = False
        self._barge_in_policy = BargeInPolicy(self.config.barge_in)
        self._end_of_turn = EndOfTurnPolicy(self.config.endpointing)
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.history: list[ChatMessage] = []
        self.state = AgentState.LISTENING
        self._vad = stack.new_vad()
        self._audio = RollingAudio()  # the utterance being heard, or a short pre-roll
        self._utterance: Utterance | None = None
        self._turn_id = 0
        self._turn: Turn | None = None
        self._stt_lock = asyncio.Lock()  # one final transcription at a time per session
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self._unanswered = ""  # a spoken question the user talked over before hearing any answer

    # ------------------------------------------------------------------ inputs

    def push_audio(self, pcm16k: np.ndarray) -> None:
        """Feed mono int16 microphone audio at 16 kHz, in chunks of any size."""
        if self._closed:
            return
        # a copy (callers may reuse their buffer); muted, the mic is heard as silence so turns still end
        pcm16k = np.zeros(len(pcm16k), dtype=np.int16) if self.muted else np.array(pcm16k, dtype=np.int16)
        self._audio.append(pcm16k)
        for event in self._vad.feed(pcm16k):
            self._on_vad(event)
        utterance = self._utterance
        if utterance is None:  # keep only a short pre-roll while nobody speaks
            self._audio.trim(PIPELINE_RATE)
        elif (utterance.over_agent and utterance.pause_sample is None
              and self._barge_in_policy.too_long_for_a_backchannel(self._audio.end - utterance.start_sample)):
            self._barge_in(utterance)  # still talking: too long for a backchannel

    def say_text(self, text: str) -> None:
        """A typed message, answered by voice like a spoken one."""
        text = text.strip()
        if not text:
            self._emit(ErrorEvent("empty text message", stage="input"))
            return
        self._turn_id += 1
        self._emit(UserTranscript(text, final=True, turn_id=self._turn_id))
        self._start_turn(Turn(self._turn_id, text, TurnClock())).committed.set()

    def interrupt(self) -> bool:
        """Barge-in: stop generating and speaking at once. Returns whether anything was stopped."""
        active = self._turn is not None and self._turn.active
        if active:
            assert self._turn is not None and self._turn.task is not None
            self._turn.task.cancel()
        self.sink.clear()
        return active

    @property
    def busy(self) -> bool:
        """Whether anything is still in flight: a transcription, a turn, or speech being heard."""
        return self._utterance is not None or any(not task.done() for task in self._tasks)

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
        self._emit(SettingsChanged(self.voice, self.muted, self.emotion.model_dump(), self.stack.tts.voices))

    async def close(self) -> None:
        """Cancel every task this session started."""
        self._closed = True
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sink.clear()

    # ------------------------------------------------------------------ VAD → STT

    def _on_vad(self, event: VADEvent) -> None:
        if event.kind is VADKind.ONSET and self.state is AgentState.SPEAKING:
            self.sink.pause()  # maybe the user: fall silent now, decide once there is enough speech to judge
        elif event.kind is VADKind.ONSET_LOST and self._utterance is None and self.state is AgentState.SPEAKING:
            self.sink.resume()  # a blip, not speech: go on where the voice stopped
        if event.kind is VADKind.START:
            self._utterance = Utterance(start_sample=max(event.sample, self._audio.start))
            self._emit(UserSpeechStarted())
            if self.state is AgentState.SPEAKING:
                self._utterance.over_agent = True
                self.sink.pause()
            elif self.state is AgentState.THINKING:
                self.interrupt()
        utterance = self._utterance
        if utterance is None:
            return
        if event.kind is VADKind.PAUSE:
            utterance.pause_sample, utterance.paused_at = event.sample, time.perf_counter()
            self._start_final_transcription(utterance, event.sample)
        elif event.kind is VADKind.RESUME:
            utterance.pause_sample = utterance.paused_at = None
            if utterance.dismissed:  # "yeah, but ..." — listen again before deciding
                utterance.dismissed, utterance.over_agent = False, True
                self.sink.pause()
            if self._speculating():
                self.interrupt()  # the user went on: the speculative reply answered half a question
        elif event.kind is VADKind.END:
            self._utterance = None
            if utterance.dismissed:
                return
            self._turn_id += 1
            # the pause was reported pause_ms into the silence: count from where the voice stopped
            stopped = utterance.paused_at and utterance.paused_at - self.config.vad.pause_ms / 1000
            if self._speculating(event.sample):
                self._commit(stopped)
            else:
                audio = self._audio.clip(utterance.start_sample, event.sample)
                clock = TurnClock(speech_stopped=stopped)
                self._spawn(self._finish_utterance(utterance, event.sample, audio, clock, self._turn_id))
        if event.kind in (VADKind.START, VADKind.RESUME):
            self._maybe_partial(utterance)

    def _start_final_transcription(self, utterance: Utterance, end: int) -> None:
        """Transcribe as soon as speech pauses, while the end-of-turn silence is still running."""
        audio = self._audio.clip(utterance.start_sample, end)  # now: the buffer may be trimmed before the job runs
        self._vad.set_end_silence(self.config.endpointing.incomplete_silence_ms)  # until the words say otherwise
        utterance.final_job = self._spawn(self._speculative_final(utterance, end, audio))
        utterance.final_job_end = end

    async def _speculative_final(self, utterance: Utterance, end: int, audio: np.ndarray) -> Transcript | None:
        async with self._stt_lock:
            if utterance.pause_sample != end:  # the user went on talking: a later pause will redo it
                return None
            prosody = self._empathy.measure(audio)  # alongside the transcript: no time added
            transcript = await self.stack.stt.transcribe(audio)
        text = transcript.text.strip()
        if self._utterance is utterance and utterance.pause_sample == end:
            self._vad.set_end_silence(self._end_of_turn.silence_needed_ms(text)
                                      if text else self.config.vad.min_silence_ms)
        if self._dismissed_as_backchannel(utterance, text):
            return transcript
        if text and self._utterance is utterance and utterance.pause_sample == end:
            # still silent: start answering now, heard only once the silence confirms the turn is over
            clock = TurnClock()
            clock.mark("transcript")
            self._start_turn(Turn(self._turn_id + 1, self._with_unanswered(text), clock, speculative_end=end,
                                  audio=audio, prosody=prosody, queries=self._queries(text)))
        return transcript

    def _speculating(self, end: int | None = None) -> bool:
        """Whether a not-yet-committed speculative turn is running (for the pause at ``end``)."""
        turn = self._turn
        return (turn is not None and turn.active and not turn.committed.is_set()
                and turn.speculative_end is not None and (end is None or turn.speculative_end == end))

    def _commit(self, speech_stopped: float | None) -> None:
        """The silence confirmed the speculative turn: let it be heard."""
        turn = self._turn
        assert turn is not None
        turn.clock.speech_end, turn.clock.speech_stopped = time.perf_counter(), speech_stopped
        self._emit(UserTranscript(turn.question, final=True, turn_id=turn.id))
        turn.committed.set()

    def _dismissed_as_backchannel(self, utterance: Utterance, text: str) -> bool:
        """For speech over the agent: resume the agent if it was only a backchannel, else interrupt it."""
        if utterance.dismissed:  # already judged (the end-of-turn path waits on the pause's transcript)
            return True
        if not utterance.over_agent:
            return False
        if not text or self._barge_in_policy.is_backchannel(text):
            utterance.over_agent, utterance.dismissed = False, True
            self.sink.resume()
            return True
        self._barge_in(utterance)
        return False

    def _barge_in(self, utterance: Utterance) -> None:
        utterance.over_agent = False
        self.interrupt()

    def _maybe_partial(self, utterance: Utterance) -> None:
        if utterance.partial_job is None or utterance.partial_job.done():
            utterance.partial_job = self._spawn(self._partials(utterance))

    async def _partials(self, utterance: Utterance) -> None:
        """Partial transcripts while the user is still talking, as optional CPU work: a final
        transcript (or anyone's reply) goes before them, and one that comes too late is dropped."""
        interval = self.config.stt.partial_interval_ms / 1000
        due = time.perf_counter() + interval
        while self._utterance is utterance:
            await asyncio.sleep(PARTIAL_POLL_S)
            if self._utterance is not utterance or utterance.pause_sample is not None:
                return
            end = self._audio.end
            seconds = (end - utterance.start_sample) / PIPELINE_RATE
            if (time.perf_counter() < due or seconds - utterance.partial_audio_seconds < PARTIAL_MIN_NEW_AUDIO
                    or self._vad.last_probability < self.config.vad.threshold):
                continue  # (a voice fading out may be ending: leave the CPU to the final transcript)
            utterance.partial_audio_seconds = seconds
            try:
                transcript = await self.stack.stt.transcribe(self._audio.clip(utterance.start_sample, end),
                                                             urgent=False)
            except Exception:  # optional work: the final transcript reports a broken recogniser to the page
                log.warning("partial transcript failed; none more for this utterance", exc_info=True)
                return
            due = time.perf_counter() + interval
            if self._utterance is utterance and utterance.pause_sample is None and transcript.text:
                self._emit(UserTranscript(transcript.text, final=False, turn_id=self._turn_id + 1))
                if not utterance.over_agent:
                    await self._prefill(self._with_unanswered(transcript.text))

    async def _prefill(self, question: str) -> None:
        """Let the LLM read the prompt the words so far make, while the user is still talking: the
        final question then shares all of it but its last words (first token ~0.5 → ~0.2 s)."""
        passages = await self.stack.retriever.retrieve(question)
        emotion = reply_emotion(self.emotion, None)
        prompt = self.stack.prompts.build(self.history, question, passages, emotion.style_instruction())
        await self.stack.llm.prefill(prompt.messages)

    async def _finish_utterance(self, utterance: Utterance, end: int, audio: np.ndarray, clock: TurnClock,
                                turn_id: int) -> None:
        try:
            transcript = prosody = None
            if utterance.final_job is not None and utterance.final_job_end == end:
                transcript = await utterance.final_job
            if transcript is None:
                async with self._stt_lock:
                    prosody = self._empathy.measure(audio)
                    transcript = await self.stack.stt.transcribe(audio)
        except Exception as exc:  # a failed transcription loses this utterance, not the session
            log.exception("transcription failed")
            self._emit(ErrorEvent(f"speech recognition failed: {exc}", stage="stt"))
            return
        clock.mark("transcript")
        text = transcript.text.strip()
        if transcript.rejected and not utterance.over_agent:  # heard, not understood: say so
            log.info("transcript rejected: %s (%r)", transcript.rejected, transcript.doubtful)
            self._start_turn(Turn(turn_id, "", clock, canned=NOT_HEARD_PHRASE)).committed.set()
            return
        if self._dismissed_as_backchannel(utterance, text) or not text:
            return
        self._emit(UserTranscript(text, final=True, turn_id=turn_id))
        self._start_turn(Turn(turn_id, self._with_unanswered(text), clock, audio=audio, prosody=prosody,
                              queries=self._queries(text))).committed.set()

    def _with_unanswered(self, text: str) -> str:
        return f"{self._unanswered} {text}" if self._unanswered else text

    def _queries(self, text: str) -> tuple[str, ...]:
        """What to look up for ``text``: each question on its own (one the user talked over is merged
        into this turn's words, not into its retrieval)."""
        return (self._unanswered, text) if self._unanswered else (text,)

    # ------------------------------------------------------------------ the agent's turn

    def _start_turn(self, turn: Turn) -> Turn:
        previous = self._turn
        self.interrupt()
        self._turn = turn
        turn.task = self._spawn(self._run_turn(turn, previous.task if previous else None))
        return turn

    async def _run_turn(self, turn: Turn, previous: asyncio.Task | None) -> None:
        if previous is not None:  # let an interrupted turn record its history first
            await asyncio.gather(previous, return_exceptions=True)
        spoken: list[str] = []
        interrupted = failed = False
        try:
            await self._respond(turn, spoken)
        except asyncio.CancelledError:
            interrupted = True
            raise
        except Exception as exc:
            failed = True
            log.exception("turn %d failed", turn.id)
            while isinstance(exc, ExceptionGroup):  # report the stage's own error, not the TaskGroup's
                exc = exc.exceptions[0]
            await turn.committed.wait()  # a speculative turn reports only once it is real
            self._emit(ErrorEvent(f"the agent could not answer: {exc}", stage="turn"))
            if not spoken:  # the user asked and heard nothing: say so, if the voice still works
                try:
                    await self._voice(turn, FAILED_PHRASE, reply_emotion(self.emotion, None), None, asyncio.Lock())
                except Exception:
                    log.exception("could not say that the turn failed")
        finally:
            if turn.committed.is_set():  # an uncommitted speculative turn leaves no trace
                reply = " ".join(spoken)
                # "Tell me about the ferry, and ... its timetable": a turn ended too early and cut off by the
                # user going on is asked again together with what they say next
                self._unanswered = turn.question if interrupted and not reply and turn.audio is not None else ""
                if reply:  # the history holds what the user actually heard, marked "…" where it was cut off:
                    # unmarked, the model takes "It is called Big" for a whole answer and copies it next time
                    heard = f"{reply} …" if interrupted or failed else reply
                    self.history += [ChatMessage("user", turn.question), ChatMessage("assistant", heard)]
                self._emit(AgentTurnDone(turn.id, reply, interrupted))
                self._set_state(AgentState.LISTENING)
                self._emit(TurnMetrics(turn.id, turn.clock.report()))  # last event of a turn

    async def _respond(self, turn: Turn, spoken: list[str]) -> None:
        stack, clock = self.stack, turn.clock
        if turn.committed.is_set():
            self._set_state(AgentState.THINKING)
        if turn.canned is not None:  # nothing to think about
            await self._voice(turn, turn.canned, reply_emotion(self.emotion, None), None, asyncio.Lock())
            await self.sink.drain()
            return

        passages, heard = await asyncio.gather(self._retrieve(turn), self._empathy.hear(turn.audio, turn.prosody,
                                                                                        turn.question))
        emotion = reply_emotion(self.emotion, heard.estimate.label)
        prompt = stack.prompts.build(self.history, turn.question, passages, emotion.style_instruction())
        # the LLM runs at most a sentence ahead of the voice, the voice a few seconds ahead of playback:
        # what is not needed yet leaves the CPU to other sessions' first sentences
        sentences: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1)
        voice_lock = asyncio.Lock()  # the holding phrase and the reply never talk over each other
        started_speaking = asyncio.Event()

        async def think() -> None:
            check = ReplyCheck(turn.question, stack.prompts.known_facts, prompt.grounded, stack.config.llm.system_prompt)
            async for piece in written(self.stack.llm, prompt, self._params(), check, clock):
                await sentences.put(piece)
            if check.said_nothing and check.parroted:  # it only said the question back: once more, insisting
                async for piece in written(self.stack.llm, insisting(prompt), self._params(), check, clock):
                    await sentences.put(piece)
            if check.said_nothing:
                await sentences.put(NOT_IN_DOCUMENTS)  # a heard turn is never silent
            await sentences.put(None)

        async def speak() -> None:
            if turn.audio is not None:
                await stack.tts.hear(self._voice_context, turn.question, turn.audio)
            while (piece := await sentences.get()) is not None:
                started_speaking.set()
                await self.sink.ahead_at_most(TTS_AHEAD_S)
                URGENT.set(not spoken)  # only the first sentence is on the way to the first audio
                await self._voice(turn, piece, emotion, spoken, voice_lock)
            holding.cancel()
            await self.sink.drain()

        async def hold() -> None:
            """Nothing to say yet, long after the user stopped: say so, then go on."""
            await turn.committed.wait()
            await asyncio.sleep(turn.clock.speech_end + HOLDING_AFTER_S - time.perf_counter())
            async with voice_lock:
                if not started_speaking.is_set():
                    clock.mark("holding")
                    await self._voice(turn, HOLDING_PHRASE, emotion, None, asyncio.Lock())

        async with asyncio.TaskGroup() as group:
            group.create_task(think())
            holding = group.create_task(hold())
            group.create_task(speak())
            await turn.committed.wait()
            self._set_state(AgentState.THINKING)
            self._emit(self._empathy.remember(turn.id, heard, emotion, self.emotion))
            self._emit(Sources(turn.id, [p.to_dict() for p in passages], prompt.grounded))

    async def _retrieve(self, turn: Turn) -> list[Passage]:
        """Passages for each of the turn's questions on their own; a follow-up that finds nothing
        ("And on Sundays?") is looked up together with the question before it."""
        retriever, prompts = self.stack.retriever, self.stack.prompts
        found = await asyncio.gather(*(retriever.retrieve(query) for query in turn.queries))
        passages = [p for ps in found for p in ps]
        previous = next((m.content for m in reversed(self.history) if m.role == "user"), None)
        if not prompts.is_relevant(sorted(passages, key=lambda p: -p.score)) and previous:
            passages += await retriever.retrieve(f"{previous} {turn.queries[-1]}")
        turn.clock.mark("retrieval")
        best: dict[tuple[str, str], Passage] = {}
        for passage in passages:
            key = (passage.source, passage.text)
            if key not in best or passage.score > best[key].score:
                best[key] = passage
        return sorted(best.values(), key=lambda p: -p.score)[: self.config.rag.top_k]

    def _params(self) -> GenerationParams:
        llm_config = self.config.llm
        return GenerationParams(llm_config.temperature, llm_config.top_p, llm_config.max_tokens)

    async def _voice(self, turn: Turn, piece: str, emotion: EmotionSettings, spoken: list[str] | None,
                     lock: asyncio.Lock) -> None:
        """Speak ``piece`` once the turn is committed; ``spoken`` (the history) records it."""
        announced = False
        async with lock:
            async for chunk in self.stack.speech.stream(piece, emotion, self.voice, self._voice_context):
                await turn.committed.wait()  # a speculative turn stays silent until committed
                turn.clock.mark("first_audio")
                if not announced:
                    chunk = without_leading_silence(chunk)
                    self._set_state(AgentState.SPEAKING)
                    self._emit(AgentText(piece, turn.id))
                    if spoken is not None:
                        spoken.append(piece)
                    announced = True
                self.sink.write(chunk)

    # ------------------------------------------------------------------ plumbing

    def _set_state(self, state: AgentState) -> None:
        if state is not self.state:
            self.state = state
            self._barge_in_policy.set_vad(self._vad, agent_speaking=state is AgentState.SPEAKING)
            self._emit(StateChanged(state))

    def _emit(self, event: Event) -> None:
        self.events.put_nowait(event)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

