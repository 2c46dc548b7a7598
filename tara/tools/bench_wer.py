"""``tara bench --wer N``: what the server hears through WebRTC, in a quiet room and a noisy one.

For each ``audio.denoise`` setting asked for (``--wer-denoise off,rnnoise``), ``tara serve`` is started
with it and one aiortc caller speaks ``N`` questions clean and then mixed with fan, babble and keyboard
noise at ``SNR_DB``; the word error rate is computed from the server's final transcripts. Then the caller
plays each noise alone for ``NOISE_ALONE_S`` and counts the VAD's false starts: ``user_speech_start``
events, and turns (final transcripts) made out of nothing but noise.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from tara.core.audio import PIPELINE_RATE
from tara.server.serve import free_port
from tara.tools.bench import ask, console, start_server
from tara.tools.caller import TaraClient
from tara.tools.evaluate import word_error_rate
from tara.tools.measure import QUESTIONS
from tara.tools.spoken import Voices, speech_rms

NOISES = ("fan", "babble", "keyboard")
SNR_DB = 5.0
NOISE_ALONE_S = 15.0
SETTLE_S = 1.5  # after a clip, for a turn that noise started to be heard out
TURN_TIMEOUT_S = 20.0  # a question nothing was heard of gets an empty transcript after this
REPLY_HEARD_S = 1.0  # a reply is let play this long, then cut off


async def heard(client: TaraClient, audio: np.ndarray) -> str:
    """The server's final transcript of one spoken question (its reply cut off soon); '' if none."""
    try:
        return (await ask(client, audio, timeout=TURN_TIMEOUT_S, max_reply_s=REPLY_HEARD_S))["heard"]
    except TimeoutError:
        return ""


async def false_starts(client: TaraClient, noise: np.ndarray) -> dict[str, int]:
    """Noise alone on the mic: how often the VAD thought someone started talking, and how many turns it made."""
    clip = client.say(noise)
    await clip.done.wait()
    await asyncio.sleep(SETTLE_S)
    assert clip.started is not None  # (played)
    during = [event for at, event in client.events if at > clip.started]
    client.send({"type": "interrupt"})  # a reply to noise, if any, is not waited for
    return {
        "speech_starts": sum(event["type"] == "user_speech_start" for event in during),
        "turns": sum(event["type"] == "user_transcript" and event["final"] for event in during),
    }


async def measure(url: str, count: int, folder: Path) -> dict[str, Any]:
    """One server's word error rates (clean and per noise) and false starts per noise."""
    voices = Voices(folder, snr_db=SNR_DB)
    texts = [QUESTIONS[i % len(QUESTIONS)] for i in range(count)]
    result: dict[str, Any] = {"wer": {}, "heard": {}, "false_starts": {}}
    async with TaraClient(url) as client:
        # A reply cut off unheard makes the session ask that question again with the next one
        # (``Session.replied``): the transcript before is taken off the front of the next.
        before = ""
        for noise in (None, *NOISES):
            condition = noise or "clean"
            hypotheses = []
            for text in texts:
                transcript = await heard(client, await voices.speak(text, "us", noise))
                hypotheses.append(transcript.removeprefix(f"{before} ") if before else transcript)
                before = transcript or before
            result["heard"][condition] = hypotheses
            result["wer"][condition] = round(word_error_rate(texts, hypotheses), 3)
            console.log(f"[wer] {condition}: WER {result['wer'][condition]:.3f}")
        level = speech_rms(await voices.speak(texts[0], "us"))
        for seed, noise in enumerate(NOISES):
            alone = voices.noise(noise, int(NOISE_ALONE_S * PIPELINE_RATE), level, seed)
            result["false_starts"][noise] = await false_starts(client, np.clip(alone, -32768, 32767).astype(np.int16))
            console.log(f"[wer] {noise} alone for {NOISE_ALONE_S:.0f} s: {result['false_starts'][noise]}")
    noisy = [result["wer"][noise] for noise in NOISES]
    result["wer"]["noisy"] = round(float(np.mean(noisy)), 3)
    return result


async def wer_bench(count: int, settings: list[str], config: str | None, out: Path) -> dict[str, Any]:
    """``measure`` against a fresh server for each ``audio.denoise`` setting."""
    report: dict[str, Any] = {"questions": count, "snr_db": SNR_DB, "noise_alone_s": NOISE_ALONE_S, "denoise": {}}
    folder = out / "wer-audio"
    folder.mkdir(parents=True, exist_ok=True)
    for setting in settings:
        port = free_port()
        server = start_server(config, port, out / f"server-denoise-{setting}.log", env={"TARA_AUDIO__DENOISE": setting})
        try:
            report["denoise"][setting] = await measure(f"http://127.0.0.1:{port}", count, folder)
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
    return report


def print_wer(report: dict[str, Any]) -> None:
    table = Table(title=f"WER through WebRTC ({report['questions']} questions; noise at {SNR_DB:.0f} dB SNR)")
    for column in ("denoise", "clean", *NOISES, "noisy", "false starts / turns"):
        table.add_column(column, justify="left" if column == "denoise" else "right")
    for setting, result in report["denoise"].items():
        starts = result["false_starts"]
        table.add_row(
            setting,
            *(f"{result['wer'][condition]:.3f}" for condition in ("clean", *NOISES, "noisy")),
            f"{sum(s['speech_starts'] for s in starts.values())} / {sum(s['turns'] for s in starts.values())}"
            f" in {len(starts) * NOISE_ALONE_S:.0f} s",
        )
    Console().print(table)
