import pytest

from tara.core.emotion import AUTO_REPLIES, CHOICES, PRESETS, EmotionSettings, reply_emotion
from tara.core.emotion.prosody import LABELS


def test_every_preset_is_available():
    assert set(PRESETS) == {"neutral", "calm", "warm", "cheerful", "excited", "serious"}


def test_neutral_needs_no_style_note():
    assert EmotionSettings.from_preset("neutral").style_instruction() == ""


def test_presets_steer_the_llm():
    calm, excited = EmotionSettings.from_preset("calm"), EmotionSettings.from_preset("excited")
    assert "calm" in calm.style_instruction()
    assert "excited" in excited.style_instruction()
    assert "warm" in EmotionSettings.from_preset("warm").style_instruction()
    assert "serious" in EmotionSettings.from_preset("serious").style_instruction()


def test_sliders_are_monotonic_and_validated():
    base = EmotionSettings.from_preset("neutral")
    slow = base.with_sliders(rate=0.1)
    assert slow.rate == 0.1 and slow.preset == "custom"
    assert base.with_sliders(warmth=0.6, energy=0.2, rate=0.25).preset == "calm"
    with pytest.raises(ValueError):
        base.with_sliders(rate=1.5)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown emotion preset 'angry'"):
        EmotionSettings.from_preset("angry")


def test_auto_answers_the_users_mood():
    auto = EmotionSettings.from_preset("auto")
    anxious = reply_emotion(auto, "anxious")
    assert anxious.preset == "calm"
    assert "warm" in anxious.style_instruction() and "calm" in anxious.style_instruction()
    assert anxious.rate < 0.5  # slower
    assert reply_emotion(auto, "excited").preset == reply_emotion(auto, "happy").preset == "cheerful"
    assert reply_emotion(auto, "sad").preset == "warm" and reply_emotion(auto, "sad").energy < 0.5
    assert reply_emotion(auto, "frustrated").preset == "calm"
    assert reply_emotion(auto, "neutral") == PRESETS["neutral"] == reply_emotion(auto, None)
    assert set(AUTO_REPLIES) == set(LABELS)


def test_a_manual_choice_always_wins_over_auto():
    auto = EmotionSettings.from_preset("auto")
    assert reply_emotion(EmotionSettings.from_preset("serious"), "anxious").preset == "serious"
    moved = auto.with_sliders(energy=0.9)  # a slider moved while in auto: a manual custom setting
    assert moved.preset == "custom" and reply_emotion(moved, "sad") == moved
    assert auto.with_sliders(energy=0.5).preset == "neutral"
    assert "auto" in CHOICES and "auto" not in PRESETS  # a choice for people, not a voice preset
