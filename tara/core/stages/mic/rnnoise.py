"""RNNoise noise suppression (``audio.denoise: rnnoise``): fans, keyboards and room hum out of the mic.

RNNoise (Xiph, BSD-3) is a small recurrent network over band energies that takes exactly one 10 ms
frame of 48 kHz audio per call, the frames ``MicChain`` hands out. Its model is compiled into the
``librnnoise.so`` that the ``pyrnnoise`` wheel ships. The library is called here directly through
ctypes rather than through the package: importing ``pyrnnoise`` imports ``audiolab`` (file I/O with
requests, smart_open, soundfile, soxr, jinja2), ``tqdm`` and ``matplotlib``, none of which a frame
filter needs, so the wheel is installed with ``--no-deps`` (see the Makefile) and only its library is used.

Cost: 0.36 ms per frame of noisy speech on one core of the 2-core development box (0.07 ms on
silence), i.e. about 4 % of a core per caller: not tiny enough for the event loop (0.8 ms of every
20 ms packet, per caller), so ``MicChain.clean`` runs the chain on its own thread (ctypes lets go of
the GIL during the call) and the loop spends 66 us a packet handing it over. The output lags the input
by two frames (20 ms, measured): RNNoise's analysis window and look-ahead.

Off by default: through WebRTC it made whisper mishear espeak questions more, clean and in noise
(``tara bench --wer``; README, "Noise suppression").
"""

from __future__ import annotations

import ctypes
import importlib.util
import weakref
from pathlib import Path

import numpy as np

from tara.core.sections import ConfigError
from tara.core.stages.mic import FRAME

PACKAGE = "pyrnnoise"
INSTALL = "pip install --no-deps pyrnnoise==0.4.5"
LIBRARY_NAMES = ("librnnoise.so", "librnnoise.dylib", "rnnoise.dll")  # the wheel's, per platform


def _library_path() -> Path:
    """The wheel's library, found without importing the package (its ``__init__`` pulls audiolab)."""
    spec = importlib.util.find_spec(PACKAGE)
    folder = next(iter(spec.submodule_search_locations or ()), None) if spec is not None else None
    found = [Path(folder, name) for name in LIBRARY_NAMES if folder and Path(folder, name).is_file()]
    if not found:
        raise ConfigError(f"audio.denoise: rnnoise needs the {PACKAGE} wheel's librnnoise ({INSTALL})")
    return found[0]


def _load() -> ctypes.CDLL:
    library = ctypes.CDLL(str(_library_path()))
    library.rnnoise_create.argtypes = [ctypes.c_void_p]
    library.rnnoise_create.restype = ctypes.c_void_p
    library.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    library.rnnoise_destroy.restype = None
    library.rnnoise_get_frame_size.restype = ctypes.c_int
    # (state, out, in): float samples on the int16 scale; returns the frame's speech probability
    library.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    library.rnnoise_process_frame.restype = ctypes.c_float
    if library.rnnoise_get_frame_size() != FRAME:
        raise ConfigError(f"audio.denoise: this librnnoise takes {library.rnnoise_get_frame_size()}-sample frames")
    return library


_LIBRARY = _load()  # at import: a missing or unusable library stops Tara at start (``load_stack`` imports it)


class RNNoiseFilter:
    """One stream's RNNoise state (its recurrent memory of the room): one per call, never shared."""

    def __init__(self) -> None:
        state = _LIBRARY.rnnoise_create(None)
        if not state:
            raise MemoryError("rnnoise_create failed")
        self._state = state
        self._input = np.zeros(FRAME, dtype=np.float32)
        self._output = np.zeros(FRAME, dtype=np.float32)
        self.speech_probability = 0.0  # RNNoise's own voice activity estimate for the last frame
        weakref.finalize(self, _LIBRARY.rnnoise_destroy, state)

    def process(self, frame: np.ndarray) -> np.ndarray:
        self._input[:] = frame
        self.speech_probability = _LIBRARY.rnnoise_process_frame(
            self._state, self._output.ctypes.data, self._input.ctypes.data
        )
        return np.clip(np.rint(self._output), -32768, 32767).astype(np.int16)
