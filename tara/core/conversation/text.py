"""Text helpers between the LLM and the TTS: cut a token stream into speakable pieces, in time."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pysbd

_MARKUP = re.compile(r"[*_`#>|~]+|\[(\d+)\]")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf]")
_SPACES = re.compile(r"\s+")
_CLAUSE_BREAK = re.compile(r"[,;:\u2014]\s")
_WORD_BREAK = re.compile(r"\s+")
_FIRST_WORD = re.compile(r"[\s,:]*(\S+)\s+")
# Words a phrase does not end on: a piece the clock cuts stops before them ("…two years | from the date").
_DANGLING = frozenset(
    "a an the of to in on at by for from with per as than into up and or but nor is are was were be been "
    "can will would could should may must has have had do does my your our their its his her this that these those".split()
)
NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred thousand half quarter first second third".split()
)


def clean_for_speech(text: str) -> str:
    """Drop markdown and emoji that a voice should not read out."""
    return _SPACES.sub(" ", _EMOJI.sub("", _MARKUP.sub("", text))).strip()


class Continuation:
    """What a model wrote on from an answer's start it was given (``Prompt.answer_start``: "The documents
    say"), as a reply of its own: " that the library is closed." → "The library is closed.".

    The opening is held until its first word is whole, so that a leading "that" can be dropped.
    """

    def __init__(self) -> None:
        self._head: str | None = ""  # the text held so far; None once the opening is out

    def push(self, delta: str) -> str:
        if self._head is None:
            return delta
        self._head += delta
        first = _FIRST_WORD.match(self._head)
        if first is None:
            return ""
        rest = self._head[first.end() :] if first.group(1).lower() == "that" else self._head[first.start(1) :]
        if not rest:
            return ""
        self._head = None
        return rest[0].upper() + rest[1:]

    def flush(self) -> str:
        """The held opening, when the reply ends inside it (" no.")."""
        rest, self._head = (self._head or "").strip(" ,:\n"), None
        rest = "" if rest.lower() == "that" else rest
        return rest[:1].upper() + rest[1:]


class SentenceChunker:
    """Turns a stream of text deltas into speakable pieces, so TTS can start while the LLM keeps going.

    Pieces are sentences, except where waiting for a sentence end would keep the user waiting:

    - the first piece is a clause (cut at a comma after ``first_clause_min_words``), or the whole words
      there are once the first text is ``first_wait_s`` old: the first audio goes out soon (0.2 s: a
      lone caller's median turn 0.87-0.92 s through WebRTC, 0.99-1.06 s at 0.3 s);
    - later pieces are whole sentences, but text never waits more than ``max_wait_s`` for one (a model
      that writes on without a full stop must not fall silent), nor grows past ``max_words``, nor past
      ``runway_s`` before the voice runs out of what was released (reckoned at ``words_per_s``): a short
      first piece is followed before its last word is heard.

    A piece the clock cuts ends where a speaker could pause: not on "the", "from" or "is" (unless it
    has no other word), and while ``premature`` says the words so far cannot be judged yet (the
    reply's guards decide on the opening sentence whether it only says the question back) it waits
    for a word that can, up to ``premature_wait_s`` longer: on a busy CPU the user would rather hear
    the answer begin.

    The time rules need a clock tick even when no delta arrives (a stalled model): ``deadline`` says
    when ``due()`` may release something.
    """

    def __init__(
        self,
        first_clause_min_words: int = 4,
        max_words: int = 40,
        first_wait_s: float = 0.2,
        max_wait_s: float = 1.5,
        words_per_s: float = 3.0,
        runway_s: float = 0.4,
        premature_wait_s: float = 0.6,
        clock: Callable[[], float] = time.monotonic,
        premature: Callable[[str], bool] = lambda piece: False,
    ) -> None:
        self._segmenter = pysbd.Segmenter(language="en", clean=False)
        self._buffer = ""
        self._emitted_any = False
        self._waiting_since: float | None = None  # when the text in the buffer began to arrive
        self._overdue = False  # due, but nothing in the buffer can go yet: only more text can change that
        self._voiced_until = 0.0  # when the voice will have said all that was released, reckoned
        self._held_until: float | None = None  # a premature piece waits until then at most
        self.first_clause_min_words = first_clause_min_words
        self.max_words = max_words
        self.first_wait_s = first_wait_s
        self.max_wait_s = max_wait_s
        self.words_per_s = words_per_s
        self.runway_s = runway_s
        self.premature_wait_s = premature_wait_s
        self._clock = clock
        self._premature = premature

    @property
    def deadline(self) -> float | None:
        """The clock time at which the buffered text is released whole-word by ``due()``; None while
        only more text can release anything (a caller waiting on the clock would spin)."""
        due_at = self._due_at()
        return None if due_at is None else max(due_at, self._held_until or due_at)

    def _due_at(self) -> float | None:
        """When the buffered text's wait is over (a premature piece may then wait on)."""
        if self._waiting_since is None or self._overdue:
            return None
        soonest = self._waiting_since + self.first_wait_s
        if not self._emitted_any:
            return soonest
        return max(soonest, min(self._waiting_since + self.max_wait_s, self._voiced_until - self.runway_s))

    def push(self, delta: str) -> list[str]:
        self._overdue = False
        if self._waiting_since is None and delta.strip():
            self._waiting_since = self._clock()
        self._buffer += delta
        pieces: list[str] = []
        if not self._emitted_any and (clause := self._first_clause()):
            pieces.append(clause)
        segments = self._segmenter.segment(self._buffer) if self._buffer.strip() else []
        if len(segments) > 1:
            # Everything but the last segment is complete; the last may still grow.
            pieces.extend(clean_for_speech(sentence) for sentence in segments[:-1])
            self._buffer = segments[-1]
        elif len(self._buffer.split()) > self.max_words:
            cut = self._last_break(_CLAUSE_BREAK) or self._last_break(_WORD_BREAK)
            if cut:
                pieces.append(clean_for_speech(self._buffer[:cut]))
                self._buffer = self._buffer[cut:]
        pieces.extend(self.due())
        return self._released(pieces)

    def due(self) -> list[str]:
        """Buffered whole words whose wait is over (see ``deadline``)."""
        deadline = self._due_at()
        if deadline is None or self._clock() < deadline:
            return []
        cut = self._last_break(_CLAUSE_BREAK) or self._phrase_end()
        if not cut:  # not one whole word yet
            self._overdue = True
            return []
        if self._premature(clean_for_speech(self._buffer[:cut])):
            if self._held_until is None:
                self._held_until = deadline + self.premature_wait_s
            if self._clock() < self._held_until:
                return []
        piece, self._buffer = clean_for_speech(self._buffer[:cut]), self._buffer[cut:]
        return self._released([piece])

    def flush(self) -> list[str]:
        rest, self._buffer = clean_for_speech(self._buffer), ""
        self._waiting_since = None
        return [rest] if rest else []

    def _released(self, pieces: list[str]) -> list[str]:
        pieces = [p for p in pieces if p]
        if pieces:
            self._held_until = None
            now = self._clock()
            words = sum(len(piece.split()) for piece in pieces)
            self._voiced_until = max(now, self._voiced_until) + words / self.words_per_s
            self._emitted_any = True
            self._waiting_since = now if self._buffer.strip() else None
        return pieces

    def _first_clause(self) -> str | None:
        for match in _CLAUSE_BREAK.finditer(self._buffer):
            head = self._buffer[: match.start() + 1]
            if len(head.split()) >= self.first_clause_min_words:
                self._buffer = self._buffer[match.end() :]
                return clean_for_speech(head)
        return None

    def _phrase_end(self) -> int | None:
        """The end of the last whole word in the buffer that no dangling word follows ("It opens at"
        → "It opens"), nor a number, whose unit comes next ("It lasts two | years" would break the
        phrase); when every one dangles, of the last whole word for a first piece ("The": better than
        silence), and none for a later one (a lone "on" would only break the sentence)."""
        ends = [m for m in _WORD_BREAK.finditer(self._buffer) if self._buffer[: m.start()].strip()]
        for end in reversed(ends):
            last_word = self._buffer[: end.start()].split()[-1].lower().strip(".,;:!?\"'")
            if last_word not in _DANGLING and last_word not in NUMBER_WORDS and not last_word[:1].isdigit():
                return end.end()
        return ends[-1].end() if ends and not self._emitted_any else None

    def _last_break(self, pattern: re.Pattern[str]) -> int | None:
        """The end of the last break in the buffer that has text before it."""
        matches = [m for m in pattern.finditer(self._buffer) if self._buffer[: m.start()].strip()]
        return matches[-1].end() if matches else None


def split_sentences(text: str) -> list[str]:
    """Whole text → speakable sentences (very long ones cut at a clause break), for synthesis of a text."""
    # no early clause and no time rules: nothing is streaming here
    chunker = SentenceChunker(first_clause_min_words=10**9, first_wait_s=float("inf"), max_wait_s=float("inf"))
    return chunker.push(text) + chunker.flush()
