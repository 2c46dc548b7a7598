"""The voice library: voices cloned from uploaded recordings, kept across restarts.

Each uploaded voice lives in ``<data_dir>/voices/<id>/`` as ``reference.wav`` (the recording, mono)
and ``meta.json`` (name, transcript, duration); all of them are loaded into the TTS at start. Only a
backend that can clone (``TTS.can_clone``: CSM, whose voices are prompts) takes them; voices from the
config are listed but cannot be deleted here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import av.error  # (av imports it, but a type checker sees only what is imported by name)
import numpy as np

from tara.core.audio import read_audio, rms_dbfs, wav_bytes, write_wav
from tara.core.config import APIConfig, make_private
from tara.core.emotion import EmotionSettings
from tara.core.stages.tts import TTS, CloningUnsupportedError, synthesize

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 60
MAX_TRANSCRIPT_CHARS = 1000
SAMPLE_TEXT = "Hello, I'm Tara. This is how I sound."
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class VoiceRejected(ValueError):
    """The upload cannot become a voice (bad name, transcript, format or duration)."""


class VoiceExists(ValueError):
    pass


class VoiceNotFound(KeyError):
    pass


class VoiceProtected(ValueError):
    """A voice from the config: it is not the library's to delete."""


@dataclass
class StoredVoice:
    id: str
    name: str
    transcript: str
    seconds: float
    sample_rate: int
    created: float


def voice_id(name: str) -> str:
    """``"Deep Voice #2"`` → ``"deep-voice-2"``: letters, digits and dashes only; VoiceRejected if nothing is left."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or _CONTROL.search(name):
        raise VoiceRejected(f"name must be 1 to {MAX_NAME_CHARS} printable characters")
    if "/" in name or "\\" in name or ".." in name:
        raise VoiceRejected(f"name {name!r} must not look like a path ('/', '\\' or '..')")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    if not slug:
        raise VoiceRejected(f"name {name!r} needs at least one letter or digit")
    return slug


def container_of(head: bytes) -> str:
    """The recording's container from its first bytes (WAV, FLAC or OGG); VoiceRejected for anything else,
    so FFmpeg never probes an upload with its hundreds of demuxers."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    raise VoiceRejected("the recording must be WAV, FLAC or OGG")


def decode_recording(path: Path) -> tuple[np.ndarray, int, str]:
    """A WAV, FLAC or OGG file → (mono int16 samples, sample rate, format); VoiceRejected otherwise."""
    with path.open("rb") as file:
        container = container_of(file.read(12))
    try:
        with av.open(str(path), format=container) as opened:
            if not opened.streams.audio:
                raise VoiceRejected("the file holds no audio stream")
            rate = opened.streams.audio[0].rate or 0
    except av.error.FFmpegError as exc:
        raise VoiceRejected(f"not a readable WAV, FLAC or OGG recording: {exc}") from None
    if rate <= 0:
        raise VoiceRejected("the recording has no sample rate")
    try:
        samples = read_audio(path, rate, container)
    except ValueError as exc:
        raise VoiceRejected(str(exc).replace(str(path), "the recording")) from None
    return samples, rate, container


class VoiceLibrary:
    def __init__(self, tts: TTS, data_dir: Path, limits: APIConfig) -> None:
        self.tts = tts
        self.root = data_dir / "voices"
        self.limits = limits
        self.stored: dict[str, StoredVoice] = {}
        self.unloaded: dict[str, str] = {}  # stored voice id -> why it is not in the TTS
        self._reserved: set[str] = set()  # ids being uploaded right now
        self._samples: dict[str, bytes] = {}

    # ------------------------------------------------------------------ start

    async def load(self) -> None:
        """Load every stored voice into the TTS (a broken one is logged and skipped, never fatal)."""
        if not self.root.is_dir():
            return
        make_private(self.root)  # voices kept by an older version may be world-readable
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            try:
                stored = StoredVoice(**json.loads((folder / "meta.json").read_text()))
                if stored.id != folder.name:
                    raise ValueError(f"meta.json names {stored.id!r}")
            except (OSError, ValueError, TypeError) as exc:
                log.warning("voice library: skipping %s: %s", folder, exc)
                continue
            self.stored[stored.id] = stored
            if stored.id in self.tts.voices:
                self.unloaded[stored.id] = "a configured voice has the same name"
            elif not self.tts.can_clone:
                self.unloaded[stored.id] = self.tts.clone_limitation
            else:
                try:
                    samples = read_audio(folder / "reference.wav", stored.sample_rate)
                    await asyncio.to_thread(
                        self.tts.add_voice, stored.id, samples, stored.sample_rate, stored.transcript
                    )
                except (OSError, ValueError) as exc:
                    self.unloaded[stored.id] = str(exc)
        if self.unloaded:
            log.warning("voice library: not loaded: %s", "; ".join(f"{k} ({v})" for k, v in self.unloaded.items()))
        log.info("voice library: %d stored voice(s) loaded from %s", len(self.stored) - len(self.unloaded), self.root)

    # ------------------------------------------------------------------ listing

    def describe(self) -> list[dict]:
        """Every voice: the TTS's own (config) and the uploaded ones, loaded or not."""
        voices = []
        for name in self.tts.voices:
            stored = self.stored.get(name)
            uploaded = stored if stored and name not in self.unloaded else None
            source = "uploaded" if uploaded else "config"
            voices.append(
                {
                    "id": name,
                    "name": uploaded.name if uploaded else name,
                    "source": source,
                    "default": name == self.tts.default_voice,
                    "available": True,
                    "transcript": uploaded.transcript if uploaded else None,
                    "seconds": uploaded.seconds if uploaded else None,
                    "problem": None,
                }
            )
        for voice_id_, problem in self.unloaded.items():
            stored = self.stored[voice_id_]
            voices.append(
                {
                    "id": stored.id,
                    "name": stored.name,
                    "source": "uploaded",
                    "default": False,
                    "available": False,
                    "transcript": stored.transcript,
                    "seconds": stored.seconds,
                    "problem": problem,
                }
            )
        return voices

    # ------------------------------------------------------------------ changes

    async def add(self, name: str, recording: bytes, transcript: str) -> StoredVoice:
        """Validate an upload, clone it into the TTS and keep it. Nothing is stored unless all of it worked."""
        new_id = voice_id(name)
        transcript = " ".join(transcript.split())
        if not transcript or len(transcript) > MAX_TRANSCRIPT_CHARS or _CONTROL.search(transcript):
            raise VoiceRejected(
                f"transcript must be 1 to {MAX_TRANSCRIPT_CHARS} printable characters: what the recording says"
            )
        if len(recording) > self.limits.voice_max_bytes:
            raise VoiceRejected(f"the recording is over {self.limits.voice_max_bytes} bytes")
        if new_id in self.tts.voices or new_id in self.stored or new_id in self._reserved:
            raise VoiceExists(f"a voice named {new_id!r} exists already")
        if not self.tts.can_clone:
            raise CloningUnsupportedError(self.tts.clone_limitation)
        self._reserved.add(new_id)
        staging = self.root / f".incoming-{uuid.uuid4().hex}"
        try:
            staging.mkdir(parents=True)
            upload = staging / "upload"
            upload.write_bytes(recording)
            samples, rate, _ = await asyncio.to_thread(decode_recording, upload)
            seconds = len(samples) / rate
            low, high = self.limits.voice_min_seconds, self.limits.voice_max_seconds
            if not low <= seconds <= high:
                raise VoiceRejected(f"the recording lasts {seconds:.1f}s; it must last {low:g} to {high:g}s")
            if rms_dbfs(samples) < -60:
                raise VoiceRejected("the recording is silent")
            stored = StoredVoice(new_id, name.strip(), transcript, round(seconds, 2), rate, time.time())
            write_wav(staging / "reference.wav", samples, rate)
            (staging / "meta.json").write_text(json.dumps(asdict(stored), indent=2))
            upload.unlink()
            make_private(self.root)
            await asyncio.to_thread(self.tts.add_voice, new_id, samples, rate, transcript)
            try:
                staging.rename(self.root / new_id)
            except OSError:
                self.tts.remove_voice(new_id)
                raise
        finally:
            self._reserved.discard(new_id)
            shutil.rmtree(staging, ignore_errors=True)
        self.stored[new_id] = stored
        log.info("voice library: added %r (%.1fs)", new_id, seconds)
        return stored

    def delete(self, voice: str) -> None:
        """Remove an uploaded voice from the TTS and the disk."""
        if voice not in self.stored:
            if voice in self.tts.voices:
                raise VoiceProtected(f"voice {voice!r} comes from the config (tts section); it cannot be deleted here")
            raise VoiceNotFound(voice)
        if voice not in self.unloaded:
            self.tts.remove_voice(voice)
        folder, trash = self.root / voice, self.root / f".deleted-{uuid.uuid4().hex}"
        folder.rename(trash)  # gone at once; the files follow
        shutil.rmtree(trash, ignore_errors=True)
        del self.stored[voice]
        self.unloaded.pop(voice, None)
        self._samples.pop(voice, None)
        log.info("voice library: deleted %r", voice)

    # ------------------------------------------------------------------ listening

    async def sample(self, voice: str) -> bytes:
        """A short sentence spoken in ``voice``, as WAV (made once per voice)."""
        if voice not in self.tts.voices:
            raise VoiceNotFound(voice)
        if voice not in self._samples:
            audio = await synthesize(self.tts, SAMPLE_TEXT, EmotionSettings(), voice)
            self._samples[voice] = wav_bytes(audio.samples, audio.sample_rate)
        return self._samples[voice]
