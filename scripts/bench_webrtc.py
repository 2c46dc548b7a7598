"""WebRTC latency benchmark: a real aiortc caller talks to ``tara serve`` and times what it hears.

    .venv/bin/python scripts/bench_webrtc.py [--turns 10] [--barge-ins 5] [--config FILE] [--json out.json]

Starts the server (shipped knowledge base, loopback, plain HTTP) as its own process, calls it like a
browser (Opus, ICE, data channel), speaks espeak-ng questions at live pace and measures at the caller:
- voice → first audio: the last audible sample it sent → the first audible agent frame it received;
- barge-in: the first audible sample of speech over the agent → the agent's audio going silent.
Also reports the server's own per-stage marks (ms after its end-of-turn decision) and its RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench_file_latency import QUESTIONS, STAGES, bench_cli, percentile, spoken  # noqa: E402
from server.client import TaraClient  # noqa: E402
from server.serve import free_port  # noqa: E402

LONG_QUESTION = "Tell me everything about the Greenfield library, in great detail."
STOP = "Stop, please."
console = Console(stderr=True)


def start_server(config: str | None, port: int, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)]
    if config:
        command[3:3] = ["--config", config]
    server = subprocess.Popen(command, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    with console.status("starting tara serve (loading models)..."):
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"server exited; see {log_path}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
                return server
            except OSError:
                time.sleep(0.5)
    raise SystemExit("server did not come up in 5 minutes")


def server_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


async def ask(client: TaraClient, audio, timeout: float = 90.0) -> dict:
    """One spoken turn; returns client-side and server-side timings."""
    clip = client.say(audio)
    await clip.done.wait()
    metrics = await client.wait_for("metrics", after=clip.ended, timeout=timeout)
    done = client.events_of("agent_done")[-1]
    first_sound = client.received.first_sound_after(clip.speech_ended)
    return {
        "answer": done["text"],
        "voice_to_first_audio_client_ms": round((first_sound - clip.speech_ended) * 1000, 1) if first_sound else None,
        "server_stages_ms": metrics["stages"],
    }


async def barge_in(client: TaraClient, long_question, stop) -> float | None:
    """Ask for a long answer, talk over it once it plays; ms until the caller hears it stop."""
    clip = client.say(long_question)
    await clip.done.wait()
    await client.wait_for("state", after=clip.ended, state="speaking", timeout=90)
    await asyncio.sleep(1.5)
    interruption = client.say(stop)
    await interruption.done.wait()
    await asyncio.sleep(1.0)
    await client.wait_for("state", after=interruption.ended, state="listening", timeout=90)
    stopped = client.received.silent_from(interruption.speech_started)
    return round((stopped - interruption.speech_started) * 1000, 1) if stopped else None


async def run(args: argparse.Namespace) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = start_server(args.config, port, folder / "server.log")
        try:
            async with TaraClient(f"http://127.0.0.1:{port}") as client:
                turns = []
                for index in range(args.turns):
                    question = QUESTIONS[index % len(QUESTIONS)]
                    turn = {"question": question, **await ask(client, spoken(question, folder))}
                    turns.append(turn)
                    console.log(f"{turn['voice_to_first_audio_client_ms']} ms  {question!r} -> {turn['answer']!r}")
                    await asyncio.sleep(0.5)
                barge_ins = []
                for _ in range(args.barge_ins):
                    barge_ins.append(await barge_in(client, spoken(LONG_QUESTION, folder), spoken(STOP, folder)))
                    console.log(f"barge-in: agent silent {barge_ins[-1]} ms after the user started talking")
                    await asyncio.sleep(1.0)
            rss = server_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(15)
    return summarise(turns, barge_ins, rss)


def summarise(turns: list[dict], barge_ins: list[float | None], rss: float) -> dict:
    def stats(values: list[float]) -> dict[str, float]:
        return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1), "n": len(values)}

    client = [t["voice_to_first_audio_client_ms"] for t in turns if t["voice_to_first_audio_client_ms"] is not None]
    server = {s: stats([t["server_stages_ms"][s] for t in turns if s in t["server_stages_ms"]]) for s in STAGES}
    summary = {
        "voice_to_first_audio_at_client_ms": stats(client),
        "barge_in_stop_ms": stats([b for b in barge_ins if b is not None]),
        "server_stages_ms": server,
        "server_rss_mb": round(rss),
        "turns": turns,
        "barge_ins_ms": barge_ins,
    }
    table = Table(title=f"WebRTC latency at the caller, {len(turns)} turns")
    for column in ("measure (ms)", "p50", "p95", "n"):
        table.add_column(column, justify="left" if column.startswith("measure") else "right")
    rows = {"voice → first audio (client)": summary["voice_to_first_audio_at_client_ms"],
            "barge-in → agent silent (client)": summary["barge_in_stop_ms"]}
    rows |= {f"server: {stage}": values for stage, values in server.items()}
    for name, values in rows.items():
        table.add_row(name, f"{values['p50']:.0f}", f"{values['p95']:.0f}", str(values["n"]))
    Console().print(table)
    print(f"server RSS {rss:.0f} MB")
    return summary


if __name__ == "__main__":
    bench_cli(__doc__, run, {"turns": 10, "barge-ins": 5})
