"""Emotion -> CSM sampling (no torch needed)."""

import pytest

from tara.core.emotion import PRESETS, EmotionSettings
from tara.core.stages.tts.csm.sampling import PRESET_SAMPLING, Sampling, sampling_for


@pytest.mark.parametrize(
    "preset, expected",
    [("cheerful", Sampling(0.8, 30)), ("calm", Sampling(0.5, 20)), ("excited", Sampling(0.9, 35))],
)
def test_seed_mapping(preset, expected):
    assert sampling_for(EmotionSettings.from_preset(preset)) == expected


def test_every_preset_has_its_own_point():
    assert set(PRESET_SAMPLING) == set(PRESETS)


def test_sliders_move_sampling_smoothly_with_energy():
    base = EmotionSettings()
    points = [sampling_for(base.with_sliders(energy=e)) for e in (0.0, 0.3, 0.6, 0.8, 1.0)]
    assert [p.temperature for p in points] == sorted(p.temperature for p in points)
    assert [p.top_k for p in points] == sorted(p.top_k for p in points)
    assert points[0] == PRESET_SAMPLING["calm"] and points[-1] == PRESET_SAMPLING["excited"]  # clamped at the ends
    assert 0.8 < points[3].temperature < 0.9  # between cheerful and excited
