"""Spoken test sentences for the evaluations: espeak-ng voices or Piper, with room noise mixed in.

Each voice and noise is another way of being misheard; the held-out evaluation spreads its questions
over them (``tara/tools/heldout.py``).
"""

from __future__ import annotations

import asyncio
import subprocess
import zlib
from pathlib import Path

import numpy as np

from tara.core.audio import PIPELINE_RATE, read_audio, resample
from tara.core.config import load_config

SNR_DB = 12.0
NOISES = ("babble", "fan", "street", "keyboard")
ESPEAK_VOICES = {"us": ("en-us", 160), "gb": ("en-gb", 150), "f3": ("en-us+f3", 175)}
SLOWER = 0.8  # said again when asked to: the same words at this pace (people repeat more slowly)
BABBLE = [
    "I think we should leave a bit earlier tomorrow morning.",
    "Did you see the game last night?",
    "She said the train was late again.",
    "Could you pass me the salt and the pepper?",
]


def speech_rms(speech: np.ndarray) -> float:
    """The loudness of the voiced part of int16 speech (quiet gaps left out), what SNRs are measured against."""
    voiced = speech.astype(np.float64)
    return float(np.sqrt(np.mean(voiced[np.abs(voiced) > 300] ** 2)))


class Voices:
    """Spoken test sentences, made once per run: espeak-ng or Piper, with noise mixed in where asked."""

    def __init__(self, folder: Path, snr_db: float = SNR_DB) -> None:
        self.folder = folder
        self.snr_db = snr_db  # speech over mixed-in noise
        self._piper = None
        self._made: dict[tuple[str, str, str | None, bool], np.ndarray] = {}

    async def speak(self, text: str, voice: str, noise: str | None = None, slower: bool = False) -> np.ndarray:
        """``text`` in ``voice`` (a key of ``ESPEAK_VOICES``, or ``piper``) after half a second of quiet,
        with ``noise`` (one of ``NOISES``) mixed in at ``snr_db``, ``slower`` by ``SLOWER``; made once,
        then reused."""
        key = (text, voice, noise, slower)
        if key not in self._made:
            self._made[key] = await self._speech(text, voice, noise, SLOWER if slower else 1.0)
        return self._made[key]

    async def _speech(self, text: str, voice: str, noise: str | None, pace: float) -> np.ndarray:
        if voice == "piper":
            speech = await self._piper_speech(text, pace)
        else:
            language, speed = ESPEAK_VOICES[voice]
            speech = await asyncio.to_thread(self._espeak, text, language, round(speed * pace))
        if noise:
            speech = self._with_noise(speech, noise, seed=zlib.crc32(text.encode()))
        lead = np.zeros(PIPELINE_RATE // 2, dtype=np.int16)
        return np.concatenate([lead, speech])

    def _espeak(self, text: str, voice: str, speed: int) -> np.ndarray:
        wav = self.folder / f"{zlib.crc32(f'{voice}{speed}{text}'.encode())}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
        return read_audio(wav)

    async def _piper_speech(self, text: str, pace: float) -> np.ndarray:
        from tara.core.concurrency import Compute
        from tara.core.emotion import EmotionSettings
        from tara.core.stages.tts import TTS_BACKENDS, synthesize
        from tara.core.stages.tts.piper import rate_for_pace
        from tara.core.stages.tts.settings import PiperSettings

        if self._piper is None:  # the configured Piper voices, or Piper's defaults under another backend
            config = load_config()
            piper = config.tts if isinstance(config.tts, PiperSettings) else PiperSettings()
            self._piper = TTS_BACKENDS.create("piper", piper, config.data_path, compute=Compute())
        neutral = EmotionSettings.from_preset("neutral")
        voiced = await synthesize(self._piper, text, neutral.with_sliders(rate=rate_for_pace(pace)))
        return resample(voiced.samples, voiced.sample_rate, PIPELINE_RATE)

    def _with_noise(self, speech: np.ndarray, kind: str, seed: int) -> np.ndarray:
        mixed = self.noise(kind, len(speech) + PIPELINE_RATE // 2, speech_rms(speech), seed)  # runs on past the speech
        mixed[: len(speech)] += speech
        return np.clip(mixed, -32768, 32767).astype(np.int16)

    def noise(self, kind: str, length: int, speech_level: float, seed: int) -> np.ndarray:
        """``length`` samples of ``kind`` noise (float64), ``snr_db`` below speech whose ``speech_rms`` is ``speech_level``."""
        rng = np.random.default_rng(seed)
        if kind == "babble":
            voices = [
                self._espeak(line, voice, 170)
                for line, voice in zip(BABBLE, ["en-us", "en-gb", "en-us+f2", "en-gb+m3"])
            ]
            noise = np.zeros(length)
            for voice in voices:
                start = int(rng.integers(0, len(voice)))
                noise += np.resize(np.roll(voice, -start), length).astype(np.float64)
        elif kind == "fan":
            noise = np.cumsum(rng.normal(size=length))  # brown noise: a steady low rumble
            noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
        elif kind == "street":
            noise = rng.normal(size=length) * (0.6 + 0.4 * np.sin(np.arange(length) / PIPELINE_RATE * 2 * np.pi * 0.3))
            noise = np.convolve(noise, np.ones(8) / 8, mode="same")  # traffic: duller than hiss, coming and going
        elif kind == "keyboard":
            noise = self._typing(length, rng)
        else:
            raise ValueError(f"unknown noise {kind!r}; choose {', '.join(NOISES)}")
        return noise * speech_level / (np.sqrt(np.mean(noise**2)) * 10 ** (self.snr_db / 20))

    @staticmethod
    def _typing(length: int, rng: np.random.Generator) -> np.ndarray:
        """Key clicks: 5 ms bursts of bright noise dying away, about eight a second at uneven gaps."""
        clicks = np.zeros(length)
        click = rng.normal(size=PIPELINE_RATE // 200) * np.exp(-np.arange(PIPELINE_RATE // 200) / 12)
        click = np.diff(click, prepend=0.0)  # the clack of plastic: highs, no rumble
        at = 0
        while (at := at + int(rng.exponential(PIPELINE_RATE / 8))) < length - len(click):
            clicks[at : at + len(click)] += click * rng.uniform(0.4, 1.0)
        return clicks
