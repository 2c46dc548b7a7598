"""Voice activity detection: a model that scores each window, and the endpointer that turns scores into events.

The *model* (``vad.backend``; Silero, ONNX) only says how likely a 32 ms window is speech. The
``Endpointer`` owns the decisions: onset, start, a *pause* once speech has stopped for ``pause_ms``, a
*resume* if it comes back before the turn ends, and the end. The listener transcribes on the pause and,
from what was said, may set how much silence ends this turn (``set_end_silence``). Kept apart, the
endpointer's rules are tested with a scripted model (``tests/fakes.py``) and any model can drive them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np

from tara.core.audio import PIPELINE_RATE, rms_dbfs
from tara.core.config import VADConfig
from tara.core.registry import Registry

WINDOW = 512  # Silero takes exactly 512 samples (32 ms) per call at 16 kHz


class VADKind(str, enum.Enum):
    ONSET = "onset"  # a window of speech: maybe the start of an utterance (not yet ``min_speech_ms``)
    ONSET_LOST = "onset_lost"  # ...it was not: the run of speech stopped short of an utterance
    START = "speech_start"
    PAUSE = "pause"
    RESUME = "resume"
    END = "speech_end"


@dataclass(frozen=True)
class VADEvent:
    kind: VADKind
    sample: int  # position in the stream fed so far (16 kHz samples); START is padded back, END forward


class VADModel(Protocol):
    """Speech probability per ``WINDOW`` of 16 kHz audio; may keep state between windows of one stream."""

    def probability(self, window: np.ndarray) -> float: ...

    def reset(self) -> None: ...


class SileroVAD:
    """One per audio stream: the ONNX model carries recurrent state between windows."""

    def __init__(self, config: VADConfig) -> None:
        import torch
        from silero_vad import load_silero_vad
        from silero_vad.utils_vad import OnnxWrapper

        threads = torch.get_num_threads()
        # (unannotated: its return type is inferred as any of its three models; onnx=True gives this one)
        self._model = cast(OnnxWrapper, load_silero_vad(onnx=True))
        torch.set_num_threads(threads)  # importing silero_vad sets 1 thread process-wide
        self._torch = torch

    def probability(self, window: np.ndarray) -> float:
        return float(self._model(self._torch.from_numpy(window.astype(np.float32) / 32768.0), PIPELINE_RATE))

    def reset(self) -> None:
        self._model.reset_states()


class Endpointer:
    """Onset, start, pause, resume and end of speech in one stream, from a ``VADModel``'s scores."""

    def __init__(self, model: VADModel, config: VADConfig) -> None:
        self._model = model
        self.config = config
        self._pending = np.zeros(0, dtype=np.int16)
        self._position = 0
        self._in_speech = False
        self._speech_run = 0
        self._silence_start: int | None = None
        self._paused = False
        self.last_probability = 0.0
        self.threshold, self.min_speech_ms, self.pause_ms = config.threshold, config.min_speech_ms, config.pause_ms
        self.start_pad_ms = config.start_pad_ms
        self.min_level_dbfs: float | None = None
        self._end_silence_ms: int | None = None  # this utterance's end-of-turn silence, if the listener set one

    def set_sensitivity(
        self,
        threshold: float | None = None,
        min_speech_ms: int | None = None,
        min_level_dbfs: float | None = None,
        pause_ms: int | None = None,
        start_pad_ms: int | None = None,
    ) -> None:
        """Demand more (or, with no arguments, the configured) evidence before speech starts or pauses.

        The session raises all of them while the agent talks, so leaked echo of its own voice is not the
        user. The level gate matters most: Silero scores speech as speech down to about -60 dBFS, so
        quiet echo passes any probability threshold, while a voice close to the mic is far louder. A
        longer pause keeps the gaps between the echo's words from each starting a transcript to judge,
        and a shorter start pad keeps the echo before the user's first word out of what is judged.
        """
        self.threshold = threshold if threshold is not None else self.config.threshold
        self.min_speech_ms = min_speech_ms if min_speech_ms is not None else self.config.min_speech_ms
        self.min_level_dbfs = min_level_dbfs
        self.pause_ms = pause_ms if pause_ms is not None else self.config.pause_ms
        self.start_pad_ms = start_pad_ms if start_pad_ms is not None else self.config.start_pad_ms

    def set_end_silence(self, ms: int | None) -> None:
        """Silence that ends the current utterance (None: ``min_silence_ms``); cleared when speech resumes."""
        self._end_silence_ms = ms

    def reset(self) -> None:
        self._model.reset()
        self._pending = np.zeros(0, dtype=np.int16)
        self._in_speech, self._speech_run, self._silence_start = False, 0, None
        self._end_silence_ms = None

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def feed(self, pcm16k: np.ndarray) -> list[VADEvent]:
        """Feed mono int16 audio at 16 kHz of any length; returns the events it completed."""
        self._pending = np.concatenate([self._pending, pcm16k.astype(np.int16, copy=False)])
        events: list[VADEvent] = []
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            events.extend(self._step(window))
        return events

    def _ms(self, ms: int) -> int:
        return ms * PIPELINE_RATE // 1000

    def _step(self, window: np.ndarray) -> list[VADEvent]:
        prob = self._model.probability(window)  # always run: the model keeps state across windows
        if self.min_level_dbfs is not None and rms_dbfs(window) < self.min_level_dbfs:
            prob = 0.0
        self.last_probability = prob
        start_of_window = self._position
        self._position += WINDOW
        cfg, threshold = self.config, self.threshold
        if not self._in_speech:
            was_running = self._speech_run > 0
            self._speech_run = self._speech_run + WINDOW if prob >= threshold else 0
            if self._speech_run >= max(self._ms(self.min_speech_ms), WINDOW):
                self._in_speech, self._silence_start = True, None
                begin = self._position - self._speech_run - self._ms(self.start_pad_ms)
                return [VADEvent(VADKind.START, max(0, begin))]
            if self._speech_run and not was_running:
                return [VADEvent(VADKind.ONSET, start_of_window)]
            if was_running and not self._speech_run:
                return [VADEvent(VADKind.ONSET_LOST, start_of_window)]
            return []
        if prob >= threshold:
            resumed = self._silence_start is not None and self._paused
            self._silence_start, self._paused = None, False
            if resumed:
                self._end_silence_ms = None  # judged on words that are no longer the last ones
            return [VADEvent(VADKind.RESUME, start_of_window)] if resumed else []
        if prob < threshold - 0.15 and self._silence_start is None:
            self._silence_start, self._paused = start_of_window, False
        if self._silence_start is None:
            return []
        silence = self._position - self._silence_start
        end = self._silence_start + self._ms(cfg.end_pad_ms)
        if silence >= self._ms(self._end_silence_ms or cfg.min_silence_ms):
            self._in_speech, self._speech_run, self._silence_start = False, 0, None
            self._end_silence_ms = None
            return [VADEvent(VADKind.END, end)]
        if silence >= self._ms(self.pause_ms) and not self._paused:
            self._paused = True
            return [VADEvent(VADKind.PAUSE, end)]
        return []


VAD_BACKENDS: Registry[VADModel] = Registry("vad.backend", {"silero": "tara.core.stages.vad:SileroVAD"})


def new_endpointer(config: VADConfig) -> Endpointer:
    """An endpointer on a fresh model of ``vad.backend``: one per audio stream."""
    return Endpointer(VAD_BACKENDS.create(config.backend, config), config)
