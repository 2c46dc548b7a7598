"""``tara eval --heldout`` with the real models: through WebRTC, and typed."""

import pytest


@pytest.mark.timeout(900)
def test_two_held_out_turns_through_a_real_server(tmp_path):
    """``tara eval --heldout`` end to end: its own server over a held-out knowledge base, a WebRTC caller."""
    from tara.tools.heldout import HeldoutOptions, heldout

    report = heldout(HeldoutOptions(kbs=["museum"], turns=2, out=tmp_path))
    turns = report["runs"]["long"]["museum"]
    assert len(turns) == 2 and all(not t["silent"] for t in turns)
    assert turns[1]["heard"] and turns[1]["said"]
    assert (tmp_path / "heldout.md").exists() and report["summary"]["long"]["all"]["turns"] == 2


@pytest.mark.timeout(900)
def test_two_callers_at_once_each_get_every_turn_answered(tmp_path):
    """``--mode crowd``: several calls over the same held-out documents at once, each scored."""
    from tara.tools.heldout import HeldoutOptions, heldout

    report = heldout(HeldoutOptions(kbs=["museum"], turns=2, mode="crowd", callers=2, out=tmp_path))
    turns = report["runs"]["crowd"]["museum"]
    assert len(turns) == 4 and all(not t["silent"] and t["said"] for t in turns)
    assert [t["index"] for t in turns] == [0, 1, 0, 1]  # both callers asked both questions


@pytest.mark.timeout(300)
def test_held_out_questions_typed_into_a_real_session(tmp_path):
    """``--mode typed``: the brain alone, every question heard word for word."""
    from tara.tools.heldout import HeldoutOptions, heldout

    report = heldout(HeldoutOptions(kbs=["museum"], turns=2, mode="typed", out=tmp_path))
    turns = report["runs"]["typed"]["museum"]
    assert [t["heard"] for t in turns] == [t["say"] for t in turns]
    assert all(t["said"] and t["client_ms"] for t in turns) and turns[1]["grounded"]
    assert report["summary"]["typed"]["all"]["turns"] == 2
