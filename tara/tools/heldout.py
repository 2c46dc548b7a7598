"""``tara eval --heldout``: is Tara right about documents nobody tuned it on, through real WebRTC?

The shipped knowledge base is what the prompts were tuned on, so accuracy there proves little. The
held-out knowledge bases in ``eval/heldout/`` (a dental practice, a bike rental, a museum; a swimming
pool kept as the ``final`` split, run once at the end) are never shipped and never tuned on. Each has
36 spoken turns: facts, follow-ups that lean on the previous answer, questions the documents cannot
answer, small talk, and the same fact asked early and late (drift). Each turn is spoken by espeak-ng
(American, British, a female variant, at different speeds) or Piper, some with babble, fan or street
noise mixed in at ``SNR_DB``.

``tara serve`` runs as its own process over one knowledge base at a time; an aiortc caller speaks the
turns at live pace, as one long conversation and/or as short ones of ``SHORT_TURNS`` turns. A turn
is right when the agent's words contain one of its expected facts (numbers compared as digits, so
"forty-five" matches "45") and it did not say it doesn't know; an unanswerable one is right when it
says it doesn't know; small talk when it got an answer at all. A turn with no agent audio is silent.
Asked to say it again ("Sorry, I didn't catch that."), the caller does, once, more slowly, as people
do; the repeat's answer is the turn's, and the report counts these turns ("right first time" scores them
wrong).

``--mode crowd`` has ``--callers`` callers (4 by default) hold the long conversation at once, each
in a call of its own, the second starting a few seconds after the first and so on: several people
asking about documents nobody tuned on, sharing two cores.

``--mode typed`` types the same questions into a real in-process session instead (no speech, no
network): what the brain gets right when every question is heard word for word, the ceiling the
spoken runs are measured against.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from text_to_num import alpha2digit

from tara.core.config import PROJECT_ROOT, load_config
from tara.core.conversation.phrases import NOT_HEARD_PHRASE
from tara.server.serve import free_port
from tara.tools.bench import PAUSE_BETWEEN_TURNS_S, ask, console, start_server
from tara.tools.caller import TaraClient
from tara.tools.measure import stats
from tara.tools.spoken import Voices

HELDOUT_DIR = PROJECT_ROOT / "eval" / "heldout"
SPLITS = {"dev": ["dentist", "bikes", "museum"], "final": ["pool"]}
SHORT_TURNS = 4  # turns per conversation in short mode
CROWD_STAGGER_S = 2.5  # in crowd mode, each caller starts this long after the one before
MAX_REPLY_S = 12.0  # a reply still playing after this is cut (its words so far are scored)
REPLY_TIMEOUT_S = 30.0  # no reply by then: the turn was silent
DRIFT_TURNS = 12  # accuracy of the first and of the last this many turns of a long conversation
DONT_KNOW = re.compile(
    r"\b(?:don't know|do not know|not sure|isn't in my documents|not in my documents|"
    r"no information|can't find|cannot find|doesn't say|does not say|not mentioned|"
    r"don't have (?:that|any|information))",
    re.IGNORECASE,
)
Kind = Literal["fact", "followup", "unanswerable", "chitchat"]


@dataclass(frozen=True)
class Question:
    say: str
    kind: Kind
    expect: list[str] = field(default_factory=list)
    voice: str = "us"
    noise: str | None = None


def load_questions(kb: str) -> list[Question]:
    return [Question(**item) for item in yaml.safe_load((HELDOUT_DIR / kb / "questions.yaml").read_text())]


# ---------------------------------------------------------------- scoring


def _normal(text: str) -> str:
    text = alpha2digit(text.lower().replace("-", " "), "en")
    return " ".join(re.sub(r"[^\w.:' ]", " ", text).split())


def mentions(answer: str, expected: str) -> bool:
    """``expected`` occurs in ``answer`` as whole words (a plural allowed), numbers as digits."""
    pattern = rf"(?<![\w.:]){re.escape(_normal(expected))}s?(?![\w]|\.\d)"  # 8 is in 8:00, not in 18:00 or 8.5
    return re.search(pattern, _normal(answer)) is not None


def says_dont_know(answer: str) -> bool:
    return bool(DONT_KNOW.search(answer.replace("\u2019", "'")))


def is_correct(question: Question, answer: str, silent: bool) -> bool:
    if silent:
        return False
    if question.kind == "unanswerable":
        return says_dont_know(answer)
    if question.kind == "chitchat":
        return bool(answer.strip()) and not says_dont_know(answer)
    return not says_dont_know(answer) and any(mentions(answer, fact) for fact in question.expect)


def summarise(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (overall, per kind), "don't know" recall and precision, latency, silent and worst turns."""

    def accuracy(subset: list[dict[str, Any]]) -> float | None:
        return round(sum(t["correct"] for t in subset) / len(subset), 3) if subset else None

    unanswerable = [t for t in turns if t["kind"] == "unanswerable"]
    dont_know = [t for t in turns if t["dont_know"]]
    latencies = [t["client_ms"] for t in turns if t["client_ms"] is not None]
    timed = [t for t in turns if t["client_ms"] is not None]
    return {
        "turns": len(turns),
        "accuracy": accuracy(turns),
        "by_kind": {
            kind: accuracy([t for t in turns if t["kind"] == kind])
            for kind in ("fact", "followup", "unanswerable", "chitchat")
        },
        "right_first_time": accuracy([{"correct": t["correct"] and not t["asked_again"]} for t in turns]),
        "asked_again": sum(t["asked_again"] for t in turns),
        "dont_know_on_unanswerable": accuracy([{"correct": t["dont_know"]} for t in unanswerable]),
        "dont_know_precision": (
            round(sum(t["kind"] == "unanswerable" for t in dont_know) / len(dont_know), 3) if dont_know else None
        ),
        "voice_to_voice_ms": {**stats(latencies), "max": round(max(latencies), 1) if latencies else None},
        "silent_turns": sum(t["silent"] for t in turns),
        "worst_turn": max(timed, key=lambda t: t["client_ms"]) if timed else None,
        "wrong": [
            {k: t[k] for k in ("kb", "index", "kind", "say", "heard", "said")} for t in turns if not t["correct"]
        ],
    }


# ---------------------------------------------------------------- running


@dataclass
class HeldoutOptions:
    split: str = "dev"
    kbs: list[str] = field(default_factory=list)  # default: the split's
    mode: Literal["long", "short", "both", "crowd", "typed"] = "long"
    turns: int = 36  # per knowledge base (fewer for a quick run)
    callers: int = 4  # in crowd mode
    config: str | None = None
    out: Path = Path("bench-results/heldout")


async def converse(
    url: str, kb: str, questions: list[Question], start: int, voices: Voices, label: str, delay: float = 0.0
) -> list[dict[str, Any]]:
    """One conversation: ``questions`` in turn, in one call (placed ``delay`` seconds from now)."""
    await asyncio.sleep(delay)
    turns = []
    async with TaraClient(url) as client:
        for offset, question in enumerate(questions):
            turn = await _ask(client, voices, question)
            if NOT_HEARD_PHRASE in turn["said"]:  # asked to say it again: said again, once, more slowly
                await asyncio.sleep(PAUSE_BETWEEN_TURNS_S)
                again = await _ask(client, voices, question, slower=True)
                first_ms = turn["client_ms"] if again["client_ms"] is not None else None  # (a silent repeat: silent)
                turn = {**again, "client_ms": first_ms, "first_heard": turn["heard"], "asked_again": True}
            turns.append(_turn(kb, start + offset, question, turn, label))
            await asyncio.sleep(PAUSE_BETWEEN_TURNS_S)
    return turns


async def _ask(client: TaraClient, voices: Voices, question: Question, slower: bool = False) -> dict[str, Any]:
    """One spoken question and what came back (``client_ms`` None: nothing did, a silent turn)."""
    try:
        return await ask(
            client,
            await voices.speak(question.say, question.voice, question.noise, slower),
            timeout=REPLY_TIMEOUT_S,
            max_reply_s=MAX_REPLY_S,
        )
    except TimeoutError:  # nothing came back (a late reply may still come)
        return {"said": "", "heard": "", "grounded": None, "client_ms": None}


async def crowd(url: str, kb: str, questions: list[Question], voices: Voices, callers: int) -> list[dict[str, Any]]:
    """``callers`` long conversations at once, staggered; every caller's turns, scored alike.

    The questions are spoken before the first call (the callers' own synthesis would share the cores
    being measured)."""
    for question in questions:
        await voices.speak(question.say, question.voice, question.noise)
    conversations = await asyncio.gather(
        *(
            converse(url, kb, questions, 0, voices, f"{kb} caller {n + 1}", delay=n * CROWD_STAGGER_S)
            for n in range(callers)
        )
    )
    return [turn for turns in conversations for turn in turns]


def _turn(kb: str, index: int, question: Question, turn: dict[str, Any], label: str) -> dict[str, Any]:
    """A turn's record (and its log line) from what was heard and said."""
    said, silent = turn["said"], turn["client_ms"] is None
    record = {
        "kb": kb,
        "index": index,
        "kind": question.kind,
        "say": question.say,
        "voice": question.voice,
        "noise": question.noise,
        "heard": turn["heard"],
        "said": said,
        "grounded": turn["grounded"],
        "client_ms": turn["client_ms"],
        "silent": silent,
        "asked_again": turn.get("asked_again", False),
        "first_heard": turn.get("first_heard"),
        "dont_know": says_dont_know(said),
        "correct": is_correct(question, said, silent),
    }
    mark = ("[green]ok[/]" if record["correct"] else "[red]WRONG[/]") + (
        " (asked again)" if record["asked_again"] else ""
    )
    console.log(f"[{label} {index + 1}] {mark} {turn['client_ms']} ms  heard {turn['heard']!r} -> {said!r}")
    return record


async def type_questions(options: HeldoutOptions, kb: str, questions: list[Question]) -> list[dict[str, Any]]:
    """One long conversation over ``kb`` typed into a real session; ``client_ms`` is the time from the
    question to the first reply audio (the typed counterpart of voice-to-voice, without speech)."""
    from tara.core.conversation.session import Session
    from tara.core.conversation.sink import BufferSink
    from tara.core.stack import load_stack
    from tara.tools.filechat import FileTurn, collect_turn

    docs = HELDOUT_DIR / kb / "docs"
    stack = await load_stack(load_config(options.config, **{"rag.kb_dir": str(docs)}), docs)
    session = Session(stack, BufferSink())
    turns = []
    try:
        for index, question in enumerate(questions):
            result = FileTurn()
            session.say_text(question.say)
            await asyncio.wait_for(collect_turn(session, result), REPLY_TIMEOUT_S)
            turn = {
                "said": result.answer,
                "heard": question.say,
                "grounded": result.grounded,
                "client_ms": result.timings_ms.get("first_audio"),
            }
            turns.append(_turn(kb, index, question, turn, f"{kb} typed"))
    finally:
        await session.close()
    return turns


async def run_heldout(options: HeldoutOptions) -> dict[str, Any]:
    kbs = options.kbs or SPLITS[options.split]
    report: dict[str, Any] = {"options": {**vars(options), "out": str(options.out)}, "runs": {}}
    if options.mode == "typed":
        for kb in kbs:
            report["runs"].setdefault("typed", {})[kb] = await type_questions(
                options, kb, load_questions(kb)[: options.turns]
            )
        return _summarised(report)
    modes = ["long", "short"] if options.mode == "both" else [options.mode]

    with tempfile.TemporaryDirectory() as tmp:
        voices = Voices(Path(tmp))
        for kb in kbs:
            questions = load_questions(kb)[: options.turns]
            port = free_port()
            server = start_server(options.config, port, options.out / f"server-{kb}.log", kb=HELDOUT_DIR / kb / "docs")
            try:
                url = f"http://127.0.0.1:{port}"
                for mode in modes:
                    if mode == "crowd":
                        turns = await crowd(url, kb, questions, voices, options.callers)
                    else:
                        size = len(questions) if mode == "long" else SHORT_TURNS
                        turns = []
                        for start in range(0, len(questions), size):
                            label = f"{kb} {mode}"
                            turns += await converse(url, kb, questions[start : start + size], start, voices, label)
                    report["runs"].setdefault(mode, {})[kb] = turns
            finally:
                server.terminate()
                server.wait(15)
    return _summarised(report)


def _summarised(report: dict[str, Any]) -> dict[str, Any]:
    report["summary"] = {
        mode: {
            "all": summarise([t for turns in runs.values() for t in turns]),
            **{kb: _with_drift(summarise(turns), turns, mode) for kb, turns in runs.items()},
        }
        for mode, runs in report["runs"].items()
    }
    return report


def _with_drift(summary: dict[str, Any], turns: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    if mode in ("long", "typed") and len(turns) >= 2 * DRIFT_TURNS:
        first, last = turns[:DRIFT_TURNS], turns[-DRIFT_TURNS:]
        summary["accuracy_first_turns"] = round(sum(t["correct"] for t in first) / DRIFT_TURNS, 3)
        summary["accuracy_last_turns"] = round(sum(t["correct"] for t in last) / DRIFT_TURNS, 3)
    return summary


def markdown(report: dict[str, Any]) -> str:
    lines = []
    for mode, summaries in report["summary"].items():
        lines += [
            f"**Held-out, {mode} conversations** (split {report['options']['split']})",
            "",
            "| kb | turns | right | asked again | right first time | facts | follow-ups | unanswerable → don't know | "
            "don't-know precision | silent | v2v p50 | p95 | max | first/last 12 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for kb, s in summaries.items():
            v2v = s["voice_to_voice_ms"]
            drift = (
                f"{s['accuracy_first_turns']:.0%} / {s['accuracy_last_turns']:.0%}"
                if "accuracy_first_turns" in s
                else "-"
            )
            cells = [
                kb,
                s["turns"],
                _pct(s["accuracy"]),
                s["asked_again"],
                _pct(s["right_first_time"]),
                _pct(s["by_kind"]["fact"]),
                _pct(s["by_kind"]["followup"]),
                _pct(s["dont_know_on_unanswerable"]),
                _pct(s["dont_know_precision"]),
                s["silent_turns"],
                v2v["p50"],
                v2v["p95"],
                v2v["max"],
                drift,
            ]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        wrong = summaries["all"]["wrong"]
        if wrong:
            lines += ["", "| kb | # | kind | asked | heard | said |", "|---|---|---|---|---|---|"]
            lines += [
                f"| {w['kb']} | {w['index'] + 1} | {w['kind']} | {w['say']} | {w['heard']} | {w['said']} |"
                for w in wrong
            ]
        lines.append("")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def heldout(options: HeldoutOptions) -> dict[str, Any]:
    """Run the held-out evaluation; write heldout.json and heldout.md to ``options.out``; print the tables."""
    if options.split == "final":
        console.print("[yellow]the final split: run it once, at the end, and do not tune on what it shows[/]")
    options.out.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(run_heldout(options))
    (options.out / "heldout.json").write_text(json.dumps(report, indent=2))
    (options.out / "heldout.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    console.print(f"wrote {options.out / 'heldout.json'} and {options.out / 'heldout.md'}")
    return report
