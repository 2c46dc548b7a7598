"""One reply's words as the voice gets them: LLM deltas cut into checked, speakable pieces, on time.

The adapter between a token stream and a sentence-at-a-time TTS (livekit's ``tts/stream_adapter.py`` does the
same job with a sentence tokenizer; here the cut also has deadlines, so a slow model is never silent)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

from tara.core.conversation.guards import ReplyCheck
from tara.core.conversation.prompt import Prompt
from tara.core.conversation.text import Continuation, SentenceChunker
from tara.core.conversation.turn import TurnClock
from tara.core.stages.llm import LLM, GenerationParams


async def written(
    llm: LLM, prompt: Prompt, params: GenerationParams, check: ReplyCheck, clock: TurnClock
) -> AsyncIterator[str]:
    """The LLM's reply as checked, speakable pieces, released on time even while the model is slow
    (a pending token is waited for only until the chunker's deadline)."""
    chunker = SentenceChunker(premature=check.premature)
    opening = Continuation() if prompt.answer_start else None  # the model's words after the given start
    # LLM.stream is typed AsyncIterator, but its contract is closable (an async generator: closing aborts generation)
    deltas = cast(AsyncGenerator[str, None], aiter(llm.stream(prompt.chat(), params)))
    pending: asyncio.Future[str | None] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(deltas, None))
            deadline = chunker.deadline
            done, _ = await asyncio.wait(
                {pending}, timeout=None if deadline is None else max(0.0, deadline - time.monotonic())
            )
            finished = False
            if not done:
                pieces = chunker.due()
            else:
                delta, pending = pending.result(), None
                finished = delta is None
                if delta is None:
                    pieces = chunker.push(opening.flush() if opening else "") + chunker.flush()
                else:
                    clock.mark("first_token")
                    pieces = chunker.push(opening.push(delta) if opening else delta)
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
