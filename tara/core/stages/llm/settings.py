"""Each LLM backend's settings, selected by ``llm.backend``; light, so ``tara.core.config`` imports it at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

from pydantic import Field, field_validator

from tara.core.sections import Device, Section, bundled_or_existing_path, by_backend, existing_path


class LLMSettings(Section):
    """What every backend takes: sampling, the system prompt and how much history a reply sees."""

    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(default=160, ge=1)
    history_tokens: int = Field(default=1024, ge=0)
    grounded_history_exchanges: int = Field(default=2, ge=1, le=50)  # what a document question sees of the history
    follow_up_context: bool = True  # a question that points back names the one it follows (PromptBuilder)
    system_prompt: str = (
        "You are Tara, a friendly voice assistant. Your replies are spoken aloud, so answer in one to "
        "three short sentences of plain text: no lists, no markdown, no emojis."
    )


class LlamaCppSettings(LLMSettings):
    """llama.cpp in this process (the CPU profile): a GGUF file, bundled or local."""

    backend: Literal["llama-cpp"] = "llama-cpp"
    model: str = "bundled:qwen2.5-coder-0.5b"
    busy_model: str = ""  # writes the replies that start while another is being written (empty: none)
    n_ctx: int = Field(default=4096, ge=512)  # per conversation sequence
    threads: int = Field(default=2, ge=1)
    device: Device = "cpu"  # cuda offloads every layer (needs a CUDA build of llama-cpp-python)
    contexts: int = Field(default=4, ge=1, le=16)  # conversation sequences cached (and generated at once)
    quantize: Literal["q4_0", "iq4_nl", "none"] = "q4_0"  # re-quantize a bundled model once at start

    _check_model = field_validator("model")(bundled_or_existing_path)
    _check_busy_model = field_validator("busy_model")(lambda value: value and bundled_or_existing_path(value))


class OpenAISettings(LLMSettings):
    """A server that speaks OpenAI's chat API (``vllm serve``, llama.cpp's server); it batches its own callers."""

    backend: Literal["openai"] = "openai"
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str = ""
    model_name: str = "default"


class VLLMSettings(LLMSettings):
    """vLLM in this process (the GPU profile): a local Hugging Face model folder."""

    backend: Literal["vllm"] = "vllm"
    model: str
    n_ctx: int = Field(default=4096, ge=512)  # the longest prompt and reply together
    gpu_memory_utilization: float = Field(default=0.5, gt=0.0, le=1.0)  # its share of the GPU

    _check_model = field_validator("model")(existing_path)


# The ``llm`` section: the first is the default. The type checker sees the plain union; pydantic gets it
# tagged by ``backend`` (built at run time, which a checker cannot read).
if TYPE_CHECKING:
    LLMConfig: TypeAlias = LlamaCppSettings | OpenAISettings | VLLMSettings
else:
    LLMConfig = by_backend(LlamaCppSettings, OpenAISettings, VLLMSettings)
