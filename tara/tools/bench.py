"""``tara bench``: latency through the real WebRTC path, measured where the user hears it.

Starts ``tara serve`` as its own process (shipped knowledge base, loopback, plain HTTP) and calls it
with real aiortc peers (Opus, ICE, data channel), which speak espeak-ng questions at live pace with
natural pauses between turns. Measured at the caller:

- voice to voice: the last audible sample sent → the first audible agent frame received;
- voice to answer: the same, to the answer's own first words (its ``agent_text``, sent as it starts to
  play), past a holding phrase ("Let me check.") said while the answer was being prepared;
- per stage: the server's marks for the turn (endpointing, transcript, retrieval, first token, first
  sentence, first audio); what the caller measured beyond the server's own total is the network
  (Opus framing, jitter buffers, pacing) and is reported as ``network``;
- the longest pause inside each reply (a stall, or a cut between its pieces that the user hears);
- barge-in: the first audible sample of speech over the agent → the agent's audio silent at the caller;
- concurrency: several callers talking at once; and the server's RSS across a soak of many turns;
- with ``--wer N``: word error rates clean and in noise, and false starts on noise alone, for each
  ``audio.denoise`` setting (``tara/tools/bench_wer.py``).

Writes ``report.json`` and ``latency.png`` (distribution per concurrency level and a per-stage
waterfall) to ``--out`` and prints a table.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from tara.core.conversation.phrases import HOLDING_PHRASE
from tara.server.serve import free_port
from tara.tools.caller import TaraClient
from tara.tools.echo_replay import ECHO_DELAYS_S, ECHO_GAIN_DB, EchoReplay
from tara.tools.measure import QUESTIONS, STAGES, pss_mb, rss_mb, spoken, stats

LONG_QUESTION = "Tell me everything about the Greenfield library, in great detail."
INTERRUPTION = "Stop, please. How long is the kettle warranty?"
PAUSE_BETWEEN_TURNS_S = 0.6
AFTER_REPLY_S = 2.5  # listened on after each echo-replay reply: the echo guard must also hold just after it
MAX_REPLY_S = 4.0  # of a reply's playing: longer ones are cut short, to keep the run to a few minutes
WATERFALL = [  # (label, from mark, to mark): consecutive stretches of a turn, from the voice stopping
    ("endpointing + speech recognition", None, "transcript"),
    ("retrieval", "transcript", "retrieval"),
    ("LLM first token", "retrieval", "first_token"),
    ("first sentence", "first_token", "first_sentence"),
    ("first TTS audio", "first_sentence", "first_audio"),
    ("network, jitter, playout", "first_audio", "client"),
]
console = Console(stderr=True)


@dataclass
class BenchOptions:
    turns: int = 20
    barge_ins: int = 3
    sessions: list[int] = field(default_factory=lambda: [1, 2, 4])
    turns_per_session: int = 2  # in each concurrent run
    soak: int = 0  # turns, spread over the largest session count
    echo_turns: int = 0  # questions asked by a caller whose mic hears Tara back (false interruptions)
    config: str | None = None
    out: Path = Path("bench-results")
    wer: int = 0  # questions spoken clean and in each noise (0: no WER section)
    wer_denoise: list[str] = field(default_factory=lambda: ["off", "rnnoise"])  # a server for each setting


def start_server(
    config: str | None, port: int, log_path: Path, kb: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """``tara serve`` on loopback in its own process (over the knowledge base ``kb``, with config overrides
    ``env`` such as ``TARA_AUDIO__DENOISE``, if given)."""
    command = [sys.executable, "-m", "tara", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if config:
        command[3:3] = ["--config", config]
    if kb:
        command += ["--kb", str(kb)]
    server = subprocess.Popen(
        command, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    with console.status("starting tara serve (loading models)..."):
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"the server exited; see {log_path}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
                return server
            except OSError:
                time.sleep(0.5)
    server.terminate()
    raise SystemExit("the server did not come up in 5 minutes")


async def ask(
    client: TaraClient, audio: np.ndarray, timeout: float = 90.0, max_reply_s: float = MAX_REPLY_S
) -> dict[str, Any]:
    """One spoken turn; a reply still talking ``max_reply_s`` after it began is interrupted (the page's button).

    ``answer`` is what the agent's turn recorded; ``said`` every piece it voiced (holding phrases too),
    ``heard`` the user's final transcript. ``TimeoutError`` when the agent said nothing for ``timeout``
    seconds (a silent turn), or did not stop within ``timeout`` of being interrupted (a stuck one); a
    reply that began late still has its ``max_reply_s`` to play."""
    clip = client.say(audio)
    await clip.done.wait()
    assert clip.ended is not None and clip.speech_started is not None and clip.speech_ended is not None  # (played)
    done = asyncio.ensure_future(client.wait_for("agent_done", after=clip.ended, timeout=None))
    began = asyncio.ensure_future(client.wait_for("agent_text", after=clip.ended, timeout=timeout))
    try:
        await asyncio.wait([done, began], return_when=asyncio.FIRST_COMPLETED)
        if not done.done() and began.exception() is not None:  # nothing said within ``timeout``
            raise TimeoutError
        try:
            await asyncio.wait_for(asyncio.shield(done), max_reply_s)
        except TimeoutError:
            client.send({"type": "interrupt"})
        await asyncio.wait_for(done, timeout)
    finally:
        began.cancel()
        done.cancel()
    metrics = await client.wait_for("metrics", after=clip.ended, timeout=timeout)
    done_at, done = next((at, e) for at, e in reversed(client.events) if e["type"] == "agent_done")
    first_sound = client.received.first_sound_after(clip.speech_ended)
    stages = metrics["stages"]
    since = [(at, event) for at, event in client.events if at > clip.speech_started]
    turn = {
        "answer": done["text"],
        "server_stages_ms": stages,
        "client_ms": None,
        "said": " ".join(e["text"] for _, e in since if e["type"] == "agent_text"),
        "heard": " ".join(e["text"] for _, e in since if e["type"] == "user_transcript" and e["final"]),
        "grounded": next((e["grounded"] for _, e in since if e["type"] == "sources"), None),
    }
    answer_at = next((at for at, e in since if e["type"] == "agent_text" and e["text"] != HOLDING_PHRASE), None)
    turn["answer_ms"] = None if answer_at is None else round((answer_at - clip.speech_ended) * 1000, 1)
    turn["held"] = HOLDING_PHRASE in turn["said"]
    if first_sound is not None:
        turn["client_ms"] = round((first_sound - clip.speech_ended) * 1000, 1)
        turn["longest_pause_ms"] = round(client.received.longest_pause(first_sound, done_at) * 1000, 1)
        if "voice_to_first_audio" in stages:
            stages["network"] = round(turn["client_ms"] - stages["voice_to_first_audio"], 1)
    return turn


async def barge_in(client: TaraClient, long_question: np.ndarray, interruption: np.ndarray) -> float | None:
    """Ask for a long answer and talk over it once it plays; ms until the caller hears it stop."""
    clip = client.say(long_question)
    await clip.done.wait()
    assert clip.ended is not None  # (played)
    await client.wait_for("state", after=clip.ended, state="speaking", timeout=90)
    await asyncio.sleep(1.5)
    over = client.say(interruption)
    await over.done.wait()
    assert over.ended is not None and over.speech_started is not None  # (played)
    await client.wait_for("metrics", after=over.ended, timeout=90)  # the interruption was answered
    stopped = client.received.silent_from(over.speech_started)
    return round((stopped - over.speech_started) * 1000, 1) if stopped else None


async def talk(
    url: str, questions: list[np.ndarray], texts: list[str], label: str, after_turn=None
) -> list[dict[str, Any]]:
    """One caller asking ``questions`` in turn; ``after_turn(turn)`` runs after each."""
    turns = []
    async with TaraClient(url) as client:
        for audio, text in zip(questions, texts):
            turn = {"question": text, **await ask(client, audio)}
            turns.append(turn)
            console.log(f"[{label}] {turn['client_ms']} ms  {text!r} -> {turn['answer']!r}")
            if after_turn is not None:
                after_turn(turn)
            await asyncio.sleep(PAUSE_BETWEEN_TURNS_S)
    return turns


async def concurrent(url: str, callers: int, turns_each: int, folder: Path, after_turn=None) -> list[dict[str, Any]]:
    """``callers`` sessions talking at once, each starting a little after the previous one."""

    async def caller(index: int) -> list[dict[str, Any]]:
        await asyncio.sleep(index * 0.7)  # people do not all stop talking on the same sample
        texts = [QUESTIONS[(index * 5 + turn) % len(QUESTIONS)] for turn in range(turns_each)]
        return await talk(url, [spoken(t, folder) for t in texts], texts, f"{callers}x#{index}", after_turn)

    results = await asyncio.gather(*(caller(i) for i in range(callers)))
    return [turn for turns in results for turn in turns]


async def run_bench(options: BenchOptions) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {"options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = start_server(options.config, port, options.out / "server.log")
        try:
            texts = [QUESTIONS[i % len(QUESTIONS)] for i in range(options.turns)]
            report["turns"] = {1: await talk(url, [spoken(t, folder) for t in texts], texts, "1x")}
            async with TaraClient(url) as client:
                report["server_ice"] = client.server_candidates  # a loopback server offers 127.0.0.1 only
                report["barge_ins_ms"] = [
                    await barge_in(client, spoken(LONG_QUESTION, folder), spoken(INTERRUPTION, folder))
                    for _ in range(options.barge_ins)
                ]
            for callers in options.sessions:
                if callers > 1:
                    report["turns"][callers] = await concurrent(url, callers, options.turns_per_session, folder)
            if options.echo_turns:
                echo_texts = [QUESTIONS[i % len(QUESTIONS)] for i in range(options.echo_turns)]
                report["echo_replay"] = await false_interruptions(url, echo_texts, folder)
            if options.soak:
                report["soak"] = await soak(url, server.pid, options, folder)
            report["server_rss_mb"], report["server_pss_mb"] = round(rss_mb(server.pid)), round(pss_mb(server.pid))
        finally:
            server.terminate()
            server.wait(15)
    report["summary"] = summarise(report)
    return report


async def false_interruptions(url: str, texts: list[str], folder: Path, seed: int = 16) -> dict[str, Any]:
    """Each question asked on its own call whose mic hears Tara back (a delay drawn from
    ``ECHO_DELAYS_S``, ``ECHO_GAIN_DB``): while only that echo comes back, how often Tara took it
    for the user. ``speech_starts``: it paused for its own voice; ``interrupted``: a reply cut short;
    ``false_turns``: it answered its own words. Then one barge-in over the echo must still stop it."""
    rng = np.random.default_rng(seed)
    counts = {"agent_sentences": 0, "speech_starts": 0, "interrupted": 0, "false_turns": 0}
    heard_from_echo: list[str] = []  # what Tara took for the user's words
    for text in texts:
        async with TaraClient(url, echo=EchoReplay(float(rng.uniform(*ECHO_DELAYS_S)))) as client:
            clip = client.say(spoken(text, folder))
            await clip.done.wait()
            done = await client.wait_for("agent_done", after=clip.ended or 0.0, timeout=120)
            await asyncio.sleep(AFTER_REPLY_S)  # the echo's tail, and a turn it may have started
            since = [event for at, event in client.events if at > (clip.ended or 0.0)]
            since = since[[event["type"] for event in since].index("agent_text") :]  # from the reply on
            counts["agent_sentences"] += sum(event["type"] == "agent_text" for event in since)
            counts["speech_starts"] += sum(event["type"] == "user_speech_start" for event in since)
            counts["interrupted"] += bool(done["interrupted"])
            false_turns = [e["text"] for e in since if e["type"] == "user_transcript" and e["final"]]
            counts["false_turns"] += len(false_turns)
            heard_from_echo += false_turns
        console.log(f"[echo] {text!r}: {counts}")
    sentences = max(counts["agent_sentences"], 1)
    report: dict[str, Any] = {
        **counts,
        "false_interruptions_per_100_sentences": round(
            100 * (counts["interrupted"] + counts["false_turns"]) / sentences, 1
        ),
        "speech_starts_per_100_sentences": round(100 * counts["speech_starts"] / sentences, 1),
        "heard_from_echo": heard_from_echo,
    }
    async with TaraClient(url, echo=EchoReplay(ECHO_DELAYS_S[1])) as client:
        report["barge_in_over_echo_ms"] = await barge_in(
            client, spoken(LONG_QUESTION, folder), spoken(INTERRUPTION, folder)
        )
    return report


async def soak(url: str, pid: int, options: BenchOptions, folder: Path) -> dict[str, Any]:
    """Many turns over the largest session count; RSS after each turn shows whether memory creeps."""
    callers = max(options.sessions)
    samples: list[float] = []
    turns = await concurrent(
        url, callers, -(-options.soak // callers), folder, after_turn=lambda _turn: samples.append(rss_mb(pid))
    )
    warm = samples[min(len(samples) - 1, 10)]  # after the first turns have allocated their caches
    return {
        "turns": len(turns),
        "rss_mb": [round(s) for s in samples],
        "rss_after_warmup_mb": round(warm),
        "rss_end_mb": round(samples[-1]),
        "growth_percent": round((samples[-1] - warm) / warm * 100, 2),
        "voice_to_voice_ms": stats([t["client_ms"] for t in turns if t["client_ms"] is not None]),
    }


def waterfall(turns: list[dict[str, Any]]) -> dict[str, float]:
    """Median length of each consecutive stretch of a turn, from the user's voice stopping."""
    stretches: dict[str, list[float]] = {label: [] for label, _, _ in WATERFALL}
    for turn in turns:
        stages = turn["server_stages_ms"]
        if turn["client_ms"] is None or "endpointing" not in stages:
            continue
        at = {mark: stages["endpointing"] + stages[mark] for mark in STAGES[1:6] if mark in stages}
        at["client"] = turn["client_ms"]
        for label, start, end in WATERFALL:
            if end in at:
                stretches[label].append(at[end] - (at.get(start, 0.0) if start else 0.0))
    return {label: round(statistics.median(values), 1) for label, values in stretches.items() if values}


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    single = report["turns"][1]
    summary = {
        "voice_to_voice_ms": {
            n: stats([t["client_ms"] for t in turns if t["client_ms"] is not None])
            for n, turns in report["turns"].items()
        },
        "voice_to_answer_ms": {
            n: stats([t["answer_ms"] for t in turns if t.get("answer_ms") is not None])
            for n, turns in report["turns"].items()
        },
        "longest_pause_ms": {
            n: stats([t["longest_pause_ms"] for t in turns if t.get("longest_pause_ms") is not None])
            for n, turns in report["turns"].items()
        },
        "holding_phrases": {n: sum(bool(t.get("held")) for t in turns) for n, turns in report["turns"].items()},
        "barge_in_ms": stats([b for b in report["barge_ins_ms"] if b is not None]),
        "server_stages_ms": {
            s: stats([t["server_stages_ms"][s] for t in single if s in t["server_stages_ms"]])
            for s in [*STAGES, "network"]
        },
        "waterfall_p50_ms": waterfall(single),
        "server_rss_mb": report["server_rss_mb"],
        "server_pss_mb": report["server_pss_mb"],
    }
    if "echo_replay" in report:
        summary["echo_replay"] = report["echo_replay"]
    if "soak" in report:
        summary["soak_rss_growth_percent"] = report["soak"]["growth_percent"]
    return summary


def print_table(summary: dict[str, Any]) -> None:
    table = Table(title="Tara latency through WebRTC, measured at the caller")
    for column in ("measure (ms)", "p50", "p95", "n"):
        table.add_column(column, justify="left" if column.startswith("measure") else "right")
    rows = {  # per concurrency level: (label, figures)
        "voice_to_voice_ms": lambda sessions, callers: f"[bold]voice → voice, {sessions}[/]",
        "voice_to_answer_ms": lambda sessions, callers: (
            f"  voice → answer, {sessions} ({summary['holding_phrases'][callers]} turns held with '{HOLDING_PHRASE}')"
        ),
        "longest_pause_ms": lambda sessions, callers: f"  longest pause inside a reply, {sessions}",
    }
    for key, label in rows.items():
        for callers, values in summary[key].items():
            sessions = f"{callers} session{'s' if callers > 1 else ''}"
            table.add_row(label(sessions, callers), f"{values['p50']:.0f}", f"{values['p95']:.0f}", str(values["n"]))
    barge = summary["barge_in_ms"]
    table.add_row("[bold]barge-in → agent silent[/]", f"{barge['p50']:.0f}", f"{barge['p95']:.0f}", str(barge["n"]))
    for stage, values in summary["server_stages_ms"].items():
        table.add_row(f"  1 session: {stage}", f"{values['p50']:.0f}", f"{values['p95']:.0f}", str(values["n"]))
    Console().print(table)
    Console().print(
        "where the p50 turn's time goes: "
        + ", ".join(f"{label} {ms:.0f}" for label, ms in summary["waterfall_p50_ms"].items())
    )
    line = f"server RSS {summary['server_rss_mb']} MB (PSS {summary['server_pss_mb']} MB)"
    if "echo_replay" in summary:
        echo = summary["echo_replay"]
        Console().print(
            f"with Tara's voice replayed into the mic ({ECHO_GAIN_DB:g} dB, {ECHO_DELAYS_S[0] * 1000:.0f}-"
            f"{ECHO_DELAYS_S[1] * 1000:.0f} ms): {echo['false_interruptions_per_100_sentences']} false interruptions "
            f"and {echo['speech_starts_per_100_sentences']} pauses per 100 agent sentences "
            f"({echo['agent_sentences']} sentences); barge-in over the echo {echo['barge_in_over_echo_ms']} ms"
        )
    if "soak_rss_growth_percent" in summary:
        line += f"; soak RSS growth {summary['soak_rss_growth_percent']} %"
    Console().print(line)


def plot(report: dict[str, Any], path: Path) -> None:
    """Latency distribution per concurrency level, and the p50 turn as a waterfall of stages."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), width_ratios=[1, 1.4])
    levels = sorted(report["turns"])
    data = [[t["client_ms"] for t in report["turns"][n] if t["client_ms"] is not None] or [0] for n in levels]
    left.boxplot(data, tick_labels=[f"{n} session{'s' if n > 1 else ''}" for n in levels], showfliers=True)
    for index, values in enumerate(data, start=1):
        left.scatter(
            np.full(len(values), index) + np.random.default_rng(index).uniform(-0.12, 0.12, len(values)),
            values,
            s=10,
            alpha=0.5,
        )
    for target, style in ((700, "--"), (1000, ":")):
        left.axhline(target, color="tab:red", linestyle=style, linewidth=1, label=f"{target} ms")
    left.set_ylabel("voice → voice at the caller (ms)")
    left.set_title("latency distribution")
    left.legend(loc="upper left")

    stretches = report["summary"]["waterfall_p50_ms"]
    start = 0.0
    for index, (label, ms) in enumerate(stretches.items()):
        right.barh(0, ms, left=start, color=f"C{index}", label=f"{label} {ms:.0f} ms")
        start += ms
    right.axvline(700, color="tab:red", linestyle="--", linewidth=1)
    right.set_yticks([])
    right.set_xlabel("ms after the user's voice stopped (medians of each stretch, 1 session)")
    right.set_title("where the time goes")
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def bench(options: BenchOptions) -> dict[str, Any]:
    """Run the benchmark; write report.json and latency.png to ``options.out``; print the tables.

    ``--turns 0`` with ``--wer`` leaves the latency sections out (a WER run alone); without ``--wer`` it
    leaves out only the one caller's turns (barge-ins, concurrent callers and the echo replay still run)."""
    from tara.tools.bench_wer import print_wer, wer_bench  # (it builds on this module)

    options.out.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(run_bench(options)) if options.turns or not options.wer else {}
    if options.wer:
        report["wer"] = asyncio.run(wer_bench(options.wer, options.wer_denoise, options.config, options.out))
    (options.out / "report.json").write_text(json.dumps(report, indent=2))
    if "summary" in report:
        print_table(report["summary"])
        plot(report, options.out / "latency.png")
    if "wer" in report:
        print_wer(report["wer"])
    console.print(f"wrote {options.out / 'report.json'}" + (" and latency.png" if "summary" in report else ""))
    return report
