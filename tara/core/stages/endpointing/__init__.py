"""When the user has finished: the end-of-turn silence, from the words (``policy.py``) and, with
``endpointing.backend: smart-turn``, from how the voice ends (``smart_turn.py``).

A backend here is a *turn model*: it hears the utterance up to the pause and says how likely the user
is done, or nothing (the transcript rule alone). ``EndOfTurnPolicy`` turns that and the words into a
silence. Models are shared by every session, like the STT.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from tara.core.registry import Registry


class TurnModel(Protocol):
    async def probability_done(self, audio: np.ndarray) -> float | None:
        """How likely the speaker of ``audio`` (mono int16 at 16 kHz, up to the pause) has finished;
        None: no opinion."""
        ...


class WordsOnly:
    """``endpointing.backend: transcript``: no model; the transcript rule alone sets the silence."""

    def __init__(self, config: object = None) -> None:
        pass

    async def probability_done(self, audio: np.ndarray) -> float | None:
        return None


TURN_MODELS: Registry[TurnModel] = Registry(
    "endpointing.backend",
    {
        "transcript": "tara.core.stages.endpointing:WordsOnly",
        "smart-turn": "tara.core.stages.endpointing.smart_turn:SmartTurn",
    },
)
