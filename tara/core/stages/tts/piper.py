"""Piper (VITS on onnxruntime) with the bundled en_US "joe" voice: fast enough for CPU real time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from tara.core.assets import PIPER_VOICES, resolve_model
from tara.core.audio import AudioChunk
from tara.core.concurrency import CPU, iterate_in_thread
from tara.core.emotion import EmotionSettings
from tara.core.stages.tts import TTS
from tara.core.stages.tts.settings import PiperSettings


def voice_name(reference: str) -> str:
    """``bundled:joe`` → ``joe``; ``/voices/en_GB-alba-medium.onnx`` → ``en_GB-alba-medium``."""
    return reference.removeprefix("bundled:") if reference.startswith("bundled:") else Path(reference).stem


class PiperTTS(TTS):
    clone_limitation = (
        "Piper (tts.backend: piper) cannot clone a voice from a recording: its voices are trained models. "
        "Add a Piper .onnx voice under tts.voices in the config, or use tts.backend: csm to clone voices"
    )

    def __init__(self, config: PiperSettings, data_dir: Path) -> None:
        from piper import PiperVoice

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
        self, text: str, emotion: EmotionSettings, voice: str | None = None, context: None = None
    ) -> AsyncIterator[AudioChunk]:
        piper_voice = self._voices[self.check_voice(voice or self.default_voice)]
        return iterate_in_thread(lambda: self._synthesize(piper_voice, text, emotion))

    @staticmethod
    def _synthesize(piper_voice, text: str, emotion: EmotionSettings) -> Iterator[AudioChunk]:
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
            with CPU.slot():  # a sentence at a time, between other sessions' tokens
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield AudioChunk(chunk.audio_int16_array, chunk.sample_rate)
