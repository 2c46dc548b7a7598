"""Smart Turn v3.2 on recorded phrases: finished requests, and requests cut off mid-sentence.

The WAVs in ``tests/fixtures/turns`` were made once with ``tara/tools/spoken.py`` (Piper and espeak-ng
voices): the whole sentence spoken, cut at a word boundary for the unfinished ones (so the voice has not
fallen as at a sentence's end), 0.2 s of quiet on either side, as the listener hands the model the audio
up to a pause. Smart Turn judges synthetic voices less surely than people; these are clear cases.
"""

from pathlib import Path

import numpy as np
import pytest

from tara.core.audio import read_audio
from tara.core.concurrency import Compute
from tara.core.stages.endpointing import smart_turn
from tara.core.stages.endpointing.policy import EndOfTurnPolicy
from tara.core.stages.endpointing.settings import SmartTurnEndpointing
from tara.core.stages.endpointing.smart_turn import WINDOW_SAMPLES, SmartTurn

TURNS = Path(__file__).parents[4] / "fixtures" / "turns"
SETTINGS = SmartTurnEndpointing()


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    return SmartTurn(SETTINGS, Compute())


@pytest.mark.parametrize("clip", sorted(TURNS.glob("*.wav")), ids=lambda path: path.stem)
async def test_finished_requests_end_fast_and_unfinished_ones_wait(model: SmartTurn, clip: Path):
    probability = await model.probability_done(read_audio(clip))
    assert probability is not None
    policy = EndOfTurnPolicy(SETTINGS)
    if clip.name.startswith("finished"):
        assert probability >= SETTINGS.done_probability
        assert policy.silence_needed_ms("Is that all?", probability) == SETTINGS.done_silence_ms
    else:
        assert probability <= SETTINGS.unfinished_probability
        assert policy.silence_needed_ms("Is that all?", probability) == SETTINGS.incomplete_silence_ms


def test_its_features_are_whispers_log_mel_of_the_last_eight_seconds(model: SmartTurn):
    """faster-whisper's extractor, normalised, equals transformers' (which pipecat's own copy mirrors)."""
    from transformers import WhisperFeatureExtractor

    audio = read_audio(TURNS / "finished-piper-what-sundays.wav").astype(np.float32) / 32768.0
    padded = np.pad(audio, (WINDOW_SAMPLES - len(audio), 0))
    reference = WhisperFeatureExtractor(chunk_length=8)(
        padded, sampling_rate=16000, do_normalize=True, return_tensors="np"
    ).input_features[0]
    assert np.abs(model.features(audio) - reference).max() < 1e-4


async def test_a_failing_model_leaves_the_decision_to_the_words(model: SmartTurn, monkeypatch):
    monkeypatch.setattr(model, "_session", None)  # any call fails
    assert await model.probability_done(np.zeros(16000, dtype=np.int16)) is None


def test_a_model_file_that_is_not_the_pinned_one_is_refused(monkeypatch):
    monkeypatch.setattr(smart_turn, "MODEL_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="reinstall tara"):
        SmartTurn(SETTINGS, Compute())
