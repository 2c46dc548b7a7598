"""What the aiohttp app holds, by typed key (shared by ``tara/server/app.py`` and the API modules)."""

from __future__ import annotations

from aiohttp import web

from tara.core.config import TaraConfig
from tara.core.library.knowledge import KnowledgeBase
from tara.core.library.voices import VoiceLibrary
from tara.core.stack import AgentStack
from tara.server.rtc import PeerRegistry

STACK = web.AppKey("stack", AgentStack)
CONFIG = web.AppKey("config", TaraConfig)
PEERS = web.AppKey("peers", PeerRegistry)
STARTED = web.AppKey("started", float)
VOICES = web.AppKey("voices", VoiceLibrary)
KB = web.AppKey("kb", KnowledgeBase)
