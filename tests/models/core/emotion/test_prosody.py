"""Prosody from generated speech: espeak-ng and Piper renditions that differ in one known way each."""

import time

import numpy as np
import pytest

from tara.core.audio import PIPELINE_RATE
from tara.core.concurrency import Compute
from tara.core.emotion import EmotionSettings
from tara.core.emotion.prosody import (
    HIGH_AROUSAL,
    Baseline,
    ProsodyFeatures,
    analyze,
    count_syllables,
    estimate_emotion,
)
from tara.core.stages.tts import TTS_BACKENDS

QUESTION = "I would like to know when the observatory opens for visitors, and how much a ticket costs."
USUAL = [  # a user's ordinary questions, to learn their usual from
    "Can you tell me when the ferry leaves for the island in the morning?",
    "How long does the crossing take, and is there a cafe on board?",
    "What is the name of the big telescope at the observatory on the hill?",
]


@pytest.fixture(scope="module")
def renditions(tmp_path_factory):
    """espeak-ng renditions of QUESTION: default, and one setting changed at a time."""
    from tests.conftest import speak

    folder = tmp_path_factory.mktemp("espeak")
    settings = {
        "base": {},
        "fast": {"speed": 230},
        "slow": {"speed": 110},
        "high": {"pitch": 85},
        "low": {"pitch": 15},
        "loud": {"amplitude": 200},
        "quiet": {"amplitude": 40},
    }
    return {
        name: analyze(speak(QUESTION, folder / f"{name}.wav", **kw), PIPELINE_RATE, QUESTION)
        for name, kw in settings.items()
    }


def test_faster_louder_higher_score_higher_on_their_own_feature(renditions):
    r = renditions
    assert r["fast"].syllables_per_s > 1.25 * r["base"].syllables_per_s > 1.25 * r["slow"].syllables_per_s
    assert r["loud"].rms_db > r["base"].rms_db + 4 > r["quiet"].rms_db + 8
    assert r["high"].f0_median_hz > 1.2 * r["base"].f0_median_hz > 1.2 * r["low"].f0_median_hz
    # a change in one respect leaves the others where they were
    assert abs(r["fast"].f0_median_hz - r["base"].f0_median_hz) < 5
    assert abs(r["high"].syllables_per_s - r["base"].syllables_per_s) < 0.3
    assert abs(r["loud"].f0_median_hz - r["base"].f0_median_hz) < 5


def test_features_are_plausible_for_speech(renditions):
    base = renditions["base"]
    assert 3.0 < base.syllables_per_s < 7.0 and 2.0 < base.words_per_s < 5.0
    assert 4.0 < base.speech_s <= base.duration_s
    assert 0.4 < base.voiced_ratio <= 1.0
    assert 60 < base.f0_median_hz < 200 and 0.5 < base.f0_range_semitones < 12
    assert renditions["slow"].speech_s > base.speech_s


def test_pauses_are_counted(voice):
    one = voice("The ferry leaves at ten.", lead_silence=0.3)
    two = voice("It takes forty minutes.", lead_silence=0.0)
    joined = np.concatenate([one, np.zeros(int(0.6 * PIPELINE_RATE), dtype=np.int16), two])
    features = analyze(joined, PIPELINE_RATE)
    assert features.pause_count >= 1 and features.pause_ratio > 0.1
    assert features.syllables_per_s is None  # no transcript, no rate


@pytest.fixture(scope="module")
def piper(config):
    """``await piper(emotion)`` -> the features of Piper saying QUESTION that way."""
    tts = TTS_BACKENDS.create(config.tts.backend, config.tts, config.data_path, compute=Compute())

    async def measure(emotion: EmotionSettings) -> ProsodyFeatures:
        chunks = [c async for c in tts.stream(QUESTION, emotion)]
        return analyze(np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate, QUESTION)

    return measure


async def test_piper_faster_and_louder_settings_measure_faster_and_louder(piper):
    measure, neutral = piper, EmotionSettings.from_preset("neutral")
    slow, fast = await measure(neutral.with_sliders(rate=0.2)), await measure(neutral.with_sliders(rate=0.9))
    quiet, loud = await measure(neutral.with_sliders(energy=0.1)), await measure(neutral.with_sliders(energy=1.0))
    assert fast.syllables_per_s > 1.15 * slow.syllables_per_s
    assert loud.rms_db > quiet.rms_db + 4


async def test_piper_presets_move_arousal_against_neutral_renditions(piper):
    baseline = Baseline()
    for _ in range(3):  # Piper draws random durations: its usual has a spread
        baseline.add(await piper(EmotionSettings.from_preset("neutral")))
    calm, excited = [
        estimate_emotion(await piper(EmotionSettings.from_preset(name)), baseline, QUESTION)
        for name in ("calm", "excited")
    ]
    assert calm.arousal < -0.4 and excited.arousal > 0.4 and excited.arousal - calm.arousal > 1.2
    assert any("slower" in r for r in calm.reasons) and any("faster" in r for r in excited.reasons)


def test_labels_move_with_the_voice_relative_to_the_usual(tmp_path):
    from tests.conftest import speak

    baseline = Baseline()
    for i, text in enumerate(USUAL):
        baseline.add(analyze(speak(text, tmp_path / f"usual{i}.wav"), PIPELINE_RATE, text))

    def judge(name: str, **espeak):
        features = analyze(speak(QUESTION, tmp_path / f"{name}.wav", **espeak), PIPELINE_RATE, QUESTION)
        return estimate_emotion(features, baseline, QUESTION)

    usual = judge("usual", speed=160)
    raised = judge("raised", speed=230, pitch=85, amplitude=200)
    subdued = judge("subdued", speed=110, pitch=20, amplitude=40)
    assert usual.label == "neutral" and abs(usual.arousal) < HIGH_AROUSAL
    assert raised.label in ("excited", "anxious") and raised.arousal > HIGH_AROUSAL
    assert subdued.label in ("calm", "sad") and subdued.arousal < -HIGH_AROUSAL
    assert subdued.arousal < usual.arousal < raised.arousal
    assert raised.confidence > 0.5 and raised.reasons


def test_words_tell_apart_what_the_voice_cannot(tmp_path):
    from tests.conftest import speak

    baseline = Baseline()
    for i, text in enumerate(USUAL):
        baseline.add(analyze(speak(text, tmp_path / f"usual{i}.wav"), PIPELINE_RATE, text))
    worried = "I'm really worried, I think I missed the last ferry, please help me."
    sad = "Unfortunately my dog died last week and I feel so alone."
    raised = analyze(
        speak(worried, tmp_path / "worried.wav", speed=230, pitch=85, amplitude=200), PIPELINE_RATE, worried
    )
    low = analyze(speak(sad, tmp_path / "sad.wav", speed=110, pitch=20, amplitude=40), PIPELINE_RATE, sad)
    assert estimate_emotion(raised, baseline, worried).label == "anxious"
    assert estimate_emotion(low, baseline, sad).label == "sad"


@pytest.mark.parametrize(
    "text, label",
    [
        ("How long is the warranty on the kettle?", "neutral"),
        ("Ugh, this is ridiculous, the app still not working.", "frustrated"),
        ("Wow, that's amazing, I can't wait!", "excited"),
        ("Thanks, that's great.", "happy"),
        ("I'm worried I missed the ferry, please help me.", "anxious"),
    ],
)
def test_typed_text_is_judged_by_its_words(text, label):
    estimate = estimate_emotion(None, None, text)
    assert estimate.label == label and estimate.arousal == 0.0


def test_first_utterance_has_no_usual_to_compare_with(renditions):
    estimate = estimate_emotion(renditions["loud"], Baseline(), QUESTION)
    assert estimate.label == "neutral" and estimate.arousal == 0.0


def test_silence_and_tiny_clips_measure_as_nothing_without_errors():
    silent = analyze(np.zeros(PIPELINE_RATE, dtype=np.int16), PIPELINE_RATE, "hello")
    assert silent.speech_s == 0 and silent.f0_median_hz is None and silent.syllables_per_s is None
    assert analyze(np.zeros(10, dtype=np.int16), PIPELINE_RATE).speech_s == 0
    assert estimate_emotion(silent, Baseline(), "").label == "neutral"


@pytest.mark.parametrize(
    "word, syllables",
    [("the", 1), ("time", 1), ("table", 2), ("observatory", 5), ("visitors", 3), ("ferry", 2), ("42", 2)],
)
def test_syllable_rule(word, syllables):
    assert count_syllables(word) == syllables


def test_analysis_is_fast_enough_to_hide_behind_retrieval(renditions, tmp_path):
    from tests.conftest import speak

    audio = speak(USUAL[0], tmp_path / "timing.wav")  # about 3 s
    analyze(audio, PIPELINE_RATE, USUAL[0])
    started = time.perf_counter()
    for _ in range(5):
        analyze(audio, PIPELINE_RATE, USUAL[0])
    assert (time.perf_counter() - started) / 5 < 0.15
