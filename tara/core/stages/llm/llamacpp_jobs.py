"""What the llama.cpp engine schedules: KV sequences (``Slot``), the work on them (``Job``), and which
sequence a prompt goes to so that the most of it is already read (``choose_slot``)."""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from tara.core.stages.llm import GenerationParams

UNCONSUMED_DELTAS = 4  # a consumer that stops pulling (its speech is playing) pauses its reply
SENTENCE_END = re.compile(r"[.!?]\s")
CLAUSE_BREAK = re.compile(r"[,;:\u2014]\s")  # as tara/core/conversation/text.py's chunker cuts a first clause
FIRST_CLAUSE_WORDS = 4


def past_first_clause(text: str) -> bool:
    """Whether ``text`` holds a first piece to speak: a sentence, or a clause of ``FIRST_CLAUSE_WORDS`` words."""
    if SENTENCE_END.search(text):
        return True
    return any(len(text[: m.start()].split()) >= FIRST_CLAUSE_WORDS for m in CLAUSE_BREAK.finditer(text))


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    count = 0
    for left, right in zip(a, b):
        if left != right:
            break
        count += 1
    return count


class Detokenizer:
    """Tokens to text; a character whose UTF-8 bytes span several tokens comes out with the last of them."""

    def __init__(self, piece: Callable[[int], bytes]) -> None:
        self._piece = piece
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return self._decoder.decode(self._piece(token))

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class Kind(Enum):
    REPLY = "reply"  # reads its prompt, then samples until end of turn or max_tokens
    PREFILL = "prefill"  # reads its prompt into a conversation sequence; gives way to any reply
    WARM = "warm"  # reads a stable prompt into a reserved sequence


@dataclass(eq=False)
class Slot:
    """One KV sequence of the context."""

    id: int
    reserved: bool = False  # holds a warm-up prompt
    tokens: list[int] = field(default_factory=list)  # what its cells hold, position by position
    job: Job | None = None
    last_used: float = 0.0
    generation: int = 0  # reserved: the warm_up call whose prompt it holds


@dataclass(eq=False)
class Job:
    kind: Kind
    prompt: list[int]
    params: GenerationParams = GenerationParams()
    deliver: Callable[[object], object] = lambda item: None  # to the consumer, from any thread (result unused)
    generation: int = 0  # WARM: its warm_up call
    slot: Slot | None = None
    read: int = 0  # prompt tokens in the slot's cells
    next_token: int | None = None  # sampled, fed in the next step
    generated: int = 0
    text: str = ""
    before_first_clause: bool = field(init=False, default=False)  # a reply without its first clause yet
    delivered: int = 0  # deltas handed over (written by the engine thread only)
    pulled: int = 0  # deltas the consumer took (written by the consumer only)
    closed: bool = False  # the consumer has gone, or the job ended
    detokenizer: Detokenizer | None = None
    rng: np.random.Generator | None = None
    submitted: float = field(default_factory=time.perf_counter)
    reused: int = 0  # prompt tokens found cached when it got a slot

    def __post_init__(self) -> None:
        self.before_first_clause = self.kind is Kind.REPLY

    @property
    def urgent(self) -> bool:
        """On the way to audio a user is waiting for: a reply's first clause, or the next words of a reply
        whose voice is about to run out (``GenerationParams.hurry``)."""
        hurry = self.params.hurry
        return self.before_first_clause or (self.kind is Kind.REPLY and hurry is not None and hurry())

    @property
    def paused(self) -> bool:
        """Its consumer has ``UNCONSUMED_DELTAS`` deltas to read (its speech is playing)."""
        return self.delivered - self.pulled >= UNCONSUMED_DELTAS


def choose_slot(
    candidates: list[Slot], donors: list[Slot], prompt: list[int], limit: int
) -> tuple[Slot, Slot | None, int]:
    """The slot for ``prompt``, the slot to copy its start from (or None) and how many tokens are reused.

    In order: the most tokens reused (at most ``limit``), from a candidate's own cells or lent by
    another slot (a warm-up prompt, another conversation on the same system prompt); a candidate that
    loses nothing it holds; one whose match goes beyond what any other slot could lend (its own
    conversation); the least recently used (which keeps the other conversations' histories).
    """
    full = {id(s): shared_prefix(s.tokens, prompt) for s in (*donors, *candidates)}
    shared = {key: min(n, limit) for key, n in full.items()}

    def lender(slot: Slot) -> Slot | None:
        return max((d for d in donors if d is not slot), key=lambda d: shared[id(d)], default=None)

    def rank(slot: Slot) -> tuple[int, bool, bool, float]:
        own, donor = shared[id(slot)], lender(slot)
        lent = shared[id(donor)] if donor is not None else 0
        return max(own, lent), len(slot.tokens) == full[id(slot)], own > lent, -slot.last_used

    slot = max(candidates, key=rank)
    donor = lender(slot)
    if donor is not None and shared[id(donor)] > shared[id(slot)]:
        return slot, donor, shared[id(donor)]
    return slot, None, shared[id(slot)]
