"""One reply as a handle: held until committed, interrupted as one, played out, recorded in the history."""

import asyncio

from tara.core.conversation.events import AgentText, AgentTurnDone, TurnMetrics
from tara.core.conversation.session import Session
from tara.core.conversation.sink import BufferSink
from tara.core.conversation.turn import Turn, TurnClock
from tara.core.stages.rag import Document
from tests.fakes import ScriptedLLM, events_until, fake_stack, words

MUSEUM = [Document("museum.md", "The museum opens at 9 and closes at 5. Entry is free.")]


async def test_an_uncommitted_reply_is_silent_and_an_interrupted_one_leaves_no_trace(config):
    sink = BufferSink()
    session = Session(fake_stack(config, ScriptedLLM(words("It opens at 9.")), documents=MUSEUM), sink)
    reply = session._reply(Turn(1, "When does it open?", TurnClock(), speculative_end=16000), committed=False)
    await asyncio.sleep(0.3)  # thought and synthesised, held back
    assert not sink.chunks and session.events.empty() and not reply.done
    assert reply.interrupt()
    await reply.wait()
    assert reply.done and not reply.interrupt()  # over: nothing left to stop
    assert session.events.empty() and session.history == []
    await session.close()


async def test_a_committed_reply_is_heard_played_out_and_recorded(config):
    sink = BufferSink()
    session = Session(fake_stack(config, ScriptedLLM(words("It opens at 9.")), documents=MUSEUM), sink)
    reply = session._reply(Turn(1, "When does it open?", TurnClock(), speculative_end=16000), committed=False)
    await asyncio.sleep(0.1)
    session.confirm(speech_stopped=None)
    events = await events_until(session, TurnMetrics, timeout=10)
    assert [e.text for e in events if isinstance(e, AgentText)] == ["It opens at 9."]
    assert reply.played_out.is_set() and sink.chunks
    assert [m.content for m in session.history] == ["When does it open?", "It opens at 9."]
    await session.close()


async def test_a_reply_cut_off_mid_way_is_marked_so_in_the_history(config):
    llm = ScriptedLLM(words("It opens at 9. It closes at 5. Entry is free."), delay=0.1)
    session = Session(fake_stack(config, llm, documents=MUSEUM), BufferSink())
    session.say_text("Tell me the hours.")
    await events_until(session, AgentText, timeout=10)
    assert session.interrupt()
    events = await events_until(session, AgentTurnDone, timeout=10)
    assert events[-1].interrupted
    assert session.history[-1].content.endswith(" …")
    await session.close()


async def test_a_new_reply_waits_for_the_one_it_replaces_to_record_its_history(config):
    llm = ScriptedLLM(["First answer.", " More", " of", " it."], words("Second answer."), delay=0.1)
    session = Session(fake_stack(config, llm, documents=MUSEUM), BufferSink())
    session.say_text("One?")
    await events_until(session, AgentText, timeout=10)
    session.say_text("Two?")
    events = await events_until(session, TurnMetrics, timeout=10)  # the first, interrupted
    events += await events_until(session, TurnMetrics, timeout=10)
    assert [m.content for m in session.history] == ["One?", "First answer. …", "Two?", "Second answer."]
    await session.close()
