"""Server-side echo cancellation: Tara knows exactly what it played, so it can take it out of the mic.

Browser echo cancellation is weak or absent on Firefox, Safari, iOS and laptop speakers, and off with
``?raw=1``. Whatever leaks back is Tara's own voice, delayed by the browser's playout, the room and the
mic path (about 150-450 ms after the server sent it) and quieter. ``EchoReference`` keeps what the
outbound track sent, with the time it was sent; ``EchoCanceller`` (a ``MicFilter``) pairs each inbound
10 ms mic frame with the reference that was being sent as it arrived and lets an adaptive canceller
(WebRTC's AEC3) find the delay and the room and subtract the echo.

Measured with Piper speech played back at -10 dB with 80-450 ms delay and a few room reflections
(``tara/tools/echo_measure.py``): AEC3 through ``pywebrtc-audio`` takes 22-55 dB of the echo away
(ERLE; 600 ms is beyond its delay search), keeps user speech over the echo (correlation with the clean
speech 0.81-0.85, 2 dB quieter) and costs 0.10 ms per 10 ms frame. livekit's ``AudioProcessingModule``
(the same AEC3, a 12 MB wheel) cancelled as much but kept less of the user (0.65-0.73); the Speex
canceller (``speexdsp-aec``, needs the system's libspeexdsp) kept the user best (0.95) but took only
0-25 dB. At 0.1 ms per frame the canceller runs inline on the audio path: an executor hop would cost
more than the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from tara.core.registry import Registry
from tara.core.stages.mic import FRAME, MIC_RATE

REFERENCE_SECONDS = 2.0  # outbound audio kept: well past the longest echo delay AEC3 can find (~0.5 s)
MAX_SLIP_SAMPLES = MIC_RATE * 60 // 1000  # mic frames bunched by the network further off than this: realign

Clock = Callable[[], float]


class EchoReference:
    """The last ``REFERENCE_SECONDS`` of what the outbound track sent (silence included), by sample index,
    and when: ``record`` is the track's per-frame observer, called as each frame goes out."""

    def __init__(self, clock: Clock = time.monotonic, seconds: float = REFERENCE_SECONDS) -> None:
        self._clock = clock
        self._ring = np.zeros(int(seconds * MIC_RATE), dtype=np.int16)
        self.end = 0  # index of the next sample to be sent (samples sent so far)
        self._end_time: float | None = None  # when the sample ``end`` is due out

    def record(self, samples: np.ndarray) -> None:
        """48 kHz mono int16 that go out now."""
        if not len(samples):
            return
        self._ring[np.arange(self.end, self.end + len(samples)) % len(self._ring)] = samples  # a frame: 20 ms
        self.end += len(samples)
        self._end_time = self._clock() + len(samples) / MIC_RATE

    def position_at(self, moment: float) -> int | None:
        """The index of the sample being sent at ``moment`` (None before anything was sent)."""
        if self._end_time is None:
            return None
        return self.end - round((self._end_time - moment) * MIC_RATE)

    def read(self, start: int, count: int) -> np.ndarray:
        """``count`` samples from index ``start``; silence for what is not (or no longer) kept."""
        out = np.zeros(count, dtype=np.int16)
        size = len(self._ring)
        first, last = max(start, self.end - size, 0), min(start + count, self.end)
        if first < last:
            out[first - start : last - start] = self._ring[np.arange(first, last) % size]
        return out


class AcousticEchoCanceller(Protocol):
    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """One 10 ms frame of mic audio (``near``) with what was playing (``far``); the mic without the echo."""
        ...


class WebRTCEchoCanceller:
    """WebRTC's AEC3 (``pywebrtc-audio``, Apache-2.0): adaptive filter, delay search and residual suppressor."""

    def __init__(self) -> None:
        from pywebrtc_audio import EchoCanceller as AEC3

        self._aec = AEC3(sample_rate=MIC_RATE)

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        return self._aec.process(near, far)


ECHO_CANCELLERS: Registry[AcousticEchoCanceller] = Registry(
    "audio.echo_cancel", {"webrtc": "tara.core.stages.mic.echo:WebRTCEchoCanceller"}
)


class ReferenceReader:
    """Reads ``reference`` in step with another stream, ``lag_s`` behind what is being sent as it asks.

    Consecutive reads continue where the last one ended, so a stream that arrives in bursts still
    sees continuous audio (an adaptive canceller takes a jump for a new delay and relearns); only
    when it drifts more than ``MAX_SLIP_SAMPLES`` from the wall clock (a stall) does it realign.
    """

    def __init__(self, reference: EchoReference, lag_s: float = 0.0, clock: Clock = time.monotonic) -> None:
        self._reference = reference
        self._lag_s = lag_s
        self._clock = clock
        self._cursor: int | None = None  # the reference index the next read starts at

    def read(self, count: int) -> np.ndarray | None:
        """The next ``count`` samples; None while nothing was ever sent."""
        sending = self._reference.position_at(self._clock() - self._lag_s)
        if sending is None:
            return None
        target = sending - count  # the last ``count`` samples sent by then
        if self._cursor is None or abs(self._cursor - target) > MAX_SLIP_SAMPLES:
            self._cursor = target
        samples = self._reference.read(self._cursor, count)
        self._cursor += count
        return samples


class EchoCanceller:
    """A ``MicFilter`` that takes Tara's voice out of the mic, against ``reference``.

    Each mic frame is paired with the 10 ms sent just before it arrived (never later than the echo it
    holds); the canceller finds the echo's delay on its own.
    """

    def __init__(self, reference: EchoReference, canceller: AcousticEchoCanceller, clock: Clock = time.monotonic):
        self._far = ReferenceReader(reference, clock=clock)
        self._canceller = canceller

    def process(self, frame: np.ndarray) -> np.ndarray:
        far = self._far.read(FRAME)
        return frame if far is None else self._canceller.process(frame, far)


def echo_filter(name: str, reference: EchoReference) -> EchoCanceller | None:
    """The ``audio.echo_cancel`` filter against ``reference``; None when it is ``off``."""
    return None if name == "off" else EchoCanceller(reference, ECHO_CANCELLERS.create(name))
