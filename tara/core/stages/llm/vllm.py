"""vLLM in this process (GPU profile): no server to run, and the request dies with its consumer.

``llm.model`` is a local Hugging Face model folder; its own chat template builds the prompt.
Closing the stream (barge-in) aborts the request, so the GPU stops working on an unheard reply.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

from tara.core.stages.llm import LLM, ChatMessage, GenerationParams, split_reply_start
from tara.core.stages.llm.settings import VLLMSettings

_REQUESTS = itertools.count()


class VLLMEngineLLM(LLM):
    def __init__(self, config: VLLMSettings, data_dir: Path) -> None:
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.tokenizer = AutoTokenizer.from_pretrained(config.model, local_files_only=True)
        self.engine = AsyncLLM.from_engine_args(
            AsyncEngineArgs(
                model=config.model,
                max_model_len=config.n_ctx,
                gpu_memory_utilization=config.gpu_memory_utilization,  # the rest is CSM's and whisper's
                enable_prefix_caching=True,  # the stable system prompt is reused every turn
            )
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _prompt(self, messages: list[ChatMessage]) -> str:
        messages, start = split_reply_start(messages)
        chat = [{"role": m.role, "content": m.content} for m in messages]
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) + start

    async def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        # (from vllm.sampling_params: a bare `vllm` here resolves, for a type checker, to this very module)
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        sampling = SamplingParams(
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            output_kind=RequestOutputKind.DELTA,  # only the new text each step
        )
        request_id = f"tara-{next(_REQUESTS)}"
        finished = False
        try:
            async for output in self.engine.generate(
                prompt=self._prompt(messages), sampling_params=sampling, request_id=request_id
            ):
                finished = output.finished
                if output.outputs and output.outputs[0].text:
                    yield output.outputs[0].text
        finally:
            if not finished:  # closed or cancelled mid-reply: free the GPU for the next turn
                await self.engine.abort(request_id)

    async def warm_up(self, prefixes: list[list[ChatMessage]]) -> None:
        """One token per prefix puts the system prompts in vLLM's prefix cache."""
        for prefix in prefixes:
            async for _ in self.stream(prefix, GenerationParams(temperature=0.0, max_tokens=1)):
                pass
