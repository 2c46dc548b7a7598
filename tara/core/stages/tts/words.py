"""When each word of synthesised speech starts: what lets the page show a sentence word by word as it is heard.

Piper's VITS model predicts how many audio frames each phoneme lasts; with its alignment output exposed
(``PiperVoice.load(include_alignments=True)`` patches the ONNX graph in memory, with the ``onnx`` package)
every chunk says how many samples each phoneme took. A spoken word starts at its first sound after a
space; ``SpokenWords`` pairs those starts with the written words (a written "$40" is two spoken words).

A voice that gives no timings (CSM: its Mimi frames only tell how long a piece lasts) gets its words
spread over the piece's audio by character count (``spread_words``), which is what a listener can
tell apart from the real thing least: long words take long.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

from tara.core.audio import TimedWord

WORD_BREAK = " "


def _is_punctuation(phoneme: str) -> bool:
    return all(unicodedata.category(character).startswith("P") for character in phoneme)


def phoneme_word_starts(phonemes: Sequence[str]) -> list[int]:
    """Indices in ``phonemes`` (espeak's, as Piper uses them) where a spoken word begins: the first sound
    after the start or a space. Punctuation (",", "!") belongs to the word before it."""
    starts: list[int] = []
    at_break = True
    for index, phoneme in enumerate(phonemes):
        if phoneme == WORD_BREAK:
            at_break = True
        elif at_break and not _is_punctuation(phoneme):
            starts.append(index)
            at_break = False
    return starts


def spread_words(text: str, duration: float) -> tuple[TimedWord, ...]:
    """The words of ``text`` spread over ``duration`` seconds by character count (spaces included)."""
    written = text.split()
    total = sum(len(word) + 1 for word in written)
    timed: list[TimedWord] = []
    before = 0
    for word in written:
        timed.append(TimedWord(word, duration * before / total))
        before += len(word) + 1
    return tuple(timed)


class SpokenWords:
    """Pairs the written words of one ``synthesize`` call with the spoken words of its chunks, in order.

    ``spoken_count`` says how many spoken words a written word becomes (Piper: phonemise it alone).
    Once a chunk's spoken words do not add up to whole written words the pairing is lost, and that chunk
    and every later one carry no words (the reply then spreads the piece's words over its audio).
    """

    def __init__(self, text: str, spoken_count: Callable[[str], int]) -> None:
        self._written = text.split()
        self._counts = [spoken_count(word) for word in self._written]
        self._next = 0
        self._lost = False

    def chunk(self, word_starts: Sequence[float]) -> tuple[TimedWord, ...]:
        """The written words a chunk says, given its spoken words' starts (seconds into the chunk)."""
        if self._lost or not word_starts:
            return ()
        timed: list[TimedWord] = []
        spoken = 0
        while self._next < len(self._written) and spoken < len(word_starts):
            timed.append(TimedWord(self._written[self._next], word_starts[spoken]))
            spoken += self._counts[self._next]
            self._next += 1
        if spoken != len(word_starts):
            self._lost = True
            return ()
        while self._next < len(self._written) and self._counts[self._next] == 0:  # a trailing "—" has no sound
            timed.append(TimedWord(self._written[self._next], timed[-1].start))
            self._next += 1
        return tuple(timed)
