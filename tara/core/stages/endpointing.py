"""When the user has finished: end-of-turn silence judged from what they have said so far.

A fixed silence is either slow (every turn waits for the longest pause people make mid-sentence) or
rude (cuts people off mid-thought). The transcript made on the first pause tells the two apart: a
finished question or statement ends the turn after a short silence, a sentence that trails off on
"and", "so", "um" or a comma gets a long one, and a greeting ("Hello Tara.") the usual one.
"""

from __future__ import annotations

from tara.core.config import EndpointingConfig
from tara.core.conversation.barge_in import normalise

COMPLETE_ENDINGS = (".", "?", "!")
MIN_STATEMENT_WORDS = 4  # "Hello Tara." or "Okay." is often the start of a turn, not all of it
OPEN_ENDINGS = (",", ";", ":", "-", "\u2014", "...", "\u2026")


class EndOfTurnPolicy:
    def __init__(self, config: EndpointingConfig) -> None:
        self.config = config
        self._continuations = {normalise(word) for word in config.continuation_words}

    def silence_needed_ms(self, transcript: str) -> int | None:
        """Silence that ends a turn whose words so far are ``transcript``; None: no opinion (the VAD's)."""
        text = transcript.strip()
        words = normalise(text).split()
        if not words:
            return None
        if text.endswith(OPEN_ENDINGS) or words[-1] in self._continuations:
            return self.config.incomplete_silence_ms
        if text.endswith("?") or (text.endswith(COMPLETE_ENDINGS) and len(words) >= MIN_STATEMENT_WORDS):
            return self.config.complete_silence_ms
        return None
