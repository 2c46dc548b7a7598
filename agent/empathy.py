"""One session's ear for feelings: how each utterance sounded against this user's usual, and the reply's emotion.

The session calls ``hear`` when a turn starts (alongside retrieval, so it adds no time to the reply:
the pitch tracker takes a few tens of milliseconds, in an executor) and ``remember`` when the turn
is committed, so a speculative turn the user talked over never enters the baseline.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from agent.audio import PIPELINE_RATE
from agent.emotion import AUTO, EmotionSettings
from agent.events import UserEmotion
from agent.prosody import Baseline, EmotionEstimate, ProsodyFeatures, analyze, estimate_emotion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heard:
    """One utterance as heard: its prosody (``None`` for typed text or when it could not be measured)."""

    features: ProsodyFeatures | None
    estimate: EmotionEstimate


class Empathy:
    def __init__(self) -> None:
        self.baseline = Baseline()

    async def hear(self, audio: np.ndarray | None, transcript: str) -> Heard:
        """Measure ``audio`` (16 kHz) off the event loop and label it against the baseline so far."""
        features = None
        if audio is not None and len(audio):
            try:
                features = await asyncio.get_running_loop().run_in_executor(
                    None, analyze, audio, PIPELINE_RATE, transcript)
            except Exception:  # a prosody failure costs the label its audio evidence, never the turn
                log.exception("prosody analysis failed; judging the words alone")
        return Heard(features, estimate_emotion(features, self.baseline, transcript))

    def remember(self, turn_id: int, heard: Heard, reply: EmotionSettings, selected: EmotionSettings) -> UserEmotion:
        """The turn happened: fold its prosody into the baseline and say what was heard and chosen."""
        if heard.features is not None:
            self.baseline.add(heard.features)
        estimate = heard.estimate
        return UserEmotion(
            turn_id, estimate.label, round(estimate.confidence, 2), estimate.reasons,
            heard.features.to_dict() if heard.features is not None else None,
            reply.model_dump(), auto=selected.preset == AUTO,
        )
