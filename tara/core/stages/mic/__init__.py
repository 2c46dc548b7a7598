"""The microphone's own cleanup, on the inbound 48 kHz path before anything listens to it.

What arrives from the browser is what its microphone heard: the user, the room's noise, and (where the
browser's echo cancellation is weak or off) Tara's own voice from the speakers. Each ``MicFilter``
takes 10 ms frames of 48 kHz mono int16 and returns the same amount, cleaner. ``MicChain`` cuts any
stream into those frames and runs the configured filters in order (echo cancellation, then noise
suppression: the order WebRTC's audio processing uses). VAD and STT only ever see the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

MIC_RATE = 48000
FRAME = MIC_RATE // 100  # 10 ms: what RNNoise and WebRTC's audio processing both take


class MicFilter(Protocol):
    def process(self, frame: np.ndarray) -> np.ndarray:
        """One ``FRAME`` of 48 kHz mono int16 in, one out."""
        ...


class MicChain:
    """Cuts inbound audio into 10 ms frames and runs them through ``filters``; no filters: a pass-through."""

    def __init__(self, filters: Sequence[MicFilter] = ()) -> None:
        self.filters = list(filters)
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

    def _run(self, frame: np.ndarray) -> np.ndarray:
        for mic_filter in self.filters:
            frame = mic_filter.process(frame)
        return frame
