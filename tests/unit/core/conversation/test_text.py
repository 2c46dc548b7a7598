import pytest

from tara.core.conversation.text import Continuation, SentenceChunker, clean_for_speech


def chunk(deltas: list[str]) -> list[str]:
    chunker = SentenceChunker()
    pieces = [piece for delta in deltas for piece in chunker.push(delta)]
    return pieces + chunker.flush()


def tokens(text: str) -> list[str]:
    """Split like an LLM stream: small pieces with leading spaces."""
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


def test_sentences_come_out_as_soon_as_complete():
    chunker = SentenceChunker()
    out: list[str] = []
    for delta in tokens("It holds 1.7 litres. It boils in four minutes."):
        out += chunker.push(delta)
    assert out == ["It holds 1.7 litres."]  # the second sentence may still grow
    assert chunker.push(" Enjoy") == ["It boils in four minutes."]
    assert chunker.push(" it.") == []
    assert chunker.flush() == ["Enjoy it."]


def test_first_piece_may_be_a_clause_later_ones_are_sentences():
    text = "Well, the library opens at nine, and it closes at eight in the evening, every weekday. Then, on Saturday, it opens at ten."
    pieces = chunk(tokens(text))
    assert pieces[0] == "Well, the library opens at nine,"
    assert pieces[1] == "and it closes at eight in the evening, every weekday."
    assert pieces[2] == "Then, on Saturday, it opens at ten."


def test_short_lead_in_is_not_cut():
    assert chunk(tokens("Yes, it does."))[0] == "Yes, it does."


def test_abbreviations_and_numbers_do_not_split():
    pieces = chunk(tokens("Dr. Smith paid $3.50 for it. That was cheap."))
    assert pieces == ["Dr. Smith paid $3.50 for it.", "That was cheap."]


def test_run_on_text_is_cut_at_a_clause_break():
    long = "word " * 45 + "and, more words " + "again " * 5
    pieces = chunk([long])
    assert len(pieces) >= 2 and all(pieces)


def test_markup_is_not_read_aloud():
    assert clean_for_speech("**Bold** and `code` 🎉  # heading") == "Bold and code heading"
    assert chunk(["- *One* thing.", " Two."]) == ["- One thing.", "Two."]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_first_clause_that_never_comes_is_released_after_the_first_wait():
    clock = Clock()
    chunker = SentenceChunker(first_wait_s=0.6, clock=clock)
    assert chunker.push("The museum holds") == []
    assert chunker.deadline == 0.6
    clock.now = 0.4
    assert chunker.push(" many") == [] and chunker.due() == []
    clock.now = 0.61
    assert chunker.due() == ["The museum holds"]  # whole words only: "many" may still grow
    assert chunker.push("rooms") == []
    assert chunker.flush() == ["manyrooms"]


def test_later_text_never_waits_longer_than_the_max_wait():
    clock = Clock()
    chunker = SentenceChunker(max_wait_s=1.5, words_per_s=0.1, clock=clock)  # a slow voice: the wait decides
    assert chunker.push("It opens at nine. It has") == ["It opens at nine."]
    clock.now = 1.0
    assert chunker.push(" halls and rooms and") == []
    clock.now = 1.6
    assert chunker.due() == ["It has halls and rooms"]
    assert chunker.deadline == 1.6 + 1.5  # the rest waits afresh


def test_a_piece_the_clock_cuts_ends_where_a_speaker_could_pause():
    clock = Clock()
    chunker = SentenceChunker(first_wait_s=0.3, clock=clock)
    chunker.push("The warranty lasts two years from the da")
    clock.now = 0.31
    assert chunker.due() == ["The warranty lasts two years"]  # not "... from the"
    assert chunker.flush() == ["from the da"]
    chunker = SentenceChunker(first_wait_s=0.3, clock=clock)
    clock.now = 0.0
    chunker.push("The ")
    clock.now = 0.31
    assert chunker.due() == ["The"]  # nothing else to say: better a word than silence
    for text, cut in [("The warranty lasts two yea", "The warranty lasts"), ("It holds 1.7 li", "It holds")]:
        chunker = SentenceChunker(first_wait_s=0.3, clock=clock)
        clock.now = 0.0
        chunker.push(text)
        clock.now = 0.31
        assert chunker.due() == [cut]  # a number's unit comes next


def test_a_premature_piece_waits_a_while_for_a_word_that_can_be_judged():
    clock = Clock()
    premature = lambda head: "open" not in head.split()  # noqa: E731
    chunker = SentenceChunker(first_wait_s=0.3, premature_wait_s=0.6, clock=clock, premature=premature)
    chunker.push("The bakery is ")
    clock.now = 0.31
    assert chunker.due() == [] and chunker.deadline == pytest.approx(0.9)
    clock.now = 0.5
    assert chunker.push("open ") == ["The bakery is open"]  # at once
    chunker = SentenceChunker(first_wait_s=0.3, premature_wait_s=0.6, clock=clock, premature=premature)
    clock.now = 0.0
    chunker.push("The bakery is ")
    clock.now = 0.31
    assert chunker.due() == []
    clock.now = 0.91
    assert chunker.due() == ["The bakery"]  # a slow model: the answer begins


def test_the_next_piece_is_due_before_the_voice_runs_out_of_words():
    clock = Clock()
    chunker = SentenceChunker(first_wait_s=0.3, max_wait_s=1.5, words_per_s=3.0, runway_s=0.4, clock=clock)
    chunker.push("The warranty lasts ")
    clock.now = 0.3
    assert chunker.due() == ["The warranty lasts"]  # heard until about 0.3 + 3 / 3.0 = 1.3
    chunker.push("two years from the date of")
    assert chunker.deadline == pytest.approx(1.3 - 0.4)  # sooner than 0.3 + 1.5
    clock.now = 0.9
    assert chunker.due() == ["two years from the date"]


def test_nothing_is_due_without_a_whole_word():
    clock = Clock()
    chunker = SentenceChunker(clock=clock)
    chunker.push("Descal")
    clock.now = 5.0
    assert chunker.due() == [] and chunker.deadline is None
    assert chunker.flush() == ["Descal"]


def test_run_on_text_without_any_break_is_cut_at_a_word():
    pieces = chunk(tokens("word " * 90))
    assert len(pieces) >= 2 and all(len(p.split()) <= 41 for p in pieces)


def test_a_continued_answer_reads_as_a_reply_of_its_own():
    def continued(deltas: list[str]) -> str:
        opening = Continuation()
        return "".join(opening.push(delta) for delta in deltas) + opening.flush()

    assert continued(tokens(" the library is closed on Sundays.")) == "The library is closed on Sundays."
    assert continued(tokens(" that members can renew online.")) == "Members can renew online."
    assert continued([" th", "at", " ", "dogs stay outside."]) == "Dogs stay outside."  # "that" split up
    assert continued([" no."]) == "No."  # the reply ended inside its first word
    assert continued([" that", " "]) == ""
