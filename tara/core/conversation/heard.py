"""What the user heard of a reply: each piece's words with their times, against the sink's playback position.

The page shows a piece word by word as it plays, and a reply cut off by the user keeps, in the page and
in the history, only the words played before the cut: a word counts once half of it has played.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tara.core.audio import AudioChunk, TimedWord
from tara.core.stages.tts.words import spread_words


@dataclass
class SpokenPiece:
    """One piece of a reply on its way to the user: its audio's words and where its playback began."""

    text: str
    duration: float = 0.0  # seconds of its audio written so far
    start: float | None = None  # the sink's playback position of its first sample, once it plays
    finished: bool = False  # all its audio is written: its word times are final
    _words: list[TimedWord] = field(default_factory=list)

    def add(self, chunk: AudioChunk, trimmed: float = 0.0) -> None:
        """Count a chunk written to the sink; ``trimmed``: seconds of the piece's start cut off before it."""
        self._words += [TimedWord(w.text, max(0.0, self.duration + w.start - trimmed)) for w in chunk.words]
        self.duration += chunk.duration

    @property
    def words(self) -> tuple[TimedWord, ...]:
        """Its words, timed from its first sample: the voice's own timings where it gave one for every
        word, else (finished, or nothing timed yet) spread over the audio written so far."""
        if len(self._words) == len(self.text.split()) or (self._words and not self.finished):
            return tuple(self._words)
        return spread_words(self.text, self.duration)

    def heard(self, position: float) -> list[str]:
        """The words half played by playback ``position`` (the sink's ``played_s``)."""
        if self.start is None:
            return []
        played = position - self.start
        words = self.words
        ends = [w.start for w in words[1:]] + [self.duration]
        return [w.text for w, end in zip(words, ends, strict=True) if played >= (w.start + end) / 2]


def heard_text(pieces: list[SpokenPiece], position: float) -> str:
    """What the user heard of ``pieces`` by playback ``position``."""
    return " ".join(word for piece in pieces for word in piece.heard(position))
