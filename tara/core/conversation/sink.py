"""Where the agent's speech goes: the WebRTC outbound track (``tara.server.tracks.SpeakerTrack``) or a buffer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from tara.core.audio import AudioChunk

OnPlay = Callable[[float], None]  # called with the playback position (``played_s``) of a chunk's first sample


class AudioSink(Protocol):
    """Where agent speech goes: the WebRTC outbound track, or a buffer for files."""

    def write(self, chunk: AudioChunk, on_play: OnPlay | None = None) -> None:
        """Queue ``chunk``; ``on_play`` is called when its first sample plays (never, if it is cleared first)."""

    @property
    def played_s(self) -> float:
        """Seconds of audio played so far, all writes together (cleared audio never counts): where a
        reply was cut off, against the positions ``on_play`` gave."""
        ...

    def clear(self) -> None:
        """Drop everything queued and not yet played (barge-in); also ends a pause."""

    def pause(self) -> None:
        """Stop playing but keep the queue (the user may only be saying "mm-hm")."""

    def resume(self) -> None:
        """Play on from where ``pause`` stopped."""

    async def drain(self) -> None:
        """Return once everything written has been played."""

    async def ahead_at_most(self, seconds: float) -> None:
        """Return once no more than ``seconds`` of written audio are waiting to be played."""

    @property
    def queued_s(self) -> float:
        """Seconds of written audio still to play: how long the voice goes on without another write."""
        ...


class BufferSink:
    """Collects agent audio in memory (files, tests, benchmarks)."""

    def __init__(self) -> None:
        self.chunks: list[AudioChunk] = []
        self.first_write: float | None = None
        self.paused = False
        self.played_s = 0.0

    def write(self, chunk: AudioChunk, on_play: OnPlay | None = None) -> None:
        if self.first_write is None:
            self.first_write = time.perf_counter()
        if on_play is not None:
            on_play(self.played_s)
        self.chunks.append(chunk)
        self.played_s += chunk.duration

    def clear(self) -> None:
        self.chunks.clear()
        self.paused = False

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    async def drain(self) -> None:
        return None

    async def ahead_at_most(self, seconds: float) -> None:
        return None  # a buffer "plays" instantly

    @property
    def queued_s(self) -> float:
        return 0.0

    def audio(self) -> AudioChunk | None:
        if not self.chunks:
            return None
        return AudioChunk(np.concatenate([c.samples for c in self.chunks]), self.chunks[0].sample_rate)
