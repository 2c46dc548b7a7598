"""One live server (real models, real aiortc peers) for every hardening test, and the idle baseline."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil

import pytest
from aiohttp import web

from tara.server.app import create_app
from tara.server.ice import ice_on_loopback_only
from tara.server.serve import start_runner
from tests.conftest import ADMIN_TOKEN, TEST_KB, free_port
from tests.models.server.hardening.helpers import TALLY


@pytest.fixture(scope="package")
async def server(config, stack, tmp_path_factory):
    """Tara on a loopback port over a knowledge base and data dir of its own: ``(url, app)``."""
    from tara.core.conversation.prompt import PromptBuilder
    from tara.core.stages.rag.llamaindex import LlamaIndexRetriever

    ice_on_loopback_only()
    root = tmp_path_factory.mktemp("hardening")
    kb = root / "kb"
    shutil.copytree(TEST_KB, kb)
    retriever = LlamaIndexRetriever(config.rag, root / "index-data", kb, show_progress=False)
    prompts = PromptBuilder(config.llm, config.rag, retriever.documents, stack.llm.count_tokens)
    own = dataclasses.replace(stack, retriever=retriever, prompts=prompts)
    limits = {"header_timeout_s": 2.0, "body_timeout_s": 2.0, "max_connections": 24}
    app_config = config.model_copy(
        update={"data_dir": str(root / "data"), "server": config.server.model_copy(update=limits)}
    )
    runner = await start_runner(
        create_app(app_config, stack=own, access_token="test-token", admin_token=ADMIN_TOKEN), app_config
    )
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", runner.app
    await runner.cleanup()
    print(f"\nhardening tally: {TALLY}")


@pytest.fixture(scope="package")
async def baseline(server) -> int:
    """The loop's task count with the server idle (its TTS worker and the test's own tasks)."""
    await asyncio.sleep(0.2)
    return len(asyncio.all_tasks())
