"""The held-out evaluation: its data, its scoring, and one real run through WebRTC."""

from tara.tools.heldout import (
    HELDOUT_DIR,
    SPLITS,
    Question,
    is_correct,
    load_questions,
    mentions,
    says_dont_know,
    summarise,
)
from tara.tools.spoken import ESPEAK_VOICES


def test_the_held_out_data_is_complete_and_not_shipped():
    kbs = [kb for split in SPLITS.values() for kb in split]
    questions = {kb: load_questions(kb) for kb in kbs}
    assert sum(map(len, questions.values())) >= 144
    assert sum(q.kind == "unanswerable" for qs in questions.values() for q in qs) >= 16
    for kb, qs in questions.items():
        assert len(qs) == 36, kb
        assert list((HELDOUT_DIR / kb / "docs").glob("*.md")), kb
        assert sum(q.kind == "followup" for q in qs) >= 4 and sum(q.kind == "unanswerable" for q in qs) >= 4
        assert {q.voice for q in qs} <= {*ESPEAK_VOICES, "piper"} and len({q.voice for q in qs}) >= 3
        assert {q.noise for q in qs} - {None} <= {"babble", "fan", "street"}
        for q in qs:
            assert bool(q.expect) == (q.kind in ("fact", "followup")), q.say
    assert not (HELDOUT_DIR.parent.parent / "knowledge_base" / "heldout").exists()


def test_facts_match_as_whole_words_and_numbers_as_digits():
    assert mentions("It costs forty-five pounds.", "45")
    assert mentions("It costs 45 pounds.", "forty-five")
    assert not mentions("It opens at 18:00.", "8")
    assert mentions("We open at 8:00 on Mondays.", "8") and mentions("Open on Mondays.", "Monday")
    assert mentions("It is 3.4 metres tall.", "three point four")
    assert not mentions("Nothing like that.", "no")


def test_dont_know_and_correctness():
    assert says_dont_know("Sorry, I don\u2019t know that. It isn't in my documents.")
    assert not says_dont_know("It opens at nine.")
    fact = Question("When?", "fact", ["9", "nine"])
    assert is_correct(fact, "It opens at nine.", silent=False)
    assert not is_correct(fact, "I don't know, maybe 9.", silent=False)
    assert not is_correct(fact, "It opens at nine.", silent=True)
    assert is_correct(Question("Braces?", "unanswerable"), "I'm not sure, that isn't in my documents.", silent=False)
    assert is_correct(Question("Hi!", "chitchat"), "Hello! How can I help?", silent=False)


def test_the_summary_counts_what_a_user_would():
    turn = {"kb": "x", "say": "q", "heard": "q", "said": "a", "voice": "us", "noise": None, "grounded": True}
    turn["asked_again"] = False
    turns = [
        {**turn, "index": 0, "kind": "fact", "correct": True, "dont_know": False, "silent": False, "client_ms": 800.0},
        {  # right once said again
            **turn,
            "index": 4,
            "kind": "fact",
            "correct": True,
            "asked_again": True,
            "dont_know": False,
            "silent": False,
            "client_ms": 700.0,
        },
        {
            **turn,
            "index": 1,
            "kind": "unanswerable",
            "correct": True,
            "dont_know": True,
            "silent": False,
            "client_ms": 1200.0,
        },
        {**turn, "index": 2, "kind": "fact", "correct": False, "dont_know": True, "silent": False, "client_ms": 900.0},
        {
            **turn,
            "index": 3,
            "kind": "chitchat",
            "correct": False,
            "dont_know": False,
            "silent": True,
            "client_ms": None,
        },
    ]
    summary = summarise(turns)
    assert summary["accuracy"] == 0.6 and summary["by_kind"]["fact"] == round(2 / 3, 3)
    assert summary["asked_again"] == 1 and summary["right_first_time"] == 0.4
    assert summary["dont_know_on_unanswerable"] == 1.0 and summary["dont_know_precision"] == 0.5
    assert summary["silent_turns"] == 1 and summary["worst_turn"]["client_ms"] == 1200.0
    assert [w["index"] for w in summary["wrong"]] == [2, 3]
