"""Real aiortc calls through ``POST /offer``: a spoken question answered by voice, bad input, teardown."""

import asyncio
import json

import aiohttp
import numpy as np

from tara.core.audio import AudioChunk, rms_dbfs
from tara.server.tracks import (
    FADE_SAMPLES,
    FRAME_SAMPLES,
    JITTER_BUFFER_ATTRIBUTE,
    RTC_RATE,
    InOrderAudioBuffer,
    SpeakerTrack,
)
from tara.tools.caller import SILENCE_DBFS, TaraClient

QUESTION = "What is the name of the observatory's main telescope?"


async def test_a_spoken_question_is_answered_over_webrtc(live_server, stack, voice):
    url, peers = await live_server()
    async with TaraClient(url) as client:
        assert len(peers.peers) == 1
        peer = next(iter(peers.peers.values()))
        buffers = [getattr(r, JITTER_BUFFER_ATTRIBUTE) for r in peer.pc.getReceivers() if r.track.kind == "audio"]
        assert buffers and all(isinstance(b, InOrderAudioBuffer) for b in buffers)  # the mic reaches the VAD at once
        clip = client.say(voice(QUESTION))
        metrics = (await client.wait_for("metrics", timeout=90))["stages"]  # a turn's last event
        done = client.events_of("agent_done")[-1]
        assert "maple" in done["text"].lower() and not done["interrupted"]
        finals = [e["text"] for e in client.events_of("user_transcript") if e["final"]]
        assert "observatory" in finals[-1].lower()
        states = [e["state"] for e in client.events_of("state")]
        assert states[:3] == ["thinking", "speaking", "listening"]
        assert {"transcript", "first_token", "first_audio", "voice_to_first_audio"} <= metrics.keys()

        await asyncio.sleep(0.5)  # the tail of the reply is still on the wire
        assert clip.speech_ended is not None  # (the question was heard and answered)
        first_sound = client.received.first_sound_after(clip.speech_ended)
        assert first_sound is not None  # the agent's voice reached the caller
        reply = client.received.audio()
        assert rms_dbfs(reply) > SILENCE_DBFS
        heard = await stack.stt.transcribe(reply[-int(16000 * 20) :])
        assert "maple" in heard.text.lower()
    await asyncio.sleep(0.5)
    assert not peers.peers  # hanging up ended the session


async def test_bad_offers_get_a_4xx_and_the_server_keeps_serving(live_server):
    url, peers = await live_server()
    async with aiohttp.ClientSession() as http:
        cases = [
            (b"not json", 400),
            (b'{"type": "offer"}', 400),
            (b'["sdp", "offer"]', 400),
            (json.dumps({"sdp": "v=0", "type": "answer"}).encode(), 400),
            (json.dumps({"sdp": "this is not SDP", "type": "offer"}).encode(), 400),
            (json.dumps({"sdp": "x" * 300_000, "type": "offer"}).encode(), 413),
        ]
        for body, status in cases:
            async with http.post(f"{url}/offer", data=body, headers={"Content-Type": "application/json"}) as response:
                assert response.status == status, body[:40]
                assert "error" in await response.json()

        # a valid offer without a microphone track
        from aiortc import RTCPeerConnection

        pc = RTCPeerConnection()
        pc.createDataChannel("events")
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(f"{url}/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as response:
            assert response.status == 400 and "audio" in (await response.json())["error"]
        await pc.close()
        async with http.get(f"{url}/api/health") as response:
            assert (await response.json())["ok"]
    assert not peers.peers
    async with TaraClient(url) as client:  # and a real call still works
        assert client.session_id


async def test_garbage_on_the_data_channel_gets_error_events_and_the_session_lives_on(live_server):
    url, _ = await live_server()
    async with TaraClient(url) as client:
        for bad in [
            "garbage",
            "[1, 2]",
            '{"no": "type"}',
            '{"type": "launch"}',
            '{"type": "mute"}',
            '{"type": "voice", "voice": "nobody"}',
            '{"type": "emotion", "preset": "furious"}',
            '{"type": "emotion", "warmth": 7}',
            '{"type": "text", "text": ""}',
            "x" * 20000,
        ]:
            client.send(bad)
        await asyncio.sleep(1.0)
        errors = client.events_of("error")
        assert len(errors) == 10 and all(e["stage"] == "message" for e in errors)
        assert any("nobody" in e["message"] for e in errors)

        client.send({"type": "ping", "t": 12.5})
        assert (await client.wait_for("pong", t=12.5))["t"] == 12.5
        client.send({"type": "emotion", "preset": "calm"})
        settings = await client.wait_for(
            "settings", emotion={"preset": "calm", "warmth": 0.6, "energy": 0.2, "rate": 0.25}
        )
        assert settings["voice"] == "joe"
        client.send({"type": "mute", "muted": True})
        assert (await client.wait_for("settings", muted=True))["emotion"]["preset"] == "calm"
        client.send({"type": "text", "text": "What is the name of the observatory's main telescope?"})
        done = await client.wait_for("agent_done", timeout=90)
        assert "maple" in done["text"].lower()


async def test_max_sessions_is_a_clear_503(live_server):
    url, peers = await live_server(max_sessions=1)
    async with TaraClient(url):
        second = TaraClient(url)
        try:
            await second.connect()
            raise AssertionError("a second session was accepted")
        except RuntimeError as exc:
            assert "503" in str(exc) and "max_sessions" in str(exc)
        finally:
            await second.close()
    await asyncio.sleep(0.5)
    async with TaraClient(url):  # the slot is free again
        assert len(peers.peers) == 1


async def test_closing_a_peer_cancels_its_session_tasks(live_server):
    url, peers = await live_server()
    async with TaraClient(url) as client:
        client.send({"type": "text", "text": "Tell me everything about the ferry."})
        await client.wait_for("state", state="thinking")
        peer = next(iter(peers.peers.values()))
        await peer.close()
        assert not peers.peers
        assert not [t for t in peer.session._tasks if not t.done()]
        assert peer.speaker.readyState == "ended"


async def test_the_speaker_track_is_paced_and_fades_out_at_once_on_clear():
    track = SpeakerTrack()
    track.write(AudioChunk(np.full(22050, 8000, dtype=np.int16), 22050))  # one second of sound
    loop = asyncio.get_running_loop()
    started = loop.time()
    frames = [await track.recv() for _ in range(10)]
    assert loop.time() - started >= 0.17  # 10 frames of 20 ms, paced to the wall clock
    assert all(f.samples == FRAME_SAMPLES and f.sample_rate == RTC_RATE for f in frames)
    assert [f.pts for f in frames] == [i * FRAME_SAMPLES for i in range(10)]
    assert np.abs(frames[-1].to_ndarray()).max() > 1000

    track.pause()  # the next frame fades out in 5 ms (tests/unit/server/test_tracks.py), then silence
    assert np.abs((await track.recv()).to_ndarray()[0, FADE_SAMPLES:]).max() == 0
    track.resume()
    assert np.abs((await track.recv()).to_ndarray()).max() > 1000
    track.clear()  # barge-in: the very next frame fades out and is silent after
    assert np.abs((await track.recv()).to_ndarray()[0, FADE_SAMPLES:]).max() == 0
    await asyncio.wait_for(track.drain(), 0.1)
    track.stop()


async def test_the_speaker_track_tells_the_voice_when_to_synthesise_more():
    track = SpeakerTrack()
    track.write(AudioChunk(np.full(3 * 24000, 8000, dtype=np.int16), 24000))  # three seconds queued
    waiting = asyncio.ensure_future(track.ahead_at_most(1.0))
    for _ in range(99):  # 1.98 s played
        track._next_samples()
        await asyncio.sleep(0)
    assert not waiting.done()
    for _ in range(2):
        track._next_samples()
        await asyncio.sleep(0)
    await asyncio.wait_for(waiting, 0.5)
    track.stop()


def test_ice_follows_the_bind_address_and_checks_stay_on_its_networks():
    import ipaddress

    from tara.server.ice import ice_addresses_for, keep_candidates_on, networks_of

    lan = ["192.168.1.20", "10.0.0.7"]
    assert ice_addresses_for("127.0.0.1", lan) == ["127.0.0.1"] == ice_addresses_for("localhost", lan)
    assert ice_addresses_for("0.0.0.0", lan) == lan  # never loopback on a LAN host
    assert ice_addresses_for("10.0.0.7", lan) == ["10.0.0.7"]
    assert ice_addresses_for("0.0.0.0", lan, ["10.0.0.7"]) == ["10.0.0.7"]  # server.ice_addresses pins them
    assert networks_of(["127.0.0.1"]) == [ipaddress.ip_network("127.0.0.0/8")]
    offer = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\n"
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
        "a=candidate:2 1 udp 2130706431 203.0.113.9 5000 typ host\r\n"
        "a=candidate:3 1 udp 2130706431 abcd.local 5000 typ host\r\n"
        "a=candidate:4 1 udp 2130706431 192.168.1.30 5000 typ host\r\na=end-of-candidates\r\n"
    )
    kept = keep_candidates_on(offer, [ipaddress.ip_network("127.0.0.0/8")])
    assert "127.0.0.1" in kept and "203.0.113.9" not in kept and ".local" not in kept and "192.168.1.30" not in kept
    assert kept.startswith("v=0\r\nm=audio") and kept.endswith("a=end-of-candidates\r\n")
    kept = keep_candidates_on(offer, [ipaddress.ip_network("192.168.1.0/24")])
    assert "192.168.1.30" in kept and "127.0.0.1" not in kept
