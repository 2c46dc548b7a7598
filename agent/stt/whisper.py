"""faster-whisper (CTranslate2): the bundled multilingual base model on CPU, or any local CT2 dir."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np

from agent.assets import WHISPER_BASE, resolve_model
from agent.audio import PIPELINE_RATE, to_float32
from agent.config import ConfigError, STTConfig
from agent.stt import STT, Transcript

MAX_HOTWORDS_CHARS = 400  # whisper's prompt holds ~220 tokens; leave room for the audio's own text


class FasterWhisperSTT(STT):
    def __init__(self, config: STTConfig, data_dir: Path) -> None:
        from faster_whisper import WhisperModel

        model_file = resolve_model(config.model, {"whisper-base": WHISPER_BASE}, "stt.model", data_dir)
        model_dir = model_file.parent if model_file.is_file() else model_file
        if not (model_dir / "model.bin").exists():
            raise ConfigError(f"stt.model: {model_dir} is not a CTranslate2 whisper directory (no model.bin)")
        device = "cpu" if config.device == "auto" else config.device
        self.config = config
        self._model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            local_files_only=True,
        )
        self._lock = threading.Lock()
        self._hotwords: str | None = None

    def set_vocabulary(self, terms: list[str]) -> None:
        text = ", ".join(terms)
        self._hotwords = text[:MAX_HOTWORDS_CHARS].rsplit(",", 1)[0] if len(text) > MAX_HOTWORDS_CHARS else text or None

    async def transcribe(self, audio: np.ndarray) -> Transcript:
        return await asyncio.to_thread(self._transcribe, audio)

    def _transcribe(self, audio: np.ndarray) -> Transcript:
        started = time.perf_counter()
        with self._lock:  # one decode at a time: the model already uses every core
            segments, _info = self._model.transcribe(
                to_float32(audio),
                language=self.config.language,
                beam_size=self.config.beam_size,
                vad_filter=False,
                condition_on_previous_text=False,
                without_timestamps=True,
                hotwords=self._hotwords,
            )
            text = " ".join(segment.text.strip() for segment in segments).strip()
        return Transcript(text, len(audio) / PIPELINE_RATE, time.perf_counter() - started)
