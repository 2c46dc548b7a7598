"""What the aiohttp app holds, by typed key (shared by ``server/app.py`` and the API modules)."""

from __future__ import annotations

from aiohttp import web

from agent.config import TaraConfig
from agent.knowledge import KnowledgeBase
from agent.stack import AgentStack
from agent.voices import VoiceLibrary
from server.rtc import PeerRegistry

STACK = web.AppKey("stack", AgentStack)
CONFIG = web.AppKey("config", TaraConfig)
PEERS = web.AppKey("peers", PeerRegistry)
STARTED = web.AppKey("started", float)
VOICES = web.AppKey("voices", VoiceLibrary)
KB = web.AppKey("kb", KnowledgeBase)
