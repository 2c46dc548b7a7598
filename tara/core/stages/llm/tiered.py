"""Two models behind one interface: the accurate one while it is free, the fast one under load.

On two cores Qwen2.5 1.5B answers held-out document questions right far more often than the 0.5B
(90 against 73 of 108, typed in), but each of its tokens costs about three times the compute. One
caller waits a little longer for a better answer; four callers at once would each wait seconds. So
a reply is written by ``llm.model`` while no other reply is being written and no other call has a turn
in progress (``Callers``: a user talking, a transcription), and by ``llm.busy_model`` otherwise: a lone
caller always gets the accurate model, a crowd still gets answers at the fast model's pace. (Four
callers asking at once, the accurate model taken by whichever reply started first cost the others
0.6 s at the median and 1 s at p95 to their answers.)

Both models read the warm-up prompts (the documents) once, so either starts a reply from a cached
prefix; a conversation that moves between them reads only its short recent history again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from tara.core.concurrency import Callers, Compute
from tara.core.stages.llm import LLM, LLM_BACKENDS, ChatMessage, GenerationParams
from tara.core.stages.llm.settings import LlamaCppSettings, LLMConfig


def load_llm(config: LLMConfig, data_dir: Path, compute: Compute, callers: Callers | None = None) -> LLM:
    """``llm.model``, paired with ``llm.busy_model`` when one is set (llama-cpp only: a server batches its
    own callers); both share ``compute``, and ``callers`` says how many calls are busy."""
    llm = LLM_BACKENDS.create(config.backend, config, data_dir, compute=compute)
    if not isinstance(config, LlamaCppSettings) or not config.busy_model:
        return llm
    busy = config.model_copy(update={"model": config.busy_model})
    return LoadTieredLLM(llm, LLM_BACKENDS.create(config.backend, busy, data_dir, compute=compute), callers)


class LoadTieredLLM(LLM):
    def __init__(self, accurate: LLM, fast: LLM, callers: Callers | None = None) -> None:
        self.accurate, self.fast = accurate, fast
        self.callers = callers or Callers()
        self.writing = 0  # replies being written, by either model

    def pick(self, second_try: bool = False) -> LLM:
        """The model for a reply starting now (the call it is for counts itself busy); a second try gets
        the accurate one: asked again, the fast one says the same (Qwen2.5 0.5B, told to answer rather
        than restate "When does the museum open on Tuesday?", wrote "The museum opens on Tuesday." again)."""
        return self.fast if (self.writing or self.callers.busy() > 1) and not second_try else self.accurate

    def writes_carefully(self) -> bool:
        return self.pick() is self.accurate

    def count_tokens(self, text: str) -> int:
        return self.accurate.count_tokens(text)

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        return self._stream(messages, params)

    async def _stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        llm = self.pick(params.second_try)  # picked and counted in one step: two replies starting together get one each
        self.writing += 1
        try:
            async for delta in llm.stream(messages, params):
                yield delta
        finally:
            self.writing -= 1

    def holds(self, messages: list[ChatMessage]) -> bool:
        return self.accurate.holds(messages) and self.fast.holds(messages)

    async def prefill(self, messages: list[ChatMessage]) -> None:
        await self.pick().prefill(messages)  # the model the reply will most likely go to

    async def warm_up(self, prefixes: list[list[ChatMessage]]) -> None:
        await asyncio.gather(self.accurate.warm_up(prefixes), self.fast.warm_up(prefixes))
