"""The in-process vLLM backend against a stand-in engine (vLLM itself needs a GPU): deltas and abort."""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace

import pytest

from tara.core.stages.llm import LLM_BACKENDS, ChatMessage, GenerationParams
from tara.core.stages.llm.settings import VLLMSettings

REPLY = ["Hello", " there", "."]


class FakeEngine:
    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.aborted: list[str] = []

    async def generate(self, prompt, sampling_params, request_id):
        self.prompts.append(prompt)
        for i, text in enumerate(REPLY):
            await asyncio.sleep(0)
            yield SimpleNamespace(finished=i == len(REPLY) - 1, outputs=[SimpleNamespace(text=text)])

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)


class FakeTokenizer:
    def apply_chat_template(self, chat, tokenize, add_generation_prompt):
        return "".join(f"<{m['role']}>{m['content']}" for m in chat) + "<assistant>"

    def encode(self, text, add_special_tokens):
        return text.split()


@pytest.fixture
def llm(monkeypatch, tmp_path):
    engine = FakeEngine()
    modules = {
        "vllm": SimpleNamespace(),
        "vllm.engine.arg_utils": SimpleNamespace(AsyncEngineArgs=lambda **kw: kw),
        "vllm.sampling_params": SimpleNamespace(
            SamplingParams=lambda **kw: kw, RequestOutputKind=SimpleNamespace(DELTA="delta")
        ),
        "vllm.v1.engine.async_llm": SimpleNamespace(AsyncLLM=SimpleNamespace(from_engine_args=lambda args: engine)),
        "transformers": SimpleNamespace(
            AutoTokenizer=SimpleNamespace(from_pretrained=lambda *a, **kw: FakeTokenizer())
        ),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return LLM_BACKENDS.create("vllm", VLLMSettings(model=str(tmp_path)), tmp_path), engine


async def test_streams_deltas_through_the_chat_template(llm):
    backend, engine = llm
    text = "".join([d async for d in backend.stream([ChatMessage("user", "Hi")], GenerationParams())])
    assert text == "Hello there." and engine.prompts == ["<user>Hi<assistant>"] and engine.aborted == []
    assert backend.count_tokens("two words") == 2


async def test_closing_the_stream_aborts_the_request(llm):
    backend, engine = llm
    stream = backend.stream([ChatMessage("user", "Hi")], GenerationParams())
    assert await anext(stream) == "Hello"
    await stream.aclose()  # barge-in
    assert len(engine.aborted) == 1 and engine.aborted[0].startswith("tara-")
