"""llama.cpp in-process (llama-cpp-python): every reply advances in one batched decode per step.

A decode step reads all the weights whether it computes one token or several, so four conversations'
next tokens in one ``llama_decode`` cost less than four decodes. Measured with Qwen2.5 0.5B Q4_0 on 2
shared AVX2 cores: four replies at once gave 28-29 tok/s in all, against 19-23 for four llama.cpp
contexts taking turns token by token, with the same greedy text (a CPU with more memory bandwidth
per core gains more: 48-55 against ~28 was measured before). So one engine thread owns one context
holding several *sequences*:

- ``llm.contexts`` conversation sequences, each remembering the tokens its cells hold. A reply takes
  the free one that shares the longest token prefix with its prompt (each conversation finds its
  history cached) and reads only the rest; a prompt that starts like some other sequence (the same
  system prompt) gets that sequence's cache copied in (``llama_memory_seq_cp``) instead.
- sequences reserved for the stable system prompts given to ``warm_up``, read once, so no caller
  ever reads the documents in the system prompt.

Each sequence has a KV cache of its own (not llama.cpp's unified one): a reply then computes exactly
the same logits alone or batched with others (bitwise; in a unified cache its attention also spans
the other sequences' cells, which moved logits by up to 0.2 and changed greedy replies), and a step's
attention covers only each sequence's own tokens (a 4-reply step took 131 instead of 156 ms).

Each step puts every runnable sequence's work into one batch — the token it sampled last, or the
next part of a prompt still being read: ``CHUNK_SHARED`` tokens while others decode (a new turn does
not stall replies being spoken), steps of about ``STEP_ALONE_S`` when none does — and holds one CPU
slot, urgent while some reply has not yet written its first clause. A reply whose consumer leaves
``UNCONSUMED_DELTAS`` deltas unread (its speech is playing) sits steps out, which leaves the CPU to
others' first sentences. ``prefill`` reads a likely prompt ahead, only in steps no first clause waits for.

This module is the backend the stack talks to; the engine thread is ``llamacpp_engine.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

from tara.core.assets import GGUF_MODELS, requantized, resolve_model
from tara.core.concurrency import Compute, NoCompute
from tara.core.config import ConfigError
from tara.core.devices import resolve_device
from tara.core.stages.llm import LLM, ChatMessage, GenerationParams, split_reply_start
from tara.core.stages.llm.llamacpp_engine import _END, _Engine
from tara.core.stages.llm.llamacpp_jobs import Job, Kind
from tara.core.stages.llm.settings import LlamaCppSettings

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage


def amx_kernels_crash() -> bool:
    """Whether llama.cpp would run its AMX kernels here, which crash: built with them (a native build
    on a CPU with AMX tiles, before the Makefile left them out) and on such a CPU.

    Those kernels die on an illegal instruction (their tile config is set up wrong on the worker
    threads: ggml-org/llama.cpp#26954). Without extra buffer types they are never used, at the cost of
    the repacked Q4_0 kernels too (half the prompt-reading speed), so that is only for such a build."""
    import llama_cpp

    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info():
        return False
    try:
        return " amx_tile" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


class LlamaCppLLM(LLM):
    needs_compute = True  # on the CPU its decode steps share the cores with the other models

    def __init__(self, config: LlamaCppSettings, data_dir: Path, compute: Compute) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaModel
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.model_path = resolve_model(config.model, GGUF_MODELS, "llm.model", data_dir)
        if config.model.startswith("bundled:") and config.quantize != "none":
            self.model_path = requantized(
                self.model_path, config.model.removeprefix("bundled:"), config.quantize, data_dir
            )
        gpu = resolve_device(config.device, "llm.device") == "cuda"
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        llama_cpp.llama_backend_init()
        model_params = LlamaModel.default_params()
        model_params.n_gpu_layers = -1 if gpu else 0
        model_params.use_extra_bufts = gpu or not amx_kernels_crash()
        self._model = LlamaModel(path_model=str(self.model_path), params=model_params, verbose=False)
        metadata = self._model.metadata()
        if "tokenizer.chat_template" not in metadata:
            raise ConfigError(f"llm.model: {self.model_path} has no chat template (a base model?)")
        eos, bos = self._model.token_eos(), self._model.token_bos()
        self._format = Jinja2ChatFormatter(
            template=metadata["tokenizer.chat_template"],
            eos_token=self._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self._model.token_get_text(bos) if bos != -1 else "",
        )
        self._n_ctx = config.n_ctx  # per sequence
        self._engine = _Engine(llama_cpp, self._model, config, NoCompute() if gpu else compute)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenize(text.encode(), add_bos=False, special=False))

    def _chat_tokens(self, messages: list[ChatMessage]) -> list[int]:
        """The prompt ``create_chat_completion`` would feed: the GGUF's chat template, special tokens parsed;
        a last assistant message is the reply's start (``LLM.stream``), after the generation prompt."""
        messages, start = split_reply_start(messages)
        # (llama_cpp types each role's message apart; ChatMessage.role is a plain str, one of the three it knows)
        chat = cast("list[ChatCompletionRequestMessage]", [{"role": m.role, "content": m.content} for m in messages])
        prompt = self._format(messages=chat).prompt + start
        tokens = self._model.tokenize(prompt.encode(), add_bos=False, special=True)
        if len(tokens) >= self._n_ctx:
            raise ValueError(f"a prompt of {len(tokens)} tokens does not fit llm.n_ctx ({self._n_ctx})")
        return tokens

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        return self._stream(messages, params)

    async def _stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        prompt = await asyncio.to_thread(self._chat_tokens, messages)
        async for delta in self._results(Job(Kind.REPLY, prompt, params)):
            yield delta

    async def prefill(self, messages: list[ChatMessage]) -> None:
        """Read ``messages`` as a reply to them would (chat template, generation prompt) into a free
        sequence, in steps no first clause waits for; returns once read, or dropped (no free sequence,
        or a reply took the sequence)."""
        prompt = await asyncio.to_thread(self._chat_tokens, messages)
        async for _ in self._results(Job(Kind.PREFILL, prompt)):
            pass

    async def warm_up(self, prefixes: list[list[ChatMessage]]) -> None:
        """Read each stable prompt once into a reserved sequence; replies copy its cells from there.

        (This also runs after a knowledge-base change, while sessions talk: it then reads in the steps
        no first clause waits for, rather than holding the CPU for the seconds a long prompt takes.)
        """
        prompts = [await asyncio.to_thread(self._chat_tokens, messages) for messages in prefixes]
        generation = self._engine.next_generation()

        async def read(prompt: list[int]) -> None:
            async for _ in self._results(Job(Kind.WARM, prompt, generation=generation)):
                pass

        await asyncio.gather(*(read(prompt) for prompt in prompts))

    def holds(self, messages: list[ChatMessage]) -> bool:
        """Whether the warm-up prompt ``messages`` sits read in a reserved sequence (replies copy it)."""
        prompt = self._chat_tokens(messages)
        return any(slot.reserved and slot.tokens == prompt for slot in self._engine._slots)

    async def _results(self, job: Job) -> AsyncIterator[str]:
        """Run ``job`` in the engine and yield its deltas; closing this stops it before the next step."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        job.deliver = partial(loop.call_soon_threadsafe, queue.put_nowait)
        self._engine.submit(job)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                self._engine.consumed(job)
                yield item  # type: ignore[misc]
        finally:
            self._engine.close(job)
