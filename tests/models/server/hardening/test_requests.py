"""Hardening: Other sites cannot use the loopback server, and malformed requests are clean 4xx."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from tara.tools.caller import TaraClient
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.models.server.hardening.helpers import (
    TALLY,
    assert_back_to_baseline,
    offer_sdp,
    raw_request,
)

pytestmark = pytest.mark.timeout(900)


# ---------------------------------------------------------------------------- 2. other sites are refused


async def test_other_sites_cannot_use_the_loopback_server(server, baseline, caplog):
    url, app = server
    caplog.set_level(logging.INFO)
    port = url.rsplit(":", 1)[1]
    sdp = await offer_sdp()
    offer = {"sdp": sdp, "type": "offer"}
    async with aiohttp.ClientSession() as http:

        async def status(method: str, path: str, **kwargs) -> int:
            TALLY["bad inputs"] += 1
            async with http.request(method, f"{url}{path}", **kwargs) as response:
                if response.status >= 400 and path.startswith(("/api", "/offer")):
                    assert "error" in await response.json()
                TALLY["5xx"] += response.status >= 500
                return response.status

        import json

        # a no-cors "simple" POST from any page: text/plain, form-encoded or no type at all
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/plain;charset=UTF-8"):
            assert await status("POST", "/offer", data=json.dumps(offer), headers={"Content-Type": content_type}) == 415
        assert await status("POST", "/offer", data=json.dumps(offer).encode()) == 415  # octet-stream
        # DNS rebinding: the page's own origin points at 127.0.0.1, its Host names the attacker's domain
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhost.evil"):
            for method, path in (("GET", "/"), ("GET", "/api/config"), ("POST", "/offer"), ("GET", "/api/health")):
                assert await status(method, path, json=offer, headers={"Host": host}) == 421, (host, path)
        # a foreign Origin on anything that changes state
        for origin in ("http://evil.example", "null", "https://127.0.0.1.evil.example", "file://", "not a url"):
            assert await status("POST", "/offer", json=offer, headers={"Origin": origin}) == 403, origin
            assert await status("DELETE", "/api/sessions/x", headers={"Origin": origin, **ADMIN}) == 403
            assert await status("POST", "/api/tts", json={"text": "hi"}, headers={"Origin": origin, **ADMIN}) == 403
        # this machine's own names and origins pass
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]:8080", "LOCALHOST."):
            assert await status("GET", "/api/health", headers={"Host": host}) == 200, host
        async with http.get(f"{url}/") as response:
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "no-referrer"
    async with TaraClient(url) as client:  # aiohttp sends no Origin; a browser page sends its own
        assert client.session_id
    await assert_back_to_baseline(url, app, baseline)
    # dozens of refusals: a WARNING line now and then (tests/server/test_app.py), never an ERROR per request
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused ")]
    assert len(refusals) <= 3 and all(r.levelno == logging.WARNING for r in refusals)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---------------------------------------------------------------------------- 5. malformed requests are 4xx


MALFORMED_JSON = [
    "",
    "{",
    "null",
    "[]",
    "1",
    '"offer"',
    "[" * 5000 + "]" * 5000,
    '{"sdp": 1, "type": "offer"}',
    '{"type": "offer"}',
    '{"sdp": "", "type": "offer"}',
    '{"sdp": "v=0", "type": "answer"}',
    '{"sdp": "v=0"}',
    '{"sdp": "v=0\\u0000", "type": "offer"}',
    '{"sdp": "v=0", "type": "offer"}',
    '{"sdp": "' + "x" * 300_000 + '", "type": "offer"}',
    '{"sdp": null, "type": "offer"}',
]
MALFORMED_TTS = [
    '{"text": ""}',
    '{"text": 5}',
    '{"text": null}',
    "{}",
    '{"text": "' + "a" * 100_000 + '"}',
    '{"text": "hi", "voice": "nobody"}',
    '{"text": "hi", "voice": 7}',
    '{"text": "hi", "emotion": "angry"}',
    '{"text": "hi", "warmth": 5}',
    '{"text": "hi", "rate": -1}',
    '{"text": "hi", "energy": "loud"}',
    '{"text": ["hi"]}',
    "[1, 2]",
    "{",
]


async def test_malformed_requests_on_every_endpoint_are_clean_4xx(server, baseline):
    url, app = server
    async with aiohttp.ClientSession(headers=ADMIN) as http:

        async def status(
            method: str, path: str, data: bytes | str | None = None, content_type: str = "application/json"
        ) -> int:
            TALLY["bad inputs"] += 1
            headers = {"Content-Type": content_type} if data is not None else {}
            async with http.request(method, f"{url}{path}", data=data, headers=headers) as response:
                assert "error" in await response.json(), (method, path)
                TALLY["5xx"] += response.status >= 500
                return response.status

        for body in MALFORMED_JSON:
            assert 400 <= await status("POST", "/offer", body) < 500, body[:60]
        for body in MALFORMED_TTS:
            assert 400 <= await status("POST", "/api/tts", body) < 500, body[:60]
        missing = [
            ("DELETE", "/api/sessions/nobody"),
            ("GET", "/api/tasks/nobody"),
            ("GET", "/api/tasks/nobody/audio"),
            ("DELETE", "/api/voices/nobody"),
            ("GET", "/api/voices/nobody/sample"),
            ("DELETE", "/api/kb/nothing.md"),
            ("DELETE", "/api/kb/..%2F..%2Fetc%2Fpasswd"),
            ("DELETE", "/api/kb/.hidden"),
            ("GET", "/api/logs?limit=1e9"),
            ("GET", "/api/logs?limit=abc"),
            ("GET", "/api/logs?after=-1"),
            ("GET", "/api/nothing"),
            ("PUT", "/api/kb"),
            ("PATCH", "/api/sessions"),
        ]
        for method, path in missing:
            assert 400 <= await status(method, path) < 500, (method, path)
        for path in ("/api/kb", "/api/voices"):  # uploads that are not forms, or forms without the file
            assert 400 <= await status("POST", path, '{"file": "x"}') < 500, path
            assert 400 <= await status("POST", path, "--b--\r\n", "multipart/form-data; boundary=b") < 500, path
    await assert_back_to_baseline(url, app, baseline)


async def test_non_utf8_tokens_and_malformed_multipart_are_clean_4xx(server, baseline):
    url, app = server
    port = url.rsplit(":", 1)[1]
    head = f"Host: 127.0.0.1:{port}\r\nConnection: close\r\n".encode()
    for token in (b"Bearer \xff\xfe", b"Bearer caf\xc3", b"\xff", b"Bearer " + "é".encode("latin-1")):
        status, body = await raw_request(
            url, b"GET /api/sessions HTTP/1.1\r\n" + head + b"Authorization: " + token + b"\r\n\r\n"
        )
        assert status == 401 and b"admin token" in body, token
    multipart = [
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.md"\r\n\r\nhi\r\n',  # no closing boundary
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.md"\r\n'
        + b"x" * 9000
        + b"\r\n\r\nhi\r\n--b--\r\n",
        b"--b\r\nnot a header line\r\n\r\nhi\r\n--b--\r\n",
        b"--b\r\nContent-Disposition: \xff\xfe\r\n\r\nhi\r\n--b--\r\n",
        b'--b\r\nContent-Disposition: form-data; name="file"\r\nContent-Transfer-Encoding: bogus\r\n\r\nhi\r\n--b--\r\n',
        b"--nope\r\n\r\n",
        b"",
    ]
    for body in multipart:
        request = (
            b"POST /api/kb HTTP/1.1\r\n"
            + head
            + f"Authorization: Bearer {ADMIN_TOKEN}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status, answer = await raw_request(url, request)
        assert 400 <= status < 500 and b'"error"' in answer, (body[:60], status, answer[:200])
    await assert_back_to_baseline(url, app, baseline)
