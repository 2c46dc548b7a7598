import asyncio
import time

import pytest

from agent.llm import ChatMessage, GenerationParams
from agent.llm.llamacpp import LlamaCppLLM

SYSTEM = ChatMessage("system", "You are a helpful assistant. Answer briefly.")


@pytest.fixture(scope="module")
def llm(stack):
    assert isinstance(stack.llm, LlamaCppLLM)
    return stack.llm


async def test_streams_an_answer_in_pieces(llm):
    deltas = [d async for d in llm.stream([SYSTEM, ChatMessage("user", "What is the capital of France?")],
                                          GenerationParams(temperature=0.0, max_tokens=30))]
    assert len(deltas) > 2
    assert "Paris" in "".join(deltas)


async def test_closing_the_stream_stops_generation_and_frees_the_model(llm):
    messages = [SYSTEM, ChatMessage("user", "Count from one to two hundred, in words.")]
    stream = llm.stream(messages, GenerationParams(max_tokens=400))
    got = []
    async for delta in stream:
        got.append(delta)
        if len(got) == 5:
            break
    await stream.aclose()
    started = time.perf_counter()
    # the next generation needs the model: it starts as soon as the aborted one let go
    first = await anext(aiter(llm.stream([SYSTEM, ChatMessage("user", "Say hi.")], GenerationParams(max_tokens=5))))
    assert first and time.perf_counter() - started < 3.0


async def test_cancelling_the_consumer_aborts(llm):
    async def consume():
        return [d async for d in llm.stream([SYSTEM, ChatMessage("user", "Write a long story about a cat.")],
                                            GenerationParams(max_tokens=300))]
    task = asyncio.create_task(consume())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    answer = "".join([d async for d in llm.stream([SYSTEM, ChatMessage("user", "What is 2 plus 2? Answer with a digit.")],
                                                  GenerationParams(temperature=0.0, max_tokens=10))])
    assert "4" in answer


def test_counts_tokens_with_the_model_tokenizer(llm):
    assert 1 <= llm.count_tokens("Hello world") <= 4
    assert llm.count_tokens("word " * 100) >= 90


async def test_the_bundled_model_runs_requantized_to_q4_0(llm):
    assert llm.model_path.name == "qwen2.5-coder-0.5b-q4_0.gguf"
    assert llm.model_path.with_suffix(".json").exists()
    answer = "".join([d async for d in llm.stream([SYSTEM, ChatMessage("user", "What is the capital of France?")],
                                                  GenerationParams(temperature=0.0, max_tokens=30))])
    assert "Paris" in answer
