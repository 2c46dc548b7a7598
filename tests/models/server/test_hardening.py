"""Hardening, against one live server on loopback: every failure frees what it held, bad input of every
kind gets a clear 4xx (or a documented answer), and other sites cannot use the loopback surface.

One server (real models, real aiortc peers) serves the whole module; after every failure path the
session list, ``tara_active_sessions`` and the event loop's task count are back to their baseline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import shutil
import time

import aiohttp
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection

from tara.server import rtc
from tara.server.app import CONFIG, PEERS, STACK, VOICES, create_app
from tara.server.ice import ice_on_loopback_only
from tara.server.serve import start_runner
from tara.tools.caller import TaraClient
from tests.conftest import ADMIN, ADMIN_TOKEN, TEST_KB, free_port
from tests.pdfs import slow_pdf

pytestmark = pytest.mark.timeout(900)
QUESTION = "What is the name of the observatory's main telescope?"
TALLY = {"bad inputs": 0, "faults": 0, "5xx": 0}  # printed at the end of the module (the closing note)


@pytest.fixture(scope="module")
async def server(config, stack, tmp_path_factory):
    """Tara on a loopback port over a knowledge base and data dir of its own: ``(url, app)``."""
    from tara.core.conversation.prompt import PromptBuilder
    from tara.core.stages.rag.llamaindex import LlamaIndexRetriever

    ice_on_loopback_only()
    root = tmp_path_factory.mktemp("hardening")
    kb = root / "kb"
    shutil.copytree(TEST_KB, kb)
    retriever = LlamaIndexRetriever(config.rag, root / "index-data", kb, show_progress=False)
    prompts = PromptBuilder(config.llm, config.rag, retriever.documents, stack.llm.count_tokens)
    own = dataclasses.replace(stack, retriever=retriever, prompts=prompts)
    limits = {"header_timeout_s": 2.0, "body_timeout_s": 2.0, "max_connections": 24}
    app_config = config.model_copy(update={"data_dir": str(root / "data"),
                                           "server": config.server.model_copy(update=limits)})
    runner = await start_runner(create_app(app_config, stack=own, access_token="test-token", admin_token=ADMIN_TOKEN),
                                app_config)
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
        TALLY["bad inputs"] -= 1  # a good offer: a fault, not a bad input
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


MALFORMED_JSON = ["", "{", "null", "[]", "1", '"offer"', "[" * 5000 + "]" * 5000, '{"sdp": 1, "type": "offer"}',
                  '{"type": "offer"}', '{"sdp": "", "type": "offer"}', '{"sdp": "v=0", "type": "answer"}',
                  '{"sdp": "v=0"}', '{"sdp": "v=0\\u0000", "type": "offer"}', '{"sdp": "v=0", "type": "offer"}',
                  '{"sdp": "' + "x" * 300_000 + '", "type": "offer"}', '{"sdp": null, "type": "offer"}']
MALFORMED_TTS = ['{"text": ""}', '{"text": 5}', '{"text": null}', '{}', '{"text": "' + "a" * 100_000 + '"}',
                 '{"text": "hi", "voice": "nobody"}', '{"text": "hi", "voice": 7}', '{"text": "hi", "emotion": "angry"}',
                 '{"text": "hi", "warmth": 5}', '{"text": "hi", "rate": -1}', '{"text": "hi", "energy": "loud"}',
                 '{"text": ["hi"]}', "[1, 2]", "{"]


async def test_malformed_requests_on_every_endpoint_are_clean_4xx(server, baseline):
    url, app = server
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        async def status(method: str, path: str, data: bytes | str | None = None,
                         content_type: str = "application/json") -> int:
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
        missing = [("DELETE", "/api/sessions/nobody"), ("GET", "/api/tasks/nobody"), ("GET", "/api/tasks/nobody/audio"),
                   ("DELETE", "/api/voices/nobody"), ("GET", "/api/voices/nobody/sample"), ("DELETE", "/api/kb/nothing.md"),
                   ("DELETE", "/api/kb/..%2F..%2Fetc%2Fpasswd"), ("DELETE", "/api/kb/.hidden"),
                   ("GET", "/api/logs?limit=1e9"), ("GET", "/api/logs?limit=abc"), ("GET", "/api/logs?after=-1"),
                   ("GET", "/api/nothing"), ("PUT", "/api/kb"), ("PATCH", "/api/sessions")]
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


# ---------------------------------------------------------------------------- 3. uploads never stall calls


async def test_a_pdf_upload_during_a_call_does_not_stall_it(server, baseline):
    """The call keeps answering pings while the PDF is parsed (on the loop, not one pong would come back)."""
    import io

    url, app = server
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("file", io.BytesIO(slow_pdf()), filename="slow.pdf", content_type="application/pdf")
    async with TaraClient(url) as client, aiohttp.ClientSession(headers=ADMIN) as http:
        async def upload() -> int:
            async with http.post(f"{url}/api/kb", data=form) as response:
                return response.status

        uploading = asyncio.ensure_future(upload())
        sent = 0
        while not uploading.done():
            client.send({"type": "ping", "t": sent})
            sent += 1
            await asyncio.sleep(0.05)
        finished = time.perf_counter()
        assert uploading.result() == 201
        answered = {event["t"] for at, event in client.events if event["type"] == "pong" and at < finished}
        assert len(answered) >= 3, f"{len(answered)} of {sent} pings answered while the PDF was parsed"
        async with http.delete(f"{url}/api/kb/slow.pdf") as response:
            assert response.status == 200
    await assert_back_to_baseline(url, app, baseline)


# ---------------------------------------------------------------------------- 6, 7, 11. the data channel


def vanish(client: TaraClient) -> None:
    """The caller's network goes away mid-call: its sockets close without a word (no SCTP or DTLS goodbye)."""
    for transport in {*(t.receiver.transport for t in client._pc.getTransceivers()), client._pc.sctp.transport}:  # noqa: SLF001
        for protocol in transport.transport._connection._protocols:  # noqa: SLF001 - aioice's sockets
            protocol.transport.abort()


async def test_a_caller_that_vanishes_mid_reply_is_ended_and_freed(server, baseline, monkeypatch):
    url, app = server
    monkeypatch.setattr(app[PEERS], "limits", app[PEERS].limits.model_copy(update={"heartbeat_timeout_s": 2.0}))
    client = TaraClient(url)
    await client.connect()
    client.send({"type": "text", "text": "Tell me everything about the ferry timetable, please."})
    await client.wait_for("state", state="speaking", timeout=90)
    [peer] = app[PEERS].peers.values()
    vanish(client)
    TALLY["faults"] += 1
    for _ in range(300):  # the heartbeat (2 s here) ends it; aiortc alone would take ~30 s
        if not app[PEERS].peers:
            break
        await asyncio.sleep(0.05)
    assert not app[PEERS].peers and peer.speaker.readyState == "ended"
    assert not [t for t in peer.session._tasks if not t.done()]  # noqa: SLF001
    await client.close()
    await assert_back_to_baseline(url, app, baseline)


async def test_call_limits_end_idle_and_overlong_calls(server, baseline, monkeypatch):
    url, app = server
    for key, limit in (("idle_minutes", {"idle_minutes": 0.05}),
                       ("max_call_minutes", {"max_call_minutes": 0.05, "idle_minutes": 0})):
        monkeypatch.setattr(app[PEERS], "limits", app[PEERS].limits.model_copy(update=limit))
        async with TaraClient(url) as client:
            error = await client.wait_for("error", stage="call", timeout=30)
            assert key in error["message"]
        await assert_back_to_baseline(url, app, baseline)


async def test_bad_data_channel_messages_and_floods_get_one_error_each_and_the_call_lives_on(server, baseline):
    url, app = server
    async with TaraClient(url) as client:
        bad = ['{"type": "ping", "t": NaN}', '{"type": "ping", "t": Infinity}', '{"type": "ping", "t": -Infinity}',
               '{"type": "ping", "t": "1"}', '{"type": "ping"}', '{"type": "ping", "t": 1e999}',
               '{"type": "text", "text": 5}', '{"type": "text", "text": "' + "a" * 2001 + '"}',
               '{"type": "emotion", "warmth": NaN}', '{"type": "emotion", "rate": -1}', '{"type": "mute", "muted": "yes"}',
               '{"type": "interrupt", "extra": 1}', "null", "true", "1", '""', "{", '{"type": null}', "\x00",
               b"\xff\xfe", b"", '{"type": "voice", "voice": ["joe"]}', '{"type": "text"}', '{"type": "TEXT", "text": "hi"}']
        for message in bad:
            client._channel.send(message)  # noqa: SLF001 - as it is, text or binary
            TALLY["bad inputs"] += 1
            await asyncio.sleep(0.06)  # under the rate limit
        await asyncio.sleep(0.5)
        assert len([e for e in client.events_of("error") if e["stage"] == "message"]) == len(bad)
        assert all(isinstance(e["t"], float) for e in client.events_of("pong"))  # only finite numbers come back

        for i in range(200):  # a flood: the excess is dropped with one error event
            client.send({"type": "ping", "t": -1.0 - i})
        TALLY["bad inputs"] += 1
        await asyncio.sleep(1.0)
        floods = [e for e in client.events_of("error") if "too many messages" in e["message"]]
        assert len(floods) == 1
        assert len({e["t"] for e in client.events_of("pong") if e["t"] < 0}) < 100

        client.send({"type": "text", "text": QUESTION})  # and the call goes on
        assert "maple" in (await client.wait_for("agent_done", timeout=90))["text"].lower()
    await assert_back_to_baseline(url, app, baseline)


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
    writer.write(f"POST /offer HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                 "Content-Length: 1000\r\nConnection: close\r\n\r\n{\"sdp\": ".encode())
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


# ---------------------------------------------------------------------------- faults inside a live call


def fail_once(monkeypatch, target: object, name: str, after_items: int = 0) -> None:
    """``target.name`` (an async iterator function) raises on its next call, after ``after_items`` items."""
    real = getattr(target, name)
    state = {"armed": True}

    async def failing(*args, **kwargs):
        if not state["armed"]:
            async for item in real(*args, **kwargs):
                yield item
            return
        state["armed"] = False
        count = 0
        async for item in real(*args, **kwargs):
            if count == after_items:
                raise RuntimeError(f"injected {name} failure")
            count += 1
            yield item
        raise RuntimeError(f"injected {name} failure")

    monkeypatch.setattr(target, name, failing)


async def test_llm_stt_and_tts_failing_mid_turn_give_an_error_event_and_the_next_turn_is_answered(
        server, baseline, monkeypatch, voice):
    url, app = server
    stack = app[STACK]
    async with TaraClient(url) as client:
        for stage, target, name in (("llm", stack.llm, "stream"), ("tts", stack.tts, "stream")):
            fail_once(monkeypatch, target, name, after_items=1)
            TALLY["faults"] += 1
            asked = time.perf_counter()
            client.send({"type": "text", "text": QUESTION})
            error = await client.wait_for("error", after=asked, stage="turn", timeout=90)
            assert "injected" in error["message"], stage
            await client.wait_for("agent_done", after=asked, timeout=90)
            monkeypatch.undo()
            asked = time.perf_counter()
            client.send({"type": "text", "text": QUESTION})
            done = await client.wait_for("agent_done", after=asked, timeout=90)
            assert "maple" in done["text"].lower(), stage

        async def broken(*args, **kwargs):
            raise RuntimeError("injected stt failure")

        monkeypatch.setattr(stack.stt, "transcribe", broken)
        TALLY["faults"] += 1
        asked = time.perf_counter()
        clip = client.say(voice(QUESTION))
        error = await client.wait_for("error", after=asked, stage="stt", timeout=90)
        assert "injected" in error["message"]
        # a pause may have split that question in two: let its last part end (and fail) too, or it would
        # be heard after the repair ("main telescope?") and merged into the next question
        await clip.done.wait()
        await asyncio.sleep(2.0)
        monkeypatch.undo()
        asked = time.perf_counter()
        client.say(voice(QUESTION))
        heard = await client.wait_for("user_transcript", after=asked, final=True, timeout=90)
        done = await client.wait_for("agent_done", after=asked, turn_id=heard["turn_id"], timeout=90)
        assert not done["interrupted"] and "maple" in done["text"].lower(), heard["text"]
    await assert_back_to_baseline(url, app, baseline)


SOAK_QUESTIONS = (QUESTION, "How long does the ferry crossing take?", "How much is an adult ticket?",
                  "What does the rooftop cafe sell?")  # short answers: a turn lasts as long as its audio


async def test_a_short_soak_leaves_no_sessions_tasks_threads_or_files_behind(server, baseline):
    """24 typed turns over two callers at once, in three rounds of new calls: every turn is answered and
    no session, task, thread or open file outlives its round."""
    import os
    import threading

    url, app = server

    async def caller(first: int, turns: int) -> list[str]:
        async with TaraClient(url) as client:
            answers = []
            for n in range(turns):
                asked = time.perf_counter()
                client.send({"type": "text", "text": SOAK_QUESTIONS[(first + n) % len(SOAK_QUESTIONS)]})
                answers.append((await client.wait_for("agent_done", after=asked, timeout=180))["text"])
            return answers

    counts = []
    for round_ in range(3):
        answers = await asyncio.gather(caller(round_, 4), caller(round_ + 2, 4))
        assert all(all(turns) for turns in answers), answers  # none silent
        await assert_back_to_baseline(url, app, baseline)
        counts.append((threading.active_count(), len(os.listdir("/proc/self/fd"))))
    TALLY["soak turns"] = 24
    # (a pool may start one more worker late: growth is more than that)
    assert counts[-1][0] <= counts[0][0] + 1 and counts[-1][1] <= counts[0][1] + 2, counts
