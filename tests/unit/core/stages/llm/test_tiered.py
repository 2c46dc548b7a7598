"""The accurate model while it is free, the fast one while another reply is written or another call is busy."""

from __future__ import annotations

import pytest

from tara.core.concurrency import Callers
from tara.core.stages.llm import ChatMessage, GenerationParams
from tara.core.stages.llm.tiered import LoadTieredLLM
from tests.fakes import ScriptedLLM

ASK = [ChatMessage("user", "How much is a ticket?")]
PARAMS = GenerationParams()


async def test_a_lone_reply_goes_to_the_accurate_model_and_one_written_meanwhile_to_the_fast_one():
    accurate, fast = ScriptedLLM(["Eleven", " pounds."]), ScriptedLLM(["Seven pounds."])
    llm = LoadTieredLLM(accurate, fast)
    first = llm.stream(ASK, PARAMS)
    assert await anext(first) == "Eleven"  # being written
    assert [delta async for delta in llm.stream(ASK, PARAMS)] == ["Seven pounds."]
    assert [delta async for delta in first] == [" pounds."]
    assert llm.writing == 0
    assert [delta async for delta in llm.stream(ASK, PARAMS)] == ["Eleven", " pounds."]  # free again
    assert (len(accurate.prompts), len(fast.prompts)) == (2, 1)


class FakeCall:
    def __init__(self, busy: bool) -> None:
        self.busy = busy


async def test_a_reply_starting_while_another_call_is_busy_goes_to_the_fast_model():
    callers = Callers()
    asking, other = FakeCall(True), FakeCall(True)  # another user talking, or being transcribed
    callers.join(asking)
    callers.join(other)
    llm = LoadTieredLLM(ScriptedLLM(["Eleven pounds."]), ScriptedLLM(["Seven pounds."]), callers)
    assert not llm.writes_carefully()  # (prompt forms a small model misreads are left out)
    assert [delta async for delta in llm.stream(ASK, PARAMS)] == ["Seven pounds."]
    other.busy = False  # the other call is quiet: the lone turn gets the accurate model
    assert llm.writes_carefully()
    assert [delta async for delta in llm.stream(ASK, PARAMS)] == ["Eleven pounds."]
    callers.leave(asking)
    assert callers.busy() == 0


async def test_a_second_try_goes_to_the_accurate_model_even_while_another_call_is_busy():
    """The fast model, asked again after it said the question back, says it back again."""
    callers = Callers()
    for call in (FakeCall(True), FakeCall(True)):
        callers.join(call)
    llm = LoadTieredLLM(ScriptedLLM(["Eleven pounds."]), ScriptedLLM(["Seven pounds."]), callers)
    again = GenerationParams(second_try=True)
    assert [delta async for delta in llm.stream(ASK, again)] == ["Eleven pounds."]


async def test_a_reply_closed_early_or_failing_frees_the_accurate_model():
    llm = LoadTieredLLM(ScriptedLLM(["It", " is", " ten."], [RuntimeError("engine failed")]), ScriptedLLM(["Fast."]))
    stream = llm.stream(ASK, PARAMS)
    await anext(stream)
    await stream.aclose()  # pyright: ignore[reportAttributeAccessIssue] - typed AsyncIterator; an async generator
    with pytest.raises(RuntimeError):
        [delta async for delta in llm.stream(ASK, PARAMS)]
    assert llm.writing == 0 and llm.pick() is llm.accurate


async def test_prefill_reads_into_the_model_the_next_reply_would_take():
    accurate, fast = ScriptedLLM(["Yes."]), ScriptedLLM(["No."])
    prefilled: list[str] = []
    accurate.prefill = lambda messages: _record(prefilled, "accurate")
    fast.prefill = lambda messages: _record(prefilled, "fast")
    llm = LoadTieredLLM(accurate, fast)
    await llm.prefill(ASK)
    writing = llm.stream(ASK, PARAMS)
    await anext(writing)
    await llm.prefill(ASK)
    await writing.aclose()  # pyright: ignore[reportAttributeAccessIssue] - typed AsyncIterator; an async generator
    assert prefilled == ["accurate", "fast"]


async def _record(into: list[str], name: str) -> None:
    into.append(name)
