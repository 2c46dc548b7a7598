import pytest

from agent.emotion import PRESETS, EmotionSettings


def test_every_preset_is_available():
    assert set(PRESETS) == {"neutral", "calm", "warm", "cheerful", "excited", "serious"}


def test_neutral_is_piper_default_and_needs_no_style_note():
    neutral = EmotionSettings.from_preset("neutral")
    style = neutral.piper()
    assert style.length_scale == 1.0 and abs(style.noise_scale - 0.67) < 0.01 and style.noise_w_scale == 0.8
    assert neutral.style_instruction() == ""


def test_presets_steer_both_llm_and_voice():
    calm, excited = EmotionSettings.from_preset("calm"), EmotionSettings.from_preset("excited")
    assert calm.piper().length_scale > 1.0 > excited.piper().length_scale  # calm speaks slower
    assert calm.piper().noise_scale < excited.piper().noise_scale
    assert "calm" in calm.style_instruction()
    assert "excited" in excited.style_instruction()
    assert "warm" in EmotionSettings.from_preset("warm").style_instruction()
    assert "serious" in EmotionSettings.from_preset("serious").style_instruction()


def test_sliders_are_monotonic_and_validated():
    base = EmotionSettings.from_preset("neutral")
    slow, fast = base.with_sliders(rate=0.1), base.with_sliders(rate=0.9)
    assert slow.piper().length_scale > fast.piper().length_scale
    assert base.with_sliders(energy=0.0).piper().volume < base.with_sliders(energy=1.0).piper().volume <= 1.0
    assert slow.preset == "custom"
    assert base.with_sliders(warmth=0.6, energy=0.2, rate=0.25).preset == "calm"
    with pytest.raises(ValueError):
        base.with_sliders(rate=1.5)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown emotion preset 'angry'"):
        EmotionSettings.from_preset("angry")
