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
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add, uint16_gt

from tara.core.audio import PIPELINE_RATE, AudioChunk, StreamResampler, resample
from tara.core.conversation.sink import OnPlay
from tara.core.stages.mic import MicChain

RTC_RATE = 48000
JITTER_BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"  # aiortc 1.16 keeps it private
FRAME_SAMPLES = RTC_RATE // 50  # 20 ms
MAX_LAG_S = 0.2  # further behind the wall clock than this (a stalled loop), restart the clock: no burst
FADE_SAMPLES = RTC_RATE * 5 // 1000  # 5 ms: a pause, resume or cut fades rather than clicks
FADE_OUT = (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, FADE_SAMPLES))).astype(np.float32)  # raised cosine
FADE_IN = FADE_OUT[::-1].copy()


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

    It is the session's ``AudioSink``: TTS chunks queue as they arrive. ``pause`` (maybe the user is
    talking) and ``clear`` (barge-in) take effect at the very next 20 ms frame, which fades the voice out
    over ``FADE_SAMPLES`` and is silent after; ``resume`` fades back in where the voice stopped. A hard
    cut mid-word is a click the user hears; 5 ms of fade is not. A chunk's ``on_play`` runs as the frame
    holding its first sample is sent.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[np.ndarray] = deque()
        self._starts: deque[tuple[int, OnPlay]] = deque()  # (where a queued chunk starts playing, its on_play)
        self._queued_samples = 0
        self._played_samples = 0
        self._paused = False
        self._audible = False  # whether the last frame ended in the voice (so stopping it must fade)
        self._idle = asyncio.Event()
        self._idle.set()
        self._played = asyncio.Event()  # set at every frame taken from the queue

    # AudioSink
    def write(self, chunk: AudioChunk, on_play: OnPlay | None = None) -> None:
        samples = resample(chunk.samples, chunk.sample_rate, RTC_RATE)  # one sentence: a few ms of work
        if len(samples):
            if on_play is not None:
                self._starts.append((self._played_samples + self._queued_samples, on_play))
            self._queue.append(samples)
            self._queued_samples += len(samples)
            self._idle.clear()

    @property
    def played_s(self) -> float:
        return self._played_samples / RTC_RATE

    def clear(self) -> None:
        tail = self._take(FADE_SAMPLES) if self._audible and not self._paused else None
        self._queue.clear()
        self._starts.clear()
        self._queued_samples = 0
        if tail is not None and len(tail):  # cut mid-voice: the next frame still fades out what was playing
            self._queue.append(faded(tail, FADE_OUT))
            self._queued_samples = len(tail)
        self._paused = False
        self._idle.set()
        self._played.set()

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    async def drain(self) -> None:
        await self._idle.wait()

    @property
    def queued_s(self) -> float:
        return self._queued_samples / RTC_RATE

    async def ahead_at_most(self, seconds: float) -> None:
        while self._queued_samples > seconds * RTC_RATE:
            self._played.clear()
            await self._played.wait()

    # PacedAudioTrack
    def _next_samples(self) -> np.ndarray:
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if self._paused:
            voice = faded(self._take(FADE_SAMPLES), FADE_OUT) if self._audible else out[:0]
            self._audible = False
        else:
            voice = self._take(FRAME_SAMPLES)
            if len(voice) and not self._audible:
                voice = faded(voice, FADE_IN)
            self._audible = len(voice) == FRAME_SAMPLES  # a voice that ran out ended on its own silence
        out[: len(voice)] = voice
        self._played_samples += len(voice)
        while self._starts and self._starts[0][0] < self._played_samples:
            start, on_play = self._starts.popleft()
            on_play(start / RTC_RATE)
        if len(voice):
            self._played.set()
        if not self._queue:
            self._idle.set()
        return out

    def _take(self, count: int) -> np.ndarray:
        """Up to ``count`` samples from the head of the queue."""
        parts: list[np.ndarray] = []
        wanted = count
        while self._queue and wanted:
            head = self._queue[0]
            parts.append(head[:wanted])
            if wanted >= len(head):
                self._queue.popleft()
            else:
                self._queue[0] = head[wanted:]
            wanted -= len(parts[-1])
        self._queued_samples -= count - wanted
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def faded(samples: np.ndarray, ramp: np.ndarray) -> np.ndarray:
    """``samples`` with their first ``len(ramp)`` scaled by ``ramp`` (int16 in, int16 out)."""
    out = samples.copy()
    head = min(len(out), len(ramp))
    out[:head] = (out[:head] * ramp[:head]).astype(np.int16)
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
            yield to_pipeline.push(await chain.clean(to_mono.push_frame(frame)))


class InOrderAudioBuffer(JitterBuffer):
    """Hands each audio packet on the moment it arrives in order; a late one is dropped.

    aiortc's ``JitterBuffer`` completes a frame only when a packet with the next timestamp arrives, so
    even with ``prefetch=1`` every 20 ms of speech waits for the next 20 ms: a whole frame added to
    every barge-in and every end of turn. An audio RTP packet is a whole Opus frame, so nothing needs
    to wait. A gap is skipped (the decoder hears the next frame; packet loss is not worth 20 ms on
    every packet), and a packet older than one already handed on is too late to use.
    """

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self._next: int | None = None  # the sequence number expected next

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._next is not None and uint16_gt(self._next, packet.sequence_number):
            return False, None  # late: its moment has passed
        self._next = uint16_add(packet.sequence_number, 1)
        payload: bytes = getattr(packet, "_data")  # the receiver's depayloaded Opus frame (aiortc sets it there)
        return False, JitterFrame(data=payload, timestamp=packet.timestamp)


def listen_without_prefetch(pc: RTCPeerConnection, prefetch: int = 0) -> None:
    """Hand received audio on after ``prefetch`` later packets instead of aiortc's 4 (80 ms); 0: at once.

    aiortc holds every audio packet until four newer ones have arrived, as a playout buffer would.
    Speech detection needs no playout smoothing (``InOrderAudioBuffer``), and every 20 ms held there is
    20 ms more before the agent notices the user stopped or started talking. A caller that plays what
    it hears keeps a small ``prefetch``, like a browser's playout buffer.
    """
    for receiver in pc.getReceivers():  # a listen-only caller's receiver has no track
        if receiver.track is not None and receiver.track.kind == "audio" and hasattr(receiver, JITTER_BUFFER_ATTRIBUTE):
            buffer = InOrderAudioBuffer() if prefetch == 0 else JitterBuffer(capacity=16, prefetch=prefetch)
            setattr(receiver, JITTER_BUFFER_ATTRIBUTE, buffer)
