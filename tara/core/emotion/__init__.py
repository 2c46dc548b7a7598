"""Emotion: one settings object that steers both what the LLM says and how the TTS says it.

Sliders run from 0 to 1 with 0.5 as neutral. What they mean to a voice is each TTS backend's to say
(Piper's ``piper_style``, CSM's ``sampling_for``); here live only the sliders, the presets and the LLM's
style note. Presets are named slider positions; moving a slider
keeps the preset's name only while the values still match it.

The ``auto`` preset leaves the choice to the session: each reply takes its emotion from how the
user sounded (``reply_emotion``). Any manual preset or slider move replaces it, so a person's own
choice always wins. Outside a session (``tara say``) auto speaks as neutral.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

AUTO = "auto"


class EmotionSettings(BaseModel):
    preset: str = "neutral"
    warmth: float = Field(default=0.5, ge=0.0, le=1.0)
    energy: float = Field(default=0.5, ge=0.0, le=1.0)
    rate: float = Field(default=0.5, ge=0.0, le=1.0)

    @classmethod
    def from_preset(cls, name: str) -> EmotionSettings:
        if name not in CHOICES:
            raise ValueError(f"unknown emotion preset {name!r}; choose one of {', '.join(CHOICES)}")
        return CHOICES[name].model_copy()

    def with_sliders(self, **sliders: float) -> EmotionSettings:
        """Return a copy with some sliders moved (validated)."""
        values: dict[str, Any] = self.model_dump() | sliders
        values["preset"] = "custom"
        updated = EmotionSettings(**values)
        for name, preset in PRESETS.items():
            if preset.sliders() == updated.sliders():
                return preset.model_copy()
        return updated

    def sliders(self) -> tuple[float, float, float]:
        return (self.warmth, self.energy, self.rate)

    def style_instruction(self) -> str:
        """A short style note for the LLM; empty when neutral, so neutral prompts stay minimal."""
        traits: list[str] = []
        if self.warmth >= 0.7:
            traits.append("warm and caring")
        elif self.warmth <= 0.3:
            traits.append("matter-of-fact and serious")
        if self.energy >= 0.8:
            traits.append("excited and enthusiastic")
        elif self.energy >= 0.65:
            traits.append("upbeat and cheerful")
        elif self.energy <= 0.3:
            traits.append("calm and soothing")
        if self.rate >= 0.7:
            traits.append("brief")
        return f"Speak in a tone that is {' and '.join(traits)}." if traits else ""


PRESETS: dict[str, EmotionSettings] = {
    "neutral": EmotionSettings(preset="neutral", warmth=0.5, energy=0.5, rate=0.5),
    "calm": EmotionSettings(preset="calm", warmth=0.6, energy=0.2, rate=0.25),
    "warm": EmotionSettings(preset="warm", warmth=0.9, energy=0.45, rate=0.3),
    "cheerful": EmotionSettings(preset="cheerful", warmth=0.75, energy=0.75, rate=0.65),
    "excited": EmotionSettings(preset="excited", warmth=0.7, energy=0.95, rate=0.75),
    "serious": EmotionSettings(preset="serious", warmth=0.2, energy=0.35, rate=0.3),
}
CHOICES: dict[str, EmotionSettings] = PRESETS | {AUTO: EmotionSettings(preset=AUTO)}
"""What a person can pick: the voice presets, and ``auto`` (neutral sliders until a reply picks its own)."""

# How to answer each label of ``tara.core.emotion.prosody``: soothe worry, match joy, be gentle with sadness, stay
# level with frustration. The preset names pick CSM's sampling and voice prompt; the sliders are tuned.
AUTO_REPLIES: dict[str, EmotionSettings] = {
    "anxious": EmotionSettings(preset="calm", warmth=0.85, energy=0.2, rate=0.2),  # calm, warm and slower
    "frustrated": EmotionSettings(preset="calm", warmth=0.3, energy=0.25, rate=0.4),  # calm, matter-of-fact
    "sad": EmotionSettings(preset="warm", warmth=0.95, energy=0.3, rate=0.3),  # warm and gentle
    "excited": PRESETS["cheerful"],
    "happy": PRESETS["cheerful"],
    "calm": PRESETS["warm"],
    "neutral": PRESETS["neutral"],
}


def reply_emotion(selected: EmotionSettings, user_label: str | None) -> EmotionSettings:
    """The emotion of one reply: the person's own choice, or under ``auto`` the answer to their mood."""
    if selected.preset != AUTO:
        return selected
    return AUTO_REPLIES.get(user_label or "neutral", PRESETS["neutral"]).model_copy()
