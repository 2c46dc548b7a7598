"""CSM on a CPU: a tiny random model and a tiny Mimi running the real generator end to end."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from tara.core.audio import write_wav
from tara.core.config import PROJECT_ROOT, ConfigError, load_config
from tara.core.emotion import EmotionSettings, reply_emotion
from tara.core.stages.tts import TTS_BACKENDS
from tara.core.stages.tts.csm.backend import CSMTTS, USER_SPEAKER, Conversation
from tara.core.stages.tts.csm.files import resolve_files
from tara.core.stages.tts.csm.generator import FRAME_SAMPLES, Streamer, fit_context, to_int16
from tara.core.stages.tts.csm.model import CSM, FLAVOURS
from tara.core.stages.tts.csm.sampling import Sampling
from tara.core.stages.tts.settings import CSMSettings

TINY = PROJECT_ROOT / "config" / "csm-tiny.yaml"
CODEBOOKS = FLAVOURS["tiny"].codebooks
NEUTRAL = Sampling(0.7, 25)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine is shared
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("csm-data")


@pytest.fixture(scope="module")
def prompt_wav(tmp_path_factory) -> Path:
    """A second of a gliding tone stands in for a reference recording."""
    t = np.arange(24000) / 24000
    path = tmp_path_factory.mktemp("voices") / "prompt.wav"
    write_wav(path, (8000 * np.sin(2 * np.pi * (200 + 100 * t) * t)).astype(np.int16), 24000)
    return path


@pytest.fixture(scope="module")
def tts(data_dir, prompt_wav) -> CSMTTS:
    prompt = {"audio": str(prompt_wav), "text": "This is how I sound."}
    voices = {
        "default": {},
        "tara": {"speaker": 0, "prompt": prompt, "emotions": {"calm": prompt | {"text": "Easy now."}}},
    }
    config = load_config(TINY, **{"data_dir": str(data_dir), "tts.voices": voices, "tts.max_audio_ms": 400})
    backend = TTS_BACKENDS.create(config.tts.backend, config.tts, config.data_path)  # chosen by config alone
    assert isinstance(backend, CSMTTS)
    return backend


@pytest.fixture
def streamer(tts) -> Streamer:
    return tts._streamer


def context_rows(streamer: Streamer, text: str = "Hello there.") -> tuple[torch.Tensor, torch.Tensor]:
    tokens, mask, _ = streamer.plan(None, [], 0, text, 10)
    return tokens, mask


def scripted(streamer: Streamer, monkeypatch, frames: int) -> list[int]:
    """Make the model end (all-zero frame) after ``frames`` frames; returns a log of calls."""
    calls: list[int] = []
    real = streamer.model.generate_frame

    def generate_frame(*args, **kwargs):
        calls.append(1)
        frame = real(*args, **kwargs)
        return frame if len(calls) <= frames else torch.zeros_like(frame)

    monkeypatch.setattr(streamer.model, "generate_frame", generate_frame)
    return calls


def test_first_chunk_after_n_frames_then_whole_chunks(streamer, monkeypatch):
    calls = scripted(streamer, monkeypatch, frames=7)
    tokens, mask = context_rows(streamer)
    chunks = streamer.decode(streamer.frames(tokens, mask, 50, NEUTRAL), frames_per_chunk=2)
    first = next(chunks)
    assert len(calls) == 2 and len(first) == 2 * FRAME_SAMPLES  # out as soon as two frames exist
    sizes = [len(first)] + [len(chunk) for chunk in chunks]
    assert sizes == [3840, 3840, 3840, 1920]  # 7 frames: the end frame itself is not audio
    assert len(calls) == 8


async def test_stream_yields_1920_n_samples_at_24khz(tts):
    chunks = [c async for c in tts.stream("Hello there.", EmotionSettings())]
    assert all(c.sample_rate == 24000 for c in chunks)
    assert [len(c.samples) for c in chunks] == [2 * FRAME_SAMPLES] * 2 + [FRAME_SAMPLES]  # 400 ms = 5 frames


def test_all_zero_frame_stops_before_any_audio():
    """A model whose heads say nothing but code 0 ends at once (checks the real frame path, no patching)."""
    torch.manual_seed(0)
    model = CSM(FLAVOURS["tiny"]).eval()
    with torch.no_grad():
        model.codebook0_head.weight.zero_()
        model.audio_head.zero_()
    streamer = Streamer(model, mimi=None, tokenize=lambda text: [128000, *text.encode(), 128001])
    tokens, mask = context_rows(streamer)
    assert list(streamer.frames(tokens, mask, 20, Sampling(0.0, 1))) == []


def test_codes_stay_inside_mimi_range(streamer):
    """Even when the three codes past Mimi's 2048 are the likeliest, they are never sampled."""
    model = streamer.model
    saved = model.codebook0_head.weight.detach().clone(), model.audio_head.detach().clone()
    with torch.no_grad():
        model.codebook0_head.weight[2048:] = 5.0
        model.audio_head[..., 2048:] = 5.0
    try:
        tokens, mask = context_rows(streamer)
        frames = list(streamer.frames(tokens, mask, 6, Sampling(1.5, 2051)))
    finally:
        with torch.no_grad():
            model.codebook0_head.weight.copy_(saved[0])
            model.audio_head.copy_(saved[1])
    codes = torch.stack(frames)
    assert codes.shape == (6, CODEBOOKS) and codes.min() >= 0 and codes.max() < 2048


def test_streamed_decode_equals_one_shot(streamer):
    tokens, mask = context_rows(streamer)
    frames = list(streamer.frames(tokens, mask, 9, NEUTRAL))
    streamed = np.concatenate(list(streamer.decode(iter(frames), frames_per_chunk=2)))
    with torch.inference_mode():
        whole = to_int16(streamer.mimi.decode(torch.stack(frames, dim=1).unsqueeze(0)))
    assert len(streamed) == len(whole) == 9 * FRAME_SAMPLES
    assert np.abs(streamed.astype(np.int32) - whole).max() <= 2  # float rounding only


def test_context_keeps_prompt_and_newest_segments_within_2048(streamer):
    def segment(frames: int, text: str):
        return streamer.segment(0, text, torch.randint(0, 2048, (CODEBOOKS, frames)))

    prompt = segment(300, "prompt")
    history = [segment(400, f"turn {i}") for i in range(6)]
    max_frames = 125
    tokens, _, frames = streamer.plan(prompt, history, 0, "Hello there.", max_frames)
    assert tokens.shape[0] + frames <= 2048 and frames == max_frames
    text_rows = len(streamer.tokenize("[0]Hello there."))
    kept = fit_context(prompt, history, 2048 - text_rows - max_frames)
    assert kept[0] is prompt and kept[1:] == history[-len(kept) + 1 :]  # the newest, in order
    assert sum(s.length for s in kept) + text_rows == tokens.shape[0]
    assert sum(s.length for s in kept) + history[-len(kept)].length > 2048 - text_rows - max_frames


def test_context_too_long_for_any_frame_is_an_error(streamer):
    huge = streamer.segment(0, "too long", torch.zeros(CODEBOOKS, 2040, dtype=torch.long))
    with pytest.raises(ValueError, match="no room"):
        streamer.plan(huge, [], 0, "Hello there.", 10)


async def test_conversation_remembers_both_sides(tts):
    conversation = tts.new_context()
    assert isinstance(conversation, Conversation) and conversation.keep == 4
    await tts.hear(conversation, "What time is it?", np.zeros(16000, dtype=np.int16))
    chunks = [c async for c in tts.stream("It is noon.", EmotionSettings(), "tara", conversation)]
    user, agent = conversation.segments
    assert (user.speaker, agent.speaker) == (USER_SPEAKER, 0)
    assert user.codes.shape == (CODEBOOKS, 13)  # 1 s of audio at 12.5 Hz, rounded up
    assert agent.codes.shape[1] * FRAME_SAMPLES == sum(len(c.samples) for c in chunks)
    for _ in range(5):
        conversation.add(agent)
    assert len(conversation.segments) == 4


def test_voice_prompts_follow_the_emotion(tts):
    assert tts.voices == ["default", "tara"] and tts.default_voice == "default"
    voice = tts._voices["tara"]
    assert voice.prompt.text == "This is how I sound." and voice.prompt.codes.shape == (CODEBOOKS, 13)
    assert voice.prompt_for(EmotionSettings.from_preset("calm")).text == "Easy now."
    assert voice.prompt_for(EmotionSettings.from_preset("excited")) is voice.prompt
    assert tts._voices["default"].prompt is None


@pytest.mark.parametrize(
    "user, preset, sampling",
    [
        ("anxious", "calm", Sampling(0.5, 20)),
        ("excited", "cheerful", Sampling(0.8, 30)),
        ("neutral", "neutral", NEUTRAL),
    ],
)
async def test_auto_replies_speak_with_their_presets_sampling_and_voice_prompt(
    tts, monkeypatch, user, preset, sampling
):
    chosen = []

    def record(text, voice, sampling, prompt, context):  # what generation would have used
        chosen.append((sampling, prompt))
        return iter(())

    monkeypatch.setattr(tts, "_speak", record)
    reply = reply_emotion(EmotionSettings.from_preset("auto"), user)
    assert reply.preset == preset
    assert [chunk async for chunk in tts.stream("Hello.", reply, "tara")] == []
    voice = tts._voices["tara"]
    assert chosen == [(sampling, voice.emotions["calm"] if preset == "calm" else voice.prompt)]


def test_tara_say_writes_24khz_audio(data_dir, tmp_path, monkeypatch):
    from tara.cli import main

    monkeypatch.setenv("TARA_DATA_DIR", str(data_dir))
    out = tmp_path / "out.wav"
    assert main(["--config", str(TINY), "say", "Hello there.", "-o", str(out)]) == 0
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 24000 and wav.getnchannels() == 1
        assert wav.getnframes() == 25 * FRAME_SAMPLES  # max_audio_ms 2000: the random model never ends


def test_missing_weights_path_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"tts\.weights: .*path does not exist"):
        load_config(TINY, **{"tts.weights": str(tmp_path / "absent.safetensors")})


def test_real_model_needs_every_path(tmp_path):
    config = load_config(TINY, **{"tts.model": "1b"})
    assert isinstance(config.tts, CSMSettings)
    with pytest.raises(ConfigError, match=r"tts\.weights: required for model '1b'"):
        resolve_files(config.tts, tmp_path)


def test_gpu_profile_without_its_files_stops_at_start_naming_keys():
    with pytest.raises(ConfigError, match=r"(?s)stt\.model: .*does not exist.*tts\.weights: .*does not exist"):
        load_config(PROJECT_ROOT / "config" / "gpu.yaml")


def test_overlong_voice_prompt_fails_at_start_naming_the_key(data_dir, tmp_path):
    long_wav = tmp_path / "long.wav"
    write_wav(long_wav, np.zeros(90 * 24000, dtype=np.int16), 24000)
    voices = {"default": {"prompt": {"audio": str(long_wav), "text": "A very long story."}}}
    config = load_config(TINY, **{"data_dir": str(data_dir), "tts.voices": voices})
    assert isinstance(config.tts, CSMSettings)
    with pytest.raises(ConfigError, match=r"tts\.voices\.default\.prompt\.audio: 90s is too long"):
        CSMTTS(config.tts, config.data_path)


async def test_a_session_speaks_through_csm_and_the_voice_hears_both_sides(stack, tts, voice):
    import asyncio
    import dataclasses

    from tara.core.conversation.events import AgentTurnDone
    from tara.core.conversation.session import Session
    from tara.core.conversation.sink import BufferSink
    from tara.tools.filechat import feed

    sink = BufferSink()
    session = Session(dataclasses.replace(stack, tts=tts), sink)
    await feed(session, voice("What is the name of the observatory's main telescope?"), realtime=False)
    async with asyncio.timeout(120):
        while not isinstance(event := await session.events.get(), AgentTurnDone):
            pass
    assert "maple" in event.text.lower()
    assert (audio := sink.audio()) is not None and audio.sample_rate == 24000 and len(audio.samples) > 0
    speakers = [segment.speaker for segment in session.voice_context.state.segments]
    assert speakers[0] == USER_SPEAKER and set(speakers[1:]) == {0}  # the question, then each spoken sentence
    await session.close()
