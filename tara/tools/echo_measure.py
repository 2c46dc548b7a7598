"""How well an echo canceller takes Tara's voice out of the mic: ``python -m tara.tools.echo_measure``.

Piper says two sentences; the "room" plays them back ``ECHO_GAIN_DB`` quieter after each delay of
``DELAYS_MS`` with a few reflections and a little mic noise, and an espeak-ng user talks over the
second one. Per canceller and delay it prints the echo return loss enhancement (ERLE: how much
quieter the echo is after cancelling, on the first sentence while it learns and on the second), how
much of the user is kept over the echo (correlation with the clean user speech, and the level
change), and the cost per 10 ms frame. Other backends are compared by registering them in
``ECHO_CANCELLERS`` and naming them on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from tara.core.audio import PIPELINE_RATE, resample
from tara.core.stages.mic import FRAME, MIC_RATE
from tara.core.stages.mic.echo import ECHO_CANCELLERS
from tara.tools.echo_replay import ECHO_GAIN_DB
from tara.tools.spoken import Voices

DELAYS_MS = (80, 140, 200, 300, 450)
AGENT = (
    "Sure. The Brightline kettle boils a full litre in about four minutes, and you can descale it with "
    "citric acid once a month. Would you like me to walk you through the steps one by one?"
)
USER = "Wait, stop, I have another question about the warranty please."
MAX_LAG = MIC_RATE // 50  # a canceller may delay its output by up to 20 ms


def room(far: np.ndarray, delay_ms: int, rng: np.random.Generator) -> np.ndarray:
    """``far`` as a mic hears it from the speaker: delayed, quieter, with reflections over 100 ms."""
    delay = MIC_RATE * delay_ms // 1000
    response = np.zeros(delay + MIC_RATE // 10)
    response[delay] = 1.0
    response[delay + rng.integers(MIC_RATE // 500, MIC_RATE // 10 - 1, 12)] += rng.uniform(-0.3, 0.3, 12)
    return np.convolve(far.astype(np.float64), response)[: len(far)] * 10 ** (ECHO_GAIN_DB / 20)


def level_db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(samples.astype(np.float64) ** 2) + 1e-9))


def cancel(name: str, mic: np.ndarray, far: np.ndarray) -> tuple[np.ndarray, float]:
    """The cancelled mic and the mean ms per 10 ms frame."""
    canceller = ECHO_CANCELLERS.create(name)
    frames = len(mic) // FRAME
    began = time.perf_counter()
    out = [canceller.process(mic[i * FRAME : (i + 1) * FRAME], far[i * FRAME : (i + 1) * FRAME]) for i in range(frames)]
    return np.concatenate(out).astype(np.float64), (time.perf_counter() - began) / frames * 1000


def kept(user: np.ndarray, out: np.ndarray) -> float:
    """How much ``out`` still sounds like ``user``: the best correlation over a small output lag."""
    n = len(user) - MAX_LAG
    return max(float(np.corrcoef(user[:n], out[lag : lag + n])[0, 1]) for lag in range(0, MAX_LAG, 10))


async def measure(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        voices = Voices(Path(tmp))
        sentence = resample(await voices.speak(AGENT, "piper"), PIPELINE_RATE, MIC_RATE)
        user = resample(await voices.speak(USER, "us"), PIPELINE_RATE, MIC_RATE).astype(np.float64)
    far = np.concatenate([sentence, sentence])
    far = far[: len(far) // FRAME * FRAME]  # whole 10 ms frames
    rng = np.random.default_rng(1)
    for delay_ms in DELAYS_MS:
        echo = room(far, delay_ms, rng)
        noise = rng.normal(0, 3, len(far))
        talk = slice(len(sentence) + MIC_RATE, len(sentence) + MIC_RATE + len(user))
        over = echo.copy()
        over[talk] += user
        loud = np.abs(echo) > 100
        halves = (slice(0, len(sentence)), slice(len(sentence), len(far)))
        for name in names:
            out, ms = cancel(name, np.clip(echo + noise, -32768, 32767).astype(np.int16), far)
            erle = [level_db(echo[h][loud[h]]) - level_db(out[h][loud[h]]) for h in halves]
            out_over, _ = cancel(name, np.clip(over + noise, -32768, 32767).astype(np.int16), far)
            print(
                f"{name:8s} delay {delay_ms:3d} ms: ERLE {erle[0]:5.1f} dB learning, {erle[1]:5.1f} dB learnt; "
                f"user over the echo kept {kept(user, out_over[talk]):.2f} ({level_db(out_over[talk]) - level_db(user):+.1f} dB); "
                f"{ms:.3f} ms per 10 ms frame",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description="How well each echo canceller takes Tara's voice out of the mic.")
    parser.add_argument("names", nargs="*", default=ECHO_CANCELLERS.names, help="registered echo cancellers")
    asyncio.run(measure(parser.parse_args().names))


if __name__ == "__main__":
    main()
