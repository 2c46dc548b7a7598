import re

import numpy as np
import pytest

from tara.core.concurrency import Compute
from tara.core.stages.stt.guards import Decoding
from tara.core.stages.stt.whisper import SAFE_WINDOW_FRAMES, TAIL_FRAMES, FasterWhisperSTT


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@pytest.fixture(scope="module")
def stt(config):
    return FasterWhisperSTT(config.stt, config.data_path, Compute())


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


async def test_a_misheard_document_word_is_put_right_and_common_words_are_left_alone(stt):
    stt.set_vocabulary([], {"descale", "kettle", "leaning"})
    assert stt._respell("How often do I discale the Kettle?") == "How often do I descale the Kettle?"
    assert stt._respell("Is the cleaning free?") == "Is the cleaning free?"
    stt.set_vocabulary([])


async def test_a_prompt_read_back_is_decoded_again_without_it(stt, voice, monkeypatch):
    stt.set_vocabulary(["Harbour Museum", "Ines Berg", "Tuesday"])
    real = stt._decode_short
    prompts = []

    def echo_when_prompted(encoded, frames, prompted, beam_size=None):
        prompts.append(prompted)
        if prompted:
            return Decoding("The conversation mentions Harbour Museum, Ines Berg, Tuesday, Tuesday.")
        return real(encoded, frames, prompted, beam_size)

    monkeypatch.setattr(stt, "_decode_short", echo_when_prompted)
    transcript = await stt.transcribe(voice("What time does the train leave?"))
    assert prompts == [True, True, False]  # the tight window, the safe one, the safe one without the prompt
    assert "train" in words(transcript.text) and transcript.rejected is None
    monkeypatch.setattr(
        stt, "_decode_short", lambda encoded, frames, prompted, beam_size=None: Decoding("Tuesday, Tuesday, Tuesday.")
    )
    transcript = await stt.transcribe(voice("What time does the train leave?"))
    assert transcript.text == "" and transcript.rejected == "the recogniser repeated itself"
    stt.set_vocabulary([])


async def test_an_unsure_decoding_in_the_tight_window_is_searched_again_in_the_safe_one(stt, voice, monkeypatch):
    real_encode, real_decode = stt._encode_short, stt._decode_short
    windows, beams = [], []

    def encode(samples, frames, window):
        windows.append(max(window, frames + TAIL_FRAMES))
        return real_encode(samples, frames, window)

    def unsure_in_tight_window(encoded, frames, prompted, beam_size=None):
        beams.append(beam_size)
        decoding = real_decode(encoded, frames, prompted, beam_size)
        return decoding if len(windows) > 1 else Decoding(decoding.text, stt.config.unsure_logprob - 0.1)

    monkeypatch.setattr(stt, "_encode_short", encode)
    transcript = await stt.transcribe(voice("What time does the train leave?"))
    assert len(windows) == 1 and windows[0] < SAFE_WINDOW_FRAMES  # a sure decoding: done in the tight window
    windows.clear()
    monkeypatch.setattr(stt, "_decode_short", unsure_in_tight_window)
    transcript = await stt.transcribe(voice("What time does the train leave?"))
    assert len(windows) == 2 and windows[1] == SAFE_WINDOW_FRAMES
    assert beams == [None, stt.config.unsure_beam_size]  # greedy first, then the beam
    assert "train" in words(transcript.text)
    windows.clear()
    beams.clear()
    await stt.transcribe(voice("What time does the train leave?"), thorough=False)
    assert len(windows) == 1 and beams == [None]  # a quick reading redoes only what it doubts more


async def test_whisper_tiny_en_is_a_bundled_choice(config, voice):
    tiny = FasterWhisperSTT(
        config.stt.model_copy(update={"model": "bundled:whisper-tiny-en"}), config.data_path, Compute()
    )
    transcript = await tiny.transcribe(voice("What time does the train leave in the morning?"))
    assert {"time", "train", "morning"} <= words(transcript.text)
