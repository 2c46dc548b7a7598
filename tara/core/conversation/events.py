"""Typed events a session emits. The WebRTC layer forwards them to the page as JSON.

Every event serialises to a dict with a ``type`` field, so the page can switch on it.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


class AgentState(str, enum.Enum):
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


@dataclass
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        for key, value in payload.items():
            if isinstance(value, enum.Enum):
                payload[key] = value.value
        return {"type": self.type, **payload}


@dataclass
class StateChanged(Event):
    type: ClassVar[str] = "state"
    state: AgentState


@dataclass
class UserSpeechStarted(Event):
    type: ClassVar[str] = "user_speech_start"


@dataclass
class UserTranscript(Event):
    type: ClassVar[str] = "user_transcript"
    text: str
    final: bool
    turn_id: int


@dataclass
class AgentText(Event):
    """A piece of the agent's reply, sent once it plays and its word times are known.

    ``words`` are ``{"text", "start_ms"}`` from the piece's first sample; ``played_ms`` is how much of it
    had already played when this was sent (a piece's last word times come when its voice has made it all),
    so the page shows each word as it is heard: ``start_ms - played_ms`` from now.
    """

    type: ClassVar[str] = "agent_text"
    text: str
    turn_id: int
    words: list[dict[str, Any]] = field(default_factory=list)
    played_ms: float = 0.0


@dataclass
class AgentTurnDone(Event):
    """The reply is over; ``text`` is what the user heard of it (only the words played before the cut,
    when ``interrupted``)."""

    type: ClassVar[str] = "agent_done"
    turn_id: int
    text: str
    interrupted: bool


@dataclass
class Sources(Event):
    """The passages a turn's answer may draw on (those scoring at least ``rag.score_threshold``), best first;
    ``grounded``: the answer was asked for from the documents."""

    type: ClassVar[str] = "sources"
    turn_id: int
    passages: list[dict[str, Any]]
    grounded: bool


@dataclass
class TurnMetrics(Event):
    """Stage timings of one turn, in milliseconds from the end of the user's speech."""

    type: ClassVar[str] = "metrics"
    turn_id: int
    stages: dict[str, float] = field(default_factory=dict)


@dataclass
class SettingsChanged(Event):
    """The session's voice, mute and emotion, sent whenever one of them (or the voices to choose from) changes."""

    type: ClassVar[str] = "settings"
    voice: str
    muted: bool
    emotion: dict[str, Any]
    voices: list[str] = field(default_factory=list)


@dataclass
class UserEmotion(Event):
    """How the user sounded in a turn and the emotion the reply is given in, sent when the turn is committed.

    ``features`` is ``tara.core.emotion.prosody.ProsodyFeatures.to_dict()`` (``None`` for typed turns, judged by
    their words alone); ``reply`` is the reply's emotion settings; ``auto`` says it was chosen from
    the user's emotion rather than by hand.
    """

    type: ClassVar[str] = "user_emotion"
    turn_id: int
    label: str
    confidence: float
    reasons: list[str]
    features: dict[str, Any] | None
    reply: dict[str, Any]
    auto: bool


@dataclass
class ErrorEvent(Event):
    type: ClassVar[str] = "error"
    message: str
    stage: str = ""
