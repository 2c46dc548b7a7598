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


async def test_every_written_word_comes_with_its_start_where_its_sound_begins(tts):
    text = "The ferry leaves at 9:30, costs $9 — and, after a pause, arrives."
    chunks = [c async for c in tts.stream(text, EmotionSettings())]
    offsets = np.cumsum([0.0] + [c.duration for c in chunks])
    timed = [(w.text, offset + w.start) for c, offset in zip(chunks, offsets, strict=False) for w in c.words]
    assert [word for word, _ in timed] == text.split()  # "9:30" and "$9" are two spoken words each
    starts = [start for _, start in timed]
    assert starts == sorted(starts) and starts[-1] < offsets[-1]
    # a word after a pause starts where the sound comes back (measured: within ±50 ms, median -5 ms)
    audio, rate = np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate
    after_pause = dict(timed)["after"]
    window = rate // 200
    loud = [
        i * window / rate for i in range(len(audio) // window) if rms_dbfs(audio[i * window : (i + 1) * window]) > -35
    ]
    onset = next(t for t in loud if t > after_pause - 0.08)
    assert abs(onset - after_pause) < 0.06
