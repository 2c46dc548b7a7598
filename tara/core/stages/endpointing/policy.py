"""The end-of-turn silence, judged from what the user has said so far and, where a model heard it, how
likely they are done.

A fixed silence is either slow (every turn waits for the longest pause people make mid-sentence) or
rude (cuts people off mid-thought). The transcript made on the first pause tells the two apart: a
finished question or statement ends the turn after a short silence, a sentence that trails off on
"and", "so", "um" or a comma gets a long one, and a greeting ("Hello Tara.") the usual one.

Smart Turn (``endpointing.backend: smart-turn``) hears what words cannot show, a falling voice or a
drawn-out "so...": sure the user is done, it ends the turn after ``done_silence_ms``; sure they are not,
it waits ``incomplete_silence_ms``; unsure, the words decide. Words that trail off always wait ("and"
at the end is the surest sign there is more), and so does a greeting: "Hello Tara." sounds finished,
and is most often followed by the question.
"""

from __future__ import annotations

from tara.core.conversation.barge_in import normalise
from tara.core.stages.endpointing.settings import SmartTurnEndpointing, TranscriptRule

COMPLETE_ENDINGS = (".", "?", "!")
MIN_STATEMENT_WORDS = 4  # "Hello Tara." or "Okay." is often the start of a turn, not all of it
OPEN_ENDINGS = (",", ";", ":", "-", "\u2014", "...", "\u2026")


class EndOfTurnPolicy:
    def __init__(self, config: TranscriptRule) -> None:
        self.config = config
        self._continuations = {normalise(word) for word in config.continuation_words}

    def silence_needed_ms(self, transcript: str, probability_done: float | None = None) -> int | None:
        """Silence that ends a turn whose words so far are ``transcript`` and whose end a turn model judged
        done with ``probability_done``; None: no opinion (the VAD's ``min_silence_ms``)."""
        text = transcript.strip()
        words = normalise(text).split()
        if not words:
            return None
        if text.endswith(OPEN_ENDINGS) or words[-1] in self._continuations:
            return self.config.incomplete_silence_ms
        finished = text.endswith(COMPLETE_ENDINGS)
        opening = finished and not text.endswith("?") and len(words) < MIN_STATEMENT_WORDS
        config = self.config
        if probability_done is not None and isinstance(config, SmartTurnEndpointing):
            if probability_done <= config.unfinished_probability:
                return config.incomplete_silence_ms
            if probability_done >= config.done_probability and not opening:
                return config.done_silence_ms
        if text.endswith("?") or (finished and not opening):
            return config.complete_silence_ms
        return None
