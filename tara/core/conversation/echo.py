"""The last line against Tara hearing itself: a transcript of words Tara just said is its echo.

The echo canceller (``tara/core/stages/mic/echo.py``) takes most of Tara's voice out of the mic, but
what it leaves (a room it has not learnt yet, a delay past its search) can still reach the recogniser.
Whisper then writes down Tara's own sentence, and Tara would answer itself. ``EchoTranscriptGuard``
remembers what Tara said while it spoke and for ``window_s`` after, and calls a transcript an echo
when its words run, in order, through a stretch of those (``difflib`` aligns the words; a word or two
in common with Tara, "the warranty", is not enough). A single word ("water", the end of Tara's "... litres
of water.") is an echo only when its utterance began while Tara's voice could still be coming back
(while it spoke or ``ECHO_TAIL_S`` after): a one-word answer to Tara's question ("Coffee.") comes later.
In the echo-replay benchmark the residual the canceller left was heard as exactly such single words.
Misheard, the residual is not even Tara's words ("very" for "vessel", "and the more." for "and the
water", "Want it. Want it."): a fragment of a few words that began in the echo and that the recogniser
itself doubts (mean token log-probability under ``MUFFLED_LOGPROB``; the user's own words, said over
Tara, scored -0.2 to -0.35 in the e2e echo test, such fragments -0.75 to -0.9) is the echo too. So is
one the recogniser was surer of ("for one." at -0.42, "Want it?" at -0.56 made that test flaky) when
the echo canceller took most of its sound out (``RESIDUAL_CANCELLED_DB``; ``EchoLedger`` says how much):
then the mic held little but Tara's voice.
For the same reason a transcript the recogniser did not trust, of an utterance that began then, is
dropped rather than answered with "Sorry, I didn't catch that".
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from difflib import SequenceMatcher

from tara.core.conversation.barge_in import normalise

ECHO_WORD_SHARE = 0.75  # this share of the transcript's words, found in order in what Tara said, is an echo
MIN_MATCHED_WORDS = 2  # ... and never fewer words than this ("yes" may be Tara's and the user's) ...
ECHO_TAIL_S = 0.5  # ... unless the utterance began this soon after Tara's voice stopped being sent (or over it)
MIN_PREFIX = 3  # a heard word this long that begins one of Tara's words is taken for that word
MUFFLED_WORDS = 6  # a fragment this short ("Want it. Want it."), begun in the echo ...
MUFFLED_LOGPROB = -0.6  # ... that the recogniser was this unsure of, is the echo misheard
RESIDUAL_CANCELLED_DB = 10.0  # ... or that the echo canceller took 90 % of the sound of (it was Tara's)
KEPT_SENTENCES = 8  # while Tara speaks, its latest sentences are what can be coming back


def words(text: str) -> list[str]:
    return normalise(text).replace("-", " ").split()


class EchoTranscriptGuard:
    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s  # 0: off
        self._clock = clock
        self._said: deque[list[str]] = deque(maxlen=KEPT_SENTENCES)
        self._speaking = False
        self._stopped_at = float("-inf")
        self._started_in_echo = False  # the latest utterance began while Tara's voice could be coming back

    def agent_said(self, text: str) -> None:
        """A sentence Tara starts to voice."""
        if self.window_s:
            self._said.append(words(text))

    def agent_speaking(self, speaking: bool) -> None:
        """Tara's voice started or stopped: its words stay an echo risk for ``window_s`` after it stops."""
        if self._speaking and not speaking:
            self._stopped_at = self._clock()
        self._speaking = speaking

    def user_started(self) -> None:
        """An utterance begins: note whether Tara's own voice may be what started it."""
        self._started_in_echo = self._speaking or self._clock() - self._stopped_at <= ECHO_TAIL_S

    @staticmethod
    def _as_said(word: str, said: list[str]) -> str:
        """``word``, or the word of Tara's it begins (the echo's edges cut words: "war" for "warranty")."""
        if len(word) >= MIN_PREFIX:
            return next((whole for whole in said if whole.startswith(word)), word)
        return word

    @property
    def began_in_echo(self) -> bool:
        """Whether the latest utterance began while Tara's voice could be coming back (guard on)."""
        return bool(self.window_s) and self._started_in_echo

    def is_echo(self, transcript: str, avg_logprob: float = 0.0, cancelled_db: float | None = None) -> bool:
        """Whether ``transcript`` (with the recogniser's ``avg_logprob``; ``cancelled_db``: how much of its
        sound the echo canceller took out) is Tara's own recent words coming back, not the user."""
        if not self._said or not (self._speaking or self._clock() - self._stopped_at <= self.window_s):
            self._said.clear()  # long quiet: what Tara said can no longer be coming back
            return False
        said = [word for sentence in self._said for word in sentence]
        heard = [self._as_said(word, said) for word in words(transcript)]
        if not heard:
            return False
        if self._started_in_echo and len(heard) <= MUFFLED_WORDS:
            if avg_logprob < MUFFLED_LOGPROB or (cancelled_db or 0.0) >= RESIDUAL_CANCELLED_DB:
                return True
        matched = sum(block.size for block in SequenceMatcher(None, heard, said, autojunk=False).get_matching_blocks())
        fewest = 1 if self._started_in_echo else MIN_MATCHED_WORDS
        return matched >= fewest and matched >= ECHO_WORD_SHARE * len(heard)
