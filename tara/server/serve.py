"""``tara serve``: listen on the LAN over HTTPS (self-signed) and on this machine over plain HTTP.

Browsers give a page the microphone only on a secure origin: ``https://`` or ``http://localhost``.
So a non-loopback host always gets TLS plus the access token, and ``server.local_http_port`` adds a
plain-HTTP listener on 127.0.0.1 for the browser on this machine (no certificate warning there).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import ssl

import segno
from aiohttp import web
from rich.console import Console

from tara.core.config import ConfigError, TaraConfig
from tara.server.app import create_app
from tara.server.auth import is_loopback, lan_addresses, load_or_create_token
from tara.server.ice import gather_ice_on, ice_addresses_for, networks_of
from tara.server.keys import PEERS
from tara.server.tls import ensure_certificate, server_context

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (benchmarks and tests start servers on it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def tls_context(config: TaraConfig, host: str, addresses: list[str]) -> ssl.SSLContext | None:
    """The TLS context the host needs, or None for plain HTTP (loopback only)."""
    mode, loopback = config.server.tls, is_loopback(host) or host == "localhost"
    if mode == "off" and not loopback:
        raise ConfigError(f"server.tls: plain HTTP is only allowed on a loopback host, not {host!r}")
    if mode == "off" or (mode == "auto" and loopback):
        return None
    if config.server.cert_file or config.server.key_file:
        return server_context(config.server.cert_file, config.server.key_file)
    return server_context(*ensure_certificate(config.data_path, addresses))


async def start_runner(app: web.Application, config: TaraConfig) -> web.AppRunner:
    """The app's runner, set up (the models load), with the server section's connection limits: request
    headers within ``header_timeout_s`` (aiohttp's keep-alive timer also runs before the first request)
    and at most ``max_connections`` open; no access log (URLs may carry the token)."""
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=config.server.header_timeout_s)
    await runner.setup()
    server, limit = runner.server, config.server.max_connections
    assert server is not None  # setup() made it
    admit = server.connection_made

    def connection_made(handler, transport) -> None:  # aiohttp has no cap of its own
        admit(handler, transport)
        if len(server.connections) > limit:
            transport.abort()

    server.connection_made = connection_made
    return runner


async def run_server(config: TaraConfig, host: str, port: int, console: Console) -> None:
    addresses = lan_addresses()
    ice = ice_addresses_for(host, addresses, config.server.ice_addresses)
    gather_ice_on(ice)  # ICE follows the bind address: a loopback server offers no LAN candidates
    context = tls_context(config, host, addresses)
    token = load_or_create_token(config.server.access_token, config.data_path)
    admin_token = load_or_create_token(config.server.admin_token, config.data_path, "admin_token")
    app = create_app(config, access_token=token, admin_token=admin_token)
    if not config.server.ice_servers:  # no STUN/TURN: checks go to the networks Tara serves on, nowhere else
        app[PEERS].networks = networks_of(ice)
    runner = await start_runner(app, config)
    sites = [web.TCPSite(runner, host, port, ssl_context=context)]
    local_port = config.server.local_http_port
    if context is not None and local_port and local_port != port:
        sites.append(web.TCPSite(runner, "127.0.0.1", local_port))
    for site in sites:
        await site.start()
    print_banner(
        console, host, port, context is not None, local_port if len(sites) > 1 else 0, addresses, token, admin_token
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def print_banner(
    console: Console,
    host: str,
    port: int,
    tls: bool,
    local_port: int,
    addresses: list[str],
    token: str,
    admin_token: str = "",
) -> None:
    scheme = "https" if tls else "http"
    if local_port:
        console.print(f"On this machine: [bold]http://127.0.0.1:{local_port}/[/bold]")
    if admin_token:
        admin_url = (
            f"http://127.0.0.1:{local_port}/admin" if local_port else f"{scheme}://{_url_host(host)}:{port}/admin"
        )
        console.print(
            f"Admin page: [bold]{admin_url}[/bold]  admin token: [bold]{admin_token}[/bold] "
            "(also the API's 'Authorization: Bearer')"
        )
    if host in ("0.0.0.0", "::"):
        lan_urls = [f"{scheme}://{address}:{port}/?token={token}" for address in addresses]
    elif is_loopback(host) or host == "localhost":
        lan_urls = []
        console.print(f"Tara is listening on [bold]{scheme}://{host}:{port}/[/bold] (this machine only)")
    else:
        lan_urls = [f"{scheme}://{host}:{port}/?token={token}"]
    for url in lan_urls:
        console.print(f"From a phone or another computer: [bold]{url}[/bold]")
    if lan_urls:
        console.print("(the certificate is self-signed: accept the browser's warning once)")
        console.print(
            "[bold]The token in this URL and QR code is a secret[/bold]: anyone who has it can talk to Tara "
            "from the LAN. The page drops it from the address bar once it is a cookie."
        )
        qr = segno.make(lan_urls[0], error="l")
        qr.terminal(compact=True)
    console.print("Tara is ready.", style="green")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Model streams run on many worker threads; glibc gives each its own malloc arena and rarely
    returns their memory, so a long-running server's RSS creeps up. Two arenas are enough here."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # not glibc
        pass


def serve(config: TaraConfig, host: str | None = None, port: int | None = None) -> None:
    limit_malloc_arenas()
    logging.basicConfig(
        level=os.environ.get("TARA_LOG_LEVEL", "INFO").upper(),  # DEBUG: per-reply LLM timings
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    console = Console()
    try:
        asyncio.run(run_server(config, host or config.server.host, port or config.server.port, console))
    except KeyboardInterrupt:
        pass
