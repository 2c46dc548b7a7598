"""Is a transcript what the user said? Whisper's known ways of making text up.

Whisper can return text that was never spoken: its own prompt read back (the hotword sentence that
biases it toward the documents' names), a word or phrase looped ("Saturday, Saturday, Saturday"), or,
on noise, a confident-looking guess. Each is caught here so it never becomes a question:

- the prompt read back: the transcript shares a run of ``PROMPT_ECHO_WORDS`` words with the prompt
  that spans two of its terms (a long name said by the user is not an echo);
- a loop: a phrase of up to three words said three times in a row ("N-N-N-N" too), a longer one twice
  ("Where was it owned? Where was it owned?"), or text that compresses too well (gzip ratio over
  ``MAX_COMPRESSION_RATIO``, whisper's own rule);
- a guess: an average token log-probability under ``MIN_AVG_LOGPROB`` (whisper's own threshold).

Audio that Whisper itself calls silence (``no_speech_prob`` high and a low log-probability, its rule
for skipping a window) is no transcript at all, not a failed one.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Collection
from dataclasses import dataclass

from tara.core.conversation.barge_in import normalise
from tara.core.conversation.guards import stem, words_of

PROMPT_ECHO_WORDS = 4
MAX_COMPRESSION_RATIO = 2.4
MIN_AVG_LOGPROB = -1.0
NO_SPEECH_PROB = 0.6
_LOOP = re.compile(r"\b(\w+(?: \w+){0,2})(?: \1\b){2,}|\b(\w+(?: \w+){3,})(?: \2\b)+")


@dataclass(frozen=True)
class Decoding:
    """One decoder output and what the decoder thought of it."""

    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


def compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


def is_silence(decoding: Decoding) -> bool:
    return decoding.no_speech_prob > NO_SPEECH_PROB and decoding.avg_logprob < MIN_AVG_LOGPROB


def rejection(decoding: Decoding, prompt: str | None) -> str | None:
    """Why ``decoding`` is not to be trusted as the user's words; None when it is."""
    words = normalise(decoding.text).split()
    if not words:
        return None
    if prompt and _echoes(words, prompt):
        return "the recogniser read back its prompt"
    if _LOOP.search(" ".join(words).replace("-", " ")) or compression_ratio(decoding.text) > MAX_COMPRESSION_RATIO:
        return "the recogniser repeated itself"
    if decoding.avg_logprob < MIN_AVG_LOGPROB:
        return "the recogniser was unsure"
    return None


def _echoes(words: list[str], prompt: str) -> bool:
    """Whether ``words`` contain a run of the prompt that crosses from one of its terms to the next."""
    tagged = [
        (word, term)
        for term, part in enumerate(re.split(r"[,.]|(?<=mentions) ", prompt))
        for word in normalise(part).split()
    ]
    runs = {
        tuple(word for word, _ in tagged[i : i + PROMPT_ECHO_WORDS])
        for i in range(len(tagged) - PROMPT_ECHO_WORDS + 1)
        if tagged[i][1] != tagged[i + PROMPT_ECHO_WORDS - 1][1]
    }
    return any(tuple(words[i : i + PROMPT_ECHO_WORDS]) in runs for i in range(len(words) - PROMPT_ECHO_WORDS + 1))


def fit(decoding: Decoding, known: Collection[str], bonus: float) -> float:
    """How likely ``decoding`` is what was said to a voice agent about these documents: the decoder's own
    average log-probability, plus ``bonus`` for each word the documents have (``known``: their words'
    ``stem``s, so "locker" and "lockers" are one) and minus ``bonus`` for each they lack. (Contextual
    biasing by rescoring: whisper heard "How much does a lack of cost?" at -0.33 and "… a locker cost?"
    at -0.37; the museum's documents rent lockers.)"""
    if not known:
        return decoding.avg_logprob
    words = words_of(decoding.text)
    found = sum(stem(word) in known for word in words)
    return decoding.avg_logprob + bonus * (2 * found - len(words))


def most_likely(decodings: list[Decoding], prompt: str | None, known: Collection[str], bonus: float) -> Decoding:
    """Of a beam search's hypotheses, the best ``fit`` among those the guards accept (else the first)."""
    trusted = [d for d in decodings if rejection(d, prompt) is None] or decodings[:1]
    return max(trusted, key=lambda d: fit(d, known, bonus))
