"""``/api/health`` (open), ``/api/config`` (the talk page's ICE servers) and ``/api/diagnostics`` (admin):
devices, loaded models and backends, versions, memory, sessions, and the configuration minus secrets."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from tara.core.doctor import PACKAGES
from tara.server.api.routes import Api, reply
from tara.server.keys import CONFIG, PEERS, STACK, STARTED

SECRETS = {"access_token", "admin_token", "api_key", "credential", "password"}


class Health(BaseModel):
    ok: bool
    uptime_s: float
    models_loaded: bool
    sessions: int


class ClientConfig(BaseModel):
    ice_servers: list[dict[str, Any]]


class Diagnostics(BaseModel):
    uptime_s: float
    devices: dict[str, Any]
    models: dict[str, dict[str, Any]]
    versions: dict[str, str]
    memory: dict[str, float | None]
    sessions: dict[str, int]
    config: dict[str, Any]


async def health(request: web.Request) -> web.Response:
    stack = request.app.get(STACK)
    return reply(
        Health(
            ok=stack is not None,
            uptime_s=round(time.monotonic() - request.app[STARTED], 1),
            models_loaded=stack is not None,
            sessions=len(request.app[PEERS].peers),
        )
    )


async def client_config(request: web.Request) -> web.Response:
    """What the page needs before it connects: ICE servers."""
    servers = [server.model_dump(exclude_none=True) for server in request.app[CONFIG].server.ice_servers]
    return reply(ClientConfig(ice_servers=servers))


async def diagnostics(request: web.Request) -> web.Response:
    app = request.app
    config, stack, peers = app[CONFIG], app[STACK], app[PEERS]
    retriever, tts = stack.retriever, stack.tts
    models = {
        "vad": {"backend": config.vad.backend, "device": "cpu"},
        "stt": {
            "backend": config.stt.backend,
            "class": type(stack.stt).__name__,
            "model": config.stt.model,
            "device": config.stt.device,
            "compute_type": config.stt.compute_type,
        },
        "rag": {
            "backend": config.rag.backend,
            "class": type(retriever).__name__,
            "embed_model": config.rag.embed_model,
            "device": getattr(retriever, "device", config.rag.device),
            "kb_dir": str(retriever.kb_dir),
            "documents": len(retriever.documents),
            "chunks": sum(retriever.chunk_counts().values()),
            "knowledge_in_prompt": stack.prompts.inline,
        },
        "llm": {  # what this backend has of these (llama-cpp: all but the server's)
            **config.llm.model_dump(include={"backend", "model", "busy_model", "device", "base_url", "model_name"}),
            "class": type(stack.llm).__name__,
        },
        "tts": {
            "backend": config.tts.backend,
            "class": type(tts).__name__,
            "device": tts.device,
            "sample_rate": tts.sample_rate,
            "voices": tts.voices,
            "default_voice": tts.default_voice,
            "can_clone": tts.can_clone,
        },
    }
    stage_of = {"speech recognition": "stt", "knowledge base": "rag", "language model": "llm", "voice": "tts"}
    for label, seconds in stack.load_seconds.items():
        if label in stage_of:
            models[stage_of[label]]["load_s"] = seconds
    return reply(
        Diagnostics(
            uptime_s=round(time.monotonic() - app[STARTED], 1),
            devices=devices(),
            models=models,
            versions=versions(),
            memory=memory(),
            sessions={"active": len(peers.peers), "max": peers.max_sessions},
            config=redacted(config.model_dump(mode="json")),
        )
    )


def devices() -> dict[str, Any]:
    import torch

    cuda = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            cuda.append(
                {
                    "index": index,
                    "name": properties.name,
                    "memory_total_mb": round(properties.total_memory / 2**20),
                    "memory_allocated_mb": round(torch.cuda.memory_allocated(index) / 2**20),
                }
            )
    return {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "cuda": cuda}


@functools.cache
def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ["tara", *PACKAGES, "aiortc", "prometheus-client"]:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def memory() -> dict[str, float | None]:
    """This process's resident memory (now and peak) and the machine's, in MB (Linux /proc)."""

    def read(path: str, keys: tuple[str, ...]) -> dict[str, float | None]:
        values: dict[str, float | None] = dict.fromkeys(keys)
        try:
            with open(path) as source:
                for line in source:
                    name, _, rest = line.partition(":")
                    if name in values:
                        values[name] = round(int(rest.split()[0]) / 1024, 1)  # kB
        except OSError:
            pass
        return values

    process = read("/proc/self/status", ("VmRSS", "VmHWM"))
    machine = read("/proc/meminfo", ("MemTotal", "MemAvailable"))
    return {
        "rss_mb": process["VmRSS"],
        "peak_rss_mb": process["VmHWM"],
        "system_total_mb": machine["MemTotal"],
        "system_available_mb": machine["MemAvailable"],
    }


def redacted(value: Any) -> Any:
    """The config with every secret (tokens, keys, credentials) replaced by ``"***"`` when set."""
    if isinstance(value, dict):
        return {key: ("***" if key in SECRETS and item else redacted(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted(item) for item in value]
    return value


def setup(api: Api) -> None:
    api.add(
        "GET", "/api/health", health, "Liveness: models loaded, uptime, live sessions", admin=False, response=Health
    )
    api.add(
        "GET",
        "/api/config",
        client_config,
        "What the talk page needs before it connects (ICE servers)",
        admin=False,
        response=ClientConfig,
    )
    api.add(
        "GET",
        "/api/diagnostics",
        diagnostics,
        "Devices, loaded models and backends, versions, memory, sessions, configuration (secrets hidden)",
        response=Diagnostics,
    )
