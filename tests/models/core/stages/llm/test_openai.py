"""The OpenAI-compatible backend against a real llama.cpp server (``python -m llama_cpp.server``)."""

import asyncio
import subprocess
import sys
import time
import urllib.request

import pytest

from tara.core.stages.llm import ChatMessage, GenerationParams
from tara.core.stages.llm.llamacpp import amx_kernels_crash
from tara.core.stages.llm.openai import LLMServerError, OpenAICompatibleLLM
from tara.core.stages.llm.settings import OpenAISettings
from tests.conftest import free_port

# llama.cpp's own server (llama_cpp.server, extra buffer types on) breaks its stream off mid-reply where a
# llama.cpp built with AMX kernels runs on a CPU with AMX tiles (llamacpp.py: amx_kernels_crash)
skip_where_amx_kernels_crash = pytest.mark.skipif(amx_kernels_crash(), reason="llama.cpp's AMX kernels crash here")


@pytest.fixture(scope="module")
def server(stack, tmp_path_factory):
    port = free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(stack.llm.model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "1024",
            "--n_threads",
            "2",
            "--model_alias",
            "tara-test",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,  # a file, not a pipe: its loading log would fill a pipe
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"llama_cpp.server exited: {log.read()[-2000:]}")
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("llama_cpp.server did not start in 90 s")
    yield f"http://127.0.0.1:{port}/v1"
    process.terminate()
    process.wait(10)


def client(base_url: str, tmp_path) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(OpenAISettings(base_url=base_url, model_name="tara-test"), tmp_path)


@skip_where_amx_kernels_crash
async def test_streams_from_a_real_llama_cpp_server(server, tmp_path):
    llm = client(server, tmp_path)
    messages = [ChatMessage("system", "Answer briefly."), ChatMessage("user", "What is the capital of Italy?")]
    deltas = [d async for d in llm.stream(messages, GenerationParams(temperature=0.0, max_tokens=30))]
    assert len(deltas) > 1 and "Rome" in "".join(deltas)


@skip_where_amx_kernels_crash
async def test_cancel_aborts_and_the_server_keeps_serving(server, tmp_path):
    llm = client(server, tmp_path)

    async def long_story():
        return [
            d
            async for d in llm.stream(
                [ChatMessage("user", "Tell a very long story.")], GenerationParams(max_tokens=400)
            )
        ]

    task = asyncio.create_task(long_story())
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    answer = "".join(
        [
            d
            async for d in llm.stream(
                [ChatMessage("user", "What is 3 plus 4? Reply with a digit.")],
                GenerationParams(temperature=0.0, max_tokens=10),
            )
        ]
    )
    assert "7" in answer


async def test_server_errors_are_reported(tmp_path):
    llm = client(f"http://127.0.0.1:{free_port()}/v1", tmp_path)  # nothing listens there
    with pytest.raises(Exception) as caught:
        async for _ in llm.stream([ChatMessage("user", "hi")], GenerationParams()):
            pass
    assert isinstance(caught.value, (LLMServerError, OSError))
