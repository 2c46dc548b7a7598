"""Hardening: Slow clients hold nothing; data at rest and tokens."""

from __future__ import annotations

import asyncio
import shutil

import aiohttp
import pytest

from tara.server.app import CONFIG, STACK, VOICES
from tests.conftest import ADMIN
from tests.models.server.hardening.helpers import (
    TALLY,
    assert_back_to_baseline,
)

pytestmark = pytest.mark.timeout(900)


# ---------------------------------------------------------------------------- 4. slow clients hold nothing


async def test_slow_headers_slow_bodies_and_too_many_connections_are_cut_off(server, baseline):
    url, app = server
    host, port = url.removeprefix("http://").split(":")
    limit = app[CONFIG].server.max_connections
    streams = [await asyncio.open_connection(host, int(port)) for _ in range(limit + 10)]
    for _, writer in streams:
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # headers that never end
    TALLY["bad inputs"] += 1  # (one input, many times)
    async with asyncio.timeout(60):  # the header timeout is 2 s here; without one they would stay open for good
        ends = [await reader.read() for reader, _ in streams]
    assert all(end == b"" for end in ends)  # closed without an answer
    for _, writer in streams:
        writer.close()
    # a body that trickles: 408 once body_timeout_s is over
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /offer HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        'Content-Length: 1000\r\nConnection: close\r\n\r\n{"sdp": '.encode()
    )
    async with asyncio.timeout(60):
        answer = await reader.read()
    writer.close()
    TALLY["bad inputs"] += 1
    assert answer.startswith(b"HTTP/1.1 408") and b"body_timeout_s" in answer
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/health") as response:
        assert response.status == 200
    await assert_back_to_baseline(url, app, baseline)


async def test_the_connection_cap_refuses_the_excess_at_once(server):
    url, app = server
    host, port = url.removeprefix("http://").split(":")
    limit = app[CONFIG].server.max_connections
    streams = [await asyncio.open_connection(host, int(port)) for _ in range(limit + 5)]
    TALLY["bad inputs"] += 1
    await asyncio.sleep(0.2)
    refused = 0
    for reader, _ in streams[limit:]:
        try:
            refused += await asyncio.wait_for(reader.read(), 1.0) == b""
        except ConnectionResetError:
            refused += 1
    assert refused == 5
    for _, writer in streams:
        writer.close()


# ---------------------------------------------------------------------------- 8, 9. data at rest, tokens


async def test_data_at_rest_is_readable_by_this_user_only(server):
    url, app = server
    data = app[CONFIG].data_path
    retriever = app[STACK].retriever
    assert data.stat().st_mode & 0o777 == 0o700
    index = retriever.index_dir.parent
    for path in (index, *index.rglob("*")):
        assert path.stat().st_mode & 0o077 == 0, path
    voices = data / "voices" / "old"  # a voice folder kept by an older version: 0755 / 0644
    voices.mkdir(parents=True)
    (voices / "meta.json").write_text("{}")
    voices.chmod(0o755)
    (voices / "meta.json").chmod(0o644)
    await app[VOICES].load()
    for path in (data / "voices", voices, voices / "meta.json"):
        assert path.stat().st_mode & 0o077 == 0, path
    shutil.rmtree(data / "voices")


async def test_a_token_in_the_url_is_dropped_from_it(server):
    url, _ = server
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/?token=test-token&raw=1", allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "/?raw=1"


async def test_tts_text_with_control_characters_is_refused_at_submit(server):
    url, _ = server
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        for text in ("Hello\x00there.", "Bell\x07.", "Esc\x1b[31m red.", "del\x7f."):
            async with http.post(f"{url}/api/tts", json={"text": text}) as response:
                TALLY["bad inputs"] += 1
                assert response.status == 400 and "control characters" in (await response.json())["error"]
