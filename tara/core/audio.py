"""Audio plumbing: PCM chunks, resampling and file I/O, all through PyAV (FFmpeg's swresample)."""

from __future__ import annotations

import io
import wave
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import av.error  # (av imports it, but a type checker sees only what is imported by name)
import numpy as np

PIPELINE_RATE = 16000  # what VAD and STT consume


@dataclass(frozen=True)
class TimedWord:
    """A word of speech and when it starts, in seconds from the first sample of the chunk that carries it."""

    text: str
    start: float


@dataclass(frozen=True)
class AudioChunk:
    """Mono int16 PCM at ``sample_rate``; speech from a TTS may carry the ``words`` it says (see ``TTS.stream``)."""

    samples: np.ndarray
    sample_rate: int
    words: tuple[TimedWord, ...] = field(default=())

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


class RollingAudio:
    """A mono stream kept as the chunks it arrived in, addressed by absolute sample position.

    Appending is O(1) on the audio path; only ``clip`` copies, and only what it returns.
    """

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self.start = 0  # stream position of the first kept sample
        self.end = 0  # stream position after the last sample

    def append(self, samples: np.ndarray) -> None:
        self._chunks.append(samples)
        self.end += len(samples)

    def trim(self, keep: int) -> None:
        """Forget whole chunks older than the last ``keep`` samples."""
        while self._chunks and self.end - (self.start + len(self._chunks[0])) >= keep:
            self.start += len(self._chunks.popleft())

    def clip(self, begin: int, stop: int) -> np.ndarray:
        """Samples ``[begin, stop)`` of the stream (clamped to what is kept)."""
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        joined = np.concatenate(self._chunks)
        return joined[max(0, begin - self.start) : max(0, stop - self.start)].copy()


class StreamResampler:
    """Resamples a stream of chunks, keeping filter state between them (no clicks at chunk edges)."""

    def __init__(self, in_rate: int, out_rate: int, in_layout: str = "mono") -> None:
        self.in_rate, self.out_rate, self.in_layout = in_rate, out_rate, in_layout
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=out_rate)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Resample interleaved int16 ``samples``; returns what is ready (may be empty)."""
        if self.in_rate == self.out_rate and self.in_layout == "mono":
            return samples.astype(np.int16, copy=False)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16", layout=self.in_layout
        )
        frame.sample_rate = self.in_rate
        return self._collect(self._resampler.resample(frame))

    def push_frame(self, frame: av.AudioFrame) -> np.ndarray:
        """Resample a decoded frame (any rate, layout and format, e.g. WebRTC's 48 kHz stereo)."""
        frame.pts = None  # a gap in the sender's timestamps must not make swresample pad or drop
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample a whole mono int16 buffer."""
    if in_rate == out_rate:
        return samples
    resampler = StreamResampler(in_rate, out_rate)
    return np.concatenate([resampler.push(samples), resampler.flush()])


def read_audio(path: str | Path, sample_rate: int = PIPELINE_RATE, container: str | None = None) -> np.ndarray:
    """Decode any audio file FFmpeg reads into mono int16 at ``sample_rate`` (only as ``container``, an
    FFmpeg format name, when given: FFmpeg's probing is not let loose on uploads)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    parts: list[np.ndarray] = []
    try:
        with av.open(str(path), format=container) as opened:
            for frame in opened.decode(audio=0):
                parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(f"cannot decode audio file {path}: {exc}") from exc
    parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def write_wav(path: str | Path | io.BytesIO, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono int16 PCM as a WAV file (a path or an in-memory buffer)."""
    with wave.open(path if isinstance(path, io.BytesIO) else str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(np.asarray(samples, dtype=np.int16).tobytes())


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    write_wav(buffer, samples, sample_rate)
    return buffer.getvalue()


def to_float32(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


def rms_dbfs(samples: np.ndarray) -> float:
    """Loudness in dBFS; -inf-safe for silence."""
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(to_float32(samples) ** 2)))
    return 20.0 * np.log10(max(rms, 1e-6))


def without_leading_silence(chunk: AudioChunk, threshold_dbfs: float = -50.0, keep_ms: int = 10) -> AudioChunk:
    """``chunk`` from ``keep_ms`` before its first audible 10 ms on: Piper starts a sentence with up to
    60 ms of silence, which a reply's first audio would otherwise wait for."""
    window = chunk.sample_rate // 100
    for start in range(0, len(chunk.samples), window):
        if rms_dbfs(chunk.samples[start : start + window]) > threshold_dbfs:
            cut = max(0, start - keep_ms * chunk.sample_rate // 1000)
            return replace(chunk, samples=chunk.samples[cut:])  # (its words' times still count from before the cut)
    return chunk
