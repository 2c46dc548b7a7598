"""Text helpers between the LLM and the TTS: cut a token stream into speakable pieces."""

from __future__ import annotations

import re

import pysbd

_MARKUP = re.compile(r"[*_`#>|~]+|\[(\d+)\]")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf]")
_SPACES = re.compile(r"\s+")
_CLAUSE_BREAK = re.compile(r"[,;:\u2014]\s")


def clean_for_speech(text: str) -> str:
    """Drop markdown and emoji that a voice should not read out."""
    return _SPACES.sub(" ", _EMOJI.sub("", _MARKUP.sub("", text))).strip()


class SentenceChunker:
    """Turns a stream of text deltas into sentences, so TTS can start while the LLM keeps going.

    The first piece of a reply may be a clause (cut at a comma after ``first_clause_min_words``),
    which puts the first audio out sooner; later pieces are whole sentences.
    """

    def __init__(self, first_clause_min_words: int = 4, max_words: int = 40) -> None:
        self._segmenter = pysbd.Segmenter(language="en", clean=False)
        self._buffer = ""
        self._emitted_any = False
        self.first_clause_min_words = first_clause_min_words
        self.max_words = max_words

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        pieces: list[str] = []
        if not self._emitted_any and (clause := self._first_clause()):
            pieces.append(clause)
        segments = self._segmenter.segment(self._buffer) if self._buffer.strip() else []
        if len(segments) > 1:
            # Everything but the last segment is complete; the last may still grow.
            pieces.extend(clean_for_speech(sentence) for sentence in segments[:-1])
            self._buffer = segments[-1]
        elif len(self._buffer.split()) > self.max_words and (cut := self._last_break()):
            pieces.append(clean_for_speech(self._buffer[:cut]))
            self._buffer = self._buffer[cut:]
        if pieces:
            self._emitted_any = True
        return [p for p in pieces if p]

    def flush(self) -> list[str]:
        rest, self._buffer = clean_for_speech(self._buffer), ""
        return [rest] if rest else []

    def _first_clause(self) -> str | None:
        for match in _CLAUSE_BREAK.finditer(self._buffer):
            head = self._buffer[: match.start() + 1]
            if len(head.split()) >= self.first_clause_min_words:
                self._buffer = self._buffer[match.end() :]
                return clean_for_speech(head)
        return None

    def _last_break(self) -> int | None:
        matches = list(_CLAUSE_BREAK.finditer(self._buffer))
        return matches[-1].end() if matches else None


def split_sentences(text: str) -> list[str]:
    """Whole text → speakable sentences (very long ones cut at a clause break), for synthesis of a text."""
    chunker = SentenceChunker(first_clause_min_words=10**9)  # no early clause: nothing is streaming here
    return chunker.push(text) + chunker.flush()
