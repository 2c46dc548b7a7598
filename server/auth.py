"""Who may talk to Tara: anyone on this machine; from the LAN, only with the access token.

The token arrives as ``?token=`` (the URL printed at start and in the QR code), then lives in a
cookie so the page's own requests carry it; API clients may send ``Authorization: Bearer``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from pathlib import Path

from aiohttp import web

COOKIE = "tara_token"


def load_or_create_token(configured: str, data_dir: Path) -> str:
    """The configured token, else one generated on first start and kept in the data dir."""
    if configured:
        return configured
    path = data_dir / "access_token"
    if path.exists() and (token := path.read_text().strip()):
        return token
    token = secrets.token_urlsafe(16)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


def is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return address == "localhost"


def presented_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.query.get("token") or request.cookies.get(COOKIE, "")


def access_middleware(token: str):
    """Loopback clients pass; others need ``token`` (401 otherwise). A good ``?token=`` sets the cookie."""

    @web.middleware
    async def check_access(request: web.Request, handler):
        if is_loopback(request.remote):
            return await handler(request)
        if not hmac.compare_digest(presented_token(request).encode(), token.encode()):
            raise web.HTTPUnauthorized(reason="an access token is needed from another machine: open the URL Tara printed at start")
        response = await handler(request)
        if request.query.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, secure=request.secure, samesite="Strict")
        return response

    return check_access
