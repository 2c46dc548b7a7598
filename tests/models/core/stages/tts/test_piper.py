import numpy as np
import pytest

from tara.core.audio import rms_dbfs
from tara.core.concurrency import Compute
from tara.core.emotion import EmotionSettings
from tara.core.stages.tts.piper import PiperTTS


@pytest.fixture(scope="module")
def tts(config):
    return PiperTTS(config.tts, config.data_path, Compute())


async def synthesize(tts, text, preset="neutral") -> np.ndarray:
    chunks = [c async for c in tts.stream(text, EmotionSettings.from_preset(preset))]
    assert chunks and all(c.sample_rate == tts.sample_rate for c in chunks)
    return np.concatenate([c.samples for c in chunks])


async def test_speaks_a_sentence(tts):
    audio = await synthesize(tts, "Hello, I am Tara.")
    assert tts.sample_rate == 22050
    assert 0.5 < len(audio) / tts.sample_rate < 3.0
    assert rms_dbfs(audio) > -35


async def test_emotion_changes_rate_and_energy(tts):
    text = "The library opens at nine in the morning on weekdays."
    calm, neutral, excited = [await synthesize(tts, text, p) for p in ("calm", "neutral", "excited")]
    assert len(calm) > len(neutral) * 1.08 and len(neutral) > len(excited) * 1.1  # slower .. faster
    assert rms_dbfs(calm) < rms_dbfs(excited)
