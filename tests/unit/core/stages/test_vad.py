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


def start_of(vad: Endpointer, audio: np.ndarray) -> int:
    return next(event.sample for event in vad.feed(audio) if event.kind is VADKind.START)


def test_a_turn_starts_start_pad_ms_before_the_speech_the_vad_was_sure_of():
    """Silero rises late on a soft onset ("What…"): the audio before it must reach the recogniser."""
    speech_from = 32 * 512  # samples: 32 silent VAD windows, then speech
    audio = np.concatenate([quiet(speech_from / 16000), loud(0.5)])
    vad = Endpointer(LoudVAD(), VADConfig(start_pad_ms=300, min_speech_ms=150))
    assert start_of(vad, audio) == speech_from - 300 * 16

    vad = Endpointer(LoudVAD(), VADConfig(start_pad_ms=300, min_speech_ms=150))
    vad.set_sensitivity(0.7, 150, -45.0, start_pad_ms=100)  # over the agent: the audio before is its echo
    assert start_of(vad, audio) == speech_from - 100 * 16
