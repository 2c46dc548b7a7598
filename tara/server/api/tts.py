"""Text-to-speech tasks: ``POST /api/tts`` queues one (202 + id), ``GET /api/tasks/{id}`` follows it,
``GET /api/tasks/{id}/audio`` fetches the WAV.

One worker speaks the tasks in order, sentence by sentence (progress = sentences done / total), with
the live sessions' TTS. The queue is bounded (``api.tts_queue_size``; one more is a 429) and the
``api.tts_keep_tasks`` most recent finished tasks keep their audio. A task that fails is marked failed
with its error; the worker goes on with the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from aiohttp import web
from pydantic import BaseModel, Field

from tara.core.audio import wav_bytes
from tara.core.config import ConfigError
from tara.core.conversation.text import split_sentences
from tara.core.devices import resolve_device
from tara.core.emotion import EmotionSettings
from tara.core.stages.tts import TTS
from tara.server.api.routes import Api, Body, read_json, reply, wav_response
from tara.server.keys import CONFIG, STACK

log = logging.getLogger(__name__)
State = Literal["queued", "running", "done", "failed"]
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class SpeechRequest(Body):
    text: str = Field(min_length=1, description="what to say (at most api.tts_max_chars)")
    voice: str | None = Field(default=None, description="a voice id from GET /api/voices; default: the default voice")
    emotion: str | None = Field(
        default=None, description="an emotion preset (neutral, calm, warm, cheerful, excited, serious)"
    )
    warmth: float | None = Field(default=None, ge=0.0, le=1.0)
    energy: float | None = Field(default=None, ge=0.0, le=1.0)
    rate: float | None = Field(default=None, ge=0.0, le=1.0)
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="where it must run; the voice's own device"
    )


class TaskInfo(BaseModel):
    id: str
    state: State
    progress: float
    sentences_done: int
    sentences_total: int
    voice: str
    emotion: str
    created: float
    started: float | None
    finished: float | None
    seconds: float | None = Field(description="length of the audio, once done")
    error: str | None
    audio_url: str | None


class TaskList(BaseModel):
    tasks: list[TaskInfo]
    waiting: int


@dataclass
class Task:
    id: str
    sentences: list[str]
    voice: str
    emotion: EmotionSettings
    state: State = "queued"
    done: int = 0
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    audio: bytes | None = None
    seconds: float | None = None

    def info(self) -> TaskInfo:
        total = len(self.sentences)
        return TaskInfo(
            id=self.id,
            state=self.state,
            progress=round(self.done / total, 3) if total else 0.0,
            sentences_done=self.done,
            sentences_total=total,
            voice=self.voice,
            emotion=self.emotion.preset,
            created=self.created,
            started=self.started,
            finished=self.finished,
            seconds=self.seconds,
            error=self.error,
            audio_url=f"/api/tasks/{self.id}/audio" if self.state == "done" else None,
        )


class QueueFull(Exception):
    pass


class TaskQueue:
    def __init__(self, tts: Callable[[], TTS], size: int, keep: int) -> None:
        self._tts = tts  # the stack's TTS, looked up when a task runs
        self.tasks: OrderedDict[str, Task] = OrderedDict()
        self.keep = keep
        self._queue: asyncio.Queue[Task] = asyncio.Queue(maxsize=size)
        self.on_finished: list[Callable[[Task], None]] = []  # metrics

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def submit(self, sentences: list[str], voice: str, emotion: EmotionSettings) -> Task:
        task = Task(uuid.uuid4().hex[:12], sentences, voice, emotion)
        try:
            self._queue.put_nowait(task)
        except asyncio.QueueFull:
            raise QueueFull from None
        self.tasks[task.id] = task
        return task

    async def run(self) -> None:
        """The worker: one task at a time, for as long as the app runs."""
        while True:
            task = await self._queue.get()
            task.state, task.started = "running", time.time()
            try:
                await self._speak(task)
                task.state = "done"
            except asyncio.CancelledError:
                task.state, task.error = "failed", "the server stopped"
                raise
            except Exception as exc:  # this task fails; the queue goes on
                log.warning("tts task %s failed: %s", task.id, exc)
                task.state, task.error = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                task.finished = time.time()
                for callback in self.on_finished:
                    callback(task)
                self._prune()

    async def _speak(self, task: Task) -> None:
        tts = self._tts()
        parts: list[np.ndarray] = []
        rate = tts.sample_rate
        for sentence in task.sentences:
            async for chunk in tts.stream(sentence, task.emotion, task.voice):
                parts.append(chunk.samples)
                rate = chunk.sample_rate
            task.done += 1
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        task.audio, task.seconds = wav_bytes(samples, rate), round(len(samples) / rate, 2)

    def _prune(self) -> None:
        finished = [t.id for t in self.tasks.values() if t.state in ("done", "failed")]
        for task_id in finished[: max(0, len(finished) - self.keep)]:
            del self.tasks[task_id]


TASKS = web.AppKey("tts_tasks", TaskQueue)


def emotion_of(body: SpeechRequest) -> EmotionSettings:
    base = EmotionSettings.from_preset(body.emotion) if body.emotion else EmotionSettings()
    sliders = {name: value for name in ("warmth", "energy", "rate") if (value := getattr(body, name)) is not None}
    return base.with_sliders(**sliders) if sliders else base


async def create_task(request: web.Request) -> web.Response:
    body = await read_json(request, SpeechRequest)
    config, tts = request.app[CONFIG], request.app[STACK].tts
    if len(body.text) > config.api.tts_max_chars:
        raise web.HTTPBadRequest(
            reason=f"text is {len(body.text)} characters; at most {config.api.tts_max_chars} (api.tts_max_chars)"
        )
    if CONTROL_CHARACTERS.search(body.text):
        raise web.HTTPBadRequest(
            reason="text must not hold NUL or other control characters (tabs and newlines are fine)"
        )
    sentences = split_sentences(body.text)
    if not sentences:
        raise web.HTTPBadRequest(reason="text has nothing to say")
    voice = body.voice or tts.default_voice
    if voice not in tts.voices:
        raise web.HTTPBadRequest(reason=f"unknown voice {voice!r}; choose one of {', '.join(tts.voices)}")
    try:
        emotion = emotion_of(body)
        device = resolve_device(body.device, "device")
    except (ValueError, ConfigError) as exc:
        raise web.HTTPBadRequest(reason=str(exc).splitlines()[0]) from None
    if body.device != "auto" and device != tts.device:
        raise web.HTTPBadRequest(
            reason=f"device: the voice ({config.tts.backend}) runs on {tts.device}, "
            f"not {device}; its device is set at start (tts section)"
        )
    try:
        task = request.app[TASKS].submit(sentences, voice, emotion)
    except QueueFull:
        raise web.HTTPTooManyRequests(
            reason=f"the TTS queue is full ({config.api.tts_queue_size} waiting, api.tts_queue_size); try again later",
            headers={"Retry-After": "5"},
        ) from None
    response = reply(task.info(), status=202)
    response.headers["Location"] = f"/api/tasks/{task.id}"
    return response


def _task(request: web.Request) -> Task:
    task_id = request.match_info["id"]
    task = request.app[TASKS].tasks.get(task_id)
    if task is None:
        raise web.HTTPNotFound(reason=f"no task {task_id!r} (finished tasks are kept: api.tts_keep_tasks)")
    return task


async def list_tasks(request: web.Request) -> web.Response:
    queue = request.app[TASKS]
    return reply(TaskList(tasks=[task.info() for task in reversed(queue.tasks.values())], waiting=queue.waiting))


async def get_task(request: web.Request) -> web.Response:
    return reply(_task(request).info())


async def task_audio(request: web.Request) -> web.Response:
    task = _task(request)
    if task.state != "done" or task.audio is None:
        detail = f": {task.error}" if task.error else ""
        raise web.HTTPConflict(reason=f"task {task.id} is {task.state}, it has no audio{detail}")
    return wav_response(task.audio, f"tara-{task.id}.wav")


def install(app: web.Application) -> None:
    """The queue and its worker, living as long as the app."""
    limits = app[CONFIG].api
    app[TASKS] = TaskQueue(lambda: app[STACK].tts, limits.tts_queue_size, limits.tts_keep_tasks)

    async def worker(app: web.Application):
        runner = asyncio.get_running_loop().create_task(app[TASKS].run())
        yield
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner

    app.cleanup_ctx.append(worker)


def setup(api: Api) -> None:
    api.add(
        "POST",
        "/api/tts",
        create_task,
        "Queue text to speak; answers 202 with the task",
        body=SpeechRequest,
        response=TaskInfo,
        status=202,
        errors=(400, 413, 429),
    )
    api.add("GET", "/api/tasks", list_tasks, "Recent TTS tasks, newest first", response=TaskList)
    api.add(
        "GET",
        "/api/tasks/{id}",
        get_task,
        "A TTS task: queued, running (with progress), done or failed",
        response=TaskInfo,
        errors=(404,),
    )
    api.add(
        "GET",
        "/api/tasks/{id}/audio",
        task_audio,
        "The spoken text of a finished task",
        media="audio/wav",
        errors=(404, 409),
    )
