"""Smart Turn v3.2: whether the speaker is done, heard from the last eight seconds of their voice.

The model (Daily's, BSD-2-Clause; ``data/LICENSE-smart-turn``) is a Whisper-tiny encoder with a
classifier head, 8.7 MB of ONNX shipped inside this package: pipecat-ai, which ships it too, would pull
numba, openai and more for one file. Its input is Whisper's log-mel of the last 8 s at 16 kHz, silence
padded on the left, the waveform normalised to zero mean and unit variance first. ``torch.stft`` and
faster-whisper's mel filterbank compute it (Whisper's recipe, the few lines of ``FeatureExtractor``):
equal to pipecat's own implementation to within 3e-5 on a spoken clip, and unlike numpy's FFT, torch
lets go of the GIL, so the event loop runs on meanwhile (numpy stalled it for up to 10 ms a call on an
idle machine and 300 ms on a loaded one). About 0.1 s in all on two cores, under the ``Compute`` slot.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np

from tara.core.assets import sha256_of
from tara.core.audio import PIPELINE_RATE
from tara.core.concurrency import Compute, quiet_onnx_options
from tara.core.stages.endpointing.settings import SmartTurnEndpointing

log = logging.getLogger(__name__)
MODEL_FILE = Path(__file__).parent / "data" / "smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
WINDOW_SAMPLES = 8 * PIPELINE_RATE  # the model hears the last 8 s
N_FFT, HOP, N_MELS = 400, 160, 80  # Whisper's log-mel: 25 ms windows every 10 ms, 80 bins


class SmartTurn:
    """The end-of-turn model, shared by every session (onnxruntime sessions run calls from any thread)."""

    needs_compute = True  # it computes on the shared CPU

    def __init__(self, config: SmartTurnEndpointing, compute: Compute) -> None:
        import onnxruntime
        import torch
        from faster_whisper.feature_extractor import FeatureExtractor

        if (digest := sha256_of(MODEL_FILE)) != MODEL_SHA256:
            raise RuntimeError(f"{MODEL_FILE} has sha256 {digest}, expected {MODEL_SHA256}: reinstall tara")
        self._session = onnxruntime.InferenceSession(
            str(MODEL_FILE), sess_options=quiet_onnx_options(config.threads), providers=["CPUExecutionProvider"]
        )
        self._torch = torch
        self._mel_filters = torch.from_numpy(FeatureExtractor.get_mel_filters(PIPELINE_RATE, N_FFT, N_MELS)).float()
        self._window = torch.hann_window(N_FFT)
        self._compute = compute

    async def probability_done(self, audio: np.ndarray) -> float | None:
        """The model's probability that ``audio`` (int16 at 16 kHz) ends a finished turn; None if it failed
        (the transcript rule then decides alone: a broken model must not lose the turn)."""
        try:
            return await asyncio.to_thread(self._score, audio)
        except Exception:
            log.warning("smart turn failed; the transcript alone decides this turn", exc_info=True)
            return None

    def features(self, audio: np.ndarray) -> np.ndarray:
        """The model's input for ``audio`` (int16 or float at 16 kHz): 80 log-mel bins by 800 frames."""
        samples = audio[-WINDOW_SAMPLES:].astype(np.float32)  # any scale: normalised below
        samples = np.pad(samples, (WINDOW_SAMPLES - len(samples), 0))
        samples = (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)  # Whisper's do_normalize
        torch = self._torch
        with torch.inference_mode():
            frames = torch.stft(torch.from_numpy(samples), N_FFT, HOP, window=self._window, return_complex=True)
            power = frames[..., :-1].abs() ** 2  # Whisper drops the last frame
            log_mel = (self._mel_filters @ power).clamp(min=1e-10).log10()
            return ((torch.maximum(log_mel, log_mel.max() - 8.0) + 4.0) / 4.0).numpy()

    def _score(self, audio: np.ndarray) -> float:
        with self._compute.job(urgent=True).slot():
            self._compute.assert_held()
            (probability,) = self._session.run(None, {"input_features": self.features(audio)[np.newaxis]})
        return float(np.asarray(probability).ravel()[0])
