"""Piper (VITS on onnxruntime) with the bundled en_US "joe" voice: fast enough for CPU real time.

Each sentence comes with when its words start (``tara.core.stages.tts.words``), from the phoneme
durations the model predicts: the voices are loaded with their alignment output exposed.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tara.core.assets import PIPER_VOICES, resolve_model
from tara.core.audio import AudioChunk
from tara.core.concurrency import Compute, ComputeJob, Urgency, iterate_in_thread, quiet_onnx_options
from tara.core.emotion import EmotionSettings
from tara.core.stages.tts import TTS
from tara.core.stages.tts.settings import PiperSettings
from tara.core.stages.tts.words import SpokenWords, phoneme_word_starts

if TYPE_CHECKING:
    from piper import PiperVoice
    from piper.voice import PhonemeAlignment

VOLUME_SPAN_DB = 10.0  # loudness from energy 0 to 1
RATE_OCTAVES = 1.6  # length_scale from rate 0 to 1: 2 ** 0.8 slower .. 2 ** 0.8 faster than neutral


@dataclass(frozen=True)
class PiperStyle:
    """Piper's synthesis parameters for one emotion."""

    length_scale: float
    noise_scale: float
    noise_w_scale: float
    volume: float


def rate_for_pace(pace: float) -> float:
    """The rate slider at which Piper speaks ``pace`` times as fast as at neutral (``piper_style`` inverted)."""
    return 0.5 + math.log2(pace) / RATE_OCTAVES


def piper_style(emotion: EmotionSettings) -> PiperStyle:
    """How Piper says an emotion (defaults at neutral: 1.0, 0.667, 0.8).

    Piper peak-normalises each sentence, so loudness can only go down from full scale: energy
    spans ``VOLUME_SPAN_DB`` below it (neutral sits at -5 dB, leaving room to sound louder).
    ``noise_scale`` barely moves the measured pitch range; pace and loudness are what is heard.
    """
    return PiperStyle(
        length_scale=round(2 ** ((0.5 - emotion.rate) * RATE_OCTAVES), 3),  # 1.74 (slow) .. 0.57 (fast)
        noise_scale=round(0.42 + 0.5 * emotion.energy, 3),  # flatter .. livelier intonation
        noise_w_scale=round(0.7 + 0.2 * emotion.energy, 3),  # timing variation; kept narrow, it is random
        volume=round(10 ** (VOLUME_SPAN_DB * (emotion.energy - 1) / 20), 3),
    )


def load_voice(model: Path) -> PiperVoice:
    """A Piper voice with its alignment output (the phoneme durations word timings come from, patched
    in memory: ~2 s per voice), on an onnxruntime session that does not spin between sentences.

    ``PiperVoice.load(include_alignments=True)`` does the same but takes no session options, and the
    spinning of its session's threads slowed the next model computing by ~35 ms after every sentence.
    """
    import onnx
    import onnxruntime
    from piper import PiperConfig, PiperVoice
    from piper.patch_voice_with_alignment import add_alignment_output
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    graph = onnx.load(str(model))
    with contextlib.suppress(ValueError):  # (a voice patched on disk already has the output)
        add_alignment_output(graph)
    return PiperVoice(
        config=PiperConfig.from_dict(json.loads(Path(f"{model}.json").read_text(encoding="utf-8"))),
        session=onnxruntime.InferenceSession(
            graph.SerializeToString(), sess_options=quiet_onnx_options(), providers=["CPUExecutionProvider"]
        ),
        espeak_data_dir=Path(ESPEAK_DATA_DIR),
        download_dir=Path.cwd(),
    )


def voice_name(reference: str) -> str:
    """``bundled:joe`` → ``joe``; ``/voices/en_GB-alba-medium.onnx`` → ``en_GB-alba-medium``."""
    return reference.removeprefix("bundled:") if reference.startswith("bundled:") else Path(reference).stem


class PiperTTS(TTS):
    needs_compute = True  # onnxruntime on the CPU, shared with the other models
    clone_limitation = (
        "Piper (tts.backend: piper) cannot clone a voice from a recording: its voices are trained models. "
        "Add a Piper .onnx voice under tts.voices in the config, or use tts.backend: csm to clone voices"
    )

    def __init__(self, config: PiperSettings, data_dir: Path, compute: Compute) -> None:
        self._compute = compute
        references = {voice_name(config.voice): (config.voice, "tts.voice")}
        references |= {name: (path, f"tts.voices.{name}") for name, path in config.voices.items()}
        self._voices = {
            name: load_voice(resolve_model(reference, PIPER_VOICES, key, data_dir))
            for name, (reference, key) in references.items()
        }
        self.default_voice = voice_name(config.voice)
        self.sample_rate = self._voices[self.default_voice].config.sample_rate  # chunks carry their own rate

    @property
    def voices(self) -> list[str]:
        return list(self._voices)

    def stream(
        self,
        text: str,
        emotion: EmotionSettings,
        voice: str | None = None,
        context: None = None,
        urgent: Urgency = True,
    ) -> AsyncIterator[AudioChunk]:
        piper_voice = self._voices[self.check_voice(voice or self.default_voice)]
        job = self._compute.job(urgent)
        return iterate_in_thread(lambda: self._synthesize(piper_voice, text, emotion, job), job)

    def _synthesize(self, piper_voice, text: str, emotion: EmotionSettings, job: ComputeJob) -> Iterator[AudioChunk]:
        from piper import SynthesisConfig

        style = piper_style(emotion)
        config = SynthesisConfig(
            length_scale=style.length_scale,
            noise_scale=style.noise_scale,
            noise_w_scale=style.noise_w_scale,
            volume=style.volume,
        )
        words = SpokenWords(text, lambda word: spoken_word_count(piper_voice, word))
        chunks = piper_voice.synthesize(text, syn_config=config, include_alignments=True)
        while True:
            with job.slot():  # a sentence at a time, between other sessions' decode steps
                self._compute.assert_held()
                chunk = next(chunks, None)
            if chunk is None:
                return
            timed = words.chunk(word_starts(chunk.phoneme_alignments or [], chunk.sample_rate))
            yield AudioChunk(chunk.audio_int16_array, chunk.sample_rate, timed)


def spoken_word_count(piper_voice, word: str) -> int:
    """How many words espeak says for a written one ("$40" is "forty dollars": 2)."""
    return sum(len(phoneme_word_starts(sentence)) for sentence in piper_voice.phonemize(word))


def word_starts(alignments: list[PhonemeAlignment], sample_rate: int) -> list[float]:
    """Seconds into a sentence's audio where its spoken words start, from Piper's phoneme alignments
    (which begin with the sentence-start symbol and end with the sentence-end one)."""
    phonemes = [alignment.phoneme for alignment in alignments[1:-1]]
    begins = np.cumsum([0] + [alignment.num_samples for alignment in alignments])[1:-1]
    return [float(begins[index]) / sample_rate for index in phoneme_word_starts(phonemes)]
