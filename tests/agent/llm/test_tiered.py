"""The accurate model while it is free, the fast one while another reply is being written."""

from __future__ import annotations

import pytest
import yaml

from agent.config import DEFAULT_CONFIG, LLMConfig
from agent.llm import ChatMessage, GenerationParams
from agent.llm.tiered import LoadTieredLLM, load_llm
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


async def test_a_reply_closed_early_or_failing_frees_the_accurate_model():
    llm = LoadTieredLLM(ScriptedLLM(["It", " is", " ten."], [RuntimeError("engine failed")]), ScriptedLLM(["Fast."]))
    stream = llm.stream(ASK, PARAMS)
    await anext(stream)
    await stream.aclose()
    with pytest.raises(RuntimeError):
        [delta async for delta in llm.stream(ASK, PARAMS)]
    assert llm.writing == 0 and llm.pick() is llm.accurate


async def test_prefill_reads_into_the_model_the_next_reply_would_take():
    accurate, fast = ScriptedLLM(["Yes."]), ScriptedLLM(["No."])
    prefilled: list[str] = []
    accurate.prefill = lambda messages: _record(prefilled, "accurate")  # type: ignore[method-assign]
    fast.prefill = lambda messages: _record(prefilled, "fast")  # type: ignore[method-assign]
    llm = LoadTieredLLM(accurate, fast)
    await llm.prefill(ASK)
    writing = llm.stream(ASK, PARAMS)
    await anext(writing)
    await llm.prefill(ASK)
    await writing.aclose()
    assert prefilled == ["accurate", "fast"]


async def _record(into: list[str], name: str) -> None:
    into.append(name)


async def test_the_default_pair_answers_a_lone_reply_with_the_accurate_model_and_one_meanwhile_with_the_fast(config):
    """The default profile's two real models (the suite otherwise runs the fast one alone)."""
    defaults = LLMConfig(**yaml.safe_load(DEFAULT_CONFIG.read_text())["llm"])
    llm = load_llm(defaults, config.data_path)
    assert isinstance(llm, LoadTieredLLM)
    assert (llm.accurate.model_path.name, llm.fast.model_path.name) == (  # type: ignore[attr-defined]
        "qwen2.5-coder-1.5b-q4_0.gguf", "qwen2.5-coder-0.5b-q4_0.gguf")
    system = ChatMessage("system", "Answer from this document in one sentence. The Ivy Cafe serves lunch from "
                                   "12:00 to 15:00. An adult ticket costs 11 pounds.")
    await llm.warm_up([[system]])
    greedy = GenerationParams(temperature=0.0, max_tokens=24)
    lone = llm.stream([system, ChatMessage("user", "How much is an adult ticket?")], greedy)
    first = await anext(lone)
    meanwhile = "".join([d async for d in llm.stream([system, ChatMessage("user", "When is lunch served?")], greedy)])
    lone_reply = first + "".join([d async for d in lone])
    assert "11" in lone_reply and "12" in meanwhile, (lone_reply, meanwhile)
    assert llm.writing == 0
