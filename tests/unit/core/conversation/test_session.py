"""The session's races and edges, scripted: what real models can't be told to do on cue.

A model that stalls before its first word, a voice that breaks mid-reply, a hang-up while everything
waits, a barge-in racing the first audio: each must leave the session clean and ready for the next turn.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from tara.core.audio import AudioChunk
from tara.core.conversation.events import AgentText, AgentTurnDone, ErrorEvent, SettingsChanged, TurnMetrics
from tara.core.conversation.phrases import HOLDING_PHRASE
from tara.core.conversation.session import Session
from tara.core.conversation.sink import BufferSink
from tara.core.stages.rag import Document
from tests.fakes import ScriptedLLM, ToneTTS, events_until, fake_stack, queued_events, quiet, words

MUSEUM = [Document("museum.md", "The museum opens at 9 and closes at 5. Entry is free. The cafe is upstairs.")]


class BreakingTTS(ToneTTS):
    """Fails on the sentences it is told to, speaks the rest."""

    def __init__(self, *failing: str) -> None:
        super().__init__()
        self.failing = set(failing)

    async def stream(self, text: str, *args: Any, **kwargs: Any) -> AsyncIterator[AudioChunk]:
        if text in self.failing:
            self.failing.discard(text)
            raise RuntimeError("the voice broke")
        async for chunk in super().stream(text, *args, **kwargs):
            yield chunk


class TwoVoiceTTS(ToneTTS):
    """A tone voice with a second one that can be taken away, as an uploaded voice can be deleted."""

    def __init__(self) -> None:
        super().__init__()
        self.extra = ["ada"]

    @property
    def voices(self) -> list[str]:
        return [self.default_voice, *self.extra]


def said(events) -> list[str]:
    return [e.text for e in events if isinstance(e, AgentText)]


async def test_hanging_up_while_the_model_stalls_cancels_every_task_and_stops_the_generation(config):
    llm = ScriptedLLM(["It", 30.0, " opens at 9."])  # stalls for half a minute after its first word
    session = Session(fake_stack(config, llm, documents=MUSEUM), BufferSink())
    session.say_text("When does it open?")
    await asyncio.sleep(0.2)
    assert session.busy
    async with asyncio.timeout(2):  # at once, not after the stall
        await session.close()
    assert not session.busy and llm.closed_early == 1
    session.say_text("Hello?")  # a closed session starts nothing new
    session.push_audio(quiet(0.5))
    assert not session.busy


async def test_a_barge_in_before_the_first_word_stops_the_reply_and_no_holding_phrase_follows(config):
    llm = ScriptedLLM([5.0, "Too late."], words("It opens at 9."))
    sink = BufferSink()
    session = Session(fake_stack(config, llm, documents=MUSEUM), sink)
    session.say_text("When does it open?")
    await asyncio.sleep(0.2)
    assert session.interrupt()
    events = await events_until(session, AgentTurnDone, timeout=5)
    assert events[-1].interrupted and said(events) == []
    await asyncio.sleep(2.5)  # past the holding phrase's time: the stopped reply must not say it
    assert not any(isinstance(e, AgentText) for e in queued_events(session)) and not sink.chunks
    assert llm.closed_early == 1
    session.say_text("When does it open?")
    assert said(await events_until(session, TurnMetrics, timeout=10)) == ["It opens at 9."]
    await session.close()


async def test_a_barge_in_racing_the_first_audio_leaves_nothing_heard_and_no_history(config):
    sink = BufferSink()
    session = Session(fake_stack(config, ScriptedLLM(words("It opens at 9.")), documents=MUSEUM), sink)
    session.say_text("When does it open?")
    session.interrupt()  # before the reply's first step ran
    events = await events_until(session, AgentTurnDone, timeout=5)
    assert events[-1].interrupted and said(events) == [] and events[-1].text == ""
    await asyncio.sleep(0.3)
    assert not sink.chunks and session.history == []
    assert not session.interrupt()  # nothing left to stop
    await session.close()


async def test_a_voice_failing_mid_reply_is_an_error_event_and_the_next_turn_is_spoken(config):
    tts = BreakingTTS("It closes at 5.")
    llm = ScriptedLLM(words("It opens at 9. It closes at 5. Entry is free."), words("Entry is free."))
    session = Session(fake_stack(config, llm, documents=MUSEUM, tts=tts), BufferSink())
    session.say_text("Tell me the hours.")
    events = await events_until(session, TurnMetrics, timeout=10)
    assert any(isinstance(e, ErrorEvent) for e in events)
    assert "It opens at 9." in tts.said
    session.say_text("How much is it?")
    assert said(await events_until(session, TurnMetrics, timeout=10)) == ["Entry is free."]
    assert tts.said[-1] == "Entry is free."
    await session.close()


async def test_a_model_that_never_speaks_gets_the_holding_phrase_and_a_hang_up_still_ends_it(config):
    llm = ScriptedLLM([60.0, "Never."])
    session = Session(fake_stack(config, llm, documents=MUSEUM), BufferSink())
    session.say_text("When does it open?")
    events = await events_until(session, AgentText, timeout=5)
    assert said(events) == [HOLDING_PHRASE]
    async with asyncio.timeout(2):
        await session.close()
    assert not session.busy and llm.closed_early == 1


async def test_a_deleted_voice_falls_back_to_the_default_and_the_page_is_told(config):
    tts = TwoVoiceTTS()
    session = Session(fake_stack(config, ScriptedLLM(words("Hello.")), tts=tts), BufferSink())
    session.set_voice("ada")
    assert (await events_until(session, SettingsChanged, timeout=1)).pop().voice == "ada"
    tts.extra.clear()
    session.voices_changed()
    settings = (await events_until(session, SettingsChanged, timeout=1)).pop()
    assert settings.voice == "tone" and settings.voices == ["tone"]
    session.say_text("Hi.")
    assert said(await events_until(session, TurnMetrics, timeout=10)) == ["Hello."]
    await session.close()


async def test_muted_a_typed_question_is_still_answered_aloud(config):
    sink = BufferSink()
    session = Session(fake_stack(config, ScriptedLLM(words("It opens at 9.")), documents=MUSEUM), sink)
    session.set_muted(True)
    assert (await events_until(session, SettingsChanged, timeout=1)).pop().muted
    session.say_text("When does it open?")
    assert said(await events_until(session, TurnMetrics, timeout=10)) == ["It opens at 9."]
    assert sink.chunks
    await session.close()


async def test_a_session_counts_among_the_busy_callers_while_it_has_a_turn(config):
    stack = fake_stack(config, ScriptedLLM([0.5, *words("It opens at 9.")]), documents=MUSEUM)
    session, other = Session(stack, BufferSink()), Session(stack, BufferSink())
    assert stack.callers.busy() == 0
    session.say_text("When does the museum open?")
    assert stack.callers.busy() == 1  # the reply in progress; the other call is idle
    await events_until(session, TurnMetrics, timeout=10)
    await session.close()
    await other.close()
    assert stack.callers.busy() == 0
