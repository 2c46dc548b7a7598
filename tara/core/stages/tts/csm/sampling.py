"""How an emotion setting becomes CSM's sampling: hotter and wider for energy, cooler and narrower for calm.

CSM has no style input; its delivery follows the prompt it hears and how adventurously it samples.
Each preset has a (temperature, top-k) point; custom sliders interpolate along ``energy`` between
the presets, so moving a slider changes the voice smoothly and a preset always gets its own values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tara.core.emotion import PRESETS, EmotionSettings


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_k: int


PRESET_SAMPLING: dict[str, Sampling] = {
    "calm": Sampling(0.5, 20),
    "serious": Sampling(0.6, 20),
    "warm": Sampling(0.7, 25),
    "neutral": Sampling(0.7, 25),
    "cheerful": Sampling(0.8, 30),
    "excited": Sampling(0.9, 35),
}

_BY_ENERGY = sorted((PRESETS[name].energy, value) for name, value in PRESET_SAMPLING.items())


def sampling_for(emotion: EmotionSettings) -> Sampling:
    if emotion.preset in PRESET_SAMPLING:
        return PRESET_SAMPLING[emotion.preset]
    energies = [energy for energy, _ in _BY_ENERGY]
    temperature = np.interp(emotion.energy, energies, [s.temperature for _, s in _BY_ENERGY])
    top_k = np.interp(emotion.energy, energies, [s.top_k for _, s in _BY_ENERGY])
    return Sampling(round(float(temperature), 3), int(round(float(top_k))))
