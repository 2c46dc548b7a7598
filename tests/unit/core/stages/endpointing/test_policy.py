import pytest

from tara.core.config import ConfigError, load_config
from tara.core.stages.endpointing.policy import EndOfTurnPolicy
from tara.core.stages.endpointing.settings import SmartTurnEndpointing, TranscriptEndpointing


def test_finished_sentences_end_quickly_and_trailing_ones_wait():
    policy = EndOfTurnPolicy(TranscriptEndpointing(complete_silence_ms=200, incomplete_silence_ms=1000))
    for finished in ("How long is the warranty?", "Tell me about the kettle.", "Why?", "That is really great!"):
        assert policy.silence_needed_ms(finished) == 200, finished
    for opening in ("Hello Tara.", "Okay.", "Thanks!"):  # often followed by the actual question
        assert policy.silence_needed_ms(opening) is None, opening
    for trailing in (
        "I want to know about the kettle and",
        "So, um",
        "The library, the one on Main Street,",
        "Tell me about the ferry because.",
        "What about the...",
    ):
        assert policy.silence_needed_ms(trailing) == 1000, trailing
    assert policy.silence_needed_ms("") is None  # nothing heard: the VAD's own min_silence_ms
    assert policy.silence_needed_ms("the kettle warranty") is None  # no punctuation: no opinion either
    assert policy.silence_needed_ms("Hello Tara.", 0.99) is None  # the transcript backend ignores any model


def test_smart_turn_sets_the_silence_where_the_words_leave_room():
    policy = EndOfTurnPolicy(SmartTurnEndpointing(complete_silence_ms=200, incomplete_silence_ms=1000))
    assert policy.silence_needed_ms("I need to cancel my appointment", 0.9) == 80  # no full stop heard: the voice
    assert policy.silence_needed_ms("Hello Tara.", 0.99) is None  # a greeting still waits for the question
    assert policy.silence_needed_ms("Hello Tara.", 0.1) == 1000
    assert policy.silence_needed_ms("How long is the warranty?", 0.8) == 80
    assert policy.silence_needed_ms("How long is the warranty?", 0.2) == 1000  # sure it is not: wait
    assert policy.silence_needed_ms("How long is the warranty?", 0.5) == 200  # unsure: the words decide
    assert policy.silence_needed_ms("the kettle warranty", 0.5) is None
    assert policy.silence_needed_ms("How long is the warranty?", None) == 200  # the model failed: the words
    for trailing in ("Tell me about the museum, and", "The ferry,", "So, um"):  # more is coming, whatever it says
        assert policy.silence_needed_ms(trailing, 0.99) == 1000, trailing
    assert policy.silence_needed_ms("", 0.99) is None


def test_endpointing_backend_and_its_keys_come_from_the_config():
    assert load_config(**{"endpointing.backend": "transcript"}).endpointing.backend == "transcript"
    smart = load_config(**{"endpointing.backend": "smart-turn", "endpointing.done_silence_ms": 100}).endpointing
    assert isinstance(smart, SmartTurnEndpointing) and smart.done_silence_ms == 100
    with pytest.raises(ConfigError, match="not a setting of endpointing.backend transcript"):
        load_config(**{"endpointing.backend": "transcript", "endpointing.done_probability": 0.9})
    with pytest.raises(ConfigError, match="unfinished_probability must be below done_probability"):
        load_config(**{"endpointing.backend": "smart-turn", "endpointing.unfinished_probability": 0.9})
    with pytest.raises(ConfigError, match="unknown backend 'magic'"):
        load_config(**{"endpointing.backend": "magic"})
