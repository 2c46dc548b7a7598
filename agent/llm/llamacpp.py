"""llama.cpp in-process (llama-cpp-python) with the bundled instruct GGUF.

Prompt processing dominates time to first token on a small CPU, so KV caches are kept: a llama.cpp
context reuses the longest token prefix it shares with its previous prompt. Each distinct system prompt
(the grounded one and the no-context one) gets a context of its own, so switching between them costs
nothing. The contexts share the weights through the memory-mapped GGUF file.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from agent.assets import GGUF_MODELS, resolve_model
from agent.concurrency import iterate_in_thread
from agent.config import LLMConfig
from agent.devices import resolve_device
from agent.llm import LLM, ChatMessage, GenerationParams


class LlamaCppLLM(LLM):
    def __init__(self, config: LLMConfig, data_dir: Path) -> None:
        from llama_cpp import Llama

        self.model_path = resolve_model(config.model, GGUF_MODELS, "llm.model", data_dir)
        gpu_layers = -1 if resolve_device(config.device, "llm.device") == "cuda" else 0
        self._contexts = [
            Llama(model_path=str(self.model_path), n_ctx=config.n_ctx, n_threads=config.threads, n_batch=512,
                  n_gpu_layers=gpu_layers, verbose=False)
            for _ in range(config.prefix_contexts)
        ]
        self._owners: OrderedDict[str, Llama] = OrderedDict()  # system prompt -> context, least recent first
        self._lock = threading.Lock()  # two cores: generations take turns

    def count_tokens(self, text: str) -> int:
        return len(self._contexts[0].tokenize(text.encode(), add_bos=False, special=False))

    def _context_for(self, system_prompt: str):
        """The context that last ran this system prompt, or the least recently used one."""
        if system_prompt in self._owners:
            self._owners.move_to_end(system_prompt)
            return self._owners[system_prompt]
        in_use = set(map(id, self._owners.values()))
        free = [c for c in self._contexts if id(c) not in in_use]
        context = free[0] if free else self._owners.popitem(last=False)[1]
        self._owners[system_prompt] = context
        return context

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        return iterate_in_thread(lambda: self._generate(messages, params))

    def _generate(self, messages: list[ChatMessage], params: GenerationParams) -> Iterator[str]:
        system = messages[0].content if messages and messages[0].role == "system" else ""
        with self._lock:
            chunks = self._context_for(system).create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                stream=True,
            )
            for chunk in chunks:
                delta = chunk["choices"][0]["delta"].get("content")
                if delta:
                    yield delta

    async def warm_up(self, prefixes: list[list[ChatMessage]]) -> None:
        for messages in prefixes:
            async for _ in self.stream(messages, GenerationParams(max_tokens=1)):
                pass
