"""API test fixtures: an aiohttp test client on the real app (shared models), the admin token, a
knowledge base of its own (a copy: tests change it) and a CSM-tiny voice (real cloning on a CPU)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tara.core.audio import write_wav
from tara.core.config import PROJECT_ROOT, load_config
from tests.conftest import ADMIN, ADMIN_TOKEN, TEST_KB

__all__ = ["ADMIN", "ADMIN_TOKEN"]


@pytest.fixture
async def api(config, stack, tmp_path):
    """``await api(stack=None, **config_overrides)`` → a TestClient on a fresh app whose data dir is a temp dir.

    An override is a section's changed values, or a whole section (another backend's settings).
    """
    from tara.server.app import create_app

    clients = []

    async def make(stack=stack, data_dir: Path | None = None, **overrides):
        app_config = config.model_copy(update={"data_dir": str(data_dir or tmp_path / "data")})
        for section, values in overrides.items():
            if isinstance(values, dict):
                values = getattr(app_config, section).model_copy(update=values)
            app_config = app_config.model_copy(update={section: values})
        client = TestClient(
            TestServer(create_app(app_config, stack=stack, access_token="test-token", admin_token=ADMIN_TOKEN))
        )
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def kb_copy(tmp_path) -> Path:
    folder = tmp_path / "kb"
    shutil.copytree(TEST_KB, folder)
    return folder


@pytest.fixture
def kb_stack(stack, config, kb_copy, tmp_path):
    """The shared models with a knowledge base (folder, index, prompts) of this test's own."""
    from tara.core.conversation.prompt import PromptBuilder
    from tara.core.stages.rag.llamaindex import LlamaIndexRetriever

    retriever = LlamaIndexRetriever(config.rag, tmp_path / "index-data", kb_copy, show_progress=False)
    prompts = PromptBuilder(config.llm, config.rag, retriever.documents, stack.llm.count_tokens)
    return dataclasses.replace(stack, retriever=retriever, prompts=prompts)


@pytest.fixture(scope="session")
def csm_config(tmp_path_factory):
    data = tmp_path_factory.mktemp("csm-api")
    return load_config(PROJECT_ROOT / "config" / "csm-tiny.yaml", **{"data_dir": str(data), "tts.max_audio_ms": 480})


@pytest.fixture(scope="session")
def csm_tts(csm_config):
    """CSM with the tiny random model (real prompts, Mimi and generation; noise, not speech)."""
    from tara.core.stages.tts import TTS_BACKENDS

    return TTS_BACKENDS.create(csm_config.tts.backend, csm_config.tts, csm_config.data_path)


@pytest.fixture
def csm_stack(stack, csm_tts):
    """The shared models speaking through CSM-tiny; voices a test clones are forgotten after it."""
    configured = set(csm_tts.voices)
    yield dataclasses.replace(stack, tts=csm_tts)
    for name in set(csm_tts.voices) - configured:
        csm_tts.remove_voice(name)


def tone(seconds: float, rate: int = 24000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * (freq + 60 * t) * t)).astype(np.int16)


@pytest.fixture
def reference_wav(tmp_path) -> bytes:
    """Two seconds of a gliding tone: a stand-in reference recording (the tiny model hears codes, not words)."""
    path = tmp_path / "reference.wav"
    write_wav(path, tone(2.0), 24000)
    return path.read_bytes()
