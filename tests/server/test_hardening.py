"""Hardening, against one live server on loopback: every failure frees what it held, bad input of every
kind gets a clear 4xx (or a documented answer), and other sites cannot use the loopback surface.

One server (real models, real aiortc peers) serves the whole module; after every failure path the
session list, ``tara_active_sessions`` and the event loop's task count are back to their baseline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil

import aiohttp
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection

from server import rtc
from server.app import PEERS, create_app
from server.client import TaraClient
from server.rtc import ice_on_loopback_only
from tests.conftest import ADMIN, ADMIN_TOKEN, TEST_KB, free_port

pytestmark = pytest.mark.timeout(900)
QUESTION = "What is the name of the observatory's main telescope?"
TALLY = {"bad inputs": 0, "faults": 0, "5xx": 0}  # printed at the end of the module (the closing note)


@pytest.fixture(scope="module")
async def server(config, stack, tmp_path_factory):
    """Tara on a loopback port over a knowledge base and data dir of its own: ``(url, app)``."""
    from agent.prompt import PromptBuilder
    from agent.rag.llamaindex import LlamaIndexRetriever

    ice_on_loopback_only()
    root = tmp_path_factory.mktemp("hardening")
    kb = root / "kb"
    shutil.copytree(TEST_KB, kb)
    retriever = LlamaIndexRetriever(config.rag, root / "index-data", kb, show_progress=False)
    prompts = PromptBuilder(config.llm, config.rag, retriever.documents, stack.llm.count_tokens)
    own = dataclasses.replace(stack, retriever=retriever, prompts=prompts)
    app_config = config.model_copy(update={"data_dir": str(root / "data")})
    runner = web.AppRunner(create_app(app_config, stack=own, access_token="test-token", admin_token=ADMIN_TOKEN))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", runner.app
    await runner.cleanup()
    print(f"\nhardening tally: {TALLY}")


@pytest.fixture(scope="module")
async def baseline(server) -> int:
    """The loop's task count with the server idle (its TTS worker and the test's own tasks)."""
    await asyncio.sleep(0.2)
    return len(asyncio.all_tasks())


async def assert_back_to_baseline(url: str, app: web.Application, baseline: int) -> None:
    """No session left, the gauge says so, and no task of a closed peer is still alive."""
    for _ in range(200):
        if not app[PEERS].peers and len(asyncio.all_tasks()) <= baseline:
            break
        await asyncio.sleep(0.05)
    assert not app[PEERS].peers
    assert len(asyncio.all_tasks()) <= baseline, [t.get_coro() for t in asyncio.all_tasks()]
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        async with http.get(f"{url}/api/sessions") as response:
            assert (await response.json())["sessions"] == []
        async with http.get(f"{url}/metrics") as response:
            assert "tara_active_sessions 0.0" in await response.text()


async def offer_sdp(*, audio: str | None = "sendrecv", data: bool = True, extra_audio: int = 0) -> str:
    """A real aiortc offer: an audio transceiver in ``audio`` direction (None: none), the events channel."""
    pc = RTCPeerConnection()
    for _ in range((audio is not None) + extra_audio):
        pc.addTransceiver("audio", direction=audio or "sendrecv")
    if data:
        pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def post_offer(url: str, sdp: str) -> tuple[int, dict]:
    TALLY["bad inputs"] += 1
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/offer", json={"sdp": sdp, "type": "offer"}) as response:
            body = await response.json()
            TALLY["5xx"] += response.status >= 500
            return response.status, body


def sections(sdp: str) -> list[str]:
    """The SDP's session part, then one string per m= section."""
    return re.split(r"(?=^m=)", sdp, flags=re.M)


# ---------------------------------------------------------------------------- 1. offers never leak a slot


async def test_offers_that_fail_anywhere_free_their_slot(server, baseline, monkeypatch):
    url, app = server
    monkeypatch.setattr(app[PEERS], "max_sessions", 2)  # a leak of two would show as a 503 below
    normal = await offer_sdp()
    head, audio, data = sections(normal)
    duplicated = await offer_sdp(extra_audio=1)
    mids = re.findall(r"^a=mid:(\S+)", duplicated, flags=re.M)
    cases = {
        "inactive audio": normal.replace("a=sendrecv", "a=inactive"),
        "send-only audio": normal.replace("a=sendrecv", "a=sendonly"),
        "duplicated mids": duplicated.replace(f"a=mid:{mids[1]}", f"a=mid:{mids[0]}"),
        "bundle names a removed audio mid": head + data,
        "data only": await offer_sdp(audio=None),
        "no common codec": re.sub(r"(opus|G722|PCMU|PCMA)/\d+(/2)?", "FOO/48000", normal),
        "no ICE credentials": re.sub(r"^a=ice-(ufrag|pwd):.*\r\n", "", normal, flags=re.M),
        "no fingerprint": re.sub(r"^a=fingerprint:.*\r\n", "", normal, flags=re.M),
        "truncated": normal[: len(normal) // 2],
        "no rtcp-mux": normal.replace("a=rtcp-mux\r\n", ""),
        "garbage port": re.sub(r"^m=audio \S+", "m=audio x", normal, flags=re.M),
        "garbage candidate": re.sub(r"^a=candidate:.*$", "a=candidate:zzz", normal, count=1, flags=re.M),
        "unknown DTLS setup": normal.replace("a=setup:actpass", "a=setup:bogus"),
    }
    for name, sdp in cases.items():
        status, body = await post_offer(url, sdp)
        assert status == 400 and body["error"], (name, status, body)
    await assert_back_to_baseline(url, app, baseline)
    async with TaraClient(url) as client:  # and the slots are all there
        assert client.session_id


async def test_an_offer_that_fails_inside_the_server_is_a_json_500_and_frees_its_slot(server, baseline, monkeypatch):
    url, app = server

    async def broken(self, sdp):
        raise RuntimeError("a bug in the offer path")

    monkeypatch.setattr(rtc.Peer, "answer", broken)
    for _ in range(app[PEERS].max_sessions + 1):
        status, body = await post_offer(url, await offer_sdp())
        assert status == 500 and body == {"error": "internal error (see the server log)"}
        TALLY["faults"] += 1
    TALLY["5xx"] -= app[PEERS].max_sessions + 1  # documented: a server bug is a JSON 500
    monkeypatch.undo()
    await assert_back_to_baseline(url, app, baseline)


async def test_a_listen_only_caller_hears_tara_and_types_questions(server, baseline):
    url, app = server
    async with TaraClient(url, microphone=False) as client:
        client.send({"type": "text", "text": QUESTION})
        done = await client.wait_for("agent_done", timeout=90)
        assert "maple" in done["text"].lower()
        await asyncio.sleep(0.5)
        assert client.received.first_sound_after(0.0) is not None
    await assert_back_to_baseline(url, app, baseline)


async def test_a_close_that_raises_or_hangs_is_logged_and_the_peer_still_goes(server, baseline, monkeypatch, caplog):
    url, app = server
    monkeypatch.setattr(rtc, "CLOSE_STEP_TIMEOUT_S", 0.5)
    for fault in ("raises", "hangs"):
        async with TaraClient(url):
            [peer] = app[PEERS].peers.values()

            async def bad_close(fault=fault):
                if fault == "raises":
                    raise RuntimeError("close failed")
                await asyncio.Event().wait()

            real_close = peer.pc.close
            monkeypatch.setattr(peer.pc, "close", bad_close)
            async with aiohttp.ClientSession(headers=ADMIN) as http:
                async with http.delete(f"{url}/api/sessions/{peer.id}") as response:
                    assert response.status == 200, fault
            TALLY["faults"] += 1
            assert not app[PEERS].peers
            await real_close()
    assert "closing its connection failed" in caplog.text
    await assert_back_to_baseline(url, app, baseline)


# ---------------------------------------------------------------------------- 2. other sites are refused


async def raw_request(url: str, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as it is (bytes no HTTP client would send) and read the status and body."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(15):
            response = await reader.read()
    finally:
        writer.close()
    TALLY["bad inputs"] += 1
    status = int(response.split(b" ", 2)[1])
    TALLY["5xx"] += status >= 500
    return status, response.partition(b"\r\n\r\n")[2]


async def test_other_sites_cannot_use_the_loopback_server(server, baseline):
    url, app = server
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


# ---------------------------------------------------------------------------- 5. malformed headers are 4xx


async def test_non_utf8_tokens_and_malformed_multipart_are_clean_4xx(server, baseline):
    url, app = server
    port = url.rsplit(":", 1)[1]
    head = f"Host: 127.0.0.1:{port}\r\nConnection: close\r\n".encode()
    for token in (b"Bearer \xff\xfe", b"Bearer caf\xc3", b"\xff", b"Bearer " + "é".encode("latin-1")):
        status, body = await raw_request(url, b"GET /api/sessions HTTP/1.1\r\n" + head + b"Authorization: " + token + b"\r\n\r\n")
        assert status == 401 and b"admin token" in body, token
    multipart = [
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.md\"\r\n\r\nhi\r\n",  # no closing boundary
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.md\"\r\n" + b"x" * 9000 + b"\r\n\r\nhi\r\n--b--\r\n",
        b"--b\r\nnot a header line\r\n\r\nhi\r\n--b--\r\n",
        b"--b\r\nContent-Disposition: \xff\xfe\r\n\r\nhi\r\n--b--\r\n",
        b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Transfer-Encoding: bogus\r\n\r\nhi\r\n--b--\r\n",
        b"--nope\r\n\r\n",
        b"",
    ]
    for body in multipart:
        request = (b"POST /api/kb HTTP/1.1\r\n" + head + f"Authorization: Bearer {ADMIN_TOKEN}\r\n".encode()
                   + b"Content-Type: multipart/form-data; boundary=b\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status, answer = await raw_request(url, request)
        assert 400 <= status < 500 and b'"error"' in answer, (body[:60], status, answer[:200])
    await assert_back_to_baseline(url, app, baseline)
