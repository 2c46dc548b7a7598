"""What the hardening tests share: the idle-baseline check, real offers, raw requests, the tally."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from concurrent.futures import thread as pool_threads

import aiohttp
from aiohttp import web
from aiortc import RTCPeerConnection

from tara.server.app import PEERS
from tests.conftest import ADMIN

QUESTION = "What is the name of the observatory's main telescope?"
TALLY = {"bad inputs": 0, "faults": 0, "5xx": 0}  # printed at the end of the module (the closing note)


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


def busy_threads() -> list[str]:
    """The threads doing or waiting on something other than a pool's next job.

    Pools (asyncio's default, the stream workers) start threads lazily, up to their bound, and keep them
    parked: how many they hold depends on how many jobs once overlapped, not on a leak. A thread left
    behind (a stream never closed, a worker stuck in a model) is busy, and that is what a leak looks like.
    """
    frames = sys._current_frames()  # (CPython's: a parked worker's top frame is the pool's own loop)
    return sorted(
        thread.name
        for thread in threading.enumerate()
        if (frame := frames.get(thread.ident or 0)) is None or frame.f_code is not pool_threads._worker.__code__
    )


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
