"""The aiohttp application: the talk page, WebRTC signalling and the API; owns the shared models.

Models load once at startup (``AgentStack``) and every peer's session shares them. ``POST /offer``
turns a browser's SDP offer into a ``Peer`` (``server/rtc.py``) and answers it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.config import TaraConfig
from agent.stack import AgentStack, load_stack
from server.auth import access_middleware, load_or_create_token
from server.rtc import OfferError, PeerRegistry

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
MAX_BODY_BYTES = 256 * 1024  # an SDP offer is a few KB
STACK = web.AppKey("stack", AgentStack)
CONFIG = web.AppKey("config", TaraConfig)
PEERS = web.AppKey("peers", PeerRegistry)
STARTED = web.AppKey("started", float)


class Offer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sdp: str = Field(min_length=1, max_length=MAX_BODY_BYTES)
    type: str

    def check(self) -> None:
        if self.type != "offer":
            raise ValueError(f"type must be 'offer', not {self.type!r}")


@web.middleware
async def json_errors(request: web.Request, handler):
    """API errors as ``{"error": ...}`` with the right status; pages keep aiohttp's own."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not (request.path.startswith("/api/") or request.path == "/offer"):
            raise
        return web.json_response({"error": exc.reason}, status=exc.status, headers=_kept_headers(exc))


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {key: value for key, value in exc.headers.items() if key in ("Retry-After", "WWW-Authenticate")}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")


async def health(request: web.Request) -> web.Response:
    stack = request.app.get(STACK)
    return web.json_response({
        "ok": stack is not None,
        "uptime_s": round(time.monotonic() - request.app[STARTED], 1),
        "models_loaded": stack is not None,
        "sessions": len(request.app[PEERS].peers),
    })


async def client_config(request: web.Request) -> web.Response:
    """What the page needs before it connects: ICE servers."""
    servers = [server.model_dump(exclude_none=True) for server in request.app[CONFIG].server.ice_servers]
    return web.json_response({"ice_servers": servers})


async def offer(request: web.Request) -> web.Response:
    """``{"sdp", "type": "offer"}`` → a new session; answers ``{"sdp", "type": "answer", "session_id"}``."""
    try:
        body = Offer.model_validate_json(await request.read())
        body.check()
    except (ValidationError, ValueError) as exc:
        problem = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise web.HTTPBadRequest(reason=f"expected JSON {{\"sdp\": ..., \"type\": \"offer\"}}: {problem}") from None
    peers = request.app[PEERS]
    if peers.full:
        raise web.HTTPServiceUnavailable(
            reason=f"Tara is already talking with {peers.max_sessions} people (server.max_sessions); try again later",
            headers={"Retry-After": "10"},
        )
    peer = peers.open(request.app[STACK], [s.model_dump(exclude_none=True) for s in request.app[CONFIG].server.ice_servers])
    try:
        answer = await peer.answer(body.sdp)
    except OfferError as exc:
        await peer.close()
        raise web.HTTPBadRequest(reason=str(exc)) from None
    log.info("session %s opened for %s", peer.id, request.remote)
    return web.json_response({"sdp": answer.sdp, "type": answer.type, "session_id": peer.id})


def create_app(config: TaraConfig, stack: AgentStack | None = None, access_token: str | None = None) -> web.Application:
    """Build the app; the models load at startup unless an already loaded ``stack`` is given."""
    token = access_token or load_or_create_token(config.server.access_token, config.data_path)
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors, access_middleware(token)])
    app[STARTED] = time.monotonic()
    app[CONFIG] = config
    app[PEERS] = PeerRegistry(config.server.max_sessions)
    if stack is not None:
        app[STACK] = stack
    else:
        async def load(app: web.Application) -> None:
            app[STACK] = await load_stack(config)

        app.on_startup.append(load)

    async def hang_up(app: web.Application) -> None:
        await app[PEERS].close_all()

    app.on_shutdown.append(hang_up)
    app.router.add_get("/", index)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/config", client_config)
    app.router.add_post("/offer", offer)
    app.router.add_static("/static/", WEB_DIR)
    return app
