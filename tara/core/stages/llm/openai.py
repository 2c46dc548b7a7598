"""Any OpenAI-compatible streaming chat server: ``vllm serve``, llama.cpp's server, and others.

Closing the stream closes the HTTP response, which makes the server abort the generation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tara.core.stages.llm import LLM, ChatMessage, GenerationParams
from tara.core.stages.llm.settings import OpenAISettings


class LLMServerError(RuntimeError):
    pass


class OpenAICompatibleLLM(LLM):
    def __init__(self, config: OpenAISettings, data_dir: Path) -> None:
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"

    async def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        body = {
            "model": self.config.model_name,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "stream": True,
        }
        if messages and messages[-1].role == "assistant":  # the reply's start: vLLM's and llama-server's prefill
            body |= {"continue_final_message": True, "add_generation_prompt": False}
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(self.url, json=body, headers=headers) as response,
        ):
            if response.status != 200:
                raise LLMServerError(
                    f"LLM server at {self.url} answered {response.status}: {(await response.text())[:200]}"
                )
            async for raw in response.content:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    return
                choices = json.loads(data).get("choices") or [{}]
                delta = (choices[0].get("delta") or {}).get("content")
                if delta:
                    yield delta
