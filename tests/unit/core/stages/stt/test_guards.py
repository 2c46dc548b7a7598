from tara.core.conversation.guards import stem, words_of
from tara.core.stages.stt.guards import Decoding, compression_ratio, fit, is_silence, most_likely, rejection

PROMPT = "The conversation mentions Harbour Museum, Ines Berg, Greenfield Public Library Maker Space, Tuesday."


def test_the_prompt_read_back_is_rejected():
    echo = Decoding("The conversation mentions Harbour Museum, Ines Berg, Tuesday, Saturday.")
    assert rejection(echo, PROMPT) == "the recogniser read back its prompt"
    assert rejection(Decoding("Harbour Museum, Ines Berg, Greenfield"), PROMPT) is not None


def test_a_question_naming_the_documents_is_no_echo():
    assert rejection(Decoding("Who is Ines Berg at the Harbour Museum?"), PROMPT) is None
    assert rejection(Decoding("Is the Greenfield Public Library Maker Space open?"), PROMPT) is None


def test_loops_are_rejected():
    assert rejection(Decoding("Saturday, Saturday, Saturday, Saturday."), None) == "the recogniser repeated itself"
    assert rejection(Decoding("I want to, I want to, I want to go."), None) == "the recogniser repeated itself"
    assert compression_ratio("thank you " * 30) > 2.4
    assert rejection(Decoding("Where was it owned? Where was it owned?"), None) == "the recogniser repeated itself"
    # a letter looped with hyphens (heard on "Who is the hygienist?" in babble)
    assert rejection(Decoding("Vesma, Hyde Nes, N-N-N-N-N-N-N-N-N"), None) == "the recogniser repeated itself"
    assert rejection(Decoding("No, no, I meant the museum."), None) is None
    assert rejection(Decoding("Is it open? Is it open on Sunday?"), None) is None  # three words said twice


def test_a_doubtful_decoding_is_rejected_and_silence_is_no_failure():
    assert rejection(Decoding("Where is the fun?", avg_logprob=-1.4), None) == "the recogniser was unsure"
    assert rejection(Decoding("Where is the museum?", avg_logprob=-0.3), None) is None
    assert is_silence(Decoding("you", avg_logprob=-1.5, no_speech_prob=0.9))
    assert not is_silence(Decoding("Where is the museum?", avg_logprob=-0.3, no_speech_prob=0.9))


MUSEUM_WORDS = frozenset(
    map(stem, words_of("How much is it? Lockers for bags cost 1 pound. The Thursday talk costs 6 pounds."))
)


def test_a_reading_with_the_documents_words_fits_better_than_a_surer_one_without():
    heard, meant = Decoding("How much does a lack of cost?", -0.33), Decoding("How much does a locker cost?", -0.37)
    assert fit(heard, MUSEUM_WORDS, 0.05) < fit(meant, MUSEUM_WORDS, 0.05)
    assert most_likely([heard, meant], None, MUSEUM_WORDS, 0.05) == meant


def test_without_documents_or_bonus_the_decoder_decides():
    heard, meant = Decoding("How much does a lack of cost?", -0.33), Decoding("How much does a locker cost?", -0.37)
    assert most_likely([heard, meant], None, frozenset(), 0.05) == heard
    assert most_likely([heard, meant], None, MUSEUM_WORDS, 0.0) == heard


def test_a_reading_the_guards_reject_never_wins_on_document_words():
    looped = Decoding("How much is a locker? How much is a locker? How much is a locker?", -0.2)
    plain = Decoding("How much is a lack of?", -0.4)
    assert most_likely([looped, plain], None, MUSEUM_WORDS, 0.05) == plain
    assert most_likely([looped], None, MUSEUM_WORDS, 0.05) == looped  # all doubted: the decoder's first


def test_words_of_splits_as_the_documents_are_counted():
    assert words_of("Who does root-canals? Dr. O'Neil, 10:30.") == [
        "who",
        "does",
        "root",
        "canals",
        "dr",
        "o",
        "neil",
        "10",
        "30",
    ]


def test_a_plural_in_the_documents_knows_the_singular_and_back():
    assert (
        fit(Decoding("locker", -0.3), MUSEUM_WORDS, 0.05) == fit(Decoding("lockers", -0.3), MUSEUM_WORDS, 0.05) > -0.3
    )
    assert fit(Decoding("talks", -0.3), MUSEUM_WORDS, 0.05) > -0.3
