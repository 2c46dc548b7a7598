"""How Piper says each emotion: pace, intonation and loudness from the backend-neutral sliders."""

from tara.core.emotion import EmotionSettings, reply_emotion
from tara.core.stages.tts.piper import piper_style, rate_for_pace


def test_neutral_is_pipers_default():
    style = piper_style(EmotionSettings.from_preset("neutral"))
    assert style.length_scale == 1.0 and abs(style.noise_scale - 0.67) < 0.01 and style.noise_w_scale == 0.8


def test_presets_are_heard():
    calm, excited = (
        piper_style(EmotionSettings.from_preset("calm")),
        piper_style(EmotionSettings.from_preset("excited")),
    )
    assert calm.length_scale > 1.0 > excited.length_scale  # calm speaks slower
    assert calm.noise_scale < excited.noise_scale


def test_sliders_are_monotonic():
    base = EmotionSettings.from_preset("neutral")
    assert piper_style(base.with_sliders(rate=0.1)).length_scale > piper_style(base.with_sliders(rate=0.9)).length_scale
    quiet, loud = piper_style(base.with_sliders(energy=0.0)), piper_style(base.with_sliders(energy=1.0))
    assert quiet.volume < loud.volume <= 1.0


def test_auto_answers_worry_more_slowly():
    assert piper_style(reply_emotion(EmotionSettings.from_preset("auto"), "anxious")).length_scale > 1.0


def test_a_pace_is_the_rate_that_gives_its_length_scale():
    neutral = EmotionSettings.from_preset("neutral")
    assert rate_for_pace(1.0) == neutral.rate
    assert piper_style(neutral.with_sliders(rate=rate_for_pace(0.8))).length_scale == 1.25  # a fifth slower
