"""Server-side echo cancellation: Tara knows exactly what it played, so it can take it out of the mic.

Browser echo cancellation is weak or absent on Firefox, Safari, iOS and laptop speakers, and off with
``?raw=1``. Whatever leaks back is Tara's own voice, delayed by the browser's playout, the room and the
mic path (150-450 ms after the server sent it on a LAN; ~0.5 s in headless Chromium) and quieter.
``EchoReference`` keeps what the outbound track sent, with the time it was sent; ``EchoCanceller``
(a ``MicFilter``) pairs each inbound 10 ms mic frame with the reference its echo holds (``BulkDelay``
finds that from the loudness envelopes) and lets an adaptive canceller (WebRTC's AEC3) find the rest
of the delay and the room and subtract the echo.

Measured with Piper speech played back at -10 dB with 80-450 ms delay and a few room reflections
(``python -m tara.tools.echo_measure``): AEC3 through ``pywebrtc-audio`` takes 17-50 dB of the echo
away while it learns the room and 52-56 dB once it has (ERLE; 600 ms is beyond its own delay search),
keeps user speech over the echo (correlation with the clean speech 0.81-0.85, 2-3 dB quieter) and
costs 0.10 ms per 10 ms frame on a quiet core. livekit's ``AudioProcessingModule``
(the same AEC3, a 12 MB wheel) cancelled as much but kept less of the user (0.65-0.73); the Speex
canceller (``speexdsp-aec``, needs the system's libspeexdsp) kept the user best (0.95) but took only
0-25 dB. At 0.1 ms per frame the canceller runs inline on the audio path: an executor hop would cost
more than the work.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tara.core.registry import Registry
from tara.core.stages.mic import FRAME, MIC_RATE

REFERENCE_SECONDS = 2.0  # outbound audio kept: well past the longest echo delay AEC3 can find (~0.5 s)
MAX_AHEAD_SAMPLES = MIC_RATE * 40 // 1000  # a read may run this far past what was sent (mic packets come in pairs)
CATCH_UP_FRAMES = 50  # over this many reads, the reader must have come within ``MAX_LAG_SAMPLES`` of the clock ...
MAX_LAG_SAMPLES = MIC_RATE * 60 // 1000  # ... once (else samples went missing: it skips ahead by the least lag)
MAX_BULK_FRAMES = 150  # the echo's bulk delay is looked for up to 1.5 s (10 ms loudness steps) ...
COMPARED_FRAMES = 100  # ... in the last second of the mic
ENVELOPE_FRAMES = MAX_BULK_FRAMES + COMPARED_FRAMES - 1
ESTIMATE_EVERY_FRAMES = 20  # every 200 ms
MIN_CORRELATION = 0.6  # envelopes must agree this well (the user talking over Tara lowers it)
SPEAKING_RMS = 300.0  # about -40 dBFS: the reference had Tara's voice in it
SAME_DELAY_S = 0.03  # two estimates this close are the same echo path
AEC_HEADROOM_S = 0.1  # where the echo is put behind its reference when realigned
AEC_SEARCH_S = 0.35  # an echo up to this far behind its reference is left to AEC3 (it reaches ~0.45 s)
LEDGER_SECONDS = 30.0  # how far back the canceller's work on the mic can be looked up

Clock = Callable[[], float]


class EchoReference:
    """The last ``REFERENCE_SECONDS`` of what the outbound track sent (silence included), by sample index,
    and when: ``record`` is the track's per-frame observer, called as each frame goes out."""

    def __init__(self, clock: Clock = time.monotonic, seconds: float = REFERENCE_SECONDS) -> None:
        self._clock = clock
        self._ring = np.zeros(int(seconds * MIC_RATE), dtype=np.int16)
        self.end = 0  # index of the next sample to be sent (samples sent so far)
        self._end_time: float | None = None  # when the sample ``end`` is due out

    def record(self, samples: np.ndarray) -> None:
        """48 kHz mono int16 that go out now."""
        if not len(samples):
            return
        self._ring[np.arange(self.end, self.end + len(samples)) % len(self._ring)] = samples  # a frame: 20 ms
        self.end += len(samples)
        self._end_time = self._clock() + len(samples) / MIC_RATE

    def position_at(self, moment: float) -> int | None:
        """The index of the sample being sent at ``moment`` (None before anything was sent)."""
        if self._end_time is None:
            return None
        return self.end - round((self._end_time - moment) * MIC_RATE)

    def read(self, start: int, count: int) -> np.ndarray:
        """``count`` samples from index ``start``; silence for what is not (or no longer) kept."""
        out = np.zeros(count, dtype=np.int16)
        size = len(self._ring)
        first, last = max(start, self.end - size, 0), min(start + count, self.end)
        if first < last:
            out[first - start : last - start] = self._ring[np.arange(first, last) % size]
        return out


class AcousticEchoCanceller(Protocol):
    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """One 10 ms frame of mic audio (``near``) with what was playing (``far``); the mic without the echo."""
        ...


class WebRTCEchoCanceller:
    """WebRTC's AEC3 (``pywebrtc-audio``, Apache-2.0): adaptive filter, delay search and residual suppressor."""

    def __init__(self) -> None:
        from pywebrtc_audio import EchoCanceller as AEC3

        self._aec = AEC3(sample_rate=MIC_RATE)

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        return self._aec.process(near, far)


ECHO_CANCELLERS: Registry[AcousticEchoCanceller] = Registry(
    "audio.echo_cancel", {"webrtc": "tara.core.stages.mic.echo:WebRTCEchoCanceller"}
)


class ReferenceReader:
    """Reads ``reference`` in step with another stream, ``lag_s`` behind what is being sent as it asks.

    Reads continue where the last one ended: the other stream's samples and the reference's run in
    step, so the delay between them stays put (an adaptive canceller takes a jump for a new delay and
    learns again). The wall clock only corrects what sample counting cannot see: a stream that lost
    samples (a gap in the packets) lags the clock at every read, so once ``CATCH_UP_FRAMES`` reads
    never came within ``MAX_LAG_SAMPLES`` the reader skips ahead by the least lag it saw. A stalled event
    loop does not trigger it: its backlog then arrives in a burst and catches up. And a read never
    runs more than ``MAX_AHEAD_SAMPLES`` past what was sent by then.
    """

    def __init__(self, reference: EchoReference, lag_s: float = 0.0, clock: Clock = time.monotonic) -> None:
        self._reference = reference
        self.lag_s = lag_s
        self._clock = clock
        self._cursor: int | None = None  # the reference index the next read starts at
        self._least_lag: int | None = None  # over the reads since the last check
        self._reads = 0

    def set_lag(self, lag_s: float) -> None:
        """Read ``lag_s`` behind what is being sent from now on (realigned at the next read)."""
        self.lag_s, self._cursor = lag_s, None

    def read(self, count: int) -> np.ndarray | None:
        """The next ``count`` samples; None while nothing was ever sent."""
        sending = self._reference.position_at(self._clock() - self.lag_s)
        if sending is None:
            return None
        newest = sending - count  # the last ``count`` samples sent by then
        if self._cursor is None or self._cursor > newest + MAX_AHEAD_SAMPLES:
            self._cursor = newest
        lag = newest - self._cursor
        self._least_lag = lag if self._least_lag is None else min(self._least_lag, lag)
        self._reads += 1
        if self._reads == CATCH_UP_FRAMES:
            if self._least_lag > MAX_LAG_SAMPLES:
                self._cursor += self._least_lag
            self._reads, self._least_lag = 0, None
        samples = self._reference.read(self._cursor, count)
        self._cursor += count
        return samples


def energy(samples: np.ndarray) -> float:
    """The sum of squares of int16 ``samples`` (in float: int16 squares overflow)."""
    return float(np.dot(samples.astype(np.float64), samples))


class BulkDelay:
    """Where the echo sits behind the reference, from the two loudness envelopes (10 ms steps).

    AEC3 searches about 0.45 s of delay; a browser's playout and the mic path can take more (headless
    Chromium: 0.5-0.6 s). Cross-correlating the envelopes of the last ``ENVELOPE_S`` finds the bulk
    of it (one 150 x 100 matrix product every 200 ms, well under a millisecond: inline like the canceller), so the reference can be read that much later and
    AEC3 only has to find the rest.
    """

    def __init__(self) -> None:
        self._mic: deque[float] = deque(maxlen=COMPARED_FRAMES)
        # the reference from silence: an echo of the first words Tara says can be matched at once
        self._far: deque[float] = deque([0.0] * ENVELOPE_FRAMES, maxlen=ENVELOPE_FRAMES)

    def add(self, mic_energy: float, far_energy: float) -> None:
        """One frame of each, as ``energy`` gives it (the ledger has the mic's already)."""
        self._mic.append(np.sqrt(mic_energy / FRAME))
        self._far.append(np.sqrt(far_energy / FRAME))

    def clear(self) -> None:
        self._mic.clear()
        self._far.extend([0.0] * ENVELOPE_FRAMES)

    def estimate_s(self) -> float | None:
        """The echo's delay behind the reference in seconds, when the envelopes clearly agree on one:
        the last ``COMPARED_FRAMES`` of the mic against the reference at every lag up to ``MAX_BULK_FRAMES``."""
        mic, far = np.array(self._mic), np.array(self._far)
        if len(mic) < COMPARED_FRAMES or far.max() < SPEAKING_RMS or mic.std() == 0:
            return None  # nothing was played (or heard): nothing to find
        shifted = sliding_window_view(far, COMPARED_FRAMES)[::-1]  # row k: the reference k steps earlier
        shifted = shifted - shifted.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(shifted, axis=1) * np.linalg.norm(mic - mic.mean())
        scores = np.divide(shifted @ (mic - mic.mean()), norms, out=np.zeros(len(norms)), where=norms > 0)
        lag = int(np.argmax(scores))
        return lag * FRAME / MIC_RATE if scores[lag] >= MIN_CORRELATION else None


class EchoLedger:
    """How much of the mic's sound AEC3 takes out, 10 ms frame by 10 ms frame, addressed by the stream's
    time (its samples so far over the rate: the same at 48 kHz and at the 16 kHz VAD and STT hear).

    Why: a fragment of Tara's echo that the recogniser writes down as a couple of words ("Want it?") can
    be as confident as the user's own words over Tara. The mic then held little but Tara's voice, and
    AEC3 took most of its sound out (57 dB for "very" in the e2e echo test); of the user's words over
    the echo it took out 0.2-2.1 dB. AEC3's output counts even before ``EchoCanceller`` uses it (the first
    echo of a call comes before that), but only once an echo was heard in the call: where the browser
    cancels the echo itself there is none, and an AEC3 that has learnt no room may muffle the user.
    """

    def __init__(self, seconds: float = LEDGER_SECONDS) -> None:
        self._heard = np.zeros(int(seconds * MIC_RATE / FRAME))  # each frame's energy as the mic had it ...
        self._left = np.zeros_like(self._heard)  # ... and what AEC3 left of it
        self.frames = 0
        self.echo_heard = False  # set by the canceller once Tara's voice was found coming back

    def record(self, heard: float, left: float) -> None:
        """The next frame's ``energy`` as the mic had it and as AEC3 left it."""
        at = self.frames % len(self._heard)
        self._heard[at], self._left[at] = heard, left
        self.frames += 1

    def removed_db(self, start_s: float, end_s: float) -> float | None:
        """How many dB of the mic's sound from ``start_s`` to ``end_s`` of the stream AEC3 took out (0:
        none); None before an echo was heard, or when that span is no longer kept or was silence."""
        if not self.echo_heard:
            return None
        first = max(int(start_s * MIC_RATE / FRAME), self.frames - len(self._heard), 0)
        last = min(int(np.ceil(end_s * MIC_RATE / FRAME)), self.frames)
        if first >= last:
            return None
        kept = np.arange(first, last) % len(self._heard)
        heard, left = self._heard[kept].sum(), self._left[kept].sum()
        return None if heard == 0 else 10 * np.log10(heard / max(left, 1.0))


class EchoCanceller:
    """A ``MicFilter`` that takes Tara's voice out of the mic, against ``reference``.

    Each mic frame is paired with the reference ``BulkDelay`` says its echo holds (at first the 10 ms
    sent just before it arrived: never later than its echo); AEC3 finds the rest of the delay.

    Its output is used only once ``BulkDelay`` has heard the echo in this call (two estimates in a row at
    the same delay): until then AEC3 learns
    but the mic passes unchanged. Where the browser cancels the echo itself there is nothing to take
    out, and an AEC3 that has not learnt the room yet muffles the user talking over Tara (in ``tara
    bench`` the first barge-in of a call then took 1.3-3.5 s instead of 0.22 s). ``ledger`` keeps how
    much AEC3 took out of each frame, for the listener to tell an echo's fragment from the user.
    """

    def __init__(self, reference: EchoReference, canceller: AcousticEchoCanceller, clock: Clock = time.monotonic):
        self._far = ReferenceReader(reference, clock=clock)
        self._canceller = canceller
        self._bulk = BulkDelay()
        self._frames = 0
        self._last_delay: float | None = None  # the previous estimate: an echo is heard once two agree
        self.ledger = EchoLedger()

    @property
    def reference_lag_s(self) -> float:
        """How far behind what is being sent the reference is read, found by ``BulkDelay``."""
        return self._far.lag_s

    def process(self, frame: np.ndarray) -> np.ndarray:
        far = self._far.read(FRAME)
        heard = energy(frame)
        if far is None:
            self.ledger.record(heard, heard)
            return frame
        self._bulk.add(heard, energy(far))
        self._frames += 1
        if self._frames % ESTIMATE_EVERY_FRAMES == 0:
            self._realign()
        cancelled = self._canceller.process(frame, far)
        self.ledger.record(heard, energy(cancelled))
        return cancelled if self.ledger.echo_heard else frame

    def _realign(self) -> None:
        """Put the echo ``AEC_HEADROOM_S`` behind its reference again when it strayed past AEC3's search
        (or so close that it may come before it)."""
        delay, previous = self._bulk.estimate_s(), self._last_delay
        self._last_delay = delay
        # an echo stays where it is; the user talking over Tara matches its envelope, if ever, by chance
        # and at a lag of its own each time (taken for echo, AEC3's output then muffled the barge-in)
        agreeing = delay is not None and previous is not None and abs(delay - previous) <= SAME_DELAY_S
        self.ledger.echo_heard = self.ledger.echo_heard or agreeing
        if (
            delay is None
            or AEC_HEADROOM_S / 2 <= delay <= AEC_SEARCH_S
            or (delay < AEC_HEADROOM_S and not self._far.lag_s)
        ):
            return  # within AEC3's reach (moving it would make it learn again), or as early as it can be
        self._far.set_lag(max(0.0, self._far.lag_s + delay - AEC_HEADROOM_S))
        self._bulk.clear()
        self._last_delay = AEC_HEADROOM_S  # where the echo was just put


def echo_filter(name: str, reference: EchoReference) -> EchoCanceller | None:
    """The ``audio.echo_cancel`` filter against ``reference``; None when it is ``off``."""
    return None if name == "off" else EchoCanceller(reference, ECHO_CANCELLERS.create(name))
