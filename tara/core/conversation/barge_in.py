"""When speech over the agent counts as the user: echo guard and backchannels.

While the agent talks the VAD demands more: a higher probability, longer speech and a level gate, so
the agent's own voice leaking back into the mic is not taken for the user. Speech that still passes
pauses the agent; its transcript then decides: a backchannel ("yeah", "mm-hm") lets the agent go on,
anything else — or speech longer than ``barge_in.backchannel_max_ms`` — interrupts it.
"""

from __future__ import annotations

from tara.core.audio import PIPELINE_RATE
from tara.core.config import BargeInConfig
from tara.core.stages.vad import Endpointer


def normalise(phrase: str) -> str:
    """Lower case, no punctuation: Whisper writes "Yeah." or "Mm-hmm," for the same sound."""
    return " ".join("".join(c if c.isalnum() or c in " -" else " " for c in phrase.lower()).split()).strip("-")


class BargeInPolicy:
    def __init__(self, config: BargeInConfig) -> None:
        self.config = config
        self._backchannels = {normalise(phrase) for phrase in config.backchannels}
        self._max_backchannel_samples = config.backchannel_max_ms * PIPELINE_RATE // 1000

    def set_vad(self, vad: Endpointer, agent_speaking: bool) -> None:
        """Guarded sensitivity while the agent speaks, the configured one otherwise."""
        if agent_speaking:
            vad.set_sensitivity(self.config.threshold, self.config.min_speech_ms, self.config.min_level_dbfs)
        else:
            vad.set_sensitivity()

    def too_long_for_a_backchannel(self, speech_samples: int) -> bool:
        return speech_samples > self._max_backchannel_samples

    def is_backchannel(self, text: str) -> bool:
        """A known phrase, or nothing but backchannel words ("yeah, yeah", "okay okay")."""
        phrase = normalise(text)
        return phrase in self._backchannels or all(word in self._backchannels for word in phrase.split())
