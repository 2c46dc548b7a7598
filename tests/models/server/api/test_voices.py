"""The voice library over HTTP, with real cloning (CSM with the tiny random model on the CPU).

The proof that an uploaded voice is used: CSM reads its prompt (the reference's Mimi codes) before the
text it speaks, so the rows fed to the generator must contain the codes of the uploaded recording.
"""

import asyncio
import dataclasses
import time

import aiohttp
import numpy as np
import pytest
import torch
from aiohttp import FormData

from tara.core.audio import read_audio, write_wav
from tara.core.stages.tts import TTS_BACKENDS
from tara.tools.caller import TaraClient
from tests.models.server.api.conftest import ADMIN, tone

TRANSCRIPT = "This is how Ada sounds."


def voice_form(
    name: str | None = "Ada", audio: bytes | None = None, transcript: str | None = TRANSCRIPT, filename="ada.wav"
) -> FormData:
    form = FormData(default_to_multipart=True)
    if name is not None:
        form.add_field("name", name)
    if transcript is not None:
        form.add_field("transcript", transcript)
    if audio is not None:
        form.add_field("audio", audio, filename=filename, content_type="audio/wav")
    return form


def wav_of(samples: np.ndarray, tmp_path, rate: int = 24000) -> bytes:
    path = tmp_path / f"clip-{len(samples)}-{rate}.wav"
    write_wav(path, samples, rate)
    return path.read_bytes()


@pytest.fixture
def generations(csm_tts, monkeypatch):
    """Every row sequence CSM generated from (prompt + conversation + text), in order."""
    streamer = csm_tts._streamer
    seen: list[torch.Tensor] = []
    real = streamer.frames

    def frames(tokens, mask, max_frames, sampling):
        seen.append(tokens.clone())
        return real(tokens, mask, max_frames, sampling)

    monkeypatch.setattr(streamer, "frames", frames)
    return seen


def conditioned_on(tokens: torch.Tensor, codes: torch.Tensor) -> bool:
    """Whether ``codes`` [codebooks, frames] appear as consecutive audio rows of ``tokens``."""
    rows, frames = tokens[:, :-1], codes.T
    return any(torch.equal(rows[i : i + len(frames)], frames) for i in range(len(rows) - len(frames) + 1))


def reference_codes(csm_tts, wav: bytes, tmp_path) -> torch.Tensor:
    """The reference recording Mimi-encoded here, independently of the upload path."""
    path = tmp_path / "independent.wav"
    path.write_bytes(wav)
    return csm_tts._streamer.encode(read_audio(path, 24000))


async def finished(client, task_id: str) -> dict:
    for _ in range(600):
        task = await (await client.get(f"/api/tasks/{task_id}", headers=ADMIN)).json()
        if task["state"] in ("done", "failed"):
            return task
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish")


async def test_piper_cannot_clone_and_says_so_storing_nothing(api, reference_wav, tmp_path):
    client = await api()
    listed = await (await client.get("/api/voices")).json()
    assert [v["id"] for v in listed["voices"]] == ["joe"] and not listed["can_clone"]
    response = await client.post("/api/voices", data=voice_form(audio=reference_wav), headers=ADMIN)
    assert response.status == 422 and "Piper" in (await response.json())["error"]
    assert not any((tmp_path / "data" / "voices").glob("*"))
    assert await (await client.get("/api/voices")).json() == listed


async def test_bad_uploads_get_4xx_and_leave_the_library_as_it_was(api, csm_stack, reference_wav, tmp_path):
    client = await api(stack=csm_stack, api={"voice_max_bytes": 200_000})
    voices_dir = tmp_path / "data" / "voices"
    assert (await client.post("/api/voices", data=voice_form(audio=reference_wav), headers=ADMIN)).status == 201
    before = await (await client.get("/api/voices")).json()
    cases = [
        (voice_form(audio=None), 400, "audio"),
        (voice_form(audio=reference_wav, transcript=None), 400, "transcript"),
        (voice_form(audio=reference_wav, transcript="   "), 400, "transcript"),
        (voice_form(name="../../evil", audio=reference_wav), 400, "path"),
        (voice_form(name="a/b", audio=reference_wav), 400, "path"),
        (voice_form(name="...", audio=reference_wav), 400, "path"),
        (voice_form(name="!!!", audio=reference_wav), 400, "letter"),
        (voice_form(name="x" * 61, audio=reference_wav), 400, "name"),
        (voice_form(name="Bob", audio=b"just some text, not audio" * 10, filename="bob.wav"), 400, "WAV"),
        (voice_form(name="Bob", audio=wav_of(tone(0.4), tmp_path)), 400, "lasts 0.4s"),
        (voice_form(name="Bob", audio=wav_of(tone(35.0, 8000), tmp_path, 8000)), 413, "over"),
        (voice_form(name="Bob", audio=wav_of(np.zeros(48000, np.int16), tmp_path)), 400, "silent"),
        (voice_form(name="ADA", audio=reference_wav), 409, "exists"),
        (voice_form(name="default", audio=reference_wav), 409, "exists"),
    ]
    for form, status, words in cases:
        response = await client.post("/api/voices", data=form, headers=ADMIN)
        assert response.status == status, words
        assert words in (await response.json())["error"], words
    wrong_types = await client.post("/api/voices", json={"name": "Bob", "audio": 5}, headers=ADMIN)
    assert wrong_types.status == 400
    assert await (await client.get("/api/voices")).json() == before
    assert sorted(p.name for p in voices_dir.iterdir()) == ["ada"]  # no half-written upload left behind
    assert sorted(p.name for p in (voices_dir / "ada").iterdir()) == ["meta.json", "reference.wav"]


async def test_long_recordings_are_refused_by_duration(api, csm_stack, tmp_path):
    client = await api(stack=csm_stack)
    response = await client.post(
        "/api/voices", data=voice_form(audio=wav_of(tone(31.0, 8000), tmp_path, 8000)), headers=ADMIN
    )
    assert response.status == 400 and "must last 1 to 30s" in (await response.json())["error"]


async def test_an_uploaded_voice_conditions_the_next_tts_task_and_survives_a_restart(
    api, csm_stack, csm_tts, csm_config, reference_wav, generations, tmp_path
):
    client = await api(stack=csm_stack)
    response = await client.post("/api/voices", data=voice_form(audio=reference_wav), headers=ADMIN)
    voice = await response.json()
    assert response.status == 201 and voice["id"] == "ada" and voice["source"] == "uploaded" and voice["seconds"] == 2.0
    codes = reference_codes(csm_tts, reference_wav, tmp_path)

    task = await (await client.post("/api/tts", json={"text": "Hello there.", "voice": "ada"}, headers=ADMIN)).json()
    assert (await finished(client, task["id"]))["state"] == "done"
    assert conditioned_on(generations[-1], codes)  # the uploaded recording prompts the generator
    audio = await client.get(f"/api/tasks/{task['id']}/audio", headers=ADMIN)
    assert audio.status == 200 and audio.content_type == "audio/wav"

    plain = await (await client.post("/api/tts", json={"text": "Hello there."}, headers=ADMIN)).json()
    assert (await finished(client, plain["id"]))["voice"] == "default"
    assert not conditioned_on(generations[-1], codes)  # the default voice has no such prompt

    sample = await client.get("/api/voices/ada/sample", headers=ADMIN)
    assert sample.status == 200 and sample.content_type == "audio/wav"
    assert conditioned_on(generations[-1], codes)
    assert (await client.get("/api/voices/nobody/sample", headers=ADMIN)).status == 404

    # a restart: a new TTS and app on the same data dir load the voice from <data_dir>/voices
    restarted_tts = TTS_BACKENDS.create("csm", csm_config.tts, csm_config.data_path)
    restarted = await api(stack=dataclasses.replace(csm_stack, tts=restarted_tts))
    listed = await (await restarted.get("/api/voices")).json()
    ada = next(v for v in listed["voices"] if v["id"] == "ada")
    assert ada["source"] == "uploaded" and ada["available"] and ada["transcript"] == TRANSCRIPT
    # the CSM backend's own voices (TTS_BACKENDS.create is typed TTS)
    assert torch.equal(restarted_tts._voices["ada"].prompt.codes, codes)  # pyright: ignore[reportAttributeAccessIssue]


async def test_deleting_voices(api, csm_stack, reference_wav, tmp_path):
    client = await api(stack=csm_stack)
    await client.post("/api/voices", data=voice_form(audio=reference_wav), headers=ADMIN)
    assert (await client.delete("/api/voices/default", headers=ADMIN)).status == 409  # from the config
    assert (await client.delete("/api/voices/nobody", headers=ADMIN)).status == 404
    assert (await client.delete("/api/voices/..%2F..%2Fetc", headers=ADMIN)).status == 404
    response = await client.delete("/api/voices/ada", headers=ADMIN)
    assert response.status == 200 and (await response.json()) == {"deleted": "ada"}
    assert not (tmp_path / "data" / "voices" / "ada").exists()
    assert "ada" not in csm_stack.tts.voices
    assert (await client.delete("/api/voices/ada", headers=ADMIN)).status == 404
    refused = await client.post("/api/tts", json={"text": "Hi.", "voice": "ada"}, headers=ADMIN)
    assert refused.status == 400 and "unknown voice" in (await refused.json())["error"]


async def test_a_live_session_speaks_with_an_uploaded_voice_and_falls_back_when_it_goes(
    live_server, config, csm_stack, csm_tts, reference_wav, generations, tmp_path
):
    url, _ = await live_server(
        stack=csm_stack, app_config=config.model_copy(update={"data_dir": str(tmp_path / "live")})
    )
    codes = reference_codes(csm_tts, reference_wav, tmp_path)
    async with TaraClient(url) as caller, aiohttp.ClientSession(headers=ADMIN) as http:
        await caller.wait_for("settings", timeout=10)  # the call's first settings, so the next is the upload's
        since = time.perf_counter()
        async with http.post(f"{url}/api/voices", data=voice_form(audio=reference_wav)) as response:
            assert response.status == 201
        assert "ada" in (await caller.wait_for("settings", after=since, timeout=10))["voices"]  # the page's list
        caller.send({"type": "voice", "voice": "ada"})
        await caller.wait_for("settings", voice="ada", timeout=10)
        caller.send({"type": "text", "text": "What is the name of the observatory's main telescope?"})
        await caller.wait_for("agent_done", timeout=120)
        assert generations and all(conditioned_on(tokens, codes) for tokens in generations)  # every sentence: Ada
        assert len(generations) == len(caller.events_of("agent_text"))
        await asyncio.sleep(0.5)
        assert np.abs(caller.received.audio()).max() > 1000  # and it reached the caller

        since = time.perf_counter()
        async with http.delete(f"{url}/api/voices/ada") as response:
            assert response.status == 200
        fallback = await caller.wait_for("settings", after=since, timeout=10)
        assert fallback["voice"] == "default" and "ada" not in fallback["voices"]
