from agent.text import SentenceChunker, clean_for_speech


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
