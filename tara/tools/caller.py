"""A scripted WebRTC caller: plays recorded speech into Tara and times what comes back.

Used by the WebRTC tests and the latency benchmark. It is a real aiortc peer going through
``POST /offer``, Opus, ICE and the data channel exactly like a browser; it knows to the sample when
its own speech ended, so "end of speech → first agent audio" is measured where a user hears it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from tara.core.audio import PIPELINE_RATE, resample, rms_dbfs
from tara.server.auth import is_loopback
from tara.server.ice import candidate_addresses, ice_on_loopback_only
from tara.server.tracks import FRAME_SAMPLES, RTC_RATE, PacedAudioTrack, listen_without_prefetch, received_pcm

if TYPE_CHECKING:
    from tara.tools.echo_replay import EchoReplay

# Like a browser's adaptive playout buffer on a quiet LAN (tens of ms), not aiortc's fixed 80 ms.
PLAYOUT_PREFETCH = 2
SILENCE_DBFS = -50.0  # quieter received frames count as silence (Opus leaves a little noise)
HEARTBEAT_S = 2.0  # pings like the page's: Tara ends a call it hears nothing from (server.heartbeat_timeout_s)


@dataclass
class Clip:
    """Speech queued on the mic; the times are perf_counter seconds when those samples were sent."""

    samples: np.ndarray  # 48 kHz mono int16
    started: float | None = None
    speech_started: float | None = None  # the first audible sample (leading silence excluded)
    speech_ended: float | None = None  # the last audible sample (trailing silence excluded)
    ended: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        window = RTC_RATE // 100
        levels = [rms_dbfs(self.samples[i : i + window]) for i in range(0, len(self.samples), window)]
        loud = [i for i, level in enumerate(levels) if level > SILENCE_DBFS]
        self.speech_start_sample = loud[0] * window if loud else 0
        self.speech_end_sample = min(len(self.samples), (loud[-1] + 1) * window) if loud else 0


class MicTrack(PacedAudioTrack):
    """The caller's microphone: queued clips at live pace, silence in between; with ``echo``, Tara's
    voice heard back too."""

    def __init__(self, echo: EchoReplay | None = None) -> None:
        super().__init__()
        self._clips: deque[Clip] = deque()
        self._offset = 0
        self.echo = echo

    def play(self, pcm16k: np.ndarray) -> Clip:
        clip = Clip(resample(pcm16k.astype(np.int16), PIPELINE_RATE, RTC_RATE))
        self._clips.append(clip)
        return clip

    def _next_samples(self) -> np.ndarray:
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while self._clips and filled < FRAME_SAMPLES:
            clip = self._clips[0]
            if clip.started is None:
                clip.started = time.perf_counter()
            take = min(FRAME_SAMPLES - filled, len(clip.samples) - self._offset)
            out[filled : filled + take] = clip.samples[self._offset : self._offset + take]
            now = time.perf_counter()  # the frame's send time; add where in the frame speech started/stopped
            if clip.speech_started is None and self._offset + take > clip.speech_start_sample:
                clip.speech_started = now + (clip.speech_start_sample - self._offset + filled) / RTC_RATE
            if clip.speech_ended is None and self._offset + take >= clip.speech_end_sample:
                clip.speech_ended = now + (clip.speech_end_sample - self._offset + filled) / RTC_RATE
            filled += take
            self._offset += take
            if self._offset == len(clip.samples):
                clip.ended = time.perf_counter()
                clip.done.set()
                self._clips.popleft()
                self._offset = 0
        return out if self.echo is None else self.echo.mixed_into(out)


@dataclass
class Received:
    """Agent audio as it arrived: 16 kHz PCM plus (arrival time, dBFS) per frame."""

    pcm: list[np.ndarray] = field(default_factory=list)
    frames: list[tuple[float, float]] = field(default_factory=list)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.pcm) if self.pcm else np.zeros(0, dtype=np.int16)

    def first_sound_after(self, moment: float) -> float | None:
        return next((at for at, level in self.frames if at > moment and level > SILENCE_DBFS), None)

    def longest_pause(self, start: float, end: float) -> float:
        """The longest silence between two audible frames from ``start`` to ``end`` (seconds): where a
        reply stalled mid-way, or a cut between its pieces is heard."""
        audible = [at for at, level in self.frames if start <= at <= end and level > SILENCE_DBFS]
        return float(np.diff(audible).max()) if len(audible) > 1 else 0.0

    def silent_from(self, moment: float, hold: float = 0.1) -> float | None:
        """When the agent's audio went quiet after ``moment`` (and stayed so for ``hold`` seconds)."""
        quiet_since = None
        for at, level in self.frames:
            if at <= moment:
                continue
            if level > SILENCE_DBFS:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = at
            elif at - quiet_since >= hold:
                return quiet_since
        return None


class TaraClient:
    """``async with TaraClient(url) as client:`` — a connected caller with its events and received audio."""

    def __init__(
        self, base_url: str, token: str | None = None, microphone: bool = True, echo: EchoReplay | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.microphone = microphone  # False: a caller who only listens (and types)
        self.mic = MicTrack(echo)  # echo: what it hears comes back into its mic
        self.received = Received()
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.session_id = ""
        self.server_candidates: list[str] = []  # the addresses Tara's answer offered ICE candidates on
        self._new_event = asyncio.Condition()
        self._pc = RTCPeerConnection()
        self._channel: RTCDataChannel | None = None  # connect() opens it
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> TaraClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, timeout: float = 20.0) -> None:
        if is_loopback(urlsplit(self.base_url).hostname or ""):
            ice_on_loopback_only()
        pc = self._pc
        if self.microphone:
            pc.addTrack(self.mic)
        else:
            pc.addTransceiver("audio", direction="recvonly")
        self._channel = pc.createDataChannel("events")
        opened = asyncio.Event()
        self._channel.on("open", opened.set)
        self._channel.on("message", self._on_message)
        pc.on("track", lambda track: self._tasks.append(asyncio.ensure_future(self._record(track))))
        await pc.setLocalDescription(await pc.createOffer())
        answer = await self.post_offer({"sdp": pc.localDescription.sdp, "type": "offer"})
        self.session_id = answer["session_id"]
        self.server_candidates = candidate_addresses(answer["sdp"])
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        listen_without_prefetch(pc, prefetch=PLAYOUT_PREFETCH)
        async with asyncio.timeout(timeout):
            await opened.wait()
            self._tasks.append(asyncio.ensure_future(self._heartbeat()))
            await self.wait_for("hello")

    async def post_offer(self, body: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE  # Tara's self-signed certificate
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{self.base_url}/offer",
                json=body,
                headers=headers,
                ssl=insecure if self.base_url.startswith("https") else True,  # (True: the default, as None was)
            ) as response:
                payload = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"offer refused ({response.status}): {payload.get('error')}")
                return payload

    def send(self, message: dict[str, Any] | str) -> None:
        assert self._channel is not None, "connect() first"
        self._channel.send(message if isinstance(message, str) else json.dumps(message))

    def say(self, pcm16k: np.ndarray) -> Clip:
        """Speak ``pcm16k`` into the call at live pace."""
        return self.mic.play(pcm16k)

    async def wait_for(
        self, kind: str, after: float = 0.0, timeout: float | None = 60.0, **fields: Any
    ) -> dict[str, Any]:
        """The first event of ``kind`` (with ``fields``) that arrived after ``after`` (perf_counter)."""
        async with asyncio.timeout(timeout):
            async with self._new_event:
                while True:
                    for at, event in self.events:
                        if at > after and event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                            return event
                    await self._new_event.wait()

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event["type"] == kind]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.mic.stop()
        await self._pc.close()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            assert self._channel is not None  # (started once connected)
            if self._channel.readyState == "open":
                self.send({"type": "ping", "t": time.perf_counter()})

    def _on_message(self, raw: str) -> None:
        self.events.append((time.perf_counter(), json.loads(raw)))
        asyncio.ensure_future(self._notify())

    async def _notify(self) -> None:
        async with self._new_event:
            self._new_event.notify_all()

    async def _record(self, track: MediaStreamTrack) -> None:
        async for pcm in received_pcm(track):
            self.received.pcm.append(pcm)
            if self.mic.echo is not None:
                self.mic.echo.heard(pcm)
            self.received.frames.append((time.perf_counter(), rms_dbfs(pcm)))
