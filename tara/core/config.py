"""Tara's configuration: one validated tree loaded from YAML, overridable from the environment.

A value in YAML is overridden by ``TARA_<SECTION>__<KEY>`` (for example ``TARA_LLM__MODEL=fast``).
Every error names the offending key, so a bad value fails at start rather than mid-conversation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "default.yaml"

Device = Literal["auto", "cpu", "cuda"]


class ConfigError(Exception):
    """A configuration problem, phrased for the person who runs Tara."""


def existing_path(value: str) -> str:
    path = Path(os.path.expanduser(value))
    if not path.exists():
        raise ValueError(f"path does not exist: {path}")
    return str(path)


def bundled_or_existing_path(value: str) -> str:
    """Accept a bundled model name (``bundled:NAME``) or a path that exists."""
    return value if value.startswith("bundled:") else existing_path(value)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IceServer(Section):
    """A STUN or TURN server, as the browser's RTCIceServer takes it."""

    urls: str | list[str]
    username: str | None = None
    credential: str | None = None


class ServerConfig(Section):
    host: str = "0.0.0.0"  # a loopback host serves plain HTTP; any other serves HTTPS + access token
    port: int = Field(default=8443, ge=1, le=65535)
    local_http_port: int = Field(default=8080, ge=0, le=65535)  # plain HTTP on 127.0.0.1 as well (0 = off)
    tls: Literal["auto", "on", "off"] = "auto"  # auto: HTTPS unless the host is loopback
    cert_file: str = ""  # your own certificate and key; empty: self-signed, made in data_dir/tls
    key_file: str = ""
    access_token: str = ""  # empty: generated at first start and kept in data_dir/access_token
    admin_token: str = ""  # the admin page and API; empty: generated at first start, kept in data_dir/admin_token
    max_sessions: int = Field(default=4, ge=1, le=64)
    ice_servers: list[IceServer] = []  # none by default (LAN); add STUN/TURN to cross NATs
    ice_addresses: list[
        str
    ] = []  # where WebRTC gathers candidates; empty: follows host (loopback, or its LAN addresses)
    allowed_hosts: list[str] = []  # Host names served besides loopback and this machine's names and addresses
    heartbeat_timeout_s: float = Field(default=10.0, ge=0.0)  # no data-channel message this long ends a call (0 = off)
    idle_minutes: float = Field(default=30.0, ge=0.0)  # no speech or typed text for this long ends a call (0 = off)
    max_call_minutes: float = Field(default=240.0, ge=0.0)  # a call longer than this is ended (0 = no limit)
    messages_per_second: float = Field(default=20.0, gt=0.0)  # data-channel messages a page may send (bursts of 2x)
    header_timeout_s: float = Field(default=15.0, gt=0.0)  # a connection must send its request headers within this
    body_timeout_s: float = Field(default=30.0, gt=0.0)  # and a request body within this
    max_connections: int = Field(default=256, ge=8)  # open HTTP connections; more are refused


class APIConfig(Section):
    """Limits of the REST API (``tara/server/api``): the TTS task queue and uploads."""

    tts_queue_size: int = Field(default=8, ge=1, le=1000)  # waiting TTS tasks; one more is a 429
    tts_keep_tasks: int = Field(default=32, ge=1, le=1000)  # finished tasks (and their audio) kept for download
    tts_max_chars: int = Field(default=2000, ge=1, le=100_000)
    voice_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)  # an uploaded reference recording
    voice_min_seconds: float = Field(default=1.0, ge=0.1)
    voice_max_seconds: float = Field(default=30.0, ge=1.0, le=120.0)
    kb_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)  # an uploaded knowledge-base document
    log_lines: int = Field(default=500, ge=10, le=100_000)  # recent log lines the admin page can read

    @model_validator(mode="after")
    def _durations_in_order(self) -> APIConfig:
        if self.voice_min_seconds >= self.voice_max_seconds:
            raise ValueError("voice_min_seconds must be below voice_max_seconds")
        return self


class VADConfig(Section):
    backend: str = "silero"
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    min_silence_ms: int = Field(default=400, ge=50, le=5000)  # ends a turn when the transcript does not say more
    pause_ms: int = Field(default=120, ge=32, le=5000)  # silence after which a transcript is started speculatively
    speech_pad_ms: int = Field(default=100, ge=0, le=1000)
    min_speech_ms: int = Field(default=150, ge=0, le=5000)


class EndpointingConfig(Section):
    """How much silence ends the user's turn, judged from what they said so far.

    The transcript made on the first pause decides: a question, or a finished sentence of four words or
    more, ends the turn after ``complete_silence_ms``; one that trails off on a connective or filler
    ("and", "so", "um", a comma) waits ``incomplete_silence_ms``; anything else ``vad.min_silence_ms``.
    """

    complete_silence_ms: int = Field(default=200, ge=32, le=5000)
    incomplete_silence_ms: int = Field(default=1000, ge=32, le=10000)
    continuation_words: list[str] = [
        "and",
        "but",
        "or",
        "so",
        "because",
        "um",
        "uh",
        "er",
        "erm",
        "like",
        "the",
        "a",
        "an",
        "to",
        "of",
        "with",
        "for",
        "about",
        "if",
        "then",
        "my",
        "your",
        "is",
        "are",
        "what",
        "which",
        "that",
        "in",
        "on",
        "at",
        "from",
        "i",
        "we",
        "you",
        "was",
        "also",
        "maybe",
    ]


class STTConfig(Section):
    backend: str = "faster-whisper"
    model: str = "bundled:whisper-base"
    device: Device = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = Field(default=2, ge=1)
    beam_size: int = Field(default=1, ge=1, le=10)
    language: str | None = "en"
    partial_interval_ms: int = Field(default=800, ge=100)
    hotwords_from_kb: bool = True

    _check_model = field_validator("model")(bundled_or_existing_path)


class RAGConfig(Section):
    backend: str = "llama-index-faiss"
    kb_dir: str = str(PROJECT_ROOT / "knowledge_base")
    embed_model: str = "bundled:all-minilm-l6-v2"
    chunk_size: int = Field(default=160, ge=32, le=2048)
    chunk_overlap: int = Field(default=20, ge=0, le=512)
    top_k: int = Field(default=3, ge=1, le=20)
    score_threshold: float = Field(default=0.3, ge=-1.0, le=1.0)
    device: Device = "cpu"  # the embedding model; cuda also moves the FAISS index to the GPU (faiss-gpu)
    inline_max_tokens: int = Field(default=1500, ge=0)

    _check_embed = field_validator("embed_model")(bundled_or_existing_path)

    @field_validator("kb_dir")
    @classmethod
    def _absolute_kb_dir(cls, value: str) -> str:
        """Relative folders are taken from the project root, wherever Tara is started."""
        path = Path(os.path.expanduser(value))
        return str(path if path.is_absolute() else PROJECT_ROOT / path)


class LLMConfig(Section):
    backend: str = "llama-cpp"
    model: str = "bundled:qwen2.5-coder-0.5b"
    busy_model: str = ""  # llama-cpp: writes the replies that start while another is being written (empty: none)
    n_ctx: int = Field(default=4096, ge=512)
    threads: int = Field(default=2, ge=1)
    device: Device = "cpu"  # llama-cpp: cuda offloads every layer (needs a CUDA build of llama-cpp-python)
    contexts: int = Field(default=4, ge=1, le=16)  # llama-cpp: conversation sequences cached (and generated at once)
    quantize: Literal["q4_0", "iq4_nl", "none"] = "q4_0"  # llama-cpp: re-quantize a bundled model once at start
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(default=160, ge=1)
    history_tokens: int = Field(default=1024, ge=0)
    grounded_history_exchanges: int = Field(default=2, ge=1, le=50)  # what a document question sees of the history
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str = ""
    model_name: str = "default"
    gpu_memory_utilization: float = Field(default=0.5, gt=0.0, le=1.0)  # backend vllm: its share of the GPU
    system_prompt: str = (
        "You are Tara, a friendly voice assistant. Your replies are spoken aloud, so answer in one to "
        "three short sentences of plain text: no lists, no markdown, no emojis."
    )

    _check_model = field_validator("model")(bundled_or_existing_path)
    _check_busy_model = field_validator("busy_model")(lambda value: value and bundled_or_existing_path(value))

    @model_validator(mode="after")
    def _busy_model_is_local(self) -> LLMConfig:
        if self.busy_model and self.backend != "llama-cpp":
            raise ValueError(
                f'busy_model is for llm.backend llama-cpp; set it to "" for {self.backend} '
                "(its server batches its own callers)"
            )
        return self


class CSMPrompt(Section):
    """A recording and its transcript: CSM continues in the voice (and mood) it hears here."""

    audio: str  # any file FFmpeg reads; a few seconds of clean speech
    text: str

    _check_audio = field_validator("audio")(existing_path)


class CSMVoice(Section):
    speaker: int = Field(default=0, ge=0, le=99)  # the [N] speaker tag CSM sees
    prompt: CSMPrompt | None = None  # none: an unprompted voice, which drifts between sentences
    emotions: dict[str, CSMPrompt] = {}  # emotion preset -> a prompt spoken in that mood

    @field_validator("emotions")
    @classmethod
    def _known_presets(cls, value: dict[str, CSMPrompt]) -> dict[str, CSMPrompt]:
        from tara.core.emotion import PRESETS

        unknown = sorted(set(value) - set(PRESETS))
        if unknown:
            raise ValueError(f"unknown emotion preset {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
        return value


def _optional_path(value: str) -> str:
    return existing_path(value) if value else value


class CSMConfig(Section):
    """Sesame CSM (GPU profile). ``model: tiny`` is a random 2-layer model for tests, made on first use."""

    model: Literal["1b", "tiny"] = "1b"
    weights: str = ""  # CSM model.safetensors; empty only for model: tiny (generated into data_dir)
    tokenizer: str = ""  # Llama-3.2 tokenizer.model (tiktoken format)
    mimi: str = ""  # Mimi codec weights (.safetensors)
    device: Device = "auto"
    frames_per_chunk: int = Field(default=2, ge=1, le=50)  # audio is yielded every N frames of 80 ms
    max_audio_ms: int = Field(default=10000, ge=80, le=60000)  # per sentence, if CSM never ends it
    context_segments: int = Field(default=4, ge=0, le=32)  # recent conversation segments CSM hears
    seed: int | None = None  # fixed sampling seed (repeatable output)
    default_voice: str = "default"
    voices: dict[str, CSMVoice] = {"default": CSMVoice()}

    _check_paths = field_validator("weights", "tokenizer", "mimi")(_optional_path)

    @model_validator(mode="after")
    def _default_voice_exists(self) -> CSMConfig:
        if self.default_voice not in self.voices:
            raise ValueError(f"default_voice {self.default_voice!r} is not in voices ({', '.join(self.voices)})")
        return self


class TTSConfig(Section):
    backend: str = "piper"
    voice: str = "bundled:joe"  # the default voice
    voices: dict[str, str] = {}  # more voices the page can pick, by name: {name: bundled:NAME or a path}
    csm: CSMConfig = CSMConfig()  # used by backend: csm

    _check_voice = field_validator("voice")(bundled_or_existing_path)

    @field_validator("voices")
    @classmethod
    def _check_voices(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: bundled_or_existing_path(path) for name, path in value.items()}


class EmotionConfig(Section):
    preset: str = "neutral"  # a session's starting choice; "auto" answers how the user sounds

    @field_validator("preset")
    @classmethod
    def _known_choice(cls, value: str) -> str:
        from tara.core.emotion import EmotionSettings

        EmotionSettings.from_preset(value)  # raises, naming the choices
        return value


class BargeInConfig(Section):
    """How user speech over the agent is told apart from the agent's own echo and from backchannels."""

    threshold: float = Field(default=0.7, gt=0.0, lt=1.0)  # VAD probability needed while the agent speaks
    min_speech_ms: int = Field(default=200, ge=32, le=5000)  # speech needed before the agent pauses to listen
    min_level_dbfs: float = Field(default=-45.0, ge=-100.0, le=0.0)  # quieter sound is echo, not the user
    backchannel_max_ms: int = Field(default=1200, ge=0, le=10000)  # longer speech over the agent always interrupts
    backchannels: list[str] = [
        "yeah",
        "yes",
        "yep",
        "yup",
        "mm",
        "mhm",
        "mm-hm",
        "mm-hmm",
        "uh-huh",
        "hmm",
        "ok",
        "okay",
        "right",
        "sure",
        "i see",
        "got it",
        "cool",
        "nice",
        "alright",
        "oh",
        "ah",
    ]


class TaraConfig(BaseSettings):
    """The whole configuration tree."""

    model_config = SettingsConfigDict(env_prefix="TARA_", env_nested_delimiter="__", extra="forbid")

    data_dir: str = str(Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")) / "tara")
    server: ServerConfig = ServerConfig()
    api: APIConfig = APIConfig()
    vad: VADConfig = VADConfig()
    endpointing: EndpointingConfig = EndpointingConfig()
    stt: STTConfig = STTConfig()
    rag: RAGConfig = RAGConfig()
    llm: LLMConfig = LLMConfig()
    tts: TTSConfig = TTSConfig()
    emotion: EmotionConfig = EmotionConfig()
    barge_in: BargeInConfig = BargeInConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the YAML file, which arrives as init kwargs.
        return env_settings, init_settings

    @property
    def data_path(self) -> Path:
        """The data dir, readable by this user only: it holds the tokens, the documents' text and voices."""
        path = Path(os.path.expanduser(self.data_dir))
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
        return path


def make_private(path: Path) -> None:
    """Folders 0700 and files 0600 from ``path`` down: what Tara keeps is for this user alone."""
    for item in (path, *path.rglob("*")) if path.is_dir() else (path,):
        item.chmod(0o700 if item.is_dir() else 0o600)


def _format_error(error: ValidationError, source: Path) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(root)"
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, **overrides: Any) -> TaraConfig:
    """Load ``path`` (default ``config/default.yaml``), apply env and keyword overrides, validate.

    ``overrides`` are dotted keys, e.g. ``load_config(**{"rag.kb_dir": "docs"})``.
    """
    source = Path(path or os.environ.get("TARA_CONFIG") or DEFAULT_CONFIG)
    try:
        data = yaml.safe_load(source.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {source}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {source} must hold a mapping at the top level")
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return TaraConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from exc
