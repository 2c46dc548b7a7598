"""WebRTC peers: the browser's mic feeds a ``Session``; the agent's voice goes back on a paced track.

One ``Peer`` per browser tab owns its ``RTCPeerConnection``, its ``Session`` and the two tasks that
move data (inbound audio → session, session events → data channel). Closing the peer — on hang-up,
ICE failure, a connection that never comes up, or an admin — cancels all of it in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription

from tara.core.config import ServerConfig
from tara.core.conversation.events import ErrorEvent, Event, TurnMetrics, UserSpeechStarted
from tara.core.conversation.session import Session
from tara.core.emotion import CHOICES, EmotionSettings
from tara.core.stack import AgentStack
from tara.core.stages.mic.echo import EchoReference
from tara.server.ice import candidate_lines, keep_candidates_on
from tara.server.protocol import (
    Hello,
    Interrupt,
    Mute,
    Ping,
    Pong,
    RateLimit,
    SetEmotion,
    SetVoice,
    Text,
    parse_message,
)
from tara.server.tracks import SpeakerTrack, listen_without_prefetch, received_pcm

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0
CLOSE_STEP_TIMEOUT_S = 5.0  # each teardown step (tasks, session, connection) gets this long, then is given up
RECENT_TURNS = 20  # per-turn latencies a peer keeps for the admin page
WATCH_INTERVAL_S = 0.5  # how often a call's heartbeat, idle and length limits are checked


def rtc_configuration(ice_servers: list[dict]) -> RTCConfiguration:
    return RTCConfiguration(iceServers=[RTCIceServer(**server) for server in ice_servers])


class OfferError(ValueError):
    """The offer cannot start a session (bad SDP, no audio Tara can speak on)."""


def check_offer_audio(sdp: str) -> None:
    """Every section must carry ICE credentials and a DTLS fingerprint, and an audio section must let
    Tara speak (``sendrecv``, or ``recvonly`` for a caller who only listens and types); OfferError says
    what is missing."""
    try:
        media = SessionDescription.parse(sdp).media
    except Exception as exc:  # aiortc's parser raises ValueError, KeyError, IndexError, … on bad SDP
        raise OfferError(f"not a usable SDP offer: {str(exc) or type(exc).__name__}") from exc
    for section in media:  # aiortc takes these and only fails later, when connecting
        if not (section.ice and section.ice.usernameFragment and section.ice.password):
            raise OfferError(f"the offer's {section.kind} section has no ICE credentials (a=ice-ufrag, a=ice-pwd)")
        if not (section.dtls and section.dtls.fingerprints):
            raise OfferError(f"the offer's {section.kind} section has no DTLS fingerprint (a=fingerprint)")
    audio = [m for m in media if m.kind == "audio"]
    if not audio:
        raise OfferError("the offer has no audio track: the page must send its microphone (or receive audio)")
    if not any(m.direction in ("sendrecv", "recvonly", None) for m in audio):
        raise OfferError(f"the offer's audio is {audio[0].direction}: the page must at least receive Tara's voice")


Observer = Callable[["Peer", Event], None]


class Peer:
    """One browser tab: its peer connection, its conversation, and every task they run.

    Every event the session sends to the page also passes the ``observers`` (metrics), and the peer
    keeps the latencies of its recent turns for the admin page.
    """

    def __init__(
        self,
        stack: AgentStack,
        ice_servers: list[dict],
        on_closed: Callable[[Peer], object],  # a coroutine it returns is awaited
        remote: str | None = None,
        observers: Sequence[Observer] = (),
        limits: ServerConfig | None = None,
        networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None,
    ):
        self.id = uuid.uuid4().hex[:12]
        self.created = time.time()
        self._limits = limits or ServerConfig()
        self._networks = networks  # remote candidates outside these are ignored (None: all are tried)
        self._opened = self._last_activity = time.monotonic()
        self._last_heard: float | None = None  # the page's last message, once the channel is open
        self._rate = RateLimit(self._limits.messages_per_second)
        self._throttled = False
        self.remote = remote
        self.turns = 0
        self.recent_turns: deque[TurnMetrics] = deque(maxlen=RECENT_TURNS)
        self._observers = observers
        self.stack = stack
        self.speaker = SpeakerTrack()
        self.echo_reference = EchoReference()  # what the speaker sent, for the mic's echo canceller
        self.speaker.observers.append(self.echo_reference.record)
        self.mic = stack.new_mic_chain(self.echo_reference)  # the inbound mic's cleanup, with this call's state
        self.session = Session(stack, self.speaker, echo_ledger=self.mic.echo_ledger)
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self._channel = None
        self._tasks: set[asyncio.Task] = set()
        self._on_closed = on_closed
        self._closing: asyncio.Task | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self._spawn(self._close_unless_connected())  # from registration: an offer that never completes frees its slot
        self._spawn(self._watch())

    async def answer(self, sdp: str) -> RTCSessionDescription:
        """Accept the browser's offer and return our answer (ICE candidates included, no trickle).

        Anything aiortc cannot negotiate is an ``OfferError``; the caller closes the peer on any failure.
        """
        check_offer_audio(sdp)
        if self._networks is not None:
            offered, sdp = candidate_lines(sdp), keep_candidates_on(sdp, self._networks)
            if offered and not candidate_lines(sdp):  # aiortc would answer without candidates: a dead call
                raise OfferError(
                    "none of the offer's ICE candidates is on a network Tara serves on "
                    f"({', '.join(map(str, self._networks))}; server.ice_addresses); a browser that "
                    "hides its address behind a .local name shows it once microphone access is allowed"
                )
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self.pc.addTrack(self.speaker)  # answers on the offer's audio transceiver
            listen_without_prefetch(self.pc)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError, KeyError, OperationError, … for SDP it cannot use
            raise OfferError(f"not a usable SDP offer: {str(exc) or type(exc).__name__}") from exc
        self._spawn(self._forward_events())
        return self.pc.localDescription

    def close(self) -> asyncio.Task:
        """Hang up: cancel every task, close the session and the connection (idempotent)."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        return self._closing

    async def _close(self) -> None:
        """Every step is bounded and its failure logged, never raised: the peer is always unregistered."""
        try:
            current = asyncio.current_task()
            tasks = [task for task in self._tasks if task is not current and not task.done()]
            for task in tasks:
                task.cancel()
            await self._teardown("tasks", asyncio.gather(*tasks, return_exceptions=True))
            await self._teardown("session", self.session.close())
            self.speaker.stop()
            await self._teardown("connection", self.pc.close())
        finally:
            result = self._on_closed(self)
            if asyncio.iscoroutine(result):
                await result
            log.info("session %s closed", self.id)

    async def _teardown(self, what: str, step: Awaitable) -> None:
        try:
            async with asyncio.timeout(CLOSE_STEP_TIMEOUT_S):
                await step
        except Exception:  # TimeoutError included: a hung close must not hold the slot
            log.warning("session %s: closing its %s failed", self.id, what, exc_info=True)

    # ------------------------------------------------------------------ peer events

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._listen(track))

    def _on_datachannel(self, channel) -> None:
        if channel.label != "events":
            return
        self._channel = channel
        channel.on("message", self._on_message)
        if channel.readyState == "open":
            self._greet()
        else:
            channel.on("open", self._greet)

    async def _on_connection_state(self) -> None:
        log.info("session %s: connection %s", self.id, self.pc.connectionState)
        if self.pc.connectionState in ("failed", "closed"):
            self.close()

    # ------------------------------------------------------------------ tasks

    async def _listen(self, track: MediaStreamTrack) -> None:
        async for pcm in received_pcm(track, self.mic):
            if len(pcm):
                self.session.push_audio(pcm)
        self.close()  # the browser hung up

    async def _forward_events(self) -> None:
        while True:
            self._send(await self.session.events.get())

    def _observe(self, event: Event) -> None:
        if isinstance(event, UserSpeechStarted):
            self._last_activity = time.monotonic()
        if isinstance(event, TurnMetrics):
            self.turns += 1
            self.recent_turns.append(event)
        for observer in self._observers:
            try:
                observer(self, event)
            except Exception:  # an observer must never break the call
                log.exception("event observer failed")

    async def _close_unless_connected(self) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        if self.pc.connectionState != "connected":
            log.warning("session %s never connected; closing it", self.id)
            self.close()

    async def _watch(self) -> None:
        """End a call whose page went silent (it pings every 2 s: a vanished caller), that nobody spoke or
        typed in for ``idle_minutes``, or that is over ``max_call_minutes``; closing frees everything."""
        limits = self._limits
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            now = time.monotonic()
            if (
                limits.heartbeat_timeout_s
                and self._last_heard is not None
                and now - self._last_heard > limits.heartbeat_timeout_s
            ):
                reason = (
                    f"nothing heard from the page for {limits.heartbeat_timeout_s:g} s (server.heartbeat_timeout_s)"
                )
            elif limits.idle_minutes and now - self._last_activity > limits.idle_minutes * 60:
                reason = f"nobody spoke for {limits.idle_minutes:g} minutes (server.idle_minutes)"
            elif limits.max_call_minutes and now - self._opened > limits.max_call_minutes * 60:
                reason = f"the call is over {limits.max_call_minutes:g} minutes (server.max_call_minutes)"
            else:
                continue
            log.info("session %s: %s; closing it", self.id, reason)
            self._send(ErrorEvent(f"call ended: {reason}", stage="call"))
            self.close()
            return

    # ------------------------------------------------------------------ data channel

    def _greet(self) -> None:
        self._last_heard = time.monotonic()
        presets = {name: preset.model_dump() for name, preset in CHOICES.items()}
        self._send(Hello(self.id, self.stack.tts.voices, presets))
        self.session.announce_settings()

    def _on_message(self, raw: str | bytes) -> None:
        self._last_heard = time.monotonic()
        if self._throttled and self._rate.rested:  # a flood arrives in bursts: one error for all of it
            self._throttled = False
        if not self._rate.allow():  # dropped; the page hears of it once per burst
            if not self._throttled:
                self._throttled = True
                self._send(
                    ErrorEvent(
                        f"too many messages: at most {self._limits.messages_per_second:g} a second "
                        "(server.messages_per_second); the rest are dropped",
                        stage="message",
                    )
                )
            return
        try:
            message = parse_message(raw)
            self._apply(message)
        except ValueError as exc:  # BadMessage, UnknownVoiceError, an unknown preset, a slider out of range
            self._send(ErrorEvent(str(exc), stage="message"))

    def _apply(self, message) -> None:
        session = self.session
        match message:
            case Interrupt():
                session.interrupt()
            case Mute(muted=muted):
                session.set_muted(muted)
            case SetEmotion(preset=preset):
                base = EmotionSettings.from_preset(preset) if preset else session.emotion
                sliders = message.sliders()
                session.set_emotion(base.with_sliders(**sliders) if sliders else base)
            case SetVoice(voice=voice):
                session.set_voice(voice)
            case Text(text=text):
                self._last_activity = time.monotonic()
                session.say_text(text)
            case Ping(t=t):
                self._send(Pong(t))

    def _send(self, event: Event) -> None:
        self._observe(event)
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(event.to_dict()))

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class PeerRegistry:
    """Every live peer of the process, with the ``max_sessions`` limit; ``observers`` see every peer's events."""

    def __init__(self, max_sessions: int, limits: ServerConfig | None = None) -> None:
        self.max_sessions = max_sessions
        self.limits = limits or ServerConfig()  # each new peer's heartbeat, idle, length and message limits
        self.networks: list | None = None  # set by ``tara serve``: the networks ICE may check (None: any)
        self.peers: dict[str, Peer] = {}
        self.observers: list[Observer] = []

    @property
    def full(self) -> bool:
        return len(self.peers) >= self.max_sessions

    def open(self, stack: AgentStack, ice_servers: list[dict], remote: str | None = None) -> Peer:
        peer = Peer(
            stack,
            ice_servers,
            on_closed=lambda p: self.peers.pop(p.id, None),
            remote=remote,
            observers=self.observers,
            limits=self.limits,
            networks=self.networks,
        )
        self.peers[peer.id] = peer
        return peer

    async def close_all(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.gather(*(peer.close() for peer in list(self.peers.values())))
