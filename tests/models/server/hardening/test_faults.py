"""Hardening: Faults inside a live call, and a short soak that leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from tara.server.app import STACK
from tara.tools.caller import TaraClient
from tests.models.server.hardening.helpers import (
    QUESTION,
    TALLY,
    assert_back_to_baseline,
    busy_threads,
)

pytestmark = pytest.mark.timeout(900)


# ---------------------------------------------------------------------------- faults inside a live call


def fail_once(monkeypatch, target: object, name: str, after_items: int = 0) -> None:
    """``target.name`` (an async iterator function) raises on its next call, after ``after_items`` items."""
    real = getattr(target, name)
    state = {"armed": True}

    async def failing(*args, **kwargs):
        if not state["armed"]:
            async for item in real(*args, **kwargs):
                yield item
            return
        state["armed"] = False
        count = 0
        async for item in real(*args, **kwargs):
            if count == after_items:
                raise RuntimeError(f"injected {name} failure")
            count += 1
            yield item
        raise RuntimeError(f"injected {name} failure")

    monkeypatch.setattr(target, name, failing)


async def test_llm_stt_and_tts_failing_mid_turn_give_an_error_event_and_the_next_turn_is_answered(
    server, baseline, monkeypatch, voice
):
    url, app = server
    stack = app[STACK]
    async with TaraClient(url) as client:
        for stage, target, name in (("llm", stack.llm, "stream"), ("tts", stack.tts, "stream")):
            fail_once(monkeypatch, target, name, after_items=1)
            TALLY["faults"] += 1
            asked = time.perf_counter()
            client.send({"type": "text", "text": QUESTION})
            error = await client.wait_for("error", after=asked, stage="turn", timeout=90)
            assert "injected" in error["message"], stage
            await client.wait_for("agent_done", after=asked, timeout=90)
            monkeypatch.undo()
            asked = time.perf_counter()
            client.send({"type": "text", "text": QUESTION})
            done = await client.wait_for("agent_done", after=asked, timeout=90)
            assert "maple" in done["text"].lower(), stage

        async def broken(*args, **kwargs):
            raise RuntimeError("injected stt failure")

        monkeypatch.setattr(stack.stt, "transcribe", broken)
        TALLY["faults"] += 1
        asked = time.perf_counter()
        clip = client.say(voice(QUESTION))
        error = await client.wait_for("error", after=asked, stage="stt", timeout=90)
        assert "injected" in error["message"]
        # a pause may have split that question in two: let its last part end (and fail) too, or it would
        # be heard after the repair ("main telescope?") and merged into the next question
        await clip.done.wait()
        await asyncio.sleep(2.0)
        monkeypatch.undo()
        asked = time.perf_counter()
        client.say(voice(QUESTION))
        heard = await client.wait_for("user_transcript", after=asked, final=True, timeout=90)
        done = await client.wait_for("agent_done", after=asked, turn_id=heard["turn_id"], timeout=90)
        assert not done["interrupted"] and "maple" in done["text"].lower(), heard["text"]
    await assert_back_to_baseline(url, app, baseline)


SOAK_QUESTIONS = (
    QUESTION,
    "How long does the ferry crossing take?",
    "How much is an adult ticket?",
    "What does the rooftop cafe sell?",
)  # short answers: a turn lasts as long as its audio


async def test_a_short_soak_leaves_no_sessions_tasks_threads_or_files_behind(server, baseline):
    """24 typed turns over two callers at once, in three rounds of new calls: every turn is answered and
    no session, task, thread or open file outlives its round."""
    url, app = server

    async def caller(first: int, turns: int) -> list[str]:
        async with TaraClient(url) as client:
            answers = []
            for n in range(turns):
                asked = time.perf_counter()
                client.send({"type": "text", "text": SOAK_QUESTIONS[(first + n) % len(SOAK_QUESTIONS)]})
                answers.append((await client.wait_for("agent_done", after=asked, timeout=180))["text"])
            return answers

    busy, files = [], []
    for round_ in range(3):
        answers = await asyncio.gather(caller(round_, 4), caller(round_ + 2, 4))
        assert all(all(turns) for turns in answers), answers  # none silent
        await assert_back_to_baseline(url, app, baseline)
        for _ in range(100):  # a stream's worker may still be closing its iterator
            if round_ == 0 or len(busy_threads()) <= len(busy[0]):
                break
            await asyncio.sleep(0.05)
        busy.append(busy_threads())
        files.append(len(os.listdir("/proc/self/fd")))
    TALLY["soak turns"] = 24
    assert len(busy[-1]) <= len(busy[0]), busy
    assert files[-1] <= files[0] + 2, files  # a closed call's sockets may go a moment late
