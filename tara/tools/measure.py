"""What every latency benchmark shares: the spoken questions, the stage names and the statistics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tara.core.audio import read_audio

# Questions about the shipped knowledge base, a greeting, and a few with a mid-sentence pause (the
# comma), where a careless endpointer would answer half a question.
QUESTIONS = [
    "How much water does the Brightline kettle hold?",
    "How long is the warranty on the kettle?",
    "What temperature is best for green tea?",
    "When does the library open on Saturday?",
    "How many items can I borrow from the library at once?",
    "How much is the late fee per item per day?",
    "How do I start Tara?",
    "Is the library open on Sundays?",
    "Hi there, how are you today?",
    "What is the phone number for kettle support?",
    "About the kettle, how do I descale it?",
    "And the library, does it have Wi-Fi?",
]
# Server marks, in ms after the end-of-turn decision (``endpointing`` is the silence waited for it).
STAGES = [
    "endpointing",
    "transcript",
    "retrieval",
    "first_token",
    "first_sentence",
    "first_audio",
    "voice_to_first_audio",
]


def spoken(text: str, folder: Path, lead_silence: float = 0.5, speed: int = 160) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 16 kHz int16 with leading silence."""
    wav = folder / f"{abs(hash((text, speed)))}.wav"
    if not wav.exists():
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed), "-w", str(wav), text], check=True)
    return np.concatenate([np.zeros(int(lead_silence * 16000), dtype=np.int16), read_audio(wav)])


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def stats(values: list[float]) -> dict[str, float]:
    """p50/p95 (ms, rounded) and the count: the shape every bench report uses."""
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1), "n": len(values)}


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process, from /proc."""
    return _proc_kb(f"/proc/{pid}/status", "VmRSS:") / 1024


def pss_mb(pid: int | str = "self") -> float:
    """Proportional resident memory: RSS counts the model file once per llama.cpp context mapping it,
    PSS shares those pages out, so it is what the process really costs."""
    return _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:") / 1024


def _proc_kb(path: str, key: str) -> int:
    return next(int(line.split()[1]) for line in Path(path).read_text().splitlines() if line.startswith(key))
