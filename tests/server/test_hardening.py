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
