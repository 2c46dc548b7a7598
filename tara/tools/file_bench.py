"""File-path latency benchmark: spoken questions through the whole pipeline at live-microphone pace.

    .venv/bin/python -m tara.tools.file_bench [--runs 8] [--config FILE] [--json out.json]

Questions about the shipped knowledge base are spoken with espeak-ng and fed in 20 ms frames at real
time, so speculative transcription overlaps the end-of-turn silence exactly as it would live.
Prints p50/p95 per stage (ms after the end-of-turn decision), end of speech -> first audio, and RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tara.core.config import load_config  # noqa: E402
from tara.core.stack import load_stack  # noqa: E402
from tara.tools.filechat import converse  # noqa: E402
from tara.tools.measure import QUESTIONS, STAGES, percentile, rss_mb, spoken  # noqa: E402


async def run(args: argparse.Namespace) -> dict:
    console = Console(stderr=True)
    config = load_config(args.config)
    stack = await load_stack(config, console=console)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.runs):
            question = QUESTIONS[index % len(QUESTIONS)]
            turn = await converse(stack, spoken(question, Path(tmp)), realtime=True)
            results.append({"question": question, **turn.to_json()})
            console.log(
                f"{turn.timings_ms.get('voice_to_first_audio', float('nan')):.0f} ms  {turn.transcript!r} -> {turn.answer!r}"
            )
    model = getattr(config.llm, "model", config.llm.backend)  # a server backend names no model file
    stages = {s: [r["timings_ms"][s] for r in results if s in r["timings_ms"]] for s in STAGES}
    current, peak = rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {
        "runs": len(results),
        "model": model,
        "stages_ms": {
            s: {"p50": round(percentile(v, 50), 1), "p95": round(percentile(v, 95), 1)} for s, v in stages.items()
        },
        "rss_mb": round(current),
        "peak_rss_mb": round(peak),
        "turns": results,
    }
    table = Table(title=f"file-path latency, {len(results)} turns, {model}")
    table.add_column("stage (ms)")
    table.add_column("p50", justify="right")
    table.add_column("p95", justify="right")
    for stage, values in summary["stages_ms"].items():
        table.add_row(stage, f"{values['p50']:.0f}", f"{values['p95']:.0f}")
    Console().print(table)
    print(
        f"end-of-turn decision -> first audio p50: {statistics.median(stages['first_audio']):.0f} ms; "
        f"end of speech (incl. {config.vad.min_silence_ms} ms silence wait) -> first audio p50: "
        f"{statistics.median(stages['voice_to_first_audio']):.0f} ms; RSS {current:.0f} MB (peak {peak:.0f} MB)"
    )
    return summary


def bench_cli(doc: str | None, run, options: dict[str, int]) -> None:
    """Parse ``--config``, ``--json`` and the integer ``options``; run; write the JSON report."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in options.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--config")
    parser.add_argument("--json", help="write the full report here")
    args = parser.parse_args()
    summary = asyncio.run(run(args))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    bench_cli(__doc__, run, {"runs": 8})
