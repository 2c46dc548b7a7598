"""Who may talk to Tara: anyone on this machine; from the LAN, only with the access token.

The token arrives as ``?token=`` (the URL printed at start and in the QR code), then lives in a
cookie so the page's own requests carry it; API clients may send ``Authorization: Bearer``.

The admin surface (``/api`` beyond health and the voice list, ``/metrics``) needs the admin token as
``Authorization: Bearer`` from everywhere, this machine included; never from a cookie, so another
site cannot make a browser act as the admin. The admin token also opens what the access token opens.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from pathlib import Path

from aiohttp import web

COOKIE = "tara_token"


def load_or_create_token(configured: str, data_dir: Path, name: str = "access_token") -> str:
    """The configured token, else one generated on first start and kept in ``data_dir/name`` (mode 600)."""
    if configured:
        return configured
    path = data_dir / name
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


def matches(presented: str, token: str) -> bool:
    """Constant-time comparison (an empty token never matches)."""
    return bool(token) and hmac.compare_digest(presented.encode(), token.encode())


def access_middleware(token: str, admin_token: str = ""):
    """Loopback clients pass; others need ``token`` or ``admin_token`` (401 otherwise). A good ``?token=``
    sets the cookie."""

    @web.middleware
    async def check_access(request: web.Request, handler):
        if is_loopback(request.remote):
            return await handler(request)
        presented = presented_token(request)
        if not (matches(presented, token) or matches(presented, admin_token)):
            raise web.HTTPUnauthorized(reason="an access token is needed from another machine: open the URL Tara printed at start")
        response = await handler(request)
        if request.query.get("token"):
            response.set_cookie(COOKIE, presented, httponly=True, secure=request.secure, samesite="Strict")
        return response

    return check_access


def check_admin(request: web.Request, admin_token: str) -> None:
    """``Authorization: Bearer <admin token>`` or a JSON 401, from any address."""
    header = request.headers.get("Authorization", "")
    presented = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not matches(presented, admin_token):
        problem = "a wrong admin token" if presented else "no admin token"
        raise web.HTTPUnauthorized(
            reason=f"{problem}: send 'Authorization: Bearer <admin token>' (server.admin_token, or <data_dir>/admin_token)",
            headers={"WWW-Authenticate": 'Bearer realm="tara-admin"'},
        )
