import re

import numpy as np
import pytest

from agent.stt.whisper import FasterWhisperSTT


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@pytest.fixture(scope="module")
def stt(config):
    return FasterWhisperSTT(config.stt, config.data_path)


async def test_transcribes_a_spoken_question(stt, voice):
    transcript = await stt.transcribe(voice("What time does the train leave in the morning?"))
    assert {"what", "time", "train", "leave", "morning"} <= words(transcript.text)
    assert transcript.audio_seconds > 1.0


async def test_vocabulary_hints_recognise_document_names(stt, voice):
    stt.set_vocabulary(["Orchid Valley Observatory", "Big Maple", "Stardust Corner"])
    transcript = await stt.transcribe(voice("What is the Orchid Valley Observatory?"))
    assert "orchid" in words(transcript.text) and "observatory" in words(transcript.text)
    stt.set_vocabulary([])


async def test_long_audio_takes_the_regular_path(stt, voice):
    story = [
        "Once upon a time a small boat sailed across a quiet lake.",
        "The captain was an old woman who loved to sing about the weather.",
        "Every morning she counted the birds that followed the boat.",
        "One day a storm came over the hills and the water turned grey.",
        "She steered the boat into a safe harbour near the village.",
        "The people of the village gave her bread, cheese and hot tea.",
        "When the sun came back she sailed home and told everybody the story.",
        "Her grandchildren still tell that story at dinner every winter.",
    ]
    long = np.concatenate([voice(s, lead_silence=0.4) for s in story])
    assert len(long) / 16000 > 28  # longer than one window: faster-whisper's segment path
    text = words((await stt.transcribe(long)).text)
    assert {"boat", "captain", "storm", "village", "winter"} <= text


async def test_silence_gives_empty_or_short_text(stt):
    transcript = await stt.transcribe(np.zeros(16000, dtype=np.int16))
    assert len(transcript.text.split()) <= 3
