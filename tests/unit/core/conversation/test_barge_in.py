"""Barge-in, scripted: an energy onset ducks the agent at the first loud window, the VAD (scripted) confirms
or lets the voice go on, and the words (scripted transcripts) decide between resuming and interrupting."""

import asyncio

import numpy as np

from tara.core.config import BargeInConfig, TaraConfig
from tara.core.conversation.barge_in import BargeInPolicy
from tara.core.conversation.events import AgentState, AgentText, AgentTurnDone
from tara.core.conversation.onset import WINDOW, EnergyOnset
from tara.core.conversation.session import Session
from tara.core.conversation.sink import BufferSink
from tara.core.stages.vad import VAD_BACKENDS
from tests.fakes import ScriptedLLM, ScriptedSTT, events_until, fake_stack, loud, quiet, words
from tests.unit.core.conversation.test_listener import MUSEUM, finals, talk

REPLY = words("The museum opens at nine. It closes at five. Entry costs twelve euros. The cafe is upstairs.")


class DeafVAD:
    """A VAD model that never hears speech: whatever is loud is a knock, not a voice."""

    def __init__(self, config: object = None) -> None: ...

    def probability(self, window: np.ndarray) -> float:
        return 0.0

    def reset(self) -> None: ...


VAD_BACKENDS.register("deaf", "tests.unit.core.conversation.test_barge_in:DeafVAD")


class RecordingSink(BufferSink):
    """A buffer sink that notes each pause and resume, with how much audio the listener had heard then."""

    def __init__(self) -> None:
        super().__init__()
        self.moves: list[str] = []

    def pause(self) -> None:
        super().pause()
        self.moves.append("pause")

    def resume(self) -> None:
        super().resume()
        self.moves.append("resume")


def with_barge_in(config: TaraConfig, **settings: object) -> TaraConfig:
    return config.model_copy(update={"barge_in": config.barge_in.model_copy(update=settings)})


async def speaking_session(
    config: TaraConfig, stt: ScriptedSTT, vad: str = "loud", delay: float = 0.08
) -> tuple[Session, RecordingSink]:
    """A session whose agent is speaking a long reply (a word per ``delay`` seconds) to a typed question."""
    sink = RecordingSink()
    llm = ScriptedLLM(REPLY, words("Twelve euros."), delay=delay)
    session = Session(fake_stack(config, llm, stt, MUSEUM, vad=vad), sink)
    session.say_text("What about the museum?")
    await events_until(session, AgentText, timeout=10)
    assert session.state.agent is AgentState.SPEAKING
    return session, sink


# ---------------------------------------------------------------- the energy onset


def test_an_onset_is_two_loud_windows_over_the_floor_and_fires_once_per_sound():
    onset = EnergyOnset(min_level_dbfs=-45, margin_db=12)
    assert not onset.feed(quiet(0.5))
    assert not onset.feed(loud(0.01))  # the first loud window
    assert onset.feed(loud(0.01))  # the second: an onset, 20 ms into the sound
    assert not onset.feed(loud(0.5))  # still the same sound
    assert not onset.feed(quiet(0.05)) and onset.feed(loud(0.02))  # a new one


def test_a_click_or_a_steady_fan_is_no_onset():
    onset = EnergyOnset(min_level_dbfs=-45, margin_db=12)
    onset.feed(quiet(0.3))
    assert not onset.feed(np.concatenate([loud(0.008), quiet(0.3)]))  # a 8 ms click
    fan = (np.random.default_rng(0).normal(0, 600, 16000 * 5)).astype(np.int16)  # about -35 dBFS of noise
    onset.feed(fan[: 16000 * 4])  # switched on: loud over the old floor for a while...
    assert not any(onset.feed(fan[i : i + WINDOW]) for i in range(16000 * 4, 16000 * 5, WINDOW))  # ...then the floor
    louder = (loud(0.05) // 2 + fan[:800]).astype(np.int16)  # a voice over the fan still is one
    assert onset.feed(louder)


def test_a_quiet_sound_under_the_level_gate_is_no_onset():
    onset = EnergyOnset(min_level_dbfs=-45, margin_db=12)
    onset.feed(quiet(0.3))
    assert not onset.feed((loud(0.2) // 100).astype(np.int16))  # about -52 dBFS: echo, not the user


# ---------------------------------------------------------------- the words


def test_only_enough_words_beyond_backchannels_and_noise_interrupt():
    policy = BargeInPolicy(BargeInConfig())
    long_enough = 16000
    assert not policy.interrupts("Mm-hmm.", long_enough)
    assert not policy.interrupts("Mmhmm.", long_enough)  # one sound, however whisper spells it
    assert not policy.interrupts("Uhuh.", long_enough)
    assert not policy.interrupts("Yeah, yeah.", long_enough)
    assert not policy.interrupts("", long_enough)
    assert not policy.interrupts("[coughs] (clears throat) *sigh*", long_enough)
    assert policy.interrupts("Wait.", long_enough)
    assert policy.interrupts("Yeah, but when does it close?", long_enough)


def test_where_the_echo_may_be_heard_one_word_interrupts_only_if_it_stops_a_speaker():
    policy = BargeInPolicy(BargeInConfig())
    assert not policy.interrupts("Life.", 16000, echo_possible=True)  # the echo's residual, misheard
    assert policy.interrupts("Stop!", 16000, echo_possible=True) and policy.interrupts(
        "Wait.", 16000, echo_possible=True
    )
    assert policy.interrupts("What time?", 16000, echo_possible=True)
    assert policy.interrupts("Life.", 16000)  # no echo guard: one word is enough


def test_where_the_echo_comes_back_two_words_interrupt_only_with_a_word_that_stops_a_speaker():
    policy = BargeInPolicy(BargeInConfig())
    assert policy.interrupts("Of milk.", 16000, echo_possible=True)  # the echo may be there, not heard yet
    assert not policy.interrupts("Of milk.", 16000, echo_possible=True, echo_leaks=True)  # its residual
    for said in ["Wait, please.", "How much?", "Hold on.", "Sorry, what?", "Tell me more."]:  # (3 words: no fragment)
        assert policy.interrupts(said, 16000, echo_possible=True, echo_leaks=True), said
    for echo in ["Why?", "Where?"]:  # a question word alone: the echo of "wide" was heard as "Why?"
        assert not policy.interrupts(echo, 16000, echo_possible=True, echo_leaks=True), echo
        assert policy.interrupts(echo, 16000), echo  # no echo guard: the user asking
    assert policy.interrupts("Of milk.", 16000, echo_leaks=True)  # it began after the echo: the user


def test_the_livekit_knobs_set_how_many_words_and_how_much_speech_interrupt():
    policy = BargeInPolicy(BargeInConfig(min_interruption_words=2, min_interruption_ms=400))
    assert not policy.interrupts("Wait.", 16000)  # one word
    assert not policy.interrupts("Yeah okay wait.", 16000)  # backchannels do not count
    assert policy.interrupts("Wait, what?", 16000)
    assert not policy.interrupts("Wait, what?", 6000)  # 375 ms of speech
    assert policy.false_interruption_timeout_s == 2.0
    assert BargeInPolicy(BargeInConfig(false_interruption_timeout_ms=0)).false_interruption_timeout_s is None


# ---------------------------------------------------------------- over the agent's voice


async def test_a_knock_ducks_the_agent_at_its_first_loud_window_and_the_voice_goes_on(config):
    session, sink = await speaking_session(config, ScriptedSTT(), vad="deaf")
    session.push_audio(quiet(0.1))
    session.push_audio(loud(0.02))  # one 20 ms frame: two loud 10 ms windows
    assert sink.moves == ["pause"]  # ducked on this very frame, before any VAD window could judge it
    await talk(session, loud(0.1), quiet(0.2))  # the VAD hears no speech within onset_confirm_ms
    assert sink.moves == ["pause", "resume"]
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert not events[-1].interrupted
    await session.close()


async def test_a_cough_over_the_agent_pauses_it_and_it_goes_on(config):
    session, sink = await speaking_session(config, ScriptedSTT("(coughs)"))
    await talk(session, loud(0.35), quiet(0.8))
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert not events[-1].interrupted
    assert sink.moves[0] == "pause" and sink.moves[-1] == "resume" and not sink.paused
    assert finals(events) == []
    await session.close()


async def test_mhm_over_the_agent_pauses_it_and_it_goes_on(config):
    session, sink = await speaking_session(config, ScriptedSTT("Mm-hmm."))
    await talk(session, loud(0.4), quiet(0.8))
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert not events[-1].interrupted and finals(events) == []
    assert sink.moves[-1] == "resume"
    await session.close()


async def test_real_speech_over_the_agent_interrupts_it(config):
    session, sink = await speaking_session(config, ScriptedSTT("Sorry, how much is entry?"))
    await talk(session, loud(0.8), quiet(0.8))
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert events[-1].interrupted
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert events[-1].text == "Twelve euros."
    assert "resume" not in sink.moves
    await session.close()


async def test_too_few_words_resume_the_agent(config):
    config = with_barge_in(config, min_interruption_words=2)
    session, sink = await speaking_session(config, ScriptedSTT("Wait."))
    await talk(session, loud(0.4), quiet(0.8))
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert not events[-1].interrupted and sink.moves[-1] == "resume"
    await session.close()


class SlowSTT(ScriptedSTT):
    """A recogniser that takes ``seconds`` per transcript (a CPU busy with other callers)."""

    def __init__(self, seconds: float, *transcripts: str) -> None:
        super().__init__(*transcripts)
        self.seconds = seconds

    async def transcribe(self, audio: np.ndarray, urgent: bool = True, thorough: bool = True):
        await asyncio.sleep(self.seconds)
        return await super().transcribe(audio, urgent, thorough)


async def test_a_backchannel_verdict_that_comes_after_the_user_went_on_does_not_let_the_agent_speak_over_them(config):
    # 'Wait, wait,' heard as 'Weight.' only once the user had gone on: the rest of the question decides
    stt = SlowSTT(0.2, "Weight.", "Wait, wait, how long does the crossing take?")
    session, sink = await speaking_session(config, stt)
    await talk(session, loud(0.4), quiet(0.15))  # a pause: its transcript takes 2 s of audio time (10x)
    await talk(session, loud(0.6), quiet(0.8))  # the user goes on meanwhile
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert events[-1].interrupted
    await session.close()


async def test_no_words_within_the_false_interruption_timeout_resume_the_agent_and_later_words_interrupt(config):
    config = with_barge_in(config, false_interruption_timeout_ms=300)
    session, sink = await speaking_session(config, SlowSTT(1.0, "Sorry, how much is entry?"), delay=0.3)
    await talk(session, loud(0.4))
    for _ in range(30):  # the end of the speech, then 0.3 s without words
        session.push_audio(quiet(0.02))
        await asyncio.sleep(0.02)
    assert sink.moves[-1] == "resume" and not sink.paused
    events = await events_until(session, AgentTurnDone, timeout=10)  # the words came: interrupted after all
    assert events[-1].interrupted
    await session.close()
