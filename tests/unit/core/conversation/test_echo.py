import pytest

from tara.core.conversation.echo import EchoTranscriptGuard

SAID = "The Brightline kettle has a two year warranty. It covers the heating element and the lid."


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def guard_after_saying(text: str = SAID, window_s: float = 2.0) -> tuple[EchoTranscriptGuard, Clock]:
    clock = Clock()
    guard = EchoTranscriptGuard(window_s, clock)
    guard.agent_speaking(True)
    for sentence in text.split(". "):
        guard.agent_said(sentence)
    guard.user_started()  # over Tara: the strictest case for the user's own words
    return guard, clock


@pytest.mark.parametrize(
    "heard",
    [
        "has a two-year warranty.",
        "It covers the heating element and the lid",
        "Brightline kettle has a two year warranty, it covers",  # across sentences
        "the bright line kettle has a two year warranty",  # misheard a little
    ],
)
def test_tara_s_own_words_coming_back_are_an_echo(heard: str) -> None:
    guard, _ = guard_after_saying()
    assert guard.is_echo(heard)


@pytest.mark.parametrize(
    "heard",
    [
        "What does the warranty cover?",  # shares "the warranty"
        "Does it cover the lid too?",
        "How long does the kettle take to boil?",
        "yeah",
        "",
    ],
)
def test_the_user_s_own_words_are_not_an_echo(heard: str) -> None:
    guard, _ = guard_after_saying()
    assert not guard.is_echo(heard)


def test_tara_s_words_are_an_echo_for_the_window_after_it_stops_and_then_not() -> None:
    guard, clock = guard_after_saying()
    guard.agent_speaking(False)
    clock.now += 1.5
    assert guard.is_echo("covers the heating element and the lid")
    clock.now += 1.0
    assert not guard.is_echo("covers the heating element and the lid")


def test_a_single_word_of_tara_s_is_an_echo_only_if_it_began_while_tara_could_be_heard() -> None:
    guard, clock = guard_after_saying()  # the utterance began over Tara
    assert guard.is_echo("Lid.")
    guard.agent_speaking(False)
    clock.now += 0.3
    guard.user_started()  # its echo's tail
    assert guard.is_echo("lid")
    clock.now += 0.7
    guard.user_started()  # the user answering
    assert not guard.is_echo("Lid.")


def test_a_doubtful_fragment_begun_in_the_echo_is_the_echo_misheard() -> None:
    guard, clock = guard_after_saying()  # the utterance began over Tara
    assert guard.is_echo("and the more.", avg_logprob=-0.75)  # the residual of "and the lid", misheard
    assert not guard.is_echo("Wait, wait.", avg_logprob=-0.3)  # the user, heard clearly
    assert not guard.is_echo("Wait, how long does the kettle take to boil?", avg_logprob=-0.75)  # no fragment
    guard.agent_speaking(False)
    clock.now += 1.0
    guard.user_started()  # after the echo: the user, however unclear
    assert not guard.is_echo("and the more.", avg_logprob=-0.75)


def test_a_confident_fragment_the_canceller_took_most_of_is_the_echo() -> None:
    guard, clock = guard_after_saying()  # the utterance began over Tara
    assert guard.is_echo("Want it?", avg_logprob=-0.56, cancelled_db=30.0)  # the mic held Tara's voice
    assert not guard.is_echo("Want it?", avg_logprob=-0.56, cancelled_db=1.5)  # the user over the echo
    assert not guard.is_echo("Want it?", avg_logprob=-0.56)  # no canceller: nothing to tell by
    assert not guard.is_echo("Wait, how long does the kettle take to boil?", avg_logprob=-0.3, cancelled_db=30.0)
    guard.agent_speaking(False)
    clock.now += 1.0
    guard.user_started()  # after the echo: the user
    assert not guard.is_echo("Want it?", avg_logprob=-0.56, cancelled_db=30.0)


def test_a_zero_window_turns_the_guard_off() -> None:
    guard, _ = guard_after_saying(window_s=0.0)
    assert not guard.began_in_echo
    assert not guard.is_echo("covers the heating element and the lid")
