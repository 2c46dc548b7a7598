"""Hearing the user, scripted: a loudness VAD, scripted transcripts, a scripted model; the endpointer is real.

Each test feeds "speech" (a tone) and silence in 20 ms frames, faster than real time, and checks what
the listener proposed and what the session made of it.
"""

import asyncio

import numpy as np
import pytest

from tara.core.conversation.events import (
    AgentState,
    AgentText,
    AgentTurnDone,
    ErrorEvent,
    StateChanged,
    TurnMetrics,
    UserSpeechStarted,
    UserTranscript,
)
from tara.core.conversation.phrases import NOT_HEARD_PHRASE
from tara.core.conversation.session import Session
from tara.core.conversation.sink import BufferSink
from tara.core.stages.endpointing.settings import SmartTurnEndpointing
from tara.core.stages.mic.echo import EchoLedger
from tara.core.stages.rag import Document
from tara.core.stages.stt import Transcript
from tests.fakes import (
    FailingSTT,
    ScriptedLLM,
    ScriptedSTT,
    ScriptedTurnModel,
    events_until,
    fake_stack,
    loud,
    quiet,
    words,
)

FRAME = 320  # 20 ms
MUSEUM = [
    Document(
        "museum.md",
        "The Harbour Museum opens at 9 and closes at 5. Entry costs 12 euros. "
        "The cafe is upstairs. The ferry leaves hourly.",
    )
]
# the first sentence in one delta: the first piece, whatever the first piece's wait
LONG_REPLY = [
    "The museum opens at nine.",
    *(" " + word for word in "It closes at five. Entry costs twelve euros. The cafe is upstairs.".split()),
]


async def talk(session: Session, *parts: np.ndarray) -> None:
    """Push ``parts`` frame by frame, letting the session's tasks run between frames (10x real time)."""
    for part in parts:
        for offset in range(0, len(part), FRAME):
            session.push_audio(part[offset : offset + FRAME])
            await asyncio.sleep(0.002)


def finals(events) -> list[str]:
    return [e.text for e in events if isinstance(e, UserTranscript) and e.final]


async def test_a_spoken_question_is_answered_on_the_reply_started_at_its_pause(config):
    stt, llm = ScriptedSTT("When does it open?"), ScriptedLLM(words("It opens at 9."))
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), BufferSink())
    await talk(session, quiet(0.3), loud(1.0), quiet(1.0))
    events = await events_until(session, TurnMetrics, timeout=10)
    assert isinstance(events[0], UserSpeechStarted)
    assert finals(events) == ["When does it open?"]
    assert [e.text for e in events if isinstance(e, AgentText)] == ["It opens at 9."]
    assert stt.calls == 1  # the pause's transcript was the final one
    assert events[-1].turn_id == 1 and "endpointing" in events[-1].stages
    await session.close()


async def test_talking_on_after_a_pause_drops_the_speculative_reply_without_a_trace(config):
    stt = ScriptedSTT("Tell me about the ferry,", "Tell me about the ferry, and its timetable.")
    llm = ScriptedLLM(words("The ferry leaves hourly."))
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), BufferSink())
    # the comma keeps the turn open (incomplete_silence_ms) long enough to start a reply and then go on
    await talk(session, loud(1.0), quiet(0.4), loud(0.8), quiet(1.5))
    events = await events_until(session, TurnMetrics, timeout=10)
    assert finals(events) == ["Tell me about the ferry, and its timetable."]
    assert len([e for e in events if isinstance(e, AgentTurnDone)]) == 1  # the dropped reply left nothing
    assert [prompt[-1].content for prompt in llm.prompts] == [
        "Tell me about the ferry,",
        "Tell me about the ferry, and its timetable.",
    ]  # the pause's, then the end's
    await session.close()


@pytest.mark.parametrize(
    "heard_over_the_agent",
    ["Yeah.", "The museum opens."],  # the echo of the first piece: the sink holds the next while it is judged
    ids=["a backchannel", "the agent's own words, its echo"],
)
async def test_speech_over_the_agent_that_is_no_barge_in_lets_it_speak_on(config, heard_over_the_agent):
    reply = LONG_REPLY
    stt, llm = ScriptedSTT("What about the museum?", heard_over_the_agent), ScriptedLLM(reply, delay=0.08)
    sink = BufferSink()
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), sink)
    await talk(session, loud(1.0), quiet(0.6))
    await events_until(session, AgentText, timeout=10)
    assert session.state.agent is AgentState.SPEAKING
    await talk(session, loud(0.4), quiet(0.8))
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert not events[-1].interrupted
    assert finals(events) == []  # no turn
    assert not sink.paused  # paused while it was judged, then resumed
    await session.close()


class Cancelled(EchoLedger):
    """An echo canceller's ledger that hears the echo and took ``db`` out of every stretch of the mic."""

    def __init__(self, db: float) -> None:
        super().__init__()
        self.db, self.echo_heard = db, True

    def removed_db(self, start_s: float, end_s: float) -> float | None:
        return self.db


@pytest.mark.parametrize(
    "heard, cancelled_db, interrupted",
    [("Want it now?", 30.0, False), ("Want it now?", 1.5, True), ("Of milk.", 1.5, False)],
    ids=["taken out: echo", "kept: the user", "two words where the echo comes back"],
)
async def test_a_confident_fragment_over_the_agent_is_its_echo_when_the_canceller_took_it_out(
    config, heard, cancelled_db, interrupted
):
    reply = LONG_REPLY
    stt = ScriptedSTT("What about the museum?", Transcript(heard, 1.0, 0.0, avg_logprob=-0.56))
    stack = fake_stack(config, ScriptedLLM(reply, delay=0.08), stt, vad="loud", documents=MUSEUM)
    session = Session(stack, BufferSink(), echo_ledger=Cancelled(cancelled_db))
    await talk(session, loud(1.0), quiet(0.6))
    await events_until(session, AgentText, timeout=10)
    await talk(session, loud(0.4), quiet(0.8))
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert events[-1].interrupted is interrupted
    await session.close()


@pytest.mark.parametrize(
    "heard_over_the_agent",
    [
        "The museum opens at nine.",
        Transcript("", 1.0, 0.0, rejected="the recogniser repeated itself", doubtful="Why, why, why, why, why."),
    ],
    ids=["its own words", "a loop whisper made of its residual"],
)
async def test_long_speech_over_the_agent_that_is_its_own_echo_does_not_cut_it_off(config, heard_over_the_agent):
    reply = LONG_REPLY
    stt = ScriptedSTT("What about the museum?", heard_over_the_agent)
    sink = BufferSink()
    session = Session(fake_stack(config, ScriptedLLM(reply, delay=0.08), stt, vad="loud", documents=MUSEUM), sink)
    await talk(session, loud(1.0), quiet(0.6))
    await events_until(session, AgentText, timeout=10)
    await talk(session, loud(1.6), quiet(0.8))  # past backchannel_max_ms
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert not events[-1].interrupted and finals(events) == []
    await session.close()


async def test_the_agent_s_echo_just_after_it_stopped_is_no_turn(config):
    stt = ScriptedSTT("What about the museum?", "Entry costs twelve euros.")
    llm = ScriptedLLM(words("Entry costs twelve euros."))
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), BufferSink())
    await talk(session, loud(1.0), quiet(0.6))
    await events_until(session, AgentTurnDone, timeout=10)
    await talk(session, loud(0.6), quiet(1.0))
    await asyncio.sleep(0.2)
    assert stt.calls == 2 and len(llm.prompts) == 1  # heard, dropped, not answered
    await session.close()


async def test_real_speech_over_the_agent_interrupts_it_and_is_answered(config):
    reply = LONG_REPLY
    stt = ScriptedSTT("What about the museum?", "Sorry, how much is entry?")
    llm = ScriptedLLM(reply, words("Twelve euros."), delay=0.08)
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), BufferSink())
    await talk(session, loud(1.0), quiet(0.6))
    await events_until(session, AgentText, timeout=10)
    await talk(session, loud(1.0), quiet(0.8))
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert events[-1].interrupted
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert events[-1].text == "Twelve euros." and not events[-1].interrupted
    assert session.history[-2].content == "Sorry, how much is entry?"
    # the question heard in full; speech begun over the agent quickly, as the echo guard's rules expect
    assert stt.thorough[0] and stt.thorough.count(True) == 1
    await session.close()


async def test_speech_while_the_agent_thinks_stops_the_reply(config):
    stt = ScriptedSTT("What time is it?", "Never mind, where is the cafe?")
    llm = ScriptedLLM([1.5, *words("It is noon.")], words("Upstairs."))
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), BufferSink())
    await talk(session, loud(0.8), quiet(0.8))
    await events_until(session, StateChanged, timeout=10)  # thinking
    await talk(session, loud(0.8), quiet(0.8))
    events = await events_until(session, TurnMetrics, timeout=10)  # the first reply's, cut off unheard
    events += await events_until(session, TurnMetrics, timeout=10)
    assert [e.text for e in events if isinstance(e, AgentText)] == ["Upstairs."]
    assert "It is noon." not in " ".join(m.content for m in session.history)
    await session.close()


async def test_a_transcript_the_recogniser_rejects_gets_the_not_heard_phrase(config):
    stt = ScriptedSTT(Transcript("", 1.0, 0.1, rejected="loop", doubtful="the the the the"))
    llm = ScriptedLLM(words("Unused."))
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), BufferSink())
    await talk(session, loud(1.0), quiet(1.2))
    events = await events_until(session, TurnMetrics, timeout=10)
    assert [e.text for e in events if isinstance(e, AgentText)] == [NOT_HEARD_PHRASE]
    assert llm.prompts == []
    await session.close()


async def test_unsure_words_no_document_has_are_asked_again_once_and_the_repeat_is_answered(config, caplog):
    misheard = Transcript("Dusty, where it's on home base?", 1.0, 0.1, avg_logprob=-0.6)  # "Does he work on Mondays?"
    stt = ScriptedSTT(misheard)  # (said again, heard the same)
    llm = ScriptedLLM(words("Sorry, I don't know that."))
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), BufferSink())
    await talk(session, loud(1.0), quiet(1.2))
    events = await events_until(session, TurnMetrics, timeout=10)
    assert [e.text for e in events if isinstance(e, AgentText)] == [NOT_HEARD_PHRASE]
    assert finals(events) == [misheard.text] and llm.prompts == []  # shown as heard; no question made of it
    assert caplog.text.count("asked to repeat") == 1  # the reply begun at the pause was the one confirmed
    await talk(session, loud(1.0), quiet(1.2))
    events = await events_until(session, TurnMetrics, timeout=10)
    assert [e.text for e in events if isinstance(e, AgentText)] == ["Sorry, I don't know that."]
    assert len(llm.prompts) == 1
    await session.close()


@pytest.mark.parametrize(
    "heard",
    [
        Transcript("Dusty, where it's on home base?", 1.0, 0.1, avg_logprob=-0.3),  # sure of it
        Transcript("When does the cafe open again?", 1.0, 0.1, avg_logprob=-0.6),  # the documents' words
        Transcript("Hi there, Business Mike Rentals.", 1.0, 0.1, avg_logprob=-0.6),  # a greeting all the same
    ],
)
async def test_sure_words_and_unsure_words_of_the_documents_are_answered(config, heard):
    llm = ScriptedLLM(words("Upstairs."))
    session = Session(fake_stack(config, llm, ScriptedSTT(heard), vad="loud", documents=MUSEUM), BufferSink())
    await talk(session, loud(1.0), quiet(1.2))
    events = await events_until(session, TurnMetrics, timeout=10)
    assert [e.text for e in events if isinstance(e, AgentText)] == ["Upstairs."]
    await session.close()


async def test_a_failed_transcription_is_reported_and_the_next_utterance_is_heard(config):
    stt = FailingSTT(failures=1, then="Where is the cafe?")  # the pause's transcription, the final one
    session = Session(
        fake_stack(config, ScriptedLLM(words("Upstairs.")), stt, vad="loud", documents=MUSEUM), BufferSink()
    )
    await talk(session, loud(1.0), quiet(1.2))
    events = await events_until(session, ErrorEvent, timeout=10)
    assert events[-1].stage == "stt"
    await talk(session, loud(1.0), quiet(1.2))
    events = await events_until(session, TurnMetrics, timeout=10)
    assert finals(events) == ["Where is the cafe?"]
    await session.close()


async def test_muted_the_microphone_is_heard_as_silence(config):
    stt = ScriptedSTT("Hello?")
    session = Session(fake_stack(config, ScriptedLLM(words("Hi.")), stt, vad="loud", documents=MUSEUM), BufferSink())
    session.set_muted(True)
    await talk(session, loud(1.0), quiet(1.0))
    await asyncio.sleep(0.1)
    assert stt.calls == 0 and not session.busy
    await session.close()


async def test_a_long_utterance_gets_partial_transcripts_and_prefills_the_model(config):
    config = config.model_copy(update={"stt": config.stt.model_copy(update={"partial_interval_ms": 200})})
    stt = ScriptedSTT("Tell me", "Tell me about the harbour museum please.")
    llm = ScriptedLLM(words("It is by the water."))
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), BufferSink())
    for _ in range(3):  # at the real pace partials need: 0.4 s of new speech each
        await talk(session, loud(0.5))
        await asyncio.sleep(0.5)
    await talk(session, quiet(1.0))
    events = await events_until(session, TurnMetrics, timeout=10)
    partials = [e for e in events if isinstance(e, UserTranscript) and not e.final]
    assert partials and all(e.turn_id == 1 for e in partials)
    assert llm.prefilled, "the partial transcript was not read ahead"
    assert stt.thorough[-1] and not any(stt.thorough[:-1])  # partials are quick; the turn's own transcript is not
    await session.close()


async def test_no_partial_transcripts_while_another_call_has_a_turn_going(config):
    class OtherCall:
        busy = True  # its user talking, or a reply being written for them

    config = config.model_copy(update={"stt": config.stt.model_copy(update={"partial_interval_ms": 200})})
    stt = ScriptedSTT("Tell me about the harbour museum please.")
    stack = fake_stack(config, ScriptedLLM(words("It is by the water.")), stt, vad="loud", documents=MUSEUM)
    other = OtherCall()
    stack.callers.join(other)
    session = Session(stack, BufferSink())
    for _ in range(3):
        await talk(session, loud(0.5))
        await asyncio.sleep(0.5)
    await talk(session, quiet(1.0))
    events = await events_until(session, TurnMetrics, timeout=10)
    assert not [e for e in events if isinstance(e, UserTranscript) and not e.final]
    assert stt.calls == 1  # the final transcript only: the CPU went to the other call's turn
    await session.close()


async def test_a_question_cut_off_before_any_answer_is_asked_again_with_the_next_words(config):
    stt = ScriptedSTT("Tell me about the ferry.", "And its timetable.")
    llm = ScriptedLLM([2.0, *words("Unheard.")], words("It leaves hourly."))
    session = Session(fake_stack(config, llm, stt, vad="loud", documents=MUSEUM), BufferSink())
    await talk(session, loud(0.8), quiet(0.8))
    await events_until(session, StateChanged, timeout=10)  # thinking, nothing said yet
    await talk(session, loud(0.8), quiet(0.8))
    events = await events_until(session, TurnMetrics, timeout=10)
    while not any(isinstance(e, AgentText) for e in events):
        events = await events_until(session, TurnMetrics, timeout=10)
    assert llm.prompts[-1][-1].content.endswith("Tell me about the ferry. And its timetable.")
    await session.close()


def with_smart_turn(config):
    return config.model_copy(update={"endpointing": SmartTurnEndpointing()})


async def test_a_turn_model_sure_the_user_is_done_ends_the_turn_early(config):
    # words with no full stop say nothing either way (vad.min_silence_ms, 400 ms): the model's "done" ends it at 80 ms
    stt, model = ScriptedSTT("When does it open"), ScriptedTurnModel(0.95)
    llm = ScriptedLLM(words("Hi."))
    stack = fake_stack(with_smart_turn(config), llm, stt, vad="loud", documents=MUSEUM, turn_model=model)
    session = Session(stack, BufferSink())
    await talk(session, loud(1.0), quiet(0.3))
    events = await events_until(session, TurnMetrics, timeout=10)
    assert finals(events) == ["When does it open"] and model.calls == 1
    await session.close()


async def test_a_turn_model_sure_the_user_is_not_done_waits_through_a_long_pause(config):
    stt = ScriptedSTT("How long is the warranty?", "How long is the warranty on the kettle?")
    model = ScriptedTurnModel(0.1)  # the words look finished, the voice did not
    llm = ScriptedLLM(words("Two years."))
    stack = fake_stack(with_smart_turn(config), llm, stt, vad="loud", documents=MUSEUM, turn_model=model)
    session = Session(stack, BufferSink())
    await talk(session, loud(1.0), quiet(0.6), loud(0.6), quiet(1.5))  # the transcript rule ends it at 200 ms
    events = await events_until(session, TurnMetrics, timeout=10)
    assert finals(events) == ["How long is the warranty on the kettle?"] and model.calls == 2
    await session.close()
