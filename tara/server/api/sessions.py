"""Live sessions (admin): who is talking, in what state, with which voice and emotion, how fast each
recent turn was answered; ``DELETE`` ends a session (closes its peer connection)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from tara.server.api.routes import Api, reply
from tara.server.keys import PEERS
from tara.server.rtc import Peer


class TurnLatency(BaseModel):
    turn_id: int
    stages: dict[str, float] = Field(description="milliseconds from the end of the user's speech, per stage")


class SessionInfo(BaseModel):
    id: str
    state: str = Field(description="listening, thinking or speaking")
    connection: str = Field(description="the WebRTC connection state")
    started: float
    duration_s: float
    remote: str | None
    turns: int
    voice: str
    muted: bool
    emotion: dict[str, Any]
    latencies: list[TurnLatency]


class SessionList(BaseModel):
    sessions: list[SessionInfo]
    max_sessions: int


class Ended(BaseModel):
    ended: str


def describe(peer: Peer) -> SessionInfo:
    session = peer.session
    return SessionInfo(
        id=peer.id,
        state=session.state.agent.value,
        connection=peer.pc.connectionState,
        started=peer.created,
        duration_s=round(time.time() - peer.created, 1),
        remote=peer.remote,
        turns=peer.turns,
        voice=session.voice,
        muted=session.muted,
        emotion=session.emotion.model_dump(),
        latencies=[TurnLatency(turn_id=m.turn_id, stages=m.stages) for m in peer.recent_turns],
    )


async def list_sessions(request: web.Request) -> web.Response:
    peers = request.app[PEERS]
    return reply(
        SessionList(sessions=[describe(peer) for peer in list(peers.peers.values())], max_sessions=peers.max_sessions)
    )


async def end_session(request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    peer = request.app[PEERS].peers.get(session_id)
    if peer is None:
        raise web.HTTPNotFound(reason=f"no live session {session_id!r}")
    await peer.close()
    return reply(Ended(ended=session_id))


def setup(api: Api) -> None:
    api.add(
        "GET",
        "/api/sessions",
        list_sessions,
        "Live sessions with their state and recent turn latencies",
        response=SessionList,
    )
    api.add(
        "DELETE", "/api/sessions/{id}", end_session, "End a session: hang up its call", response=Ended, errors=(404,)
    )
