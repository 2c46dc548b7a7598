"""One session's ear for feelings: how each utterance sounded against this user's usual, and the reply's emotion.

The session starts ``measure`` with the final transcription (in an executor: the pitch tracker takes
about 25 ms for 4 s of speech, hidden behind whisper's 400 ms), calls ``hear`` when the turn starts
to label it, and ``remember`` when the turn is committed, so a speculative turn the user talked over
never enters the baseline.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from tara.core.audio import PIPELINE_RATE
from tara.core.conversation.events import UserEmotion
from tara.core.emotion import AUTO, EmotionSettings
from tara.core.emotion.prosody import (
    Baseline,
    EmotionEstimate,
    ProsodyFeatures,
    analyze,
    estimate_emotion,
    with_transcript,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heard:
    """One utterance as heard: its prosody (``None`` for typed text or when it could not be measured)."""

    features: ProsodyFeatures | None
    estimate: EmotionEstimate


class Empathy:
    def __init__(self) -> None:
        self.baseline = Baseline()

    @staticmethod
    def measure(audio: np.ndarray) -> asyncio.Future[ProsodyFeatures | None]:
        """Start measuring ``audio`` (16 kHz) in an executor; start it with the transcription, which
        it then costs nothing (whisper takes ten times longer). ``None`` if it could not be measured."""

        def work() -> ProsodyFeatures | None:
            try:
                return analyze(audio, PIPELINE_RATE)
            except Exception:  # a prosody failure costs the label its audio evidence, never the turn
                log.exception("prosody analysis failed; judging the words alone")
                return None

        return asyncio.get_running_loop().run_in_executor(None, work)

    async def hear(
        self, audio: np.ndarray | None, measuring: asyncio.Future[ProsodyFeatures | None] | None, transcript: str
    ) -> Heard:
        """Label an utterance against the baseline so far, from its audio (measured now unless
        ``measuring`` already is) and its words; typed turns have no audio and are judged by their words."""
        if measuring is None and audio is not None and len(audio):
            measuring = self.measure(audio)
        features = await measuring if measuring is not None else None
        if features is not None:
            features = with_transcript(features, transcript)
        return Heard(features, estimate_emotion(features, self.baseline, transcript))

    def remember(self, turn_id: int, heard: Heard, reply: EmotionSettings, selected: EmotionSettings) -> UserEmotion:
        """The turn happened: fold its prosody into the baseline and say what was heard and chosen."""
        if heard.features is not None:
            self.baseline.add(heard.features)
        estimate = heard.estimate
        return UserEmotion(
            turn_id,
            estimate.label,
            round(estimate.confidence, 2),
            estimate.reasons,
            heard.features.to_dict() if heard.features is not None else None,
            reply.model_dump(),
            auto=selected.preset == AUTO,
        )
