"""Piper (VITS on onnxruntime) with the bundled en_US "joe" voice: fast enough for CPU real time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from agent.assets import PIPER_VOICES, resolve_model
from agent.audio import AudioChunk
from agent.concurrency import iterate_in_thread
from agent.config import TTSConfig
from agent.emotion import EmotionSettings
from agent.tts import TTS


class PiperTTS(TTS):
    def __init__(self, config: TTSConfig, data_dir: Path) -> None:
        from piper import PiperVoice

        model = resolve_model(config.voice, PIPER_VOICES, "tts.voice", data_dir)
        self._voice = PiperVoice.load(str(model))
        self.sample_rate = self._voice.config.sample_rate

    def stream(self, text: str, emotion: EmotionSettings) -> AsyncIterator[AudioChunk]:
        return iterate_in_thread(lambda: self._synthesize(text, emotion))

    def _synthesize(self, text: str, emotion: EmotionSettings) -> Iterator[AudioChunk]:
        from piper import SynthesisConfig

        style = emotion.piper()
        config = SynthesisConfig(
            length_scale=style.length_scale,
            noise_scale=style.noise_scale,
            noise_w_scale=style.noise_w_scale,
            volume=style.volume,
        )
        for chunk in self._voice.synthesize(text, syn_config=config):
            yield AudioChunk(chunk.audio_int16_array, chunk.sample_rate)
