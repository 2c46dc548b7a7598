"""``ask``, the spoken turn every benchmark and evaluation is made of, against a scripted caller."""

import asyncio
import json
import time
from typing import Any

import numpy as np
import pytest

from tara.tools.bench import ask
from tara.tools.caller import Clip, TaraClient


class ScriptedCaller(TaraClient):
    """A caller never connected: its clip plays at once, the agent's first words come ``reply_after``
    seconds later, and its reply ends only when interrupted (a long answer). Events arrive as the data
    channel's would, so ``wait_for`` is the real one."""

    def __init__(self, reply_after: float) -> None:
        super().__init__("http://127.0.0.1:1")
        self.sent: list[dict[str, Any]] = []
        self._reply_after = reply_after

    def say(self, pcm16k: np.ndarray) -> Clip:
        clip = Clip(np.zeros(480, dtype=np.int16))
        clip.started = clip.speech_started = clip.speech_ended = clip.ended = time.perf_counter()
        clip.done.set()
        asyncio.get_running_loop().call_later(self._reply_after, self._agent, {"type": "agent_text", "text": "Well,"})
        return clip

    def send(self, message: dict[str, Any] | str) -> None:
        assert isinstance(message, dict)
        self.sent.append(message)
        if message["type"] == "interrupt":
            self._agent({"type": "agent_done", "text": "Well, …"})
            self._agent({"type": "metrics", "stages": {}})

    def _agent(self, event: dict[str, Any]) -> None:
        self._on_message(json.dumps(event))


async def test_a_reply_that_begins_late_still_plays_before_it_is_cut():
    caller = ScriptedCaller(reply_after=0.25)  # late, but within the timeout
    turn = await ask(caller, np.zeros(1600, dtype=np.int16), timeout=0.3, max_reply_s=0.2)
    assert caller.sent == [{"type": "interrupt"}]
    assert turn["answer"] == "Well, …" and turn["said"] == "Well,"
    await caller.close()


async def test_a_turn_with_nothing_said_within_the_timeout_is_silent():
    caller = ScriptedCaller(reply_after=1.0)
    with pytest.raises(TimeoutError):
        await ask(caller, np.zeros(1600, dtype=np.int16), timeout=0.2, max_reply_s=0.2)
    await caller.close()
