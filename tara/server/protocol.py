"""The ``events`` data channel: what the page may send, validated before anything acts on it.

Every message is a JSON object with a ``type``. The server answers anything it cannot use with an
``error`` event and carries on; a page can never take its session down with a bad message.
Server → page messages are the session's events (``tara.core.conversation.events``) plus ``Hello`` below.
The reply's text is in step with its voice: ``agent_text`` comes when a piece's first sample is sent, with
``words`` (``[{"text", "start_ms"}]`` from that sample) and ``played_ms`` (how much had played when it was
sent), so the page shows each word ``start_ms - played_ms`` from arrival; ``agent_done`` with
``interrupted`` carries exactly the words heard before the cut; ``sources`` lists the passages the answer
may draw on (``source``, ``text``, ``score``), shown as "from brightline-kettle.md" with the passage on hover.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tara.core.conversation.events import Event

MAX_MESSAGE_BYTES = 16 * 1024
MAX_TEXT_CHARS = 2000


class PageMessage(BaseModel):
    """Strict: ``"yes"`` is not a bool and ``"1"`` not a number, so a confused page hears what it got wrong."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Interrupt(PageMessage):
    type: Literal["interrupt"]


class Mute(PageMessage):
    type: Literal["mute"]
    muted: bool


class SetEmotion(PageMessage):
    """A preset, slider values, or both (sliders move the preset's values)."""

    type: Literal["emotion"]
    preset: str | None = None
    warmth: float | None = Field(default=None, ge=0.0, le=1.0)
    energy: float | None = Field(default=None, ge=0.0, le=1.0)
    rate: float | None = Field(default=None, ge=0.0, le=1.0)

    def sliders(self) -> dict[str, float]:
        return {name: value for name in ("warmth", "energy", "rate") if (value := getattr(self, name)) is not None}


class SetVoice(PageMessage):
    type: Literal["voice"]
    voice: str


class Text(PageMessage):
    """Typed input, answered by voice."""

    type: Literal["text"]
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class Ping(PageMessage):
    """Round-trip probe: answered with ``pong`` carrying the same ``t``."""

    type: Literal["ping"]
    t: float = Field(allow_inf_nan=False)  # echoed back: NaN or Infinity would be invalid JSON


Message = Annotated[Interrupt | Mute | SetEmotion | SetVoice | Text | Ping, Field(discriminator="type")]
_MESSAGE = TypeAdapter(Message)


class BadMessage(ValueError):
    pass


class RateLimit:
    """A token bucket: ``rate`` messages a second, bursts of ``2 * rate``."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, 2 * rate
        self._tokens, self._at = self.capacity, time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    @property
    def rested(self) -> bool:
        """The bucket is full again: whatever flood there was has stopped for a while."""
        self._refill()
        return self._tokens >= self.capacity

    def allow(self) -> bool:
        self._refill()
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def parse_message(raw: str | bytes) -> Interrupt | Mute | SetEmotion | SetVoice | Text | Ping:
    """Validate one data-channel message; ``BadMessage`` says what is wrong in words."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"message too large ({len(raw)} bytes, at most {MAX_MESSAGE_BYTES})")
    try:
        return _MESSAGE.validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()[:3])
        raise BadMessage(f"bad message: {problems}") from None


@dataclass
class Hello(Event):
    """First message on the channel: who this session is and what it can choose from."""

    type: ClassVar[str] = "hello"
    session_id: str
    voices: list[str]
    presets: dict[str, dict[str, Any]]


@dataclass
class Pong(Event):
    type: ClassVar[str] = "pong"
    t: float
