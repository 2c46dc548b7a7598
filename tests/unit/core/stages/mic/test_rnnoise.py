"""RNNoise as a mic filter: whole 10 ms frames in and out, silence kept silent, steady noise taken out."""

import importlib.util
import threading

import numpy as np
import pytest

from tara.core.audio import rms_dbfs
from tara.core.config import AudioConfig
from tara.core.sections import ConfigError
from tara.core.stages.mic import FRAME, MIC_RATE, MicChain, new_mic_chain, rnnoise
from tara.core.stages.mic.rnnoise import RNNoiseFilter
from tests.fakes import ScriptedLLM, fake_stack


def fan_noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    """Brown noise (a fan's low rumble) at ``dbfs``."""
    noise = np.cumsum(np.random.default_rng(seed).normal(size=int(seconds * MIC_RATE)))
    noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    noise *= 32768 * 10 ** (dbfs / 20) / np.sqrt(np.mean(noise**2))
    return noise.astype(np.int16)


def test_a_frame_in_is_a_frame_out() -> None:
    out = RNNoiseFilter().process(fan_noise(0.01, -30))
    assert out.dtype == np.int16 and out.shape == (FRAME,)


def test_silence_stays_silence() -> None:
    chain = MicChain([RNNoiseFilter()])
    out = chain.process(np.zeros(MIC_RATE, dtype=np.int16))
    assert len(out) == MIC_RATE and np.abs(out).max() <= 1


def test_steady_noise_is_taken_out() -> None:
    noise = fan_noise(3.0, -30)
    out = MicChain([RNNoiseFilter()]).process(noise)
    settled = slice(MIC_RATE, None)  # after a second of learning the room
    assert rms_dbfs(out[settled]) < rms_dbfs(noise[settled]) - 15


def test_each_call_gets_its_own_state() -> None:
    first, second = new_mic_chain(AudioConfig(denoise="rnnoise")), new_mic_chain(AudioConfig(denoise="rnnoise"))
    assert [type(f) for f in first.filters] == [RNNoiseFilter]
    assert first.filters[0] is not second.filters[0]
    assert new_mic_chain(AudioConfig()).filters == []  # off by default


async def test_the_chain_cleans_off_the_event_loop() -> None:
    seen: list[str] = []

    class Where:
        def process(self, frame: np.ndarray) -> np.ndarray:
            seen.append(threading.current_thread().name)
            return frame

    noise = fan_noise(0.1, -30)
    denoised = MicChain([RNNoiseFilter()]).process(noise)
    assert np.array_equal(await MicChain([RNNoiseFilter(), Where()]).clean(noise), denoised)
    assert seen and all(name.startswith("tara-mic") for name in seen)


def test_a_missing_library_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"audio\.denoise.*pip install --no-deps pyrnnoise"):
        rnnoise._library_path()


def test_the_stack_gives_each_call_the_configured_chain(config) -> None:
    denoising = config.model_copy(update={"audio": AudioConfig(denoise="rnnoise")})
    stack = fake_stack(denoising, ScriptedLLM("Hi."))
    first, second = stack.new_mic_chain(), stack.new_mic_chain()
    assert isinstance(first.filters[0], RNNoiseFilter) and first.filters[0] is not second.filters[0]
