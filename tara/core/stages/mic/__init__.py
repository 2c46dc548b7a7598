"""The microphone's own cleanup, on the inbound 48 kHz path before anything listens to it.

What arrives from the browser is what its microphone heard: the user, the room's noise, and (where the
browser's echo cancellation is weak or off) Tara's own voice from the speakers. Each ``MicFilter``
takes 10 ms frames of 48 kHz mono int16 and returns the same amount, cleaner. ``MicChain`` cuts any
stream into those frames and runs the configured filters in order (echo cancellation, then noise
suppression: the order WebRTC's audio processing uses). VAD and STT only ever see the result.

Filters are chosen by name from ``audio`` in the config (``MIC_FILTERS``); ``new_mic_chain`` builds a
call's chain, with filter state of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

import numpy as np

from tara.core.registry import Registry

if TYPE_CHECKING:
    from tara.core.config import AudioConfig
    from tara.core.stages.mic.echo import EchoLedger, EchoReference

MIC_RATE = 48000
FRAME = MIC_RATE // 100  # 10 ms: what RNNoise and WebRTC's audio processing both take
OFF = "off"
# Every call's filters run here, one frame batch at a time: off the event loop (RNNoise costs ~0.4 ms a
# frame), not in the shared executor (whose threads may all be waiting for the Compute slot) and not
# through ``Compute`` (the mic is real-time: it cannot wait behind a whisper transcription).
_MIC_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tara-mic")


class MicFilter(Protocol):
    def process(self, frame: np.ndarray) -> np.ndarray:
        """One ``FRAME`` of 48 kHz mono int16 in, one out."""
        ...


class MicChain:
    """Cuts inbound audio into 10 ms frames and runs them through ``filters``; no filters: a pass-through.
    ``echo_ledger``: what its echo canceller took out of the mic, when it has one."""

    def __init__(self, filters: Sequence[MicFilter] = (), echo_ledger: EchoLedger | None = None) -> None:
        self.filters = list(filters)
        self.echo_ledger = echo_ledger
        self._pending = np.zeros(0, dtype=np.int16)

    def process(self, pcm48k: np.ndarray) -> np.ndarray:
        """Mono int16 at 48 kHz of any length; returns the whole frames processed so far."""
        if not self.filters:
            return pcm48k
        self._pending = np.concatenate([self._pending, pcm48k.astype(np.int16, copy=False)])
        whole = len(self._pending) // FRAME * FRAME
        frames, self._pending = self._pending[:whole], self._pending[whole:]
        out = [self._run(frames[i : i + FRAME]) for i in range(0, whole, FRAME)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)

    async def clean(self, pcm48k: np.ndarray) -> np.ndarray:
        """``process`` on the mic thread, so the event loop keeps pacing every call's audio meanwhile."""
        if not self.filters:
            return pcm48k
        return await asyncio.get_running_loop().run_in_executor(_MIC_THREAD, self.process, pcm48k)

    def _run(self, frame: np.ndarray) -> np.ndarray:
        for mic_filter in self.filters:
            frame = mic_filter.process(frame)
        return frame


MIC_FILTERS: Registry[MicFilter] = Registry("audio", {"rnnoise": "tara.core.stages.mic.rnnoise:RNNoiseFilter"})


def mic_filter_names(config: AudioConfig) -> list[str]:
    """The noise filters ``config`` turns on, in the order they run (after the echo canceller)."""
    return [name for name in (config.denoise,) if name != OFF]


def new_mic_chain(config: AudioConfig, echo_reference: EchoReference | None = None) -> MicChain:
    """A chain for one call: filters keep state per stream (the canceller's echo path, RNNoise's memory
    of the room). The echo canceller goes first, against ``echo_reference`` (what this call's speaker sent)."""
    from tara.core.stages.mic.echo import echo_filter  # (it builds on this module's frames)

    echo = echo_filter(config.echo_cancel, echo_reference) if echo_reference is not None else None
    noise = [MIC_FILTERS.create(name) for name in mic_filter_names(config)]
    return MicChain([echo, *noise], echo.ledger) if echo else MicChain(noise)
