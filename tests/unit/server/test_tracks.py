"""The outbound voice's fades and the inbound packets' order, without a network."""

import numpy as np
from aiortc.rtp import RtpPacket

from tara.core.audio import AudioChunk
from tara.server.tracks import FADE_SAMPLES, FRAME_SAMPLES, RTC_RATE, InOrderAudioBuffer, SpeakerTrack


def speaking_track() -> SpeakerTrack:
    track = SpeakerTrack()
    track.write(AudioChunk(np.full(RTC_RATE, 8000, dtype=np.int16), RTC_RATE))  # one second of sound
    track._next_samples()
    return track


def test_a_pause_fades_the_voice_out_at_the_next_frame_and_a_resume_fades_it_in_where_it_stopped():
    track = speaking_track()
    track.pause()
    frame = track._next_samples()
    fade = frame[:FADE_SAMPLES].astype(int)
    assert fade[0] > 7000 and np.all(np.diff(fade) <= 0) and fade[-1] < 100  # 5 ms down, no step
    assert not frame[FADE_SAMPLES:].any()
    assert not track._next_samples().any()  # silent while paused, the rest kept
    assert track._queued_samples == RTC_RATE - FRAME_SAMPLES - FADE_SAMPLES
    track.resume()
    frame = track._next_samples().astype(int)
    assert frame[0] < 100 and np.all(np.diff(frame[:FADE_SAMPLES]) >= 0) and frame[-1] == 8000
    track.stop()


def test_a_cut_fades_out_what_was_playing_and_drops_the_rest():
    track = speaking_track()
    track.clear()
    frame = track._next_samples()
    assert frame[0] > 7000 and not frame[FADE_SAMPLES:].any()
    assert not track._next_samples().any() and track._queued_samples == 0
    track.pause()  # paused already silent: a cut has nothing left to fade
    track.clear()
    assert not track._next_samples().any()
    track.stop()


def packet(sequence_number: int) -> RtpPacket:
    rtp = RtpPacket(sequence_number=sequence_number, timestamp=sequence_number * 960)
    rtp._data = bytes([sequence_number % 256])  # (set by the receiver once depayloaded)  # pyright: ignore
    return rtp


def test_inbound_audio_packets_are_handed_on_as_they_arrive_and_late_ones_dropped():
    buffer = InOrderAudioBuffer()
    frames = [buffer.add(packet(n))[1] for n in (65534, 65535, 0, 2, 1, 3)]  # wraps; 1 comes after 2
    assert [f.timestamp // 960 if f else None for f in frames] == [65534, 65535, 0, 2, None, 3]


def test_the_speaker_track_says_when_each_chunk_starts_playing_and_how_much_has_played():
    track = SpeakerTrack()
    starts: list[float] = []
    track.write(AudioChunk(np.full(480, 8000, dtype=np.int16), RTC_RATE), on_play=starts.append)  # 10 ms
    track.write(AudioChunk(np.full(960, 8000, dtype=np.int16), RTC_RATE), on_play=starts.append)  # starts at 10 ms
    track.write(AudioChunk(np.full(960, 8000, dtype=np.int16), RTC_RATE), on_play=starts.append)  # at 30 ms
    track._next_samples()
    assert starts == [0.0, 0.01] and track.played_s == 0.02
    track.pause()
    track._next_samples()
    assert track.played_s == 0.02 + FADE_SAMPLES / RTC_RATE  # paused: the fade out, then nothing plays
    track.clear()  # barge-in: the rest is never played and its chunk never says it started
    track.resume()
    track._next_samples()
    assert starts == [0.0, 0.01] and track.played_s == 0.02 + FADE_SAMPLES / RTC_RATE
    track.write(AudioChunk(np.full(960, 8000, dtype=np.int16), RTC_RATE), on_play=starts.append)
    track._next_samples()
    assert starts == [0.0, 0.01, 0.02 + FADE_SAMPLES / RTC_RATE] and track.played_s == 0.04 + FADE_SAMPLES / RTC_RATE
