"""The default profile's two real models, picked by load (the suite otherwise runs the fast one alone)."""

from __future__ import annotations

import yaml

from tara.core.concurrency import Compute
from tara.core.config import DEFAULT_CONFIG
from tara.core.stages.llm import ChatMessage, GenerationParams
from tara.core.stages.llm.settings import LlamaCppSettings
from tara.core.stages.llm.tiered import LoadTieredLLM, load_llm


async def test_the_default_pair_answers_a_lone_reply_with_the_accurate_model_and_one_meanwhile_with_the_fast(config):
    """The default profile's two real models (the suite otherwise runs the fast one alone)."""
    defaults = LlamaCppSettings(**yaml.safe_load(DEFAULT_CONFIG.read_text())["llm"])
    llm = load_llm(defaults, config.data_path, Compute())
    assert isinstance(llm, LoadTieredLLM)
    assert (llm.accurate.model_path.name, llm.fast.model_path.name) == (  # type: ignore[attr-defined]
        "qwen2.5-coder-1.5b-q4_0.gguf",
        "qwen2.5-coder-0.5b-q4_0.gguf",
    )
    system = ChatMessage(
        "system",
        "Answer from this document in one sentence. The Ivy Cafe serves lunch from "
        "12:00 to 15:00. An adult ticket costs 11 pounds.",
    )
    await llm.warm_up([[system]])
    greedy = GenerationParams(temperature=0.0, max_tokens=24)
    lone = llm.stream([system, ChatMessage("user", "How much is an adult ticket?")], greedy)
    first = await anext(lone)
    meanwhile = "".join([d async for d in llm.stream([system, ChatMessage("user", "When is lunch served?")], greedy)])
    lone_reply = first + "".join([d async for d in lone])
    assert "11" in lone_reply and "12" in meanwhile, (lone_reply, meanwhile)
    assert llm.writing == 0
