"""The voice library over HTTP: list (open), clone from an upload, delete, listen to a sample (admin).

Cloning needs a backend that can (CSM); Piper answers 422 saying so, and nothing is stored. Every live
session hears of a change at once: its page's voice list is refreshed, and a session speaking with a
deleted voice falls back to the default one (a ``settings`` event says so).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from tara.core.library.voices import VoiceExists, VoiceNotFound, VoiceProtected, VoiceRejected
from tara.core.stages.tts import CloningUnsupportedError
from tara.server.api.routes import Api, read_form, reply, wav_response
from tara.server.keys import CONFIG, PEERS, VOICES


class Voice(BaseModel):
    id: str
    name: str
    source: str = Field(description="config (from the tts section) or uploaded")
    default: bool
    available: bool = Field(description="false: stored, but this backend cannot speak with it (see problem)")
    transcript: str | None = None
    seconds: float | None = None
    problem: str | None = None


class VoiceList(BaseModel):
    voices: list[Voice]
    default: str
    can_clone: bool
    clone_limitation: str | None
    limits: dict[str, float]


class VoiceUpload(BaseModel):
    """multipart/form-data fields."""

    name: str = Field(description="the voice's name; its id is the name in lowercase letters, digits and dashes")
    transcript: str = Field(description="exactly what the recording says")
    audio: bytes = Field(
        description="the reference recording: WAV, FLAC or OGG, mono or stereo", json_schema_extra={"format": "binary"}
    )


class Deleted(BaseModel):
    deleted: str


def _notify_sessions(app: web.Application) -> None:
    for peer in list(app[PEERS].peers.values()):
        peer.session.voices_changed()


async def list_voices(request: web.Request) -> web.Response:
    library, limits = request.app[VOICES], request.app[CONFIG].api
    tts = library.tts
    return reply(
        VoiceList(
            voices=[Voice(**voice) for voice in library.describe()],
            default=tts.default_voice,
            can_clone=tts.can_clone,
            clone_limitation=None if tts.can_clone else tts.clone_limitation,
            limits={
                "max_bytes": limits.voice_max_bytes,
                "min_seconds": limits.voice_min_seconds,
                "max_seconds": limits.voice_max_seconds,
            },
        )
    )


async def upload_voice(request: web.Request) -> web.Response:
    library = request.app[VOICES]
    fields = await read_form(request, {"audio": request.app[CONFIG].api.voice_max_bytes})
    missing = [name for name in ("name", "transcript", "audio") if name not in fields]
    if missing:
        raise web.HTTPBadRequest(reason=f"missing form field(s): {', '.join(missing)} (name, transcript, audio)")
    try:
        name, transcript = (fields[key][1].decode("utf-8") for key in ("name", "transcript"))
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(reason="name and transcript must be UTF-8 text") from None
    try:
        stored = await library.add(name, fields["audio"][1], transcript)
    except CloningUnsupportedError as exc:
        raise web.HTTPUnprocessableEntity(reason=str(exc)) from None
    except VoiceExists as exc:
        raise web.HTTPConflict(reason=str(exc)) from None
    except VoiceRejected as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None
    except ValueError as exc:  # the backend cannot use it (e.g. too long a prompt for CSM)
        raise web.HTTPUnprocessableEntity(reason=f"the recording cannot be a voice: {exc}") from None
    _notify_sessions(request.app)
    voice = next(v for v in library.describe() if v["id"] == stored.id)
    return reply(Voice(**voice), status=201)


async def delete_voice(request: web.Request) -> web.Response:
    voice = request.match_info["id"]
    try:
        request.app[VOICES].delete(voice)
    except VoiceProtected as exc:
        raise web.HTTPConflict(reason=str(exc)) from None
    except VoiceNotFound:
        raise web.HTTPNotFound(reason=f"no voice {voice!r}") from None
    _notify_sessions(request.app)
    return reply(Deleted(deleted=voice))


async def voice_sample(request: web.Request) -> web.Response:
    voice = request.match_info["id"]
    try:
        data = await request.app[VOICES].sample(voice)
    except VoiceNotFound:
        raise web.HTTPNotFound(reason=f"no voice {voice!r} to speak with") from None
    return wav_response(data, f"{voice}-sample.wav")


def setup(api: Api) -> None:
    api.add(
        "GET", "/api/voices", list_voices, "The voices sessions and TTS tasks can use", admin=False, response=VoiceList
    )
    api.add(
        "POST",
        "/api/voices",
        upload_voice,
        "Clone a voice from a reference recording and its transcript (backends that can clone: csm)",
        form=VoiceUpload,
        response=Voice,
        status=201,
        errors=(400, 409, 413, 422),
    )
    api.add(
        "DELETE",
        "/api/voices/{id}",
        delete_voice,
        "Delete an uploaded voice (sessions using it fall back to the default voice)",
        response=Deleted,
        errors=(404, 409),
    )
    api.add(
        "GET",
        "/api/voices/{id}/sample",
        voice_sample,
        "A short sentence spoken in this voice",
        media="audio/wav",
        errors=(404,),
    )
