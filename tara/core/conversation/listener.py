"""Hearing the user: VAD events, the utterance buffer, transcription, and barge-in judgement.

The ``Listener`` proposes turns; it never replies. Through ``ListenerHooks`` (livekit's
``audio_recognition.py`` talks to ``agent_activity.py`` the same way) it tells the session:

- a sound began over the agent's voice: ``pause_agent`` at its first loud 10 ms, then ``resume_agent`` if
  the VAD hears no speech in it, or its words say it was only a backchannel ("yeah") or a cough, else
  ``interrupt`` (``BargeInPolicy``);
- a pause with words in it: ``propose`` a speculative turn, heard only if ``confirm`` follows when the
  end-of-turn silence has run out (``EndOfTurnPolicy`` sets how long, from the words);
- the end of an utterance that was not answered speculatively: ``propose`` a committed turn, or
  ``not_understood`` when the recogniser did not trust its own transcript;
- partial transcripts while the user talks: shown, and ``prefill`` for the LLM.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import numpy as np

from tara.core.audio import PIPELINE_RATE, RollingAudio
from tara.core.conversation.barge_in import BargeInPolicy
from tara.core.conversation.echo import EchoTranscriptGuard
from tara.core.conversation.events import ErrorEvent, Event, UserSpeechStarted, UserTranscript
from tara.core.conversation.state import ConversationState
from tara.core.conversation.turn import Hearing, TurnClock, Utterance
from tara.core.emotion.empathy import Empathy
from tara.core.emotion.prosody import ProsodyFeatures
from tara.core.stack import HearingStack
from tara.core.stages.endpointing.policy import EndOfTurnPolicy
from tara.core.stages.mic.echo import EchoLedger
from tara.core.stages.stt import Transcript
from tara.core.stages.vad import VADEvent, VADKind

log = logging.getLogger(__name__)
PARTIAL_MIN_NEW_AUDIO = 0.4  # seconds of new speech before another partial transcript is worth it
PARTIAL_POLL_S = 0.1

Spawn = Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]


class ListenerHooks(Protocol):
    state: ConversationState

    def emit(self, event: Event) -> None: ...

    def pause_agent(self) -> None: ...

    def resume_agent(self) -> None: ...

    def interrupt(self) -> bool: ...

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
        """Words that make a turn: committed at once, or (``speculative_end``) once ``confirm`` follows;
        ``avg_logprob``: how sure the recogniser was of them."""

    def confirm(self, speech_stopped: float | None) -> None:
        """The silence after a pause ran out: the speculative turn proposed on it is real."""

    def not_understood(self, turn_id: int, clock: TurnClock) -> None: ...

    async def prefill(self, text: str) -> None: ...


class Listener:
    def __init__(
        self,
        stack: HearingStack,
        hooks: ListenerHooks,
        empathy: Empathy,
        spawn: Spawn,
        echo_ledger: EchoLedger | None = None,
    ) -> None:
        self.config = stack.config
        self.vad = stack.new_vad()
        self._stt = stack.stt
        self._turn_model = stack.turn_model
        self._callers = stack.callers
        self._hooks = hooks
        self._empathy = empathy  # measures the prosody alongside each final transcription
        self._spawn = spawn
        self._barge_in_policy = BargeInPolicy(self.config.barge_in)
        self._end_of_turn = EndOfTurnPolicy(self.config.endpointing)
        self._echo = EchoTranscriptGuard(self.config.audio.echo_transcript_window_s)
        self._echo_ledger = echo_ledger  # how much of the mic was the agent's echo, where a canceller took it out
        self._audio = RollingAudio()  # the utterance being heard, or a short pre-roll
        self._utterance: Utterance | None = None
        self._stt_lock = asyncio.Lock()  # one final transcription at a time per session
        self._agent_paused = False  # by this listener, to hear what is said over the agent

    @property
    def hearing(self) -> bool:
        """Whether the user is in the middle of an utterance."""
        return self._utterance is not None

    def agent_speaking(self, speaking: bool) -> None:
        """The agent's voice started or stopped: the VAD guards against its echo while it talks."""
        self._barge_in_policy.set_vad(self.vad, agent_speaking=speaking)
        if not speaking:
            self._agent_paused = False
            self._barge_in_policy.speech_confirmed()
        self._echo.agent_speaking(speaking)

    def agent_said(self, text: str) -> None:
        """A sentence the agent starts to voice: its echo must not come back as the user's words."""
        self._echo.agent_said(text)

    def push(self, pcm16k: np.ndarray) -> None:
        """Mono int16 microphone audio at 16 kHz (owned by the listener from now on)."""
        self._audio.append(pcm16k)
        playing = self._hooks.state.speaking and not self._agent_paused and self._utterance is None
        if self._barge_in_policy.should_duck(pcm16k, self._audio.end, agent_playing=playing):
            self._pause_agent()  # a sound began over the voice: silent at the next frame, the VAD judges it
        for event in self.vad.feed(pcm16k):
            self._on_vad(event)
        if self._barge_in_policy.duck_unconfirmed(self._audio.end):
            self._resume_agent()  # no speech in it (a knock, a click): go on where the voice stopped
        utterance = self._utterance
        if utterance is None:  # keep only a short pre-roll while nobody speaks
            self._audio.trim(PIPELINE_RATE)
        elif (
            utterance.hearing is Hearing.UNDECIDED
            and utterance.pause_sample is None
            and self._barge_in_policy.too_long_for_a_backchannel(self._audio.end - utterance.start_sample)
        ):
            self._too_long_for_a_backchannel(utterance)

    def _on_vad(self, event: VADEvent) -> None:
        hooks, state = self._hooks, self._hooks.state
        if event.kind in (VADKind.ONSET, VADKind.START):
            self._barge_in_policy.speech_confirmed()  # the VAD heard speech: its events decide from here
        if event.kind is VADKind.ONSET and state.speaking:
            self._pause_agent()  # maybe the user: fall silent now, decide once there is enough speech to judge
        elif event.kind is VADKind.ONSET_LOST and self._utterance is None and state.speaking:
            self._resume_agent()  # a blip, not speech: go on where the voice stopped
        if event.kind is VADKind.START:
            self._utterance = Utterance(start_sample=max(event.sample, self._audio.start))
            self._echo.user_started()
            hooks.emit(UserSpeechStarted())
            if state.speaking:
                self._utterance.hearing = Hearing.UNDECIDED
                self._pause_agent()
            elif state.thinking:
                hooks.interrupt()
        utterance = self._utterance
        if utterance is None:
            return
        if event.kind is VADKind.PAUSE:
            # the pause is reported pause_ms into the silence: the voice stopped that long ago
            utterance.pause_sample = event.sample
            utterance.voice_stopped_at = time.perf_counter() - self.vad.pause_ms / 1000
            self._start_final_transcription(utterance, event.sample)
            if utterance.hearing is Hearing.UNDECIDED:
                self._spawn(self._resume_if_no_words(utterance))
        elif event.kind is VADKind.RESUME:
            utterance.pause_sample = utterance.voice_stopped_at = None
            if utterance.hearing in (Hearing.BACKCHANNEL, Hearing.UNDECIDED):  # "yeah, but ...": listen again
                utterance.hearing = Hearing.UNDECIDED
                self._pause_agent()
            if state.speculating():
                hooks.interrupt()  # the user went on: the speculative reply answered half a question
        elif event.kind is VADKind.END:
            self._utterance = None
            if utterance.hearing is Hearing.BACKCHANNEL:
                return
            turn_id = state.end_user_turn()
            stopped = utterance.voice_stopped_at
            if state.speculating(event.sample):
                hooks.confirm(stopped)
            else:
                audio = self._audio.clip(utterance.start_sample, event.sample)
                clock = TurnClock(speech_stopped=stopped)
                self._spawn(self._finish_utterance(utterance, event.sample, audio, clock, turn_id))
        if event.kind in (VADKind.START, VADKind.RESUME):
            self._maybe_partial(utterance)

    def _start_final_transcription(self, utterance: Utterance, end: int) -> None:
        """Transcribe as soon as speech pauses, while the end-of-turn silence is still running."""
        audio = self._audio.clip(utterance.start_sample, end)  # now: the buffer may be trimmed before the job runs
        self.vad.set_end_silence(self.config.endpointing.incomplete_silence_ms)  # until the words say otherwise
        utterance.final_job = self._spawn(self._speculative_final(utterance, end, audio))
        utterance.final_job_end = end

    async def _speculative_final(self, utterance: Utterance, end: int, audio: np.ndarray) -> Transcript | None:
        async with self._stt_lock:
            if utterance.pause_sample != end:  # the user went on talking: a later pause will redo it
                return None
            prosody = self._empathy.measure(audio)  # alongside the transcript: no time added
            transcript, done = await asyncio.gather(
                self._stt.transcribe(audio, thorough=self._thorough()), self._turn_model.probability_done(audio)
            )
            transcript = self._without_echo(transcript, utterance.start_sample, end)
        log.info("heard %r (%.2f)", transcript.text, transcript.avg_logprob)
        text = transcript.text.strip()
        still_paused = self._utterance is utterance and utterance.pause_sample == end
        if still_paused:  # counted from where the voice stopped: a late verdict of "done" ends the turn at once
            self.vad.set_end_silence(
                self._end_of_turn.silence_needed_ms(text, done) if text else self.config.vad.min_silence_ms
            )
        if self._dismissed_as_backchannel(utterance, text, end):
            return transcript
        if text and still_paused:
            # still silent: start answering now, heard only once the silence confirms the turn is over
            clock = TurnClock()
            clock.mark("transcript")
            self._hooks.propose(
                self._hooks.state.next_turn_id,
                text,
                clock,
                audio,
                prosody,
                speculative_end=end,
                avg_logprob=transcript.avg_logprob,
            )
        return transcript

    def _thorough(self) -> bool:
        """Whether the utterance's transcript may take the recogniser's slower search: not when it began in
        the agent's echo, where how sure a quick reading is tells the echo from the user (``EchoTranscriptGuard``)."""
        return not self._echo.began_in_echo

    def _echo_removed_db(self, start: int, end: int) -> float | None:
        """How many dB of the mic's sound in stream samples ``[start, end)`` the echo canceller took out."""
        if self._echo_ledger is None:
            return None
        return self._echo_ledger.removed_db(start / PIPELINE_RATE, end / PIPELINE_RATE)

    def _is_echo(self, heard: str, transcript: Transcript, start: int, end: int) -> bool:
        """Whether ``heard`` (of ``transcript``, of stream samples ``[start, end)``) is the agent's echo."""
        removed = self._echo_removed_db(start, end)
        echo = self._echo.is_echo(heard, transcript.avg_logprob, removed)
        if heard and self._echo.began_in_echo:
            cancelled = "?" if removed is None else f"{removed:.1f}"
            log.info(
                "begun in the echo: %r (%.2f, %s dB cancelled), echo: %s",
                heard,
                transcript.avg_logprob,
                cancelled,
                echo,
            )
        return echo

    def _without_echo(self, transcript: Transcript, start: int, end: int) -> Transcript:
        """``transcript`` of stream samples ``[start, end)``, or an empty one when it is the agent's own
        recent words coming back (then over the agent it counts as a backchannel, after it as nothing)."""
        heard = transcript.text or transcript.doubtful
        if not (self._is_echo(heard, transcript, start, end) or (transcript.rejected and self._echo.began_in_echo)):
            return transcript
        log.info("dropped a transcript of the agent's own voice: %r (%.2f)", heard, transcript.avg_logprob)
        return dataclasses.replace(transcript, text="", rejected=None, doubtful="")

    def _dismissed_as_backchannel(self, utterance: Utterance, text: str, end: int) -> bool:
        """For speech over the agent (up to stream sample ``end``): resume the agent if it was only a
        backchannel, a cough or too short to count, else interrupt it."""
        if utterance.hearing is Hearing.BACKCHANNEL:  # already judged (the end waits on the pause's transcript)
            return True
        if utterance.hearing is not Hearing.UNDECIDED:
            return False
        pads = self.config.barge_in.start_pad_ms + self.config.vad.end_pad_ms  # (it began over the agent)
        speech = end - utterance.start_sample - pads * PIPELINE_RATE // 1000
        leaks = self._echo_ledger is not None and self._echo_ledger.echo_heard
        if not self._barge_in_policy.interrupts(text, speech, self._echo.began_in_echo, echo_leaks=leaks):
            if self._utterance is utterance and utterance.pause_sample != end:
                # the user went on while these words were transcribed: what they add decides, not this
                log.info("speech over the agent went on after %r: judged on", text)
                return True
            log.info("speech over the agent is a backchannel: %r", text)
            utterance.hearing = Hearing.BACKCHANNEL
            self._resume_agent()
            return True
        log.info("speech over the agent interrupts it: %r", text)
        self._barge_in(utterance)
        return False

    async def _resume_if_no_words(self, utterance: Utterance) -> None:
        """LiveKit's false-interruption timeout: speech over the agent that has not been judged this long
        after it stopped (a recogniser slow under load, or failing) lets the agent go on; words that
        come later still interrupt it."""
        timeout = self._barge_in_policy.false_interruption_timeout_s
        if timeout is None:
            return
        await asyncio.sleep(timeout - self.vad.pause_ms / 1000)  # the pause came pause_ms into the silence
        still_talking = self._utterance is not None and self._utterance.pause_sample is None
        if utterance.hearing is Hearing.UNDECIDED and not still_talking:
            log.info("no words %.1f s after speech over the agent: it goes on", timeout)
            self._resume_agent()

    def _too_long_for_a_backchannel(self, utterance: Utterance) -> None:
        """Still talking over the agent: the user, unless the words so far are the agent's own (its echo,
        where the browser cancels none: the agent stays paused, not cut off, while they are checked)."""
        if not self._echo.window_s:
            log.info("speech over the agent is too long for a backchannel: it interrupts")
            self._barge_in(utterance)
        elif utterance.echo_check is None or utterance.echo_check.done():
            utterance.echo_check = self._spawn(self._check_for_echo(utterance, self._audio.end))

    async def _check_for_echo(self, utterance: Utterance, end: int) -> None:
        audio = self._audio.clip(utterance.start_sample, end)
        async with self._stt_lock:
            transcript = await self._stt.transcribe(audio, thorough=False)
        if self._utterance is not utterance or utterance.hearing is not Hearing.UNDECIDED:
            return  # ended, or judged by a pause's transcript meanwhile
        # the echo, or a reading whisper rejected (a loop: "Why, why, why, …" of the echo's residual), as at a pause
        heard = self._without_echo(transcript, utterance.start_sample, end).text
        if not heard:  # (or no words: a noise)
            log.info("speech over the agent is no barge-in: %r", transcript.text or transcript.doubtful)
            utterance.hearing = Hearing.BACKCHANNEL
            self._resume_agent()
        else:
            log.info("long speech over the agent is not its echo: %r", heard)
            self._barge_in(utterance)

    def _barge_in(self, utterance: Utterance) -> None:
        utterance.hearing = Hearing.USER
        self._agent_paused = False
        self._hooks.interrupt()

    def _pause_agent(self) -> None:
        self._agent_paused = True
        self._hooks.pause_agent()

    def _resume_agent(self) -> None:
        self._agent_paused = False
        self._barge_in_policy.speech_confirmed()
        self._hooks.resume_agent()

    def _maybe_partial(self, utterance: Utterance) -> None:
        if utterance.partial_job is None or utterance.partial_job.done():
            utterance.partial_job = self._spawn(self._partials(utterance))

    async def _partials(self, utterance: Utterance) -> None:
        """Partial transcripts while the user is still talking, as optional CPU work: a final
        transcript (or anyone's reply) goes before them, and one that comes too late is dropped.

        None while another call has a turn in progress: a transcription started in a lull holds the
        CPU for ~0.3 s whatever comes in meanwhile, and four callers' partials took a tenth of it."""
        interval = self.config.stt.partial_interval_ms / 1000
        due = time.perf_counter() + interval
        while self._utterance is utterance:
            await asyncio.sleep(PARTIAL_POLL_S)
            if self._utterance is not utterance or utterance.pause_sample is not None:
                return
            end = self._audio.end
            seconds = (end - utterance.start_sample) / PIPELINE_RATE
            if (
                time.perf_counter() < due
                or seconds - utterance.partial_audio_seconds < PARTIAL_MIN_NEW_AUDIO
                or self.vad.last_probability < self.config.vad.threshold
                or self._callers.busy() > 1
            ):
                continue  # (a voice fading out may be ending: leave the CPU to the final transcript)
            utterance.partial_audio_seconds = seconds
            try:
                clip = self._audio.clip(utterance.start_sample, end)
                transcript = self._without_echo(
                    await self._stt.transcribe(clip, urgent=False, thorough=False), utterance.start_sample, end
                )
            except Exception:  # optional work: the final transcript reports a broken recogniser to the page
                log.warning("partial transcript failed; none more for this utterance", exc_info=True)
                return
            due = time.perf_counter() + interval
            if self._utterance is utterance and utterance.pause_sample is None and transcript.text:
                self._hooks.emit(UserTranscript(transcript.text, final=False, turn_id=self._hooks.state.next_turn_id))
                if utterance.hearing is not Hearing.UNDECIDED:
                    await self._hooks.prefill(transcript.text)

    async def _finish_utterance(
        self, utterance: Utterance, end: int, audio: np.ndarray, clock: TurnClock, turn_id: int
    ) -> None:
        try:
            transcript = prosody = None
            if utterance.final_job is not None and utterance.final_job_end == end:
                transcript = await utterance.final_job
            if transcript is None:
                async with self._stt_lock:
                    prosody = self._empathy.measure(audio)
                    transcript = self._without_echo(
                        await self._stt.transcribe(audio, thorough=self._thorough()), utterance.start_sample, end
                    )
        except Exception as exc:  # a failed transcription loses this utterance, not the session
            log.exception("transcription failed")
            self._hooks.emit(ErrorEvent(f"speech recognition failed: {exc}", stage="stt"))
            return
        clock.mark("transcript")
        text = transcript.text.strip()
        if transcript.rejected and utterance.hearing is not Hearing.UNDECIDED:  # heard, not understood: say so
            log.info("transcript rejected: %s (%r)", transcript.rejected, transcript.doubtful)
            self._hooks.not_understood(turn_id, clock)
            return
        if self._dismissed_as_backchannel(utterance, text, end) or not text:
            return
        self._hooks.propose(
            turn_id, text, clock, audio, prosody, speculative_end=None, avg_logprob=transcript.avg_logprob
        )
