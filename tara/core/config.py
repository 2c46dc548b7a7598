"""Tara's configuration: one validated tree loaded from YAML, overridable from the environment.

A value in YAML is overridden by ``TARA_<SECTION>__<KEY>`` (for example ``TARA_LLM__MODEL=fast``).
Every error names the offending key, so a bad value fails at start rather than mid-conversation.

A stage with several backends (``llm``, ``tts``) holds the settings of the one its ``backend`` key names,
declared beside that backend (``tara/core/stages/<stage>/settings.py``): a key of another backend is an
error, not silently ignored. Left out, ``backend`` is the CPU profile's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tara.core.sections import ConfigError, Device, Section, backend_name, bundled_or_existing_path
from tara.core.stages.endpointing.settings import EndpointingConfig, SmartTurnEndpointing
from tara.core.stages.llm.settings import LlamaCppSettings, LLMConfig
from tara.core.stages.tts.settings import PiperSettings, TTSConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "default.yaml"


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


class AudioConfig(Section):
    """The inbound microphone's cleanup (``tara/core/stages/mic``), before VAD and STT hear it."""

    echo_cancel: Literal["off", "webrtc"] = "webrtc"  # cancel Tara's own voice coming back through the mic
    echo_transcript_window_s: float = Field(default=2.0, ge=0.0, le=30.0)  # drop transcripts of Tara's words (0 = off)
    denoise: Literal["off", "rnnoise"] = "off"  # rnnoise: RNNoise on the 48 kHz mic (whisper hears worse through it)

    @field_validator("echo_cancel", "denoise", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """YAML reads a bare ``off`` as false."""
        return "off" if value is False else value


class VADConfig(Section):
    backend: Literal["silero"] = "silero"
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    min_silence_ms: int = Field(default=400, ge=50, le=5000)  # ends a turn when the transcript does not say more
    # silence after which a transcript is started speculatively: 3 of Silero's 32 ms windows
    pause_ms: int = Field(default=96, ge=32, le=5000)
    # audio kept from before the VAD was sure of speech: Silero rises late on soft onsets ("wh", "h", "f"),
    # and with 100 ms whisper heard "What is the last entry time…" as "But is the last entry time…"
    start_pad_ms: int = Field(default=300, ge=0, le=1000)
    end_pad_ms: int = Field(default=100, ge=0, le=1000)  # audio kept after the voice stopped
    min_speech_ms: int = Field(default=150, ge=0, le=5000)


class STTConfig(Section):
    backend: Literal["faster-whisper"] = "faster-whisper"
    model: str = "bundled:whisper-base"
    device: Device = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = Field(default=2, ge=1)
    beam_size: int = Field(default=1, ge=1, le=10)
    # a short question's decoding whisper is unsure of (average log-probability under unsure_logprob)
    # is redone in a 10 s window with this beam (whisper.py has the figures)
    unsure_beam_size: int = Field(default=3, ge=1, le=10)
    unsure_logprob: float = Field(default=-0.35, le=0.0)
    # that beam's readings are ranked by log-probability plus this for each word the documents have, minus
    # it for each they lack ("a lack of cost" -> "a locker cost"; stages/stt/guards.py: fit)
    vocabulary_bonus: float = Field(default=0.05, ge=0.0, le=1.0)
    # a question heard less sure than this, with words no document has, is asked again once (session.py)
    ask_again_logprob: float = Field(default=-0.45, le=0.0)
    language: str | None = "en"
    partial_interval_ms: int = Field(default=800, ge=100)
    hotwords_from_kb: bool = True

    _check_model = field_validator("model")(bundled_or_existing_path)


class RAGConfig(Section):
    backend: Literal["llama-index-faiss"] = "llama-index-faiss"
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
    min_speech_ms: int = Field(default=200, ge=32, le=5000)  # speech over the agent that makes an utterance to judge
    min_level_dbfs: float = Field(default=-45.0, ge=-100.0, le=0.0)  # quieter sound is echo, not the user
    # vad.pause_ms over the agent: longer, so the gaps between the words of its leaked echo are not each judged
    pause_ms: int = Field(default=120, ge=32, le=5000)
    # vad.start_pad_ms over the agent: what comes before the user's onset there is the agent's own echo
    start_pad_ms: int = Field(default=100, ge=0, le=1000)
    backchannel_max_ms: int = Field(default=1200, ge=0, le=10000)  # longer speech over the agent always interrupts
    energy_onset: bool = True  # duck the agent's voice on the first loud 10 ms, before the VAD is sure
    onset_margin_db: float = Field(default=12.0, ge=0.0, le=60.0)  # how far over the background floor that is
    onset_confirm_ms: int = Field(default=200, ge=0, le=2000)  # the VAD must hear speech this soon, else go on
    min_interruption_ms: int = Field(default=0, ge=0, le=10000)  # speech (LiveKit's min_interruption_duration)
    min_interruption_words: int = Field(default=1, ge=1, le=20)  # words other than backchannels, unless long
    false_interruption_timeout_ms: int = Field(default=2000, ge=0, le=30000)  # no words by then: go on; 0 off
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
        "uh huh",  # (also written "Uh, huh." and "Uhuh.")
        "uh uh",  # (whisper-base's "Uhuh." for espeak-ng's quiet "uh huh" over Tara's voice)
        "uh",  # whisper-base writes espeak-ng's "uh-huh" as "Uh uh."
        "hmm",
        "hm",
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
        "aha",
        "haha",  # laughing along (whisper-base heard espeak-ng's quiet "uh huh" in noise as "haha")
    ]
    # where Tara's echo may be in the mic, one word over its voice interrupts only if it is one of these
    # (two words, where the call's echo canceller hears Tara coming back): the echo's residual, misheard,
    # is often one or two confident words ("life." for "wide", "of milk.")
    stop_words: list[str] = [
        "stop",
        "wait",
        "no",
        "nope",
        "sorry",
        "hold",
        "hang",
        "pardon",
        "excuse",
        "hey",
        "tara",
        "what",
        "actually",
        "but",
        "please",
        "enough",
        "quiet",
    ]
    # ... and these with one more word ("How much?"): alone, the echo's residual is one too ("Why?" for "wide")
    question_words: list[str] = ["how", "when", "where", "which", "who", "why"]


class TaraConfig(BaseSettings):
    """The whole configuration tree."""

    model_config = SettingsConfigDict(env_prefix="TARA_", env_nested_delimiter="__", extra="forbid")

    data_dir: str = str(Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")) / "tara")
    server: ServerConfig = ServerConfig()
    api: APIConfig = APIConfig()
    audio: AudioConfig = AudioConfig()
    vad: VADConfig = VADConfig()
    endpointing: EndpointingConfig = SmartTurnEndpointing()
    stt: STTConfig = STTConfig()
    rag: RAGConfig = RAGConfig()
    llm: LLMConfig = LlamaCppSettings()
    tts: TTSConfig = PiperSettings()
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


def backends_of(section: str) -> dict[str, type[BaseModel]]:
    """A section's settings classes by backend name, for a section whose shape ``backend`` picks (else empty)."""
    annotation = TaraConfig.model_fields[section].annotation
    if get_origin(annotation) is not Union:
        return {}
    members = [get_args(member)[0] for member in get_args(annotation)]  # each is Annotated[cls, Tag(name)]
    return {backend_name(member): member for member in members}


def _describe(item: ErrorDetails) -> tuple[str, str]:
    """The dotted key and the message of one validation error, as the YAML reads.

    Pydantic locates an error in a backend's settings under that backend's name (``llm.vllm.model``); the
    YAML has no such level, so the name is dropped and said in the message where it matters.
    """
    loc = [str(part) for part in item["loc"]]
    backends = backends_of(loc[0]) if loc and loc[0] in TaraConfig.model_fields else {}
    if item["type"] == "union_tag_invalid":
        tag = item.get("ctx", {}).get("tag")
        return f"{loc[0]}.backend", f"unknown backend {tag!r}; choose one of {', '.join(backends)}"
    if item["type"] == "union_tag_not_found":
        return loc[0], f"should be a mapping of settings, with backend: one of {', '.join(backends)}"
    if backends and len(loc) > 1 and loc[1] in backends:
        section, backend, *rest = loc
        if item["type"] == "extra_forbidden" and len(rest) == 1:
            owners = [name for name, member in backends.items() if rest[0] in member.model_fields]
            owned = f" (a setting of {', '.join(owners)})" if owners else ""
            return ".".join([section, *rest]), f"not a setting of {section}.backend {backend}{owned}"
        loc = [section, *rest]
    return ".".join(loc) or "(root)", item["msg"]


def _format_error(error: ValidationError, source: Path) -> str:
    lines = [f"invalid configuration in {source}:"]
    lines += [f"  {key}: {message}" for key, message in map(_describe, error.errors())]
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
