"""TTS tasks: 202 + id, progress, WAV; bad input is a 400; a full queue is a 429; a failing task fails alone."""

import asyncio
import dataclasses
import io
import wave

import numpy as np

from tara.core.audio import AudioChunk
from tara.core.stages.tts import TTS
from tests.models.server.api.conftest import ADMIN
from tests.models.server.api.test_voices import finished


async def test_a_task_is_queued_spoken_and_fetched_as_wav(api):
    client = await api()
    response = await client.post(
        "/api/tts",
        json={"text": "Hello there. The ferry leaves at nine.", "emotion": "calm", "energy": 0.3, "device": "cpu"},
        headers=ADMIN,
    )
    task = await response.json()
    assert response.status == 202 and response.headers["Location"] == f"/api/tasks/{task['id']}"
    assert task["state"] in ("queued", "running") and task["sentences_total"] == 2 and task["voice"] == "joe"
    done = await finished(client, task["id"])
    assert done["state"] == "done" and done["progress"] == 1.0 and done["sentences_done"] == 2
    assert done["emotion"] == "custom" and done["seconds"] > 1.0
    audio = await client.get(done["audio_url"], headers=ADMIN)
    with wave.open(io.BytesIO(await audio.read())) as wav:
        assert wav.getframerate() == 22050 and round(wav.getnframes() / 22050, 2) == done["seconds"]
    listed = await (await client.get("/api/tasks", headers=ADMIN)).json()
    assert listed["tasks"][0]["id"] == task["id"] and listed["waiting"] == 0


async def test_bad_requests_are_400_and_unknown_tasks_404(api):
    client = await api(api={"tts_max_chars": 50})
    cases = [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"text": 5}', "text"),
        (b'{"text": ""}', "text"),
        (b'{"voice": "joe"}', "text"),
        (b'{"text": "Hi.", "speed": 2}', "speed"),
        (b'{"text": "Hi.", "warmth": "high"}', "warmth"),
        (b'{"text": "Hi.", "warmth": 3}', "warmth"),
        (b'{"text": "Hi.", "emotion": "furious"}', "furious"),
        (b'{"text": "Hi.", "voice": "nobody"}', "nobody"),
        (b'{"text": "Hi.", "device": "tpu"}', "device"),
        (b'{"text": "Hi.", "device": "cuda"}', "cuda"),
        (b'{"text": "' + b"x" * 60 + b'"}', "tts_max_chars"),
        (b'{"text": "   "}', "nothing to say"),
    ]
    for body, words in cases:
        response = await client.post("/api/tts", data=body, headers=ADMIN | {"Content-Type": "application/json"})
        assert response.status == 400, body
        assert words in (await response.json())["error"], body
    assert (await client.get("/api/tasks", headers=ADMIN)).status == 200
    assert (await (await client.get("/api/tasks", headers=ADMIN)).json())["tasks"] == []  # nothing was queued
    assert (await client.get("/api/tasks/nope", headers=ADMIN)).status == 404
    assert (await client.get("/api/tasks/nope/audio", headers=ADMIN)).status == 404
    huge = await client.post(
        "/api/tts", data=b'{"text": "' + b"x" * 300_000 + b'"}', headers=ADMIN | {"Content-Type": "application/json"}
    )
    assert huge.status == 413


class ScriptedTTS(TTS):
    """Waits for ``go`` on each sentence; fails on sentences containing 'boom'."""

    sample_rate = 16000
    default_voice = "plain"

    def __init__(self) -> None:
        self.go = asyncio.Event()

    @property
    def voices(self) -> list[str]:
        return ["plain"]

    async def stream(self, text, emotion, voice=None, context=None, urgent=True):
        await self.go.wait()
        if "boom" in text:
            raise RuntimeError("the voice broke")
        yield AudioChunk(np.full(1600, 1000, dtype=np.int16), 16000)


async def test_a_full_queue_is_a_429_and_a_failed_task_fails_alone(api, stack):
    tts = ScriptedTTS()
    client = await api(stack=dataclasses.replace(stack, tts=tts), api={"tts_queue_size": 2})
    ids = []
    for text in ("First one.", "This goes boom.", "Third one."):  # one runs (held), two wait
        response = await client.post("/api/tts", json={"text": text}, headers=ADMIN)
        assert response.status == 202
        ids.append((await response.json())["id"])
        await asyncio.sleep(0.05)
    full = await client.post("/api/tts", json={"text": "One too many."}, headers=ADMIN)
    assert full.status == 429 and "tts_queue_size" in (await full.json())["error"] and full.headers["Retry-After"]
    running = await (await client.get(f"/api/tasks/{ids[0]}", headers=ADMIN)).json()
    assert running["state"] == "running"
    early = await client.get(f"/api/tasks/{ids[2]}/audio", headers=ADMIN)
    assert early.status == 409 and "queued" in (await early.json())["error"]

    tts.go.set()
    first, failed, third = [await finished(client, task_id) for task_id in ids]
    assert first["state"] == "done" and third["state"] == "done"
    assert failed["state"] == "failed" and "the voice broke" in failed["error"]
    assert (await client.get(f"/api/tasks/{ids[1]}/audio", headers=ADMIN)).status == 409
    assert (await client.post("/api/tts", json={"text": "Room again."}, headers=ADMIN)).status == 202
    metrics = await (await client.get("/metrics", headers=ADMIN)).text()
    assert (
        'tara_tts_tasks_total{state="failed"} 1.0' in metrics and 'tara_errors_total{stage="tts_task"} 1.0' in metrics
    )


async def test_only_the_most_recent_finished_tasks_are_kept(api):
    client = await api(api={"tts_keep_tasks": 2})
    ids = []
    for n in range(3):
        ids.append((await (await client.post("/api/tts", json={"text": f"Number {n}."}, headers=ADMIN)).json())["id"])
    for task_id in ids[1:]:
        await finished(client, task_id)
    assert (await client.get(f"/api/tasks/{ids[0]}", headers=ADMIN)).status == 404
    assert [t["id"] for t in (await (await client.get("/api/tasks", headers=ADMIN)).json())["tasks"]] == ids[:0:-1]
