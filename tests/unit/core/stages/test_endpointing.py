from tara.core.config import EndpointingConfig
from tara.core.stages.endpointing import EndOfTurnPolicy


def test_finished_sentences_end_quickly_and_trailing_ones_wait():
    policy = EndOfTurnPolicy(EndpointingConfig(complete_silence_ms=200, incomplete_silence_ms=1000))
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
