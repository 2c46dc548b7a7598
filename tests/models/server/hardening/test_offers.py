"""Hardening: Offers never leak a slot: every failure frees what it held."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from tara.server import rtc
from tara.server.app import PEERS
from tara.tools.caller import TaraClient
from tests.conftest import ADMIN
from tests.models.server.hardening.helpers import (
    QUESTION,
    TALLY,
    assert_back_to_baseline,
    offer_sdp,
    post_offer,
    sections,
)

pytestmark = pytest.mark.timeout(900)


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
