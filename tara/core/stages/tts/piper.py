"""Piper (VITS on onnxruntime) with the bundled en_US "joe" voice: fast enough for CPU real time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from tara.core.assets import PIPER_VOICES, resolve_model
from tara.core.audio import AudioChunk
from tara.core.concurrency import Compute, ComputeJob, iterate_in_thread
from tara.core.config import TTSConfig
from tara.core.emotion import EmotionSettings
from tara.core.stages.tts import TTS


def voice_name(reference: str) -> str:
    """``bundled:joe`` → ``joe``; ``/voices/en_GB-alba-medium.onnx`` → ``en_GB-alba-medium``."""
    return reference.removeprefix("bundled:") if reference.startswith("bundled:") else Path(reference).stem


class PiperTTS(TTS):
    needs_compute = True  # onnxruntime on the CPU, shared with the other models
    clone_limitation = (
        "Piper (tts.backend: piper) cannot clone a voice from a recording: its voices are trained models. "
        "Add a Piper .onnx voice under tts.voices in the config, or use tts.backend: csm to clone voices"
    )

    def __init__(self, config: TTSConfig, data_dir: Path, compute: Compute) -> None:
        from piper import PiperVoice

        self._compute = compute
        references = {voice_name(config.voice): (config.voice, "tts.voice")}
        references |= {name: (path, f"tts.voices.{name}") for name, path in config.voices.items()}
        self._voices = {
            name: PiperVoice.load(str(resolve_model(reference, PIPER_VOICES, key, data_dir)))
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
        urgent: bool = True,
    ) -> AsyncIterator[AudioChunk]:
        piper_voice = self._voices[self.check_voice(voice or self.default_voice)]
        job = self._compute.job(urgent)
        return iterate_in_thread(lambda: self._synthesize(piper_voice, text, emotion, job), job)

    def _synthesize(self, piper_voice, text: str, emotion: EmotionSettings, job: ComputeJob) -> Iterator[AudioChunk]:
        from piper import SynthesisConfig

        style = emotion.piper()
        config = SynthesisConfig(
            length_scale=style.length_scale,
            noise_scale=style.noise_scale,
            noise_w_scale=style.noise_w_scale,
            volume=style.volume,
        )
        chunks = piper_voice.synthesize(text, syn_config=config)
        while True:
            with job.slot():  # a sentence at a time, between other sessions' decode steps
                self._compute.assert_held()
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield AudioChunk(chunk.audio_int16_array, chunk.sample_rate)
