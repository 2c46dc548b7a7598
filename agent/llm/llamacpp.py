"""llama.cpp in-process (llama-cpp-python) with the bundled instruct GGUF.

Prompt processing dominates time to first token on a small CPU, so KV caches are kept: a llama.cpp
context reuses the longest token prefix it shares with its previous prompt. There is a small pool of
contexts (``llm.contexts``, weights shared through the memory-mapped GGUF file); each generation
takes the free context whose last conversation shares the most with its prompt, so every session
keeps finding its own history cached. A context switched to another system prompt gets that prompt's
KV state copied in (saved at warm-up) instead of reading the documents again.

Generations on different contexts interleave token by token through the process's CPU scheduler: a
reply still on its way to its first sentence goes before replies already being spoken.
"""

from __future__ import annotations

import asyncio
import ctypes
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.assets import GGUF_MODELS, requantized, resolve_model
from agent.concurrency import CPU, STREAM_STOPPED, StreamStopped, iterate_in_thread
from agent.config import LLMConfig
from agent.devices import resolve_device
from agent.llm import LLM, ChatMessage, GenerationParams

SENTENCE_END = re.compile(r"[.!?]\s")  # the first sentence is out: the rest can wait behind others' first ones
UNCONSUMED_DELTAS = 4  # a consumer that stops pulling (its speech is playing) pauses its generation


@dataclass
class _Context:
    llama: Any  # llama_cpp.Llama
    messages: list[ChatMessage] = field(default_factory=list)  # what its KV cache holds, roughly
    busy: bool = False
    last_used: float = 0.0


@dataclass(frozen=True)
class _KVState:
    """A context's KV cache and the tokens in it.

    (llama-cpp-python's ``save_state``/``load_state`` also copy and scan its whole logits buffer,
    ~300 MB for Qwen's vocabulary: seconds per switch, and gigabytes of resident memory.)
    """

    data: bytes
    tokens: np.ndarray

    @classmethod
    def save(cls, llama: Any) -> _KVState:
        import llama_cpp

        size = llama_cpp.llama_state_get_size(llama._ctx.ctx)
        buffer = (ctypes.c_uint8 * size)()
        used = llama_cpp.llama_state_get_data(llama._ctx.ctx, buffer, size)
        return cls(ctypes.string_at(buffer, used), llama.input_ids[: llama.n_tokens].copy())

    def load(self, llama: Any) -> None:
        import llama_cpp

        buffer = (ctypes.c_uint8 * len(self.data)).from_buffer_copy(self.data)
        if llama_cpp.llama_state_set_data(llama._ctx.ctx, buffer, len(self.data)) != len(self.data):
            raise RuntimeError("llama.cpp refused a saved KV state")
        llama.input_ids[: len(self.tokens)] = self.tokens
        llama.n_tokens = len(self.tokens)


def _shared_messages(a: list[ChatMessage], b: list[ChatMessage]) -> int:
    count = 0
    for left, right in zip(a, b):
        if left != right:
            break
        count += 1
    return count


class LlamaCppLLM(LLM):
    def __init__(self, config: LLMConfig, data_dir: Path) -> None:
        from llama_cpp import Llama

        self.model_path = resolve_model(config.model, GGUF_MODELS, "llm.model", data_dir)
        if config.model.startswith("bundled:") and config.quantize != "none":
            self.model_path = requantized(self.model_path, config.model.removeprefix("bundled:"), config.quantize, data_dir)
        gpu_layers = -1 if resolve_device(config.device, "llm.device") == "cuda" else 0
        self._contexts = [
            _Context(Llama(model_path=str(self.model_path), n_ctx=config.n_ctx, n_threads=config.threads,
                           n_batch=512, n_gpu_layers=gpu_layers, verbose=False))
            for _ in range(config.contexts)
        ]
        self._pool = threading.Condition()
        self._prefix_states: dict[str, _KVState] = {}  # system prompt -> its KV state
        self._slot = CPU.slot if gpu_layers == 0 else lambda urgent: nullcontext()

    def count_tokens(self, text: str) -> int:
        return len(self._contexts[0].llama.tokenize(text.encode(), add_bos=False, special=False))

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        return iterate_in_thread(lambda: self._generate(messages, params), max_ahead=UNCONSUMED_DELTAS)

    def _acquire(self, messages: list[ChatMessage]) -> _Context:
        with self._pool:
            stopped = STREAM_STOPPED.get()
            while not (free := [c for c in self._contexts if not c.busy]):
                if stopped is not None and stopped.is_set():
                    raise StreamStopped  # the reply was cancelled while it waited
                self._pool.wait(timeout=0.05)
            context = max(free, key=lambda c: (_shared_messages(c.messages, messages), -c.last_used))
            context.busy = True
            return context

    def _release(self, context: _Context, messages: list[ChatMessage]) -> None:
        with self._pool:
            context.messages, context.busy, context.last_used = messages, False, time.monotonic()
            self._pool.notify()

    def _generate(self, messages: list[ChatMessage], params: GenerationParams) -> Iterator[str]:
        context = self._acquire(messages)  # (never while holding a CPU slot: the busy one may need it)
        system = messages[0].content if messages and messages[0].role == "system" else ""
        if context.messages[:1] != messages[:1] and system in self._prefix_states:
            with self._slot(urgent=True):
                self._prefix_states[system].load(context.llama)
        reply = ""
        chunks = context.llama.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            stream=True,
        )
        try:
            while True:
                with self._slot(urgent=not SENTENCE_END.search(reply)):
                    chunk = next(chunks, None)
                if chunk is None:
                    return
                delta = chunk["choices"][0]["delta"].get("content")
                if delta:
                    reply += delta
                    yield delta
        finally:
            chunks.close()
            self._release(context, [*messages, ChatMessage("assistant", reply)])

    async def warm_up(self, prefixes: list[list[ChatMessage]]) -> None:
        """Read each system prompt once and keep its KV state; idle contexts start from one of them.

        Every context also decodes once here: a context's first decode allocates its buffers and costs
        a second or more, which would otherwise land on some caller's first turn. (This also runs after
        a knowledge-base change, while sessions talk: it then competes for the CPU rather than holding
        a slot for the seconds a long prompt takes.)
        """
        for messages in prefixes:
            await asyncio.to_thread(lambda: self._read(self._acquire(messages), messages, keep_state=True))
        current = {messages[0].content for messages in prefixes}
        self._prefix_states = {system: state for system, state in self._prefix_states.items() if system in current}
        for index, context in enumerate(self._contexts):
            if not context.messages and not context.busy:
                messages = prefixes[index % len(prefixes)]
                context.busy = True
                self._prefix_states[messages[0].content].load(context.llama)
                await asyncio.to_thread(self._read, context, messages)

    def _read(self, context: _Context, messages: list[ChatMessage], keep_state: bool = False) -> None:
        """Process ``messages`` into ``context``'s KV cache (one token generated), then release it."""
        try:
            context.llama.create_chat_completion(messages=[{"role": m.role, "content": m.content} for m in messages],
                                                 max_tokens=1)
            if keep_state:
                self._prefix_states[messages[0].content] = _KVState.save(context.llama)
        finally:
            self._release(context, messages)
