"""The knowledge base over HTTP (admin): list documents and the index state, upload, delete, reindex.

Uploads go to the configured folder under a checked plain name (400 for paths, hidden names or other
extensions; 413 over ``api.kb_max_bytes``; 409 for an existing name unless ``?replace=1``), written
atomically. ``POST /api/kb/reindex`` rebuilds in the background (progress in ``GET /api/kb``) and then
swaps the index, the prompt and the LLM's cached prefix together (``tara/core/library/knowledge.py``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from tara.core.library.knowledge import DocumentExists, DocumentNotFound, DocumentRejected, ReindexRunning
from tara.server.api.routes import Api, read_form, reply
from tara.server.keys import CONFIG, KB


class KbDocument(BaseModel):
    name: str
    bytes: int
    modified: float
    indexed: bool
    chunks: int


class KbState(BaseModel):
    folder: str
    documents: list[KbDocument]
    index: dict[str, Any] = Field(
        description="state (ready/indexing/failed), phase, progress 0..1, error, stale, "
        "documents, chunks, in_prompt, skipped"
    )


class KbUpload(BaseModel):
    """multipart/form-data fields."""

    file: bytes = Field(
        description="a .txt, .md or .pdf document; its file name is kept", json_schema_extra={"format": "binary"}
    )
    name: str | None = Field(default=None, description="store it under this name instead of the upload's file name")


class KbUploadQuery(BaseModel):
    replace: bool = Field(default=False, description="1: replace a document of the same name")


class Saved(BaseModel):
    name: str
    bytes: int
    replaced: bool
    reindex_needed: bool = True


class Deleted(BaseModel):
    deleted: str
    reindex_needed: bool = True


class Started(BaseModel):
    state: str
    status_url: str = "/api/kb"


async def list_kb(request: web.Request) -> web.Response:
    return reply(KbState(**request.app[KB].describe()))


async def upload(request: web.Request) -> web.Response:
    replace = request.query.get("replace", "0").lower() in ("1", "true", "yes")
    fields = await read_form(request, {"file": request.app[CONFIG].api.kb_max_bytes})
    if "file" not in fields:
        raise web.HTTPBadRequest(reason="missing form field 'file' (a .txt, .md or .pdf document)")
    filename, data = fields["file"]
    name = fields["name"][1].decode("utf-8", "replace") if "name" in fields else filename
    if not name:
        raise web.HTTPBadRequest(reason="the upload has no file name; add a 'name' field")
    try:
        replaced = await request.app[KB].save(name, data, replace=replace)
    except DocumentRejected as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None
    except DocumentExists as exc:
        raise web.HTTPConflict(reason=str(exc)) from None
    return reply(Saved(name=name, bytes=len(data), replaced=replaced), status=201)


async def delete(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        request.app[KB].delete(name)
    except DocumentRejected as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None
    except DocumentNotFound:
        raise web.HTTPNotFound(reason=f"no document {name!r}") from None
    return reply(Deleted(deleted=name))


async def reindex(request: web.Request) -> web.Response:
    try:
        request.app[KB].reindex()
    except ReindexRunning as exc:
        raise web.HTTPConflict(reason=str(exc)) from None
    return reply(Started(state="indexing"), status=202)


def setup(api: Api) -> None:
    api.add("GET", "/api/kb", list_kb, "Documents with their chunk counts, and the index state", response=KbState)
    api.add(
        "POST",
        "/api/kb",
        upload,
        "Upload a document (then reindex to answer from it)",
        form=KbUpload,
        query=KbUploadQuery,
        response=Saved,
        status=201,
        errors=(400, 409, 413),
    )
    api.add("DELETE", "/api/kb/{name}", delete, "Delete a document (then reindex)", response=Deleted, errors=(400, 404))
    api.add(
        "POST",
        "/api/kb/reindex",
        reindex,
        "Rebuild the index in the background; follow it in GET /api/kb",
        response=Started,
        status=202,
        errors=(409,),
    )
