"""Who may talk to Tara: anyone on this machine; from the LAN, only with the access token.

The token arrives as ``?token=`` (the URL printed at start and in the QR code), then lives in a
cookie so the page's own requests carry it; API clients may send ``Authorization: Bearer``.

The admin surface (``/api`` beyond health and the voice list, ``/metrics``) needs the admin token as
``Authorization: Bearer`` from everywhere, this machine included; never from a cookie, so another
site cannot make a browser act as the admin. The admin token also opens what the access token opens.

Loopback needs no token, so other web pages open on this machine must not reach it through the
browser: the ``Host`` must name this machine (no DNS rebinding), a state-changing request with a
foreign ``Origin`` is a 403, and a request body is JSON or multipart only (no "simple" cross-site
POST can carry one).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from collections.abc import Iterable
from pathlib import Path

import ifaddr
from aiohttp import web
from yarl import URL

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
    """Constant-time comparison (an empty token never matches). aiohttp keeps non-UTF-8 header bytes as
    surrogates; they are compared as the bytes they were, and never match."""
    return bool(token) and hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token.encode())


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback and link-local, from its interfaces."""
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                address = ipaddress.ip_address(ip.ip)
                if not (address.is_loopback or address.is_link_local):
                    found.append(ip.ip)
    return sorted(set(found))


def allowed_hosts(configured: Iterable[str] = ()) -> set[str]:
    """The names this server answers to: loopback, this machine's names and LAN addresses, ``configured``."""
    hostname = socket.gethostname()
    names = {"localhost", "127.0.0.1", "::1", hostname, f"{hostname}.local", socket.getfqdn(), *lan_addresses()}
    return {name.lower().rstrip(".") for name in (*names, *configured) if name}


def host_of(authority: str) -> str:
    """``"[::1]:8080"`` → ``"::1"``, ``"Example.org.:80"`` → ``"example.org"``."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1 : authority.find("]")]
    if authority.count(":") == 1:
        authority = authority.split(":")[0]
    return authority.rstrip(".")


STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_TYPES = ("application/json", "multipart/form-data")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def site_guard(hosts: set[str]):
    """Refuse what only another site would send: an unknown ``Host`` (421), a foreign ``Origin`` on a
    state-changing request (403), a body that is neither JSON nor multipart (415); add the security
    headers to every response (HSTS on TLS)."""

    @web.middleware
    async def guard(request: web.Request, handler):
        if "Host" in request.headers and host_of(request.headers["Host"]) not in hosts:
            raise web.HTTPMisdirectedRequest(reason="unknown Host: add it to server.allowed_hosts to serve it")
        origin = request.headers.get("Origin")
        if request.method in STATE_CHANGING and origin is not None and not _same_site(origin, hosts):
            raise web.HTTPForbidden(reason=f"requests from another site ({origin[:100]}) are refused")
        if request.method in STATE_CHANGING and request.body_exists and request.content_type not in BODY_TYPES:
            raise web.HTTPUnsupportedMediaType(reason="send application/json (multipart/form-data for uploads)")
        response = await handler(request)
        response.headers.update(PAGE_HEADERS)
        if request.secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    return guard


def _same_site(origin: str, hosts: set[str]) -> bool:
    try:
        host = URL(origin).host
    except ValueError:
        return False
    return host is not None and host.lower().rstrip(".") in hosts


def access_middleware(token: str, admin_token: str = ""):
    """Loopback clients pass; others need ``token`` or ``admin_token`` (401 otherwise). A page opened
    with a good ``?token=`` gets it as a cookie and is sent to the same URL without it (so it stays out
    of history, bookmarks and Referer headers)."""

    @web.middleware
    async def check_access(request: web.Request, handler):
        if not is_loopback(request.remote):
            presented = presented_token(request)
            if not (matches(presented, token) or matches(presented, admin_token)):
                raise web.HTTPUnauthorized(
                    reason="an access token is needed from another machine: open the URL Tara printed at start"
                )
        if request.method == "GET" and matches(request.query.get("token", ""), token):
            return _without_token(request, token)
        return await handler(request)  # (the admin page takes ?token=<admin token> itself, into sessionStorage)

    return check_access


COOKIE_MAX_AGE_S = 30 * 24 * 3600


def _without_token(request: web.Request, token: str) -> web.Response:
    response = web.Response(status=302, headers={"Location": str(request.rel_url.without_query_params("token"))})
    response.set_cookie(
        COOKIE, token, max_age=COOKIE_MAX_AGE_S, httponly=True, secure=request.secure, samesite="Strict"
    )
    return response


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
