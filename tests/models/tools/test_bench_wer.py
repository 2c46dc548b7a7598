"""``tara bench --wer``: a real server per denoise setting, a caller speaking clean and noisy questions."""

import json

from tara.cli import main
from tara.tools import bench_wer


def test_wer_section_reports_each_setting(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_wer, "NOISE_ALONE_S", 3.0)
    out = tmp_path / "bench"
    assert main(["bench", "--turns", "0", "--wer", "1", "--wer-denoise", "rnnoise", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())["wer"]
    result = report["denoise"]["rnnoise"]
    assert set(result["wer"]) == {"clean", "fan", "babble", "keyboard", "noisy"}
    assert result["wer"]["clean"] <= 0.5 and result["heard"]["clean"][0]  # the clean question was heard
    assert set(result["false_starts"]) == {"fan", "babble", "keyboard"}
    assert not (out / "latency.png").exists()  # --turns 0: no latency sections
