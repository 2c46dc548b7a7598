"""CSM speed: time to first audio and real-time factor per sentence, and peak GPU memory.

Real weights on a GPU (paths in config/gpu.yaml):
    .venv/bin/python -m tara.tools.bench_csm
The tiny random model on a CPU (checks the code path, not the speed of the real model):
    .venv/bin/python -m tara.tools.bench_csm --config config/csm-tiny.yaml --threads 1
RTF is generation time / audio duration: below 1 is faster than real time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tara.core.concurrency import Compute  # noqa: E402
from tara.core.config import PROJECT_ROOT, load_config  # noqa: E402
from tara.core.emotion import EmotionSettings  # noqa: E402
from tara.core.stages.tts import TTS_BACKENDS, VoiceContext  # noqa: E402

SENTENCES = [
    "Hello there.",
    "The kettle comes with a two year warranty.",
    "I can help you find that in your documents, just ask me a question.",
    "Sure.",
    "Descaling once a month keeps it working well, especially where the water is hard.",
]


async def measure(tts, text: str, emotion: EmotionSettings, conversation) -> tuple[float, float, float]:
    """Seconds to the first chunk, seconds in all, seconds of audio."""
    started = time.perf_counter()
    first = None
    samples = 0
    async for chunk in tts.stream(text, emotion, context=conversation):
        first = first if first is not None else time.perf_counter() - started
        samples += len(chunk.samples)
    return first or 0.0, time.perf_counter() - started, samples / tts.sample_rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(PROJECT_ROOT / "config" / "gpu.yaml"))
    parser.add_argument("--emotion", default="neutral")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--context", action="store_true", help="carry conversation context between sentences")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    config = load_config(args.config)
    started = time.perf_counter()
    tts = TTS_BACKENDS.create(config.tts.backend, config.tts, config.data_path, compute=Compute())
    load_seconds = time.perf_counter() - started
    emotion = EmotionSettings.from_preset(args.emotion)
    conversation = VoiceContext(tts).state if args.context else None
    await measure(tts, "Warming up.", emotion, None)  # first call pays for allocation and kernel selection
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()

    table = Table(
        title=f"{config.tts.backend} {getattr(config.tts, 'model', '')} on {tts.device} "
        f"(loaded in {load_seconds:.1f}s, {getattr(config.tts, 'frames_per_chunk', 1)} frames per chunk)"
    )
    for column in ("sentence", "first audio ms", "total s", "audio s", "RTF"):
        table.add_column(column, justify="left" if column == "sentence" else "right")
    firsts, rtfs = [], []
    for text in SENTENCES:
        first, total, audio = await measure(tts, text, emotion, conversation)
        firsts.append(first)
        rtfs.append(total / audio if audio else float("inf"))
        table.add_row(text[:30], f"{first * 1000:.0f}", f"{total:.2f}", f"{audio:.2f}", f"{rtfs[-1]:.2f}")
    table.add_row("median", f"{statistics.median(firsts) * 1000:.0f}", "", "", f"{statistics.median(rtfs):.2f}")
    console.print(table)
    if torch.cuda.is_available():
        console.print(
            f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB allocated, "
            f"{torch.cuda.max_memory_reserved() / 2**30:.2f} GiB reserved"
        )


if __name__ == "__main__":
    asyncio.run(main())
