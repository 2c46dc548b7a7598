"""Shared fixtures: real models loaded once per test run, spoken test audio, and a network guard."""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The suite runs the fast model alone: the default profile pairs it with the 1.5B (llm.busy_model), whose
# tokens cost three times as much; tests/agent/llm/test_tiered.py loads the default pair itself.
os.environ.setdefault("TARA_LLM__MODEL", "bundled:qwen2.5-coder-0.5b")
os.environ.setdefault("TARA_LLM__BUSY_MODEL", "")

import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tara.core.audio import read_audio
from tara.core.config import TaraConfig, load_config
from tara.server.serve import free_port  # noqa: F401 - tests import it from here

FIXTURES = Path(__file__).parent / "fixtures"
TEST_KB = FIXTURES / "kb"
_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if not (host.startswith("127.") or host in ("localhost", "::1")):
            raise OSError(f"test blocked a network connection to {address!r}: Tara must work offline")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def offline() -> Iterator[None]:
    """Any attempt to reach beyond loopback fails the test that made it."""
    socket.socket.connect = _loopback_only
    yield
    socket.socket.connect = _real_connect


def without_network(command: list[str]) -> list[str]:
    """Run ``command`` in a fresh network namespace (loopback only) when this machine allows it."""
    import shutil

    if not (shutil.which("unshare") and shutil.which("ip")):
        return command
    if subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True).returncode != 0:
        return command  # not allowed here (not root): the in-process socket guard still applies
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]


def speak(
    text: str, path: Path, *, speed: int = 160, pitch: int = 50, amplitude: int = 100, lead_silence: float = 0.5
) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng (words/min, pitch 0-99, amplitude 0-200); returns 16 kHz mono
    int16 with leading silence."""
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", str(speed), "-p", str(pitch), "-a", str(amplitude), "-w", str(path), text],
        check=True,
    )
    audio = read_audio(path)
    return np.concatenate([np.zeros(int(lead_silence * 16000), dtype=np.int16), audio])


@pytest.fixture(scope="session")
def config() -> TaraConfig:
    return load_config(**{"rag.kb_dir": str(TEST_KB)})


@pytest.fixture(scope="session")
async def stack(config: TaraConfig):
    """Every real model, loaded once: Silero, whisper-base, MiniLM + FAISS, Qwen 0.5B, Piper."""
    from tara.core.stack import load_stack

    return await load_stack(config)


@pytest.fixture
def voice(tmp_path: Path):
    """``voice("text")`` -> spoken audio (16 kHz int16)."""
    counter = iter(range(1000))
    return lambda text, **kw: speak(text, tmp_path / f"speech{next(counter)}.wav", **kw)


@pytest.fixture
def loopback_ice(monkeypatch):
    """ICE on 127.0.0.1 only: aioice leaves loopback out, and tests must never use other addresses."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


ADMIN_TOKEN = "admin-test-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def live_server(config, stack, loopback_ice):
    """Tara's real app on a loopback port, sharing the loaded models:
    ``live_server(stack=None, app_config=None, **server_config)``; the admin token is ``ADMIN_TOKEN``."""
    from aiohttp import web

    from tara.server.app import PEERS, create_app

    runners = []

    async def start(stack=stack, app_config=None, **server: object):
        app_config = app_config or config
        app_config = app_config.model_copy(update={"server": app_config.server.model_copy(update=server)})
        runner = web.AppRunner(create_app(app_config, stack=stack, access_token="test-token", admin_token=ADMIN_TOKEN))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        start.app = runner.app  # the last started app, for tests that look inside
        return f"http://127.0.0.1:{port}", runner.app[PEERS]

    yield start
    for runner in runners:
        await runner.cleanup()
