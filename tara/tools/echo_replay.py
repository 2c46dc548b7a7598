"""A caller whose microphone hears Tara's voice back, as a laptop with no echo cancellation does.

``EchoReplay`` keeps what the caller received and plays it back into its mic ``delay_s`` later (the
browser's playout and the room) and ``gain_db`` quieter, mixed with whatever the caller says. With it,
``tara bench --echo-turns`` counts how often Tara takes its own voice for the user (``false_interruptions``).
"""

from __future__ import annotations

import time

import numpy as np

from tara.core.audio import PIPELINE_RATE, StreamResampler
from tara.core.stages.mic import MIC_RATE
from tara.core.stages.mic.echo import Clock, EchoReference, ReferenceReader

ECHO_GAIN_DB = -10.0
ECHO_DELAYS_S = (0.08, 0.2)  # the range a room and a browser's playout put between hearing and echo


class EchoReplay:
    def __init__(self, delay_s: float, gain_db: float = ECHO_GAIN_DB, clock: Clock = time.monotonic) -> None:
        self.delay_s = delay_s
        self._gain = 10 ** (gain_db / 20)
        self._heard = EchoReference(clock)
        self._upsample = StreamResampler(PIPELINE_RATE, MIC_RATE)
        self._echo = ReferenceReader(self._heard, lag_s=delay_s, clock=clock)

    def heard(self, pcm16k: np.ndarray) -> None:
        """Tara's voice as the caller just received it (16 kHz mono int16)."""
        self._heard.record(self._upsample.push(pcm16k))

    def mixed_into(self, said: np.ndarray) -> np.ndarray:
        """What the caller says (48 kHz mono int16) with the echo of what it heard ``delay_s`` ago."""
        echo = self._echo.read(len(said))
        if echo is None:
            return said
        return np.clip(said + echo * self._gain, -32768, 32767).astype(np.int16)
