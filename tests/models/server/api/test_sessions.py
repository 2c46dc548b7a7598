"""Live sessions for the admin: listed with their state and turn latencies, ended on request."""

import asyncio

import aiohttp

from tara.tools.caller import TaraClient
from tests.conftest import ADMIN

QUESTION = "How long does the ferry crossing take?"


async def test_a_live_session_is_listed_with_its_turns_and_can_be_ended(live_server):
    url, peers = await live_server()
    async with aiohttp.ClientSession(headers=ADMIN) as http, TaraClient(url) as caller:
        caller.send({"type": "text", "text": QUESTION})
        await caller.wait_for("metrics", timeout=90)
        async with http.get(f"{url}/api/sessions") as response:
            body = await response.json()
        [session] = body["sessions"]
        assert session["id"] == caller.session_id and session["remote"] == "127.0.0.1"
        assert session["state"] == "listening" and session["connection"] == "connected"
        assert session["turns"] == 1 and session["voice"] == "joe" and session["emotion"]["preset"] == "neutral"
        assert session["latencies"][0]["turn_id"] == 1 and session["latencies"][0]["stages"]["first_audio"] > 0

        async with http.get(f"{url}/metrics") as response:
            metrics = await response.text()
        assert "tara_turns_total 1.0" in metrics and "tara_active_sessions 1.0" in metrics
        assert 'tara_stage_latency_seconds_count{stage="first_audio"} 1.0' in metrics

        async with http.delete(f"{url}/api/sessions/nope") as response:
            assert response.status == 404
        async with http.delete(f"{url}/api/sessions/{caller.session_id}") as response:
            assert response.status == 200 and (await response.json()) == {"ended": caller.session_id}
        assert not peers.peers
        async with http.get(f"{url}/api/sessions") as response:
            assert (await response.json())["sessions"] == []
        for _ in range(50):  # the caller sees its call end
            if caller._pc.connectionState in ("closed", "failed", "disconnected"):
                break
            await asyncio.sleep(0.1)
        assert caller._pc.connectionState in ("closed", "failed", "disconnected")
        async with http.get(f"{url}/metrics") as response:
            assert "tara_active_sessions 0.0" in await response.text()
