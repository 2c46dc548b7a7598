"""The aiohttp application: the talk page, WebRTC signalling, the REST API and the admin page; owns the
shared models.

Models load once at startup (``AgentStack``) and every peer's session shares them. ``POST /offer``
turns a browser's SDP offer into a ``Peer`` (``tara/server/rtc.py``) and answers it. The API lives in
``tara/server/api/`` (one module per resource); the voice library and the knowledge base it manages are
made here once the models are loaded.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tara.core.config import TaraConfig
from tara.core.library.knowledge import KnowledgeBase
from tara.core.library.voices import VoiceLibrary
from tara.core.stack import AgentStack, load_stack
from tara.server import api as rest
from tara.server.api.routes import Api, read_body
from tara.server.auth import access_middleware, allowed_hosts, load_or_create_token, site_guard
from tara.server.keys import CONFIG, KB, PEERS, STACK, STARTED, VOICES
from tara.server.rtc import OfferError, PeerRegistry

__all__ = ["CONFIG", "KB", "PEERS", "STACK", "STARTED", "VOICES", "create_app"]
log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
MAX_BODY_BYTES = 256 * 1024  # an SDP offer is a few KB; uploads are multipart, read with their own limits
API_PREFIXES = ("/api/", "/offer", "/metrics")


class Offer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sdp: str = Field(min_length=1, max_length=MAX_BODY_BYTES)
    type: str

    def check(self) -> None:
        if self.type != "offer":
            raise ValueError(f"type must be 'offer', not {self.type!r}")


class Answer(BaseModel):
    sdp: str
    type: str
    session_id: str


@web.middleware
async def json_errors(request: web.Request, handler):
    """API errors as ``{"error": ...}`` with the right status; pages keep aiohttp's own."""
    if not request.path.startswith(API_PREFIXES):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status, headers=_kept_headers(exc))
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error (see the server log)"}, status=500)


class RefusalLog:
    """Refused requests (4xx) logged at WARNING, at most one line per ``every_s`` with a count of the ones
    left out: a scanner or another site's page sending thousands must not flood the log, and a refusal is
    not a server error. (The standard ``logging`` module has no rate limit of its own.) Only the path is
    logged, never the query, which may hold a token."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last = -every_s
        self._left_out = 0

    def note(self, request: web.Request, status: int) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._left_out += 1
            return
        more = f" (and {self._left_out} more refused in the last {now - self._last:.0f} s)" if self._left_out else ""
        log.warning("refused %s %s from %s: %d%s", request.method, request.path[:200], request.remote, status, more)
        self._last, self._left_out = now, 0


def refusals_logged(refusals: RefusalLog):
    @web.middleware
    async def note_refusals(request: web.Request, handler):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if 400 <= exc.status < 500:
                refusals.note(request, exc.status)
            raise
        if 400 <= response.status < 500:
            refusals.note(request, response.status)
        return response

    return note_refusals


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {key: value for key, value in exc.headers.items() if key in ("Retry-After", "WWW-Authenticate")}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")


async def admin_page(request: web.Request) -> web.FileResponse:
    """The admin page itself holds no data: it asks for the admin token, then reads the API with it."""
    return web.FileResponse(WEB_DIR / "admin.html")


async def offer(request: web.Request) -> web.Response:
    """``{"sdp", "type": "offer"}`` → a new session; answers ``{"sdp", "type": "answer", "session_id"}``."""
    try:
        body = Offer.model_validate_json(await read_body(request))
        body.check()
    except (ValidationError, ValueError) as exc:
        problem = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise web.HTTPBadRequest(reason=f'expected JSON {{"sdp": ..., "type": "offer"}}: {problem}') from None
    peers = request.app[PEERS]
    if peers.full:
        raise web.HTTPServiceUnavailable(
            reason=f"Tara is already talking with {peers.max_sessions} people (server.max_sessions); try again later",
            headers={"Retry-After": "10"},
        )
    ice_servers = [s.model_dump(exclude_none=True) for s in request.app[CONFIG].server.ice_servers]
    peer = peers.open(request.app[STACK], ice_servers, remote=request.remote)
    try:
        answer = await peer.answer(body.sdp)
    except OfferError as exc:
        await peer.close()
        raise web.HTTPBadRequest(reason=str(exc)) from None
    except BaseException:  # a bug, or the caller left: the slot is freed all the same (json_errors answers 500)
        peer.close()
        raise
    log.info("session %s opened for %s", peer.id, request.remote)
    return web.json_response(Answer(sdp=answer.sdp, type=answer.type, session_id=peer.id).model_dump())


def create_app(
    config: TaraConfig, stack: AgentStack | None = None, access_token: str | None = None, admin_token: str | None = None
) -> web.Application:
    """Build the app; the models load at startup unless an already loaded ``stack`` is given."""
    token = access_token or load_or_create_token(config.server.access_token, config.data_path)
    admin = admin_token or load_or_create_token(config.server.admin_token, config.data_path, "admin_token")
    guard = site_guard(allowed_hosts(config.server.allowed_hosts))
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[refusals_logged(RefusalLog()), json_errors, guard, access_middleware(token, admin)],
    )
    app[STARTED] = time.monotonic()
    app[CONFIG] = config
    app[PEERS] = PeerRegistry(config.server.max_sessions, config.server)
    if stack is not None:
        app[STACK] = stack
    else:

        async def load(app: web.Application) -> None:
            app[STACK] = await load_stack(config)

        app.on_startup.append(load)

    async def libraries(app: web.Application) -> None:
        """What the API manages on top of the loaded models: uploaded voices (loaded now) and the knowledge base."""
        app[VOICES] = VoiceLibrary(app[STACK].tts, config.data_path, config.api)
        await app[VOICES].load()
        app[KB] = KnowledgeBase(app[STACK])

    async def hang_up(app: web.Application) -> None:
        await app[PEERS].close_all()

    app.on_startup.append(libraries)
    app.on_shutdown.append(hang_up)
    api = Api(admin)
    api.add(
        "POST",
        "/offer",
        offer,
        "Start a session: the browser's SDP offer in, the answer out",
        admin=False,
        body=Offer,
        response=Answer,
        errors=(400, 503),
    )
    rest.install(app, api)
    app.router.add_get("/", index)
    app.router.add_get("/admin", admin_page)
    app.router.add_static("/static/", WEB_DIR)
    return app
