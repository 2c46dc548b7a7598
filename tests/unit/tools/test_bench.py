"""``ask``, the spoken turn every benchmark and evaluation is made of, against a scripted caller."""

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from tara.tools.bench import ask
from tara.tools.caller import Clip, Received


class ScriptedCaller:
    """Plays a clip at once; the agent's events come ``reply_after`` seconds later, and its reply ends
    only when interrupted (a long answer)."""

    def __init__(self, reply_after: float) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.received = Received()
        self.sent: list[dict[str, Any]] = []
        self._reply_after = reply_after
        self._new_event = asyncio.Condition()

    def say(self, pcm16k: np.ndarray) -> Clip:
        clip = Clip(np.zeros(480, dtype=np.int16))
        clip.started = clip.speech_started = clip.speech_ended = clip.ended = time.perf_counter()
        clip.done.set()
        asyncio.get_running_loop().call_later(self._reply_after, self._emit, {"type": "agent_text", "text": "Well,"})
        return clip

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "interrupt":
            self._emit({"type": "agent_done", "text": "Well, …"})
            self._emit({"type": "metrics", "stages": {}})

    def _emit(self, event: dict[str, Any]) -> None:
        self.events.append((time.perf_counter(), event))
        asyncio.ensure_future(self._notify())

    async def _notify(self) -> None:
        async with self._new_event:
            self._new_event.notify_all()

    async def wait_for(self, kind: str, after: float = 0.0, timeout: float | None = 60.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout), self._new_event:
            while True:
                for at, event in self.events:
                    if at > after and event["type"] == kind:
                        return event
                await self._new_event.wait()


async def test_a_reply_that_begins_late_still_plays_before_it_is_cut():
    caller = ScriptedCaller(reply_after=0.25)  # late, but within the timeout
    turn = await ask(caller, np.zeros(1600, dtype=np.int16), timeout=0.3, max_reply_s=0.2)  # type: ignore[arg-type]
    assert caller.sent == [{"type": "interrupt"}]
    assert turn["answer"] == "Well, …" and turn["said"] == "Well,"


async def test_a_turn_with_nothing_said_within_the_timeout_is_silent():
    caller = ScriptedCaller(reply_after=1.0)
    with pytest.raises(TimeoutError):
        await ask(caller, np.zeros(1600, dtype=np.int16), timeout=0.2, max_reply_s=0.2)  # type: ignore[arg-type]
