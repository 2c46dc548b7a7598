"""One reply's words as the voice gets them: from LLM deltas to checked, speakable pieces, on time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from agent.guards import ReplyCheck
from agent.llm import LLM, GenerationParams
from agent.prompt import Prompt
from agent.text import SentenceChunker
from agent.turn import TurnClock


async def written(llm: LLM, prompt: Prompt, params: GenerationParams, check: ReplyCheck,
                  clock: TurnClock) -> AsyncIterator[str]:
    """The LLM's reply as checked, speakable pieces, released on time even while the model is slow
    (a pending token is waited for only until the chunker's deadline)."""
    chunker = SentenceChunker()
    deltas = aiter(llm.stream(prompt.messages, params))
    pending: asyncio.Future[str | None] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(deltas, None))
            deadline = chunker.deadline
            done, _ = await asyncio.wait({pending}, timeout=None if deadline is None
                                         else max(0.0, deadline - time.monotonic()))
            finished = False
            if not done:
                pieces = chunker.due()
            else:
                delta, pending = pending.result(), None
                finished = delta is None
                if not finished:
                    clock.mark("first_token")
                pieces = chunker.flush() if finished else chunker.push(delta)
            for piece in pieces:
                spoken, stop = check.judge(piece)
                if spoken:
                    clock.mark("first_sentence")
                    yield spoken
                if stop:
                    return
            if finished:
                return
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await deltas.aclose()
