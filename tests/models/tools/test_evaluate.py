"""``tara eval`` with the real models and the shipped knowledge base."""

import json

from tara.cli import main
from tara.tools.evaluate import word_error_rate


def test_word_error_rate_ignores_case_and_punctuation():
    assert word_error_rate("The library opens at nine.", "the library opens at nine") == 0.0
    assert word_error_rate("The library opens at nine.", "The library opens at five.") == 0.2


def test_tara_eval_reports_accuracy_round_trip_and_audible_presets(tmp_path):
    assert main(["eval", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["accuracy"]["asked"] == 10 and report["accuracy"]["correct"] >= 7, report["accuracy"]
    assert report["round_trip"]["mean_wer"] <= 0.25, report["round_trip"]
    assert all(preset["audible"] for preset in report["emotions"].values()), report["emotions"]
    table = (tmp_path / "eval.md").read_text()
    assert "Spoken-question accuracy" in table and "| excited |" in table
