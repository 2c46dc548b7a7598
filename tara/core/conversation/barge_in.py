"""When speech over the agent counts as the user: the duck, the echo guard, backchannels and LiveKit's knobs.

The agent's voice ducks (``SpeakerTrack`` fades it out at the next 20 ms frame) on the first loud 10 ms
over it (``EnergyOnset``); the VAD must then hear speech within ``barge_in.onset_confirm_ms`` or the
voice goes on where it stopped. While the agent talks the VAD demands more: a higher probability,
longer speech and a level gate, so the agent's own voice leaking back into the mic is not taken for the
user. Speech that passes keeps the agent paused; its transcript then decides, as LiveKit's agents do
(``min_interruption_duration``, ``min_interruption_words``, ``false_interruption_timeout`` with resume):

- a backchannel ("yeah", "mm-hm"), a sound with no words (a cough), fewer than ``min_interruption_words``
  other words, or speech shorter than ``min_interruption_ms``: the agent goes on;
- a single other word, where the agent's echo may be in the mic, unless it is one of ``stop_words``
  ("Stop.", "Wait."): the agent goes on (the echo's residual, misheard, is often one confident word);
  two words, where the call's echo canceller hears the agent's voice coming back ("of milk."), unless
  one is a stop word or a question word ("How much?"; a question word alone may be the echo: "Why?");
- anything else, or speech longer than ``backchannel_max_ms`` whatever it says: the agent is interrupted;
- no words ``false_interruption_timeout_ms`` after the speech stopped (a recogniser slow under load, or
  failing): the agent goes on, and words that come later still interrupt it.
"""

from __future__ import annotations

import re

import numpy as np

from tara.core.audio import PIPELINE_RATE
from tara.core.config import BargeInConfig
from tara.core.conversation.onset import EnergyOnset
from tara.core.stages.vad import Endpointer

NOT_WORDS = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")  # Whisper's "[coughs]", "(clears throat)", "*sigh*"


def normalise(phrase: str) -> str:
    """Lower case, no punctuation: Whisper writes "Yeah." or "Mm-hmm," for the same sound."""
    return " ".join("".join(c if c.isalnum() or c in " -" else " " for c in phrase.lower()).split()).strip("-")


def joined(phrase: str) -> str:
    """``phrase`` without spaces or hyphens: whisper writes one sound "Uh-huh", "Uh huh" or "Uhuh"."""
    return phrase.replace(" ", "").replace("-", "")


def samples(ms: int) -> int:
    return ms * PIPELINE_RATE // 1000


class BargeInPolicy:
    def __init__(self, config: BargeInConfig) -> None:
        self.config = config
        self._backchannels = {normalise(phrase) for phrase in config.backchannels}
        self._joined_backchannels = {joined(phrase) for phrase in self._backchannels}
        self._stop_words = {normalise(word) for word in config.stop_words}
        self._question_words = {normalise(word) for word in config.question_words}
        self._max_backchannel_samples = samples(config.backchannel_max_ms)
        self._onset = EnergyOnset(config.min_level_dbfs, config.onset_margin_db) if config.energy_onset else None
        self._ducked_at: int | None = None  # stream sample of an energy duck the VAD has not confirmed yet

    def set_vad(self, vad: Endpointer, agent_speaking: bool) -> None:
        """Guarded sensitivity while the agent speaks, the configured one otherwise."""
        if agent_speaking:
            cfg = self.config
            vad.set_sensitivity(cfg.threshold, cfg.min_speech_ms, cfg.min_level_dbfs, cfg.pause_ms, cfg.start_pad_ms)
        else:
            vad.set_sensitivity()

    # ---------------------------------------------------------------- the duck

    def should_duck(self, pcm16k: np.ndarray, end_sample: int, agent_playing: bool) -> bool:
        """Feed every chunk the listener hears (ending at stream sample ``end_sample``): whether a sound
        just began over the agent's playing voice, so it should fall silent now."""
        onset = self._onset is not None and self._onset.feed(pcm16k)
        if onset and agent_playing:
            self._ducked_at = end_sample
            return True
        return False

    def speech_confirmed(self) -> None:
        """The VAD heard speech (or the duck is over): from here its events decide."""
        self._ducked_at = None

    def duck_unconfirmed(self, position: int) -> bool:
        """Whether the VAD heard no speech within ``onset_confirm_ms`` of the duck: a knock, not a voice."""
        if self._ducked_at is None or position - self._ducked_at < samples(self.config.onset_confirm_ms):
            return False
        self._ducked_at = None
        return True

    # ---------------------------------------------------------------- the words

    def too_long_for_a_backchannel(self, speech_samples: int) -> bool:
        return speech_samples > self._max_backchannel_samples

    def is_backchannel(self, text: str) -> bool:
        """A known phrase however it is spelt ("mm hmm", "mmhmm"), or nothing but backchannel words
        ("yeah, yeah", "okay okay")."""
        phrase = normalise(text)
        return joined(phrase) in self._joined_backchannels or all(word in self._backchannels for word in phrase.split())

    def interrupts(self, text: str, speech_samples: int, echo_possible: bool = False, echo_leaks: bool = False) -> bool:
        """Whether ``text``, heard over the agent in ``speech_samples`` of speech (``echo_possible``:
        while its echo may be in the mic; ``echo_leaks``: and it does come back in this call), ends the
        agent's turn."""
        heard = NOT_WORDS.sub(" ", text)
        if self.is_backchannel(heard) or speech_samples < samples(self.config.min_interruption_ms):
            return False
        words = [word for word in normalise(heard).split() if word not in self._backchannels]
        echo_words = 2 if echo_possible and echo_leaks else 1 if echo_possible else 0  # a fragment this long ...
        stops = not self._stop_words.isdisjoint(words) or (
            len(words) > 1 and not self._question_words.isdisjoint(words)
        )
        if len(words) <= echo_words and not stops:  # ... may be the echo misheard
            return False
        return len(words) >= self.config.min_interruption_words

    @property
    def false_interruption_timeout_s(self) -> float | None:
        return self.config.false_interruption_timeout_ms / 1000 or None
