"""The aiohttp application: serves the page and the API, owns the shared models.

Models load once at startup (``AgentStack``) and are shared by every session. WebRTC signalling
(``POST /offer``) arrives with the WebRTC issue; until then the page is a placeholder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from aiohttp import web

from agent.config import TaraConfig
from agent.stack import AgentStack, load_stack

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STACK = web.AppKey("stack", AgentStack)
STARTED = web.AppKey("started", float)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")


async def health(request: web.Request) -> web.Response:
    stack = request.app.get(STACK)
    return web.json_response({
        "ok": stack is not None,
        "uptime_s": round(time.monotonic() - request.app[STARTED], 1),
        "models_loaded": stack is not None,
    })


def create_app(config: TaraConfig, stack: AgentStack | None = None) -> web.Application:
    """Build the app; the models load at startup unless an already loaded ``stack`` is given."""
    app = web.Application(client_max_size=1 << 20)
    app[STARTED] = time.monotonic()
    if stack is not None:
        app[STACK] = stack
    else:
        async def load(app: web.Application) -> None:
            app[STACK] = await load_stack(config)

        app.on_startup.append(load)
    app.router.add_get("/", index)
    app.router.add_get("/api/health", health)
    app.router.add_static("/static/", WEB_DIR)
    return app


def serve(config: TaraConfig, host: str | None = None, port: int | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = host or config.server.host, port or config.server.port
    web.run_app(create_app(config), host=host, port=port, print=lambda _: print(f"Tara is listening on http://{host}:{port}/", flush=True))
