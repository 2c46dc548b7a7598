import numpy as np

from tara.tools.echo_replay import EchoReplay

FRAME_16K, FRAME_48K = 320, 960  # 20 ms


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_what_the_caller_heard_comes_back_into_its_mic_later_and_quieter() -> None:
    clock = Clock()
    replay = EchoReplay(delay_s=0.1, gain_db=-10.0, clock=clock)
    said = np.full(FRAME_48K, 100, dtype=np.int16)
    assert replay.mixed_into(said) is said  # nothing heard yet
    mixed = []
    for step in range(30):  # 600 ms: Tara's voice (a steady level) heard for 200 ms, then silence
        replay.heard(np.full(FRAME_16K, 10000 if step < 10 else 0, dtype=np.int16))
        mixed.append(replay.mixed_into(said))
        clock.now += 0.02
    echo = np.concatenate(mixed).astype(float) - 100
    assert abs(echo[: 4 * FRAME_48K]).max() < 50  # the first 80 ms: still quiet (delay 100 ms)
    assert np.median(echo[7 * FRAME_48K : 11 * FRAME_48K]) == np.round(10000 * 10 ** (-10 / 20))  # -10 dB
    assert abs(echo[-5 * FRAME_48K :]).max() < 50  # and over once Tara stopped
