"""Access from other machines needs the token; this machine needs none. HTTPS certificate handling."""

import ipaddress
from unittest.mock import Mock

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from cryptography import x509

from tara.server.app import create_app
from tara.server.auth import COOKIE, access_middleware, load_or_create_token, matches
from tara.server.tls import ensure_certificate

TOKEN = "s3cret-token"


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def request_from(address: str, path: str = "/", headers: dict | None = None) -> web.Request:
    """A request as if it came from ``address`` (peer-address injection)."""
    transport = Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (address, 50000) if name == "peername" else default
    )
    return make_mocked_request("GET", path, headers=headers or {}, transport=transport)


async def call(request: web.Request) -> int:
    try:
        return (await access_middleware(TOKEN)(request, ok)).status
    except web.HTTPException as exc:
        return exc.status


async def test_loopback_needs_no_token_and_other_machines_do():
    assert await call(request_from("127.0.0.1")) == 200
    assert await call(request_from("::1")) == 200
    assert await call(request_from("192.168.1.20")) == 401
    assert await call(request_from("192.168.1.20", "/?token=wrong")) == 401
    assert await call(request_from("192.168.1.20", headers={"Authorization": "Bearer nope"})) == 401
    assert await call(request_from("192.168.1.20", f"/?token={TOKEN}")) == 302  # to the URL without the token
    assert await call(request_from("10.0.0.7", headers={"Authorization": f"Bearer {TOKEN}"})) == 200
    assert await call(request_from("10.0.0.7", headers={"Cookie": f"{COOKIE}={TOKEN}"})) == 200


async def test_a_good_token_in_the_url_becomes_a_cookie_and_leaves_the_url():
    response = await access_middleware(TOKEN)(request_from("192.168.1.20", f"/?token={TOKEN}&raw=1"), ok)
    assert response.status == 302 and response.headers["Location"] == "/?raw=1"
    cookie = response.cookies[COOKIE]
    assert (
        cookie.value == TOKEN and cookie["httponly"] and int(cookie["max-age"]) > 0 and cookie["samesite"] == "Strict"
    )
    response = await access_middleware(TOKEN, "admin")(request_from("127.0.0.1", "/admin?token=admin"), ok)
    assert response.status == 200 and COOKIE not in response.cookies  # the admin page takes it from the URL itself


async def test_the_app_refuses_other_machines_with_a_json_401(config, stack):
    app = create_app(config, stack=stack, access_token=TOKEN)
    async with TestClient(TestServer(app)) as client:  # the test client is loopback: it gets in
        assert (await client.get("/api/health")).status == 200
    app = create_app(config, stack=stack, access_token=TOKEN)
    app.freeze()
    request = request_from("192.168.1.20", "/api/health")  # the full middleware chain, an injected peer
    request._app = app  # noqa: SLF001
    response = await app._handle(request)  # noqa: SLF001
    assert isinstance(response, web.Response) and response.status == 401 and "token" in (response.text or "")


def test_the_token_is_generated_once_and_kept(tmp_path):
    first = load_or_create_token("", tmp_path)
    assert len(first) >= 16 and load_or_create_token("", tmp_path) == first
    assert (tmp_path / "access_token").stat().st_mode & 0o077 == 0
    assert load_or_create_token("configured", tmp_path) == "configured"


def test_the_certificate_names_the_lan_addresses_and_is_reused(tmp_path):
    cert, key = ensure_certificate(tmp_path, ["192.168.1.20"])
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("192.168.1.20") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert key.stat().st_mode & 0o077 == 0
    before = cert.read_bytes()
    assert ensure_certificate(tmp_path, ["192.168.1.20"])[0].read_bytes() == before  # reused
    ensure_certificate(tmp_path, ["10.1.2.3"])  # a new network: made again
    assert cert.read_bytes() != before


def test_a_token_that_is_not_utf8_never_matches_and_never_raises():
    # aiohttp keeps header and cookie bytes that are not UTF-8 as surrogates (the live test sends raw bytes)
    for presented in ("\udcff\udcfe", "caf\udcc3", TOKEN + "\udcff", ""):
        assert not matches(presented, TOKEN)
    assert matches(TOKEN, TOKEN)
