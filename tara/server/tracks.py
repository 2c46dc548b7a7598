"""Audio over WebRTC: the paced outbound track the agent speaks on, and received audio as 16 kHz PCM.

aiortc pulls outbound frames with ``recv()``; a track must pace itself to the wall clock (20 ms a frame)
and hand out silence when there is nothing to say, or the browser hears bursts and gaps.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from typing import cast

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError

from tara.core.audio import PIPELINE_RATE, AudioChunk, StreamResampler, resample
from tara.core.stages.mic import MicChain

RTC_RATE = 48000
JITTER_BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"  # aiortc 1.16 keeps it private
FRAME_SAMPLES = RTC_RATE // 50  # 20 ms
MAX_LAG_S = 0.2  # further behind the wall clock than this (a stalled loop), restart the clock: no burst


class PacedAudioTrack(MediaStreamTrack):
    """An outbound audio track of 20 ms mono frames at 48 kHz, paced to the wall clock.

    aiortc calls ``recv`` as fast as it returns; subclasses only say what the next frame holds.
    Each of ``observers`` sees every frame's samples as it goes out (the echo canceller's reference).
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._clock_start: float | None = None
        self._pts = 0
        self.observers: list[Callable[[np.ndarray], None]] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._clock_start is None or now - (self._clock_start + self._pts / RTC_RATE) > MAX_LAG_S:
            self._clock_start = now - self._pts / RTC_RATE
        else:
            await asyncio.sleep(max(0.0, self._clock_start + self._pts / RTC_RATE - now))
        samples = self._next_samples()
        for observe in self.observers:
            observe(samples)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RTC_RATE, self._pts, Fraction(1, RTC_RATE)
        self._pts += FRAME_SAMPLES
        return frame

    def _next_samples(self) -> np.ndarray:
        """The next ``FRAME_SAMPLES`` int16 samples to send."""
        raise NotImplementedError


class SpeakerTrack(PacedAudioTrack):
    """Outbound agent voice, silence when idle.

    It is the session's ``AudioSink``: TTS chunks queue as they arrive; ``clear`` (barge-in) empties
    the queue so the very next frame is silent.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[np.ndarray] = deque()
        self._queued_samples = 0
        self._paused = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._played = asyncio.Event()  # set at every frame taken from the queue

    # AudioSink
    def write(self, chunk: AudioChunk) -> None:
        samples = resample(chunk.samples, chunk.sample_rate, RTC_RATE)  # one sentence: a few ms of work
        if len(samples):
            self._queue.append(samples)
            self._queued_samples += len(samples)
            self._idle.clear()

    def clear(self) -> None:
        self._queue.clear()
        self._queued_samples = 0
        self._paused = False
        self._idle.set()
        self._played.set()

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    async def drain(self) -> None:
        await self._idle.wait()

    async def ahead_at_most(self, seconds: float) -> None:
        while self._queued_samples > seconds * RTC_RATE:
            self._played.clear()
            await self._played.wait()

    # PacedAudioTrack
    def _next_samples(self) -> np.ndarray:
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while not self._paused and self._queue and filled < FRAME_SAMPLES:
            head = self._queue[0]
            take = min(FRAME_SAMPLES - filled, len(head))
            out[filled : filled + take] = head[:take]
            filled += take
            if take == len(head):
                self._queue.popleft()
            else:
                self._queue[0] = head[take:]
        self._queued_samples -= filled
        if filled:
            self._played.set()
        if not self._queue:
            self._idle.set()
        return out


async def received_pcm(track: MediaStreamTrack, chain: MicChain | None = None) -> AsyncIterator[np.ndarray]:
    """A remote audio track (48 kHz Opus, often stereo) as 16 kHz mono int16, frame by frame, until it ends;
    cleaned at 48 kHz by ``chain`` first, when it has filters."""
    to_mono = StreamResampler(RTC_RATE, RTC_RATE)
    to_pipeline = StreamResampler(RTC_RATE, PIPELINE_RATE)
    while True:
        try:
            frame = cast(av.AudioFrame, await track.recv())  # (recv() is typed for every kind of track)
        except MediaStreamError:
            return
        if chain is None or not chain.filters:
            yield to_pipeline.push_frame(frame)
        else:
            yield to_pipeline.push(chain.process(to_mono.push_frame(frame)))


def listen_without_prefetch(pc: RTCPeerConnection, prefetch: int = 1) -> None:
    """Hand received audio on after ``prefetch`` packets instead of aiortc's 4 (80 ms).

    aiortc holds every audio packet until four newer ones have arrived, as a playout buffer would.
    Speech detection needs no playout smoothing (packet order is still restored), and every 20 ms
    held there is 20 ms more before the agent notices the user stopped or started talking.
    """
    for receiver in pc.getReceivers():  # a listen-only caller's receiver has no track
        if receiver.track is not None and receiver.track.kind == "audio" and hasattr(receiver, JITTER_BUFFER_ATTRIBUTE):
            setattr(receiver, JITTER_BUFFER_ATTRIBUTE, JitterBuffer(capacity=16, prefetch=prefetch))
