"""The API's route table: every endpoint with what it takes and gives, so ``/api/openapi.json`` is
generated from the same records the router uses (never a hand-kept description).

Admin endpoints are guarded here, in one place: ``Authorization: Bearer <admin token>`` or a JSON 401.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ConfigDict, ValidationError

from tara.server.auth import check_admin
from tara.server.keys import CONFIG

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """A request body: unknown fields and wrong types are errors, never silently coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Error(BaseModel):
    error: str


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    admin: bool = True  # needs the admin token
    body: type[BaseModel] | None = None  # JSON request body
    form: type[BaseModel] | None = None  # multipart/form-data fields (files: json_schema_extra format binary)
    query: type[BaseModel] | None = None  # query parameters
    response: type[BaseModel] | None = None  # JSON response body
    media: str = "application/json"  # the success response's media type
    status: int = 200
    errors: tuple[int, ...] = ()  # 4xx/5xx this endpoint answers (401 is added for admin endpoints)


class Api:
    """Endpoints registered by the resource modules, installed on the app with the admin guard."""

    def __init__(self, admin_token: str) -> None:
        self.admin_token = admin_token
        self.endpoints: list[Endpoint] = []

    def add(self, method: str, path: str, handler: Handler, summary: str, **meta) -> None:
        self.endpoints.append(Endpoint(method, path, handler, summary, **meta))

    def install(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, self._guarded(endpoint))

    def _guarded(self, endpoint: Endpoint) -> Handler:
        if not endpoint.admin:
            return endpoint.handler

        async def handler(request: web.Request) -> web.StreamResponse:
            check_admin(request, self.admin_token)
            return await endpoint.handler(request)

        return handler


API = web.AppKey("api", Api)


def problems(error: ValidationError) -> str:
    """Pydantic's errors in a line: ``voice: Input should be a valid string; text: Field required``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:4])


@contextlib.asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """The body must arrive within ``server.body_timeout_s`` (408 after): a trickling client holds nothing."""
    seconds = request.app[CONFIG].server.body_timeout_s
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            reason=f"the request body did not arrive within {seconds:g} s (server.body_timeout_s)"
        ) from None


async def read_body(request: web.Request) -> bytes:
    async with body_deadline(request):
        return await request.read()


async def read_json(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as ``model``; 400 naming what is wrong, 413 when over the app's size limit."""
    raw = await read_body(request)
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise web.HTTPBadRequest(reason=f"bad request body: {problems(exc)}") from None


def reply(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


def wav_response(data: bytes, filename: str) -> web.Response:
    return web.Response(
        body=data, content_type="audio/wav", headers={"Content-Disposition": f'inline; filename="{filename}"'}
    )


MAX_FORM_PARTS = 8  # every form here has two or three fields


async def read_form(
    request: web.Request, limits: dict[str, int], default_limit: int = 64 * 1024
) -> dict[str, tuple[str | None, bytes]]:
    """multipart/form-data fields → {name: (filename, bytes)}, each read up to its limit (413 beyond);
    at most ``MAX_FORM_PARTS`` parts; a malformed body is a 400."""
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(reason="send multipart/form-data")
    fields: dict[str, tuple[str | None, bytes]] = {}
    parts = 0
    try:
        async with body_deadline(request):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or not part.name:
                    raise web.HTTPBadRequest(reason="unexpected nested multipart content")
                parts += 1
                if parts > MAX_FORM_PARTS:
                    raise web.HTTPBadRequest(reason=f"too many form fields (at most {MAX_FORM_PARTS})")
                limit = limits.get(part.name, default_limit)
                data = bytearray()
                while chunk := await part.read_chunk(64 * 1024):
                    data += chunk
                    if len(data) > limit:
                        raise web.HTTPRequestEntityTooLarge(
                            max_size=limit, actual_size=len(data), reason=f"the {part.name} field is over {limit} bytes"
                        )
                fields[part.name] = (part.filename, bytes(data))
    except (ValueError, HttpProcessingError) as exc:  # a malformed body, a part header too long or unparsable
        raise web.HTTPBadRequest(reason=f"malformed multipart body: {' '.join(str(exc).split())[:200]}") from None
    return fields
