import numpy as np

from tara.core.stages.mic import FRAME, MicChain


class Halve:
    def __init__(self) -> None:
        self.frames = 0

    def process(self, frame: np.ndarray) -> np.ndarray:
        assert len(frame) == FRAME
        self.frames += 1
        return (frame // 2).astype(np.int16)


def test_no_filters_pass_audio_through_untouched() -> None:
    pcm = np.arange(1000, dtype=np.int16)
    assert MicChain().process(pcm) is pcm


def test_filters_see_whole_10ms_frames_and_the_rest_waits() -> None:
    halve = Halve()
    chain = MicChain([halve])
    first = chain.process(np.full(FRAME + 100, 8, dtype=np.int16))
    assert len(first) == FRAME and halve.frames == 1 and (first == 4).all()
    second = chain.process(np.full(FRAME - 100, 8, dtype=np.int16))
    assert len(second) == FRAME and halve.frames == 2
