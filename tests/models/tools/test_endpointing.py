"""``tara eval --endpointing`` on a small spoken set, with the real listener, whisper and Smart Turn."""

import json

import pytest

from tara.cli import main
from tara.tools import endpointing


def test_tara_eval_endpointing_reports_cut_offs_and_silences_per_backend(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(endpointing, "VOICES", ("us",))
    monkeypatch.setattr(endpointing, "FINISHED", ["How long is the warranty on the Brightline kettle?"])
    monkeypatch.setattr(endpointing, "UNFINISHED", [("Tell me about the museum,", "and its opening hours.")])
    assert main(["eval", "--endpointing", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "endpointing.json").read_text())
    assert set(report["backends"]) == {"transcript", "smart-turn"}
    for result in report["backends"].values():
        finished, unfinished = result["kinds"]["finished"], result["kinds"]["unfinished"]
        assert finished["clips"] == unfinished["clips"] == 1
        assert finished["cut_off"] == 0  # a question spoken in one go ends once, after the last word
        assert 100 <= finished["silence_ms"]["p50"] <= 1100
        (paused,) = [clip for clip in result["clips"] if clip["kind"] == "unfinished"]
        assert len(paused["transcripts"]) >= 2  # transcribed at the pause mid-sentence and at the end
    smart = report["backends"]["smart-turn"]["clips"]
    assert all(p is not None and 0 <= p <= 1 for clip in smart for p in clip["probabilities"])
    words_only = report["backends"]["transcript"]["clips"]
    assert all(p is None for clip in words_only for p in clip["probabilities"])  # no model: the words alone
