import numpy as np

from tara.core.config import VADConfig
from tara.core.stages.vad import Endpointer, VADKind
from tests.fakes import LoudVAD, loud, quiet


def kinds_for(vad: Endpointer, audio: np.ndarray) -> list[VADKind]:
    return [event.kind for event in vad.feed(audio) if event.kind in (VADKind.PAUSE, VADKind.RESUME)]


def test_a_gap_between_words_starts_a_transcript_only_over_the_agent_s_longer_pause():
    """Over the agent, the gaps between its leaked echo's words must not each start a transcript to judge."""
    words_with_a_gap = np.concatenate([loud(0.5), quiet(0.11), loud(0.5)])
    vad = Endpointer(LoudVAD(), VADConfig(pause_ms=96))
    assert kinds_for(vad, words_with_a_gap) == [VADKind.PAUSE, VADKind.RESUME]

    vad = Endpointer(LoudVAD(), VADConfig(pause_ms=96))
    vad.set_sensitivity(0.7, 200, -45.0, pause_ms=120)  # as the barge-in policy does while the agent talks
    assert kinds_for(vad, words_with_a_gap) == []
    vad.set_sensitivity()  # the agent stopped: the configured pause again
    assert vad.pause_ms == 96
    assert kinds_for(vad, np.concatenate([quiet(0.11), loud(0.3)])) == [VADKind.PAUSE, VADKind.RESUME]
