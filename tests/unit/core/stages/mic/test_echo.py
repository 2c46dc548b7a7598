import numpy as np
import pytest

from tara.core.audio import rms_dbfs
from tara.core.sections import ConfigError
from tara.core.stages.mic import FRAME, MIC_RATE
from tara.core.stages.mic.echo import (
    CATCH_UP_FRAMES,
    MAX_AHEAD_SAMPLES,
    EchoCanceller,
    EchoLedger,
    EchoReference,
    ReferenceReader,
    WebRTCEchoCanceller,
    echo_filter,
    energy,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A canceller that keeps the reference frames it was paired with and passes the mic through."""

    def __init__(self) -> None:
        self.far: list[np.ndarray] = []

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        self.far.append(far)
        return near


def counting(start: int, count: int) -> np.ndarray:
    return (np.arange(start, start + count) % 30000).astype(np.int16)


def test_the_reference_reads_back_what_was_sent_and_silence_around_it() -> None:
    reference = EchoReference(Clock(), seconds=0.1)  # 4800 samples kept
    for start in range(0, 9600, 960):
        reference.record(counting(start, 960))
    assert (reference.read(9600 - 4800, 4800) == counting(4800, 4800)).all()  # across the ring's wrap
    assert (reference.read(9600 - 100, 200)[:100] == counting(9500, 100)).all()
    assert not reference.read(9600, 200).any()  # not sent yet
    assert not reference.read(1000, 200).any()  # no longer kept


def test_the_reference_knows_which_sample_went_out_when() -> None:
    clock = Clock()
    reference = EchoReference(clock)
    assert reference.position_at(clock.now) is None
    reference.record(np.zeros(960, dtype=np.int16))
    assert reference.position_at(clock.now) == 0  # the frame just recorded is going out
    assert reference.position_at(clock.now + 0.01) == 480


def test_mic_frames_are_paired_with_consecutive_reference_even_in_a_burst() -> None:
    clock, recorder = Clock(), Recorder()
    reference = EchoReference(clock)
    for start in range(0, MIC_RATE, 960):
        reference.record(counting(start, 960))
    canceller = EchoCanceller(reference, recorder, clock)
    sent = reference.end
    mic = np.zeros(FRAME, dtype=np.int16)
    for _ in range(3):  # a burst (a stalled loop's backlog): three frames at once stay in step
        canceller.process(mic)
    starts = [int(far[0]) for far in recorder.far]
    assert starts == [(sent - 960 - FRAME + i * FRAME) % 30000 for i in range(3)]


def sending(clock: Clock, reference: EchoReference, seconds: float) -> None:
    """The speaker track at work: a 20 ms frame every 20 ms."""
    for _ in range(round(seconds * 50)):
        reference.record(counting(reference.end, 960))
        clock.now += 0.02


def test_a_read_never_runs_ahead_of_what_was_sent() -> None:
    clock = Clock()
    reference = EchoReference(clock)
    sending(clock, reference, 0.2)
    reader = ReferenceReader(reference, clock=clock)
    reads = [reader.read(FRAME) for _ in range(40)]  # 400 ms of mic at once: more than was sent since
    assert all(far is not None for far in reads)
    assert all(int(far[-1]) < reference.end + MAX_AHEAD_SAMPLES for far in reads if far is not None)


def test_a_mic_that_lost_samples_is_brought_back_in_step_with_the_clock() -> None:
    clock = Clock()
    reference = EchoReference(clock)
    sending(clock, reference, 0.5)
    reader = ReferenceReader(reference, clock=clock)
    first = reader.read(FRAME)
    assert first is not None and int(first[0]) == reference.end - FRAME  # all sent by now
    sending(clock, reference, 0.3)  # 300 ms of the mic's packets never came
    for _ in range(2 * CATCH_UP_FRAMES):  # the mic goes on in real time, 300 ms behind (a whole check window)
        clock.now += 0.01
        reference.record(counting(reference.end, 480))
        far = reader.read(FRAME)
    assert far is not None
    assert abs(int(far[-1]) + 1 - reference.end % 30000) <= FRAME  # caught up


def test_nothing_sent_yet_leaves_the_mic_alone() -> None:
    recorder = Recorder()
    frame = np.ones(FRAME, dtype=np.int16)
    assert EchoCanceller(EchoReference(), recorder).process(frame) is frame and not recorder.far


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Noise shaped like syllables (5 Hz bursts), at a conversational level."""
    rng = np.random.default_rng(seed)
    n = int(seconds * MIC_RATE)
    bursts = np.clip(np.sin(np.arange(n) / MIC_RATE * 2 * np.pi * 2.5), 0, None)
    noise = np.convolve(rng.normal(size=n), np.ones(12) / 12, mode="same")
    return (noise * bursts * 8000).astype(np.int16)


def test_webrtc_cancels_a_delayed_quieter_echo_and_keeps_the_user() -> None:
    far = speech_like(4.0, seed=1)
    delay = MIC_RATE * 150 // 1000
    echo = (np.concatenate([np.zeros(delay), far[:-delay]]) * 10 ** (-10 / 20)).astype(np.int16)
    user = np.zeros_like(far)
    user[3 * MIC_RATE :] = speech_like(1.0, seed=2)  # the user talks over the last second
    aec = WebRTCEchoCanceller()
    out = np.concatenate(
        [aec.process(echo[i : i + FRAME] + user[i : i + FRAME], far[i : i + FRAME]) for i in range(0, len(far), FRAME)]
    )
    settled = slice(2 * MIC_RATE, 3 * MIC_RATE)  # echo alone, after a couple of seconds to learn the room
    assert rms_dbfs(echo[settled]) - rms_dbfs(out[settled]) > 20
    talking = slice(3 * MIC_RATE, 4 * MIC_RATE)
    assert rms_dbfs(out[talking]) > rms_dbfs(user[talking]) - 6  # the user is still there


def test_echo_cancel_off_builds_no_filter_and_an_unknown_name_is_a_clear_error() -> None:
    assert echo_filter("off", EchoReference()) is None
    assert isinstance(echo_filter("webrtc", EchoReference()), EchoCanceller)
    with pytest.raises(ConfigError, match="audio.echo_cancel"):
        echo_filter("speex", EchoReference())


def test_an_echo_beyond_the_canceller_s_search_is_found_and_the_reference_read_that_much_later() -> None:
    clock = Clock()
    reference = EchoReference(clock)
    canceller = EchoCanceller(reference, Recorder(), clock)
    voice = speech_like(8.0, seed=3)
    delay = MIC_RATE * 600 // 1000  # a slow browser: 0.6 s from sending to its echo arriving
    for start in range(0, len(voice), 960):
        reference.record(voice[start : start + 960])
        for half in (0, FRAME):  # the mic's 20 ms packet: two frames
            at = start + half - delay
            canceller.process(voice[at : at + FRAME] // 3 if at >= 0 else np.zeros(FRAME, dtype=np.int16))
        clock.now += 0.02
    assert abs(canceller.reference_lag_s - 0.5) < 0.03  # the echo now 0.1 s behind its reference


def test_the_mic_passes_unchanged_until_an_echo_is_heard() -> None:
    clock = Clock()
    reference = EchoReference(clock)
    canceller = EchoCanceller(reference, WebRTCEchoCanceller(), clock)
    voice = speech_like(4.0, seed=4)
    user = (np.random.default_rng(5).normal(size=len(voice)) * 2000).astype(np.int16)  # no echo's rhythm in it
    outs = []
    for start in range(0, len(voice), 960):  # Tara speaks, the user talks over it, no echo comes back
        reference.record(voice[start : start + 960])
        outs += [canceller.process(user[start + half : start + half + FRAME]) for half in (0, FRAME)]
        clock.now += 0.02
    assert (np.concatenate(outs) == user[: len(outs) * FRAME]).all()


def test_the_ledger_says_how_much_of_a_stretch_of_the_mic_was_taken_out() -> None:
    ledger = EchoLedger(seconds=1.0)
    loud, quiet = energy(np.full(FRAME, 1000, dtype=np.int16)), energy(np.full(FRAME, 10, dtype=np.int16))
    for _ in range(50):  # 0.5 s of echo, 40 dB of it taken out ...
        ledger.record(loud, quiet)
    for _ in range(50):  # ... then 0.5 s of the user, kept
        ledger.record(loud, loud)
    assert ledger.removed_db(0.0, 0.5) is None  # no echo was heard in the call: nothing to go by
    ledger.echo_heard = True
    assert ledger.removed_db(0.0, 0.5) == pytest.approx(40.0)
    assert ledger.removed_db(0.5, 1.0) == pytest.approx(0.0)
    assert ledger.removed_db(0.0, 1.0) == pytest.approx(3.0, abs=0.1)  # (energy: half the stretch gone, 3 dB)
    for _ in range(50):
        ledger.record(loud, loud)
    assert ledger.removed_db(0.0, 0.4) is None  # no longer kept
    assert ledger.removed_db(2.0, 3.0) is None  # not yet heard


def test_the_ledger_counts_what_aec3_takes_out_even_before_the_mic_uses_it() -> None:
    clock = Clock()
    reference = EchoReference(clock)
    canceller = EchoCanceller(reference, WebRTCEchoCanceller(), clock)
    voice = speech_like(6.0, seed=6)
    delay = MIC_RATE * 150 // 1000
    outs = []
    for start in range(0, len(voice), 960):  # Tara speaks and its echo comes back, 150 ms later, -10 dB
        reference.record(voice[start : start + 960])
        for half in (0, FRAME):
            at = start + half - delay
            echo = voice[at : at + FRAME] // 3 if at >= 0 else np.zeros(FRAME, dtype=np.int16)
            outs.append((echo, canceller.process(echo)))
        clock.now += 0.02
    assert canceller.ledger.echo_heard
    first_used = next(i for i, (echo, out) in enumerate(outs) if not np.array_equal(echo, out))
    assert first_used > 100  # the first second passed the mic as it was ...
    assert (canceller.ledger.removed_db(0.5, 1.0) or 0) > 10  # ... yet AEC3 had found the echo in it
    assert (canceller.ledger.removed_db(4.0, 6.0) or 0) > 20
