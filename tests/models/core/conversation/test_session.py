"""The turn engine with every real model: typed and spoken turns, barge-in, failures, loop health."""

import asyncio
import time

import numpy as np
import pytest

from tara.core.audio import PIPELINE_RATE, resample
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
from tara.core.conversation.session import Session
from tara.core.conversation.sink import BufferSink
from tara.server.tracks import SpeakerTrack
from tara.tools.filechat import feed
from tests.fakes import events_until


class CountingSink(BufferSink):
    """Remembers when each chunk arrived, to check that nothing plays after a barge-in."""

    def __init__(self) -> None:
        super().__init__()
        self.write_times: list[float] = []

    def write(self, chunk, on_play=None) -> None:
        self.write_times.append(time.perf_counter())
        super().write(chunk, on_play)


async def test_a_typed_turn_goes_through_every_stage(stack):
    sink = BufferSink()
    session = Session(stack, sink)
    session.say_text("What is the name of the observatory's main telescope?")
    events = await events_until(session, TurnMetrics)
    states = [e.state for e in events if isinstance(e, StateChanged)]
    assert states == [AgentState.THINKING, AgentState.SPEAKING, AgentState.LISTENING]
    said = " ".join(e.text for e in events if isinstance(e, AgentText))
    assert "Big Maple" in said
    metrics = events[-1].stages
    assert {"retrieval", "first_token", "first_sentence", "first_audio"} <= set(metrics)
    assert metrics["retrieval"] <= metrics["first_token"] <= metrics["first_sentence"] <= metrics["first_audio"]
    assert (audio := sink.audio()) is not None and audio.duration > 0.5
    assert [m.role for m in session.history] == ["user", "assistant"]
    await session.close()


async def test_a_spoken_turn_gives_partial_and_final_transcripts(stack, voice):
    session = Session(stack, BufferSink())
    audio = voice("Hello Tara. I would like to know when the observatory opens for visitors, please.", speed=140)
    await feed(session, audio, realtime=True)
    events = await events_until(session, TurnMetrics)
    transcripts = [e for e in events if isinstance(e, UserTranscript)]
    assert any(not t.final for t in transcripts), "no partial transcript while the user spoke"
    final = [t for t in transcripts if t.final]
    assert len(final) == 1 and "observatory" in final[0].text.lower()
    said = " ".join(e.text for e in events if isinstance(e, AgentText)).lower()
    assert "friday" in said or "saturday" in said or "seven" in said or "7" in said
    metrics = events[-1].stages
    assert {"transcript", "endpointing", "voice_to_first_audio"} <= set(metrics)
    await session.close()


async def test_barge_in_stops_llm_and_tts_at_once_and_the_next_turn_works(stack):
    sink = CountingSink()
    session = Session(stack, sink)
    session.say_text("Tell me everything about the observatory and the ferry, in as much detail as you can.")
    async with asyncio.timeout(60):
        while not sink.write_times:
            await asyncio.sleep(0.01)
    interrupted_at = time.perf_counter()
    assert session.interrupt()
    events = await events_until(session, AgentTurnDone)
    assert events[-1].interrupted
    await asyncio.sleep(1.0)  # anything still coming from LLM or TTS would arrive now
    late = [t for t in sink.write_times if t > interrupted_at]
    assert len(late) <= 1, f"{len(late)} audio chunks arrived after the barge-in"
    assert not session.busy
    session.say_text("What is the name of the observatory's main telescope?")
    events = await events_until(session, AgentTurnDone)
    assert not events[-1].interrupted
    assert "big maple" in events[-1].text.lower()
    assert session.history[-2].content == "What is the name of the observatory's main telescope?"
    assert session.history[1].content.endswith(" …")  # the cut-off reply is marked as cut off
    await session.close()


async def test_user_speech_while_the_agent_talks_interrupts_it(stack, voice):
    session = Session(stack, BufferSink())
    session.say_text("Tell me everything about the ferry, in great detail.")
    events = await events_until(session, AgentText)
    await feed(session, voice("Wait, stop please."), realtime=False, trailing_silence=0)
    events = await events_until(session, AgentTurnDone)
    assert events[-1].interrupted
    await session.close()


async def test_a_failing_stage_reports_an_error_and_the_session_lives_on(stack, monkeypatch):
    session = Session(stack, BufferSink())

    def broken_stream(text, emotion, voice=None, context=None, urgent=True):
        raise RuntimeError("voice model crashed")

    monkeypatch.setattr(stack.tts, "stream", broken_stream)
    session.say_text("What does a return ferry ticket cost?")
    events = await events_until(session, TurnMetrics)
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors and "voice model crashed" in errors[0].message
    assert session.state.agent is AgentState.LISTENING
    monkeypatch.undo()
    session.say_text("What does a return ferry ticket cost?")
    events = await events_until(session, AgentTurnDone)
    assert "nine" in events[-1].text.lower() or "9" in events[-1].text
    await session.close()


async def test_the_event_loop_never_stalls_during_a_turn(stack, voice):
    """A stalled loop means choppy audio for every peer: CPU-heavy stages must run off the loop."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    probe_task = asyncio.create_task(probe())
    session = Session(stack, BufferSink())
    await feed(session, voice("How long does the ferry crossing take?"), realtime=True, trailing_silence=1.0)
    await events_until(session, TurnMetrics)
    stop.set()
    await probe_task
    await session.close()
    assert len(lags) > 100
    print(f"max loop lag {max(lags) * 1000:.1f} ms over {len(lags)} probes")
    assert max(lags) < 0.05, f"event loop stalled for {max(lags) * 1000:.0f} ms"


async def test_close_cancels_everything(stack):
    session = Session(stack, BufferSink())
    session.say_text("Tell me a long story about the ferry.")
    await asyncio.sleep(0.3)
    await session.close()
    assert not session.busy
    session.push_audio(np.zeros(320, dtype=np.int16))  # ignored after close, no error


async def test_empty_text_is_an_error_event(stack):
    session = Session(stack, BufferSink())
    session.say_text("   ")
    event = await asyncio.wait_for(session.events.get(), 1)
    assert isinstance(event, ErrorEvent)
    await session.close()


@pytest.mark.xfail(
    strict=False,
    reason="on this machine's espeak-ng the first half reads 'Tell me I'm out of a "
    "ferry.' and the turn ends in the gap; fails on 7e0d17a as well (issue 13 note)",
)
async def test_a_reply_started_on_a_pause_is_dropped_when_the_user_goes_on(stack, voice):
    """Speculation: the reply starts during the end-of-turn silence, but is heard only if the turn ends."""
    from dataclasses import replace

    from tara.core.stages.endpointing.settings import TranscriptEndpointing

    patient = stack.config.model_copy(
        update={
            "vad": stack.config.vad.model_copy(update={"min_silence_ms": 1500}),
            # the words alone decide here: a model sure "Tell me about the ferry." is done would end it at once
            "endpointing": TranscriptEndpointing(complete_silence_ms=1500),
        }
    )
    sink = CountingSink()
    session = Session(replace(stack, config=patient), sink)
    started = []
    original = session._reply
    # a spy on the replies started (a type checker forbids assigning to a method)
    session._reply = lambda turn, committed: started.append(original(turn, committed))  # pyright: ignore[reportAttributeAccessIssue]
    first = voice("Tell me about the ferry.")
    second = voice("No wait, what is the observatory telescope called?", lead_silence=0.0)
    # long enough to start a reply, short of ending the turn
    gap = np.zeros(int(1.0 * 16000), dtype=np.int16)
    await feed(session, np.concatenate([first, gap, second]), realtime=True, trailing_silence=2.0)
    events = await events_until(session, TurnMetrics)
    finals = [e for e in events if isinstance(e, UserTranscript) and e.final]
    assert len(finals) == 1 and "ferry" in finals[0].text.lower() and "telescope" in finals[0].text.lower()
    said = [e for e in events if isinstance(e, AgentText)]
    assert events.index(finals[0]) < events.index(said[0]), "the agent spoke before the user had finished"
    assert len([e for e in events if isinstance(e, AgentTurnDone)]) == 1
    assert "big maple" in " ".join(e.text for e in said).lower()
    dropped = [reply.turn for reply in started if not reply.committed]
    assert dropped and "ferry" in dropped[0].question.lower(), "no reply was started on the pause"
    assert started[-1].committed and started[-1].turn.speculative_end is not None  # the answer was speculative too
    await session.close()


async def test_a_sentence_trailing_off_on_and_waits_for_the_rest(stack, voice):
    """The end-of-turn silence follows the words: "...the ferry, and" is not the end of a question."""
    session = Session(stack, BufferSink())
    first = voice("Tell me about the ferry, and")  # whisper: "Tell me about the fairy and..."
    second = voice("the name of the observatory telescope.", lead_silence=0.0)
    # with espeak's own trailing silence ~0.7 s: longer than vad.min_silence_ms, shorter than "incomplete"
    gap = np.zeros(int(0.3 * 16000), dtype=np.int16)
    await feed(session, np.concatenate([first, gap, second]), realtime=True, trailing_silence=1.5)
    events = await events_until(session, TurnMetrics)
    finals = [e for e in events if isinstance(e, UserTranscript) and e.final]
    assert len(finals) == 1 and "tell me about" in finals[0].text.lower() and "observatory" in finals[0].text.lower()
    await session.close()


async def test_a_large_knowledge_base_answers_from_retrieved_passages(stack):
    """Past ``rag.inline_max_tokens`` the documents leave the system prompt; passages join the question."""
    from dataclasses import replace

    from tara.core.conversation.prompt import PromptBuilder

    rag = stack.config.rag.model_copy(update={"inline_max_tokens": 0})
    prompts = PromptBuilder(stack.config.llm, rag, stack.retriever.documents, stack.llm.count_tokens)
    assert not prompts.inline
    session = Session(replace(stack, prompts=prompts), BufferSink())
    session.say_text("How long does the ferry crossing take?")
    events = await events_until(session, AgentTurnDone)
    assert "forty" in events[-1].text.lower() or "40" in events[-1].text
    await session.close()


@pytest.fixture
async def talking_session(stack):
    """A session speaking through a real SpeakerTrack that plays out in real time, already answering
    a long question (its first sentence is playing)."""
    track = SpeakerTrack()

    async def play_out() -> None:  # like a peer connection: paced 20 ms frames
        while True:
            await track.recv()

    player = asyncio.ensure_future(play_out())
    session = Session(stack, track)
    session.say_text("Tell me everything about the ferry, in great detail.")
    await events_until(session, AgentText)
    yield session
    player.cancel()
    await session.close()


async def test_a_backchannel_over_the_agent_does_not_cut_it_off(talking_session, stack, voice):
    session = talking_session
    assert session.listener.vad.threshold == stack.config.barge_in.threshold  # its own echo needs more to count
    await feed(session, voice("Yeah."), realtime=True, trailing_silence=1.0)
    events = await events_until(session, AgentTurnDone, timeout=120)
    assert not events[-1].interrupted
    assert any(isinstance(e, UserSpeechStarted) for e in events)  # it was heard as speech...
    assert not [e for e in events if isinstance(e, UserTranscript)]  # ...and not taken for a new turn
    assert session.listener.vad.threshold == stack.config.vad.threshold


async def test_real_speech_over_the_agent_interrupts_it_and_is_answered(talking_session, voice):
    session = talking_session
    await feed(session, voice("Sorry, how long does the crossing take?"), realtime=True)
    events = await events_until(session, AgentTurnDone, timeout=120)
    assert events[-1].interrupted
    events = await events_until(session, AgentTurnDone, timeout=120)
    assert "forty" in events[-1].text.lower() or "40" in events[-1].text


async def test_the_agents_own_voice_leaking_into_the_mic_does_not_interrupt_it(talking_session, stack):
    session = talking_session
    own = [
        c
        async for c in stack.tts.stream(
            "The ferry crosses the lake in forty minutes, and bicycles go free.", session.emotion
        )
    ]
    echo = resample(np.concatenate([c.samples for c in own]), own[0].sample_rate, PIPELINE_RATE)
    echo = (echo * 10 ** (-30 / 20)).astype(np.int16)  # its voice, 30 dB down, as a speaker leaks into a mic
    await feed(session, echo, realtime=True, trailing_silence=0.5)
    events = await events_until(session, AgentTurnDone, timeout=120)
    assert not events[-1].interrupted
    assert not [e for e in events if isinstance(e, UserSpeechStarted)]
