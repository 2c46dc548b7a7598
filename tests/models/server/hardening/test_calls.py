"""Hardening: Uploads never stall calls; vanished callers, call limits and data channel floods."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tara.server.app import PEERS
from tara.tools.caller import TaraClient
from tests.conftest import ADMIN
from tests.models.server.hardening.helpers import (
    QUESTION,
    TALLY,
    assert_back_to_baseline,
)
from tests.pdfs import slow_pdf

pytestmark = pytest.mark.timeout(900)


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
    assert client._pc.sctp is not None  # noqa: SLF001 - the data channel's
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
    for key, limit in (
        ("idle_minutes", {"idle_minutes": 0.05}),
        ("max_call_minutes", {"max_call_minutes": 0.05, "idle_minutes": 0}),
    ):
        monkeypatch.setattr(app[PEERS], "limits", app[PEERS].limits.model_copy(update=limit))
        async with TaraClient(url) as client:
            error = await client.wait_for("error", stage="call", timeout=30)
            assert key in error["message"]
        await assert_back_to_baseline(url, app, baseline)


async def test_bad_data_channel_messages_and_floods_get_one_error_each_and_the_call_lives_on(server, baseline):
    url, app = server
    async with TaraClient(url) as client:
        bad = [
            '{"type": "ping", "t": NaN}',
            '{"type": "ping", "t": Infinity}',
            '{"type": "ping", "t": -Infinity}',
            '{"type": "ping", "t": "1"}',
            '{"type": "ping"}',
            '{"type": "ping", "t": 1e999}',
            '{"type": "text", "text": 5}',
            '{"type": "text", "text": "' + "a" * 2001 + '"}',
            '{"type": "emotion", "warmth": NaN}',
            '{"type": "emotion", "rate": -1}',
            '{"type": "mute", "muted": "yes"}',
            '{"type": "interrupt", "extra": 1}',
            "null",
            "true",
            "1",
            '""',
            "{",
            '{"type": null}',
            "\x00",
            b"\xff\xfe",
            b"",
            '{"type": "voice", "voice": ["joe"]}',
            '{"type": "text"}',
            '{"type": "TEXT", "text": "hi"}',
        ]
        assert client._channel is not None  # noqa: SLF001 - (connected)
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
