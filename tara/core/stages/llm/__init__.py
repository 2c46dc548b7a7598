"""Streaming chat LLMs: one small async interface, backends picked by ``llm.backend``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from tara.core.registry import Registry


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.2
    top_p: float = 0.9
    max_tokens: int = 160
    # while this says so (the reply's voice is about to run out of words), its next tokens go before work
    # that can wait, as a first clause's do: backends on the shared CPU ask it at every step
    hurry: Callable[[], bool] | None = None
    # a second try at a reply whose first failed (it said the question back): where a backend has a
    # fast model for busy times and an accurate one, the accurate one writes it whatever the load
    second_try: bool = False


class LLM(ABC):
    needs_compute: bool = False  # computes on the shared CPU: its constructor takes the process's Compute

    @abstractmethod
    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        """Yield text deltas. Closing the iterator (or cancelling its consumer) aborts generation.

        A last message from the assistant is the start of the reply, written for the model: it goes on
        from there, and only what it adds is yielded (a prompt can steer how an answer begins)."""

    def count_tokens(self, text: str) -> int:
        """Token estimate for the history budget; backends with a tokenizer count exactly."""
        return len(text) // 4 + 1

    async def warm_up(self, prefixes: list[list[ChatMessage]]) -> None:
        """Process prompt prefixes ahead of the first turn (prefix caching); optional."""

    def holds(self, messages: list[ChatMessage]) -> bool:
        """Whether the warm-up prompt ``messages`` sits read in the backend's cache (backends with one say)."""
        return False

    async def prefill(self, messages: list[ChatMessage]) -> None:
        """Read ``messages`` into the cache ahead of a likely turn (e.g. the user's partial transcript
        while they still speak); best effort, low priority, never blocks a reply."""

    def writes_carefully(self) -> bool:
        """Whether a reply starting now goes to the configured model, not a load tier's small fast one:
        some prompt forms help a 1.5B model and confuse a 0.5B one (``PromptBuilder.followed_up``)."""
        return True


def split_reply_start(messages: list[ChatMessage]) -> tuple[list[ChatMessage], str]:
    """``messages`` without a last assistant message, and that message's text: the reply's start
    (``LLM.stream``), which a backend puts after the chat template's generation prompt."""
    if messages and messages[-1].role == "assistant":
        return messages[:-1], messages[-1].content
    return messages, ""


LLM_BACKENDS: Registry[LLM] = Registry(
    "llm.backend",
    {
        "llama-cpp": "tara.core.stages.llm.llamacpp:LlamaCppLLM",
        "openai": "tara.core.stages.llm.openai:OpenAICompatibleLLM",
        "vllm": "tara.core.stages.llm.vllm:VLLMEngineLLM",
    },
)
