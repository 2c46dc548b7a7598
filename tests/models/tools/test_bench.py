"""``tara bench`` end to end: a real server process, real WebRTC callers, a report and a chart."""

import json

from tara.cli import main


def test_tara_bench_writes_a_report_and_a_chart(tmp_path):
    out = tmp_path / "bench"
    assert (
        main(
            [
                "bench",
                "--turns",
                "2",
                "--barge-ins",
                "1",
                "--sessions",
                "1,2",
                "--turns-per-session",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    summary = report["summary"]
    assert summary["voice_to_voice_ms"]["1"]["n"] == 2 and summary["voice_to_voice_ms"]["2"]["n"] == 2
    assert summary["barge_in_ms"]["n"] == 1
    assert report["server_ice"] == ["127.0.0.1"]  # tara serve --host 127.0.0.1 gathers loopback only
    assert {"endpointing", "first_token", "first_audio", "network"} <= summary["server_stages_ms"].keys()
    assert sum(summary["waterfall_p50_ms"].values()) > 0
    assert all(turn["answer"] for turn in report["turns"]["1"])
    assert (out / "latency.png").read_bytes()[:4] == b"\x89PNG"
