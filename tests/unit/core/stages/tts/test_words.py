"""Word timings of synthesised speech: spoken words from espeak phonemes, paired with the written words."""

from tara.core.audio import TimedWord
from tara.core.stages.tts.words import SpokenWords, phoneme_word_starts, spread_words

# "Hello there, the kettle." as Piper's espeak phonemes (stress marks and punctuation are phonemes too)
HELLO = [
    "h",
    "ə",
    "l",
    "ˈ",
    "o",
    "ʊ",
    " ",
    "ð",
    "ˈ",
    "ɛ",
    "ɹ",
    ",",
    " ",
    "ð",
    "ə",
    " ",
    "k",
    "ˈ",
    "ɛ",
    "ɾ",
    "ə",
    "l",
    ".",
]


def test_a_spoken_word_starts_at_its_first_sound_after_a_space_and_punctuation_is_not_a_word():
    assert phoneme_word_starts(HELLO) == [0, 7, 13, 16]
    assert phoneme_word_starts([" ", "—", " ", "a", "!"]) == [3]
    assert phoneme_word_starts([]) == []


def test_words_without_timings_are_spread_over_the_audio_by_length():
    assert spread_words("I am here", 1.0) == (TimedWord("I", 0.0), TimedWord("am", 0.2), TimedWord("here", 0.5))
    assert spread_words("", 1.0) == ()


def test_written_words_are_paired_with_spoken_ones_across_chunks():
    counts = {"$40.": 2, "—": 0}  # "forty dollars"; a dash is not said
    words = SpokenWords("It costs $40. — Cheap!", lambda word: counts.get(word, 1))
    first = words.chunk([0.0, 0.2, 0.6, 0.9])  # the first sentence: "it costs forty dollars"
    assert first == (TimedWord("It", 0.0), TimedWord("costs", 0.2), TimedWord("$40.", 0.6), TimedWord("—", 0.6))
    assert words.chunk([0.1]) == (TimedWord("Cheap!", 0.1),)


def test_once_the_pairing_is_lost_no_chunk_carries_words():
    words = SpokenWords("It's $40. Done.", lambda word: 2 if word == "$40." else 1)
    assert words.chunk([0.0, 0.3]) == ()  # "$40." is two spoken words: they do not add up
    assert words.chunk([0.0]) == ()  # the reply spreads the piece's words instead
