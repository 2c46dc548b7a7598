"""Each end-of-turn backend's settings, selected by ``endpointing.backend``; light, so ``tara.core.config``
imports it at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

from pydantic import Field, model_validator

from tara.core.sections import Section, by_backend

CONTINUATION_WORDS = [
    "and",
    "but",
    "or",
    "so",
    "because",
    "um",
    "uh",
    "er",
    "erm",
    "like",
    "the",
    "a",
    "an",
    "to",
    "of",
    "with",
    "for",
    "about",
    "if",
    "then",
    "my",
    "your",
    "is",
    "are",
    "what",
    "which",
    "that",
    "in",
    "on",
    "at",
    "from",
    "i",
    "we",
    "you",
    "was",
    "also",
    "maybe",
]


class TranscriptRule(Section):
    """How much silence ends the user's turn, judged from what they said so far (every backend has it).

    The transcript made on the first pause decides: a question, or a finished sentence of four words or
    more, ends the turn after ``complete_silence_ms``; one that trails off on a connective or filler
    ("and", "so", "um", a comma) waits ``incomplete_silence_ms``; anything else ``vad.min_silence_ms``.
    """

    complete_silence_ms: int = Field(default=200, ge=32, le=5000)
    incomplete_silence_ms: int = Field(default=1000, ge=32, le=10000)
    continuation_words: list[str] = CONTINUATION_WORDS


class TranscriptEndpointing(TranscriptRule):
    """The transcript rule alone."""

    backend: Literal["transcript"] = "transcript"


class SmartTurnEndpointing(TranscriptRule):
    """The transcript rule, with Smart Turn v3.2 (an audio model of whether the speaker is done) setting the silence.

    Its probability that the user is done decides where the words leave room: at least ``done_probability``
    ends the turn after ``done_silence_ms``, at most ``unfinished_probability`` waits ``incomplete_silence_ms``,
    in between the transcript rule. A trailing "and" or comma waits whatever the model says.
    """

    backend: Literal["smart-turn"] = "smart-turn"
    done_probability: float = Field(default=0.8, gt=0.0, le=1.0)
    done_silence_ms: int = Field(default=80, ge=32, le=5000)
    unfinished_probability: float = Field(default=0.3, ge=0.0, lt=1.0)
    threads: int = Field(default=2, ge=1, le=64)  # onnxruntime threads (it holds the shared CPU while it runs)

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> SmartTurnEndpointing:
        if self.unfinished_probability >= self.done_probability:
            raise ValueError("unfinished_probability must be below done_probability")
        return self


# The ``endpointing`` section: the first is the default (the checker sees the plain union, as for ``tts``).
if TYPE_CHECKING:
    EndpointingConfig: TypeAlias = SmartTurnEndpointing | TranscriptEndpointing
else:
    EndpointingConfig = by_backend(SmartTurnEndpointing, TranscriptEndpointing)
