"""RNNoise on and off in front of the real whisper: what it does to the words heard, clean and in noise.

Piper's voice stands in for a person here (espeak's buzzy consonants are what RNNoise cuts most; the
bench's espeak questions are where its cost shows, see the README). The default stays ``off``; these
checks hold the filter to not making natural speech worse, and to taking the noise out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tara.core.audio import PIPELINE_RATE, resample, rms_dbfs
from tara.core.concurrency import Compute
from tara.core.stages.mic import MIC_RATE, MicChain
from tara.core.stages.mic.rnnoise import RNNoiseFilter
from tara.core.stages.stt.whisper import FasterWhisperSTT
from tara.tools.evaluate import word_error_rate
from tara.tools.spoken import Voices

# Eight questions, so that two clips read differently decide nothing: on another CPU, RNNoise in fan noise
# once turned "How long" into "Along" and "fee per" into "paper", 4 words of 31 with only four questions.
QUESTIONS = [
    "How long is the warranty on the kettle?",
    "When does the library open on Saturday?",
    "How much is the late fee per item per day?",
    "Is the library open on Sundays?",
    "Can I bring my dog into the reading room?",
    "What is the phone number of the front desk?",
    "Who teaches the Tuesday evening class?",
    "Where can I leave my bike while I visit?",
]
SNR_DB = 10.0


@pytest.fixture(scope="module")
def stt(config):
    return FasterWhisperSTT(config.stt, config.data_path, Compute())


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> Voices:
    return Voices(Path(tmp_path_factory.mktemp("voices")), snr_db=SNR_DB)


def denoised(pcm16k: np.ndarray) -> np.ndarray:
    """Through the mic path as a call takes it: up to 48 kHz, RNNoise, back to 16 kHz."""
    cleaned = MicChain([RNNoiseFilter()]).process(resample(pcm16k, PIPELINE_RATE, MIC_RATE))
    return resample(cleaned, MIC_RATE, PIPELINE_RATE)


@pytest.mark.parametrize("noise", [None, "fan", "keyboard"])
async def test_denoise_does_not_make_whisper_mishear_natural_speech(stt, voices, noise):
    clips = [await voices.speak(text, "piper", noise) for text in QUESTIONS]
    plain = [(await stt.transcribe(clip)).text for clip in clips]
    cleaned = [(await stt.transcribe(denoised(clip))).text for clip in clips]
    plain_wer, cleaned_wer = word_error_rate(QUESTIONS, plain), word_error_rate(QUESTIONS, cleaned)
    assert plain_wer <= 0.25, plain
    assert cleaned_wer <= plain_wer + 0.1, (cleaned, plain)  # at most about six words of 63 more


async def test_denoise_takes_the_fan_out_between_words(voices):
    clip = await voices.speak(QUESTIONS[0], "piper", "fan")
    tail = slice(-PIPELINE_RATE // 3, None)  # the noise runs on half a second past the speech
    assert rms_dbfs(denoised(clip)[tail]) < rms_dbfs(clip[tail]) - 10
