"""The knowledge base over HTTP: uploads with checked names, deletes, and a background reindex after
which a live session answers from the new document (the prompt and the LLM's cached prefix follow)."""

import asyncio
import io

from aiohttp import FormData

from tara.tools.caller import TaraClient
from tests.models.server.api.conftest import ADMIN
from tests.models.server.api.test_auth import folder_digest
from tests.pdfs import minimal_pdf

LIGHTHOUSE = (
    b"# Quillhaven lighthouse\n\nThe keeper of the Quillhaven lighthouse is named Barnaby Thistlewood. "
    b"He lights the lamp every evening at half past six.\n"
)
QUESTION = "What is the name of the keeper of the Quillhaven lighthouse?"


def document(data: bytes, filename: str | None = "lighthouse.md", name: str | None = None) -> FormData:
    form = FormData(default_to_multipart=True)
    form.add_field("file", io.BytesIO(data), filename=filename, content_type="application/octet-stream")
    if name is not None:
        form.add_field("name", name)
    return form


async def index_ready(client) -> list[dict]:
    """Poll GET /api/kb until the reindex is over; returns every index state seen."""
    seen = []
    for _ in range(600):
        state = (await (await client.get("/api/kb", headers=ADMIN)).json())["index"]
        seen.append(state)
        if state["state"] != "indexing":
            return seen
        await asyncio.sleep(0.1)
    raise AssertionError("the reindex did not finish")


async def test_listing_shows_documents_chunks_and_index_state(api, kb_stack):
    client = await api(stack=kb_stack)
    body = await (await client.get("/api/kb", headers=ADMIN)).json()
    assert {d["name"]: d["indexed"] for d in body["documents"]} == {
        "ferry-timetable.txt": True,
        "orchid-valley-observatory.md": True,
    }
    assert all(d["chunks"] >= 1 for d in body["documents"])
    assert body["index"]["state"] == "ready" and not body["index"]["stale"] and body["index"]["in_prompt"]


async def test_bad_uploads_and_deletes_are_4xx_and_nothing_is_lost(api, kb_stack, kb_copy):
    client = await api(stack=kb_stack, api={"kb_max_bytes": 4096})
    outside = kb_copy.parent / "x.md"
    outside.write_text("not in the knowledge base")
    before = folder_digest(kb_copy.parent)
    uploads = [
        (document(LIGHTHOUSE, "../x.md"), 400, "plain file name"),
        (document(LIGHTHOUSE, "sub/x.md"), 400, "x.md"),  # (the client percent-encodes it: refused either way)
        (document(LIGHTHOUSE, "..\\x.md"), 400, "x.md"),
        (document(LIGHTHOUSE, name="..%2Fx.md"), 400, "plain file name"),
        (document(LIGHTHOUSE, name="sub/x.md"), 400, "plain file name"),
        (document(LIGHTHOUSE, ".hidden.md"), 400, "plain file name"),
        (document(LIGHTHOUSE, "notes.exe"), 400, "only .md, .pdf, .txt"),
        (document(LIGHTHOUSE, "no-extension"), 400, "only"),
        (document(LIGHTHOUSE, None), 400, "only"),  # (aiohttp names it after the field)
        (document(b"x" * 5000, "big.md"), 413, "over 4096 bytes"),
        (document(b"\xff\xfe\x00bad", "latin.txt"), 400, "UTF-8"),
        (document(b"   \n", "empty.md"), 400, "empty"),
        (document(b"%PDF-1.4 not really", "fake.pdf"), 400, "readable PDF"),
        (document(b"plain text", "fake2.pdf"), 400, "not a PDF"),
        (document(b"New timetable.", "ferry-timetable.txt"), 409, "replace=1"),
    ]
    for form, status, words in uploads:
        response = await client.post("/api/kb", data=form, headers=ADMIN)
        assert response.status == status, words
        assert words in (await response.json())["error"], words
    assert (await client.post("/api/kb", json={"file": "x"}, headers=ADMIN)).status == 400
    for path, status in [
        ("/api/kb/..%2Fx.md", (400, 404)),
        ("/api/kb/%2E%2E%2Fx.md", (400, 404)),
        ("/api/kb/..", (400, 404)),
        ("/api/kb/.hidden.md", (400,)),
        ("/api/kb/missing.md", (404,)),
        ("/api/kb/ferry-timetable.exe", (400,)),
    ]:
        response = await client.delete(path, headers=ADMIN)
        assert response.status in status and "error" in await response.json(), path
    assert folder_digest(kb_copy.parent) == before  # every file intact, nothing written
    assert outside.read_text() == "not in the knowledge base"
    passages = await kb_stack.retriever.retrieve("How much is a ticket for the ferry?")
    assert passages[0].source == "ferry-timetable.txt"  # the index still answers
    assert not (await (await client.get("/api/kb", headers=ADMIN)).json())["index"]["stale"]


async def test_upload_replace_and_delete(api, kb_stack, kb_copy):
    client = await api(stack=kb_stack)
    response = await client.post("/api/kb", data=document(minimal_pdf("Bikes are free."), "bikes.pdf"), headers=ADMIN)
    assert response.status == 201 and (await response.json())["replaced"] is False
    listing = await (await client.get("/api/kb", headers=ADMIN)).json()
    assert {"name": "bikes.pdf", "indexed": False, "chunks": 0}.items() <= next(
        d for d in listing["documents"] if d["name"] == "bikes.pdf"
    ).items()
    assert listing["index"]["stale"]
    replaced = await client.post(
        "/api/kb?replace=1", data=document(b"The ferry is now free.", "ferry-timetable.txt"), headers=ADMIN
    )
    assert replaced.status == 201 and (await replaced.json())["replaced"] is True
    assert (kb_copy / "ferry-timetable.txt").read_text() == "The ferry is now free."
    assert (await client.delete("/api/kb/bikes.pdf", headers=ADMIN)).status == 200
    assert not (kb_copy / "bikes.pdf").exists()
    assert not list(kb_copy.glob(".upload-*"))


async def test_an_uploaded_document_is_answered_from_after_reindex(api, live_server, config, kb_stack, tmp_path):
    client = await api(stack=kb_stack)
    assert (await client.post("/api/kb", data=document(LIGHTHOUSE), headers=ADMIN)).status == 201
    assert "Barnaby" not in kb_stack.prompts.grounded_system
    started = await client.post("/api/kb/reindex", headers=ADMIN)
    assert started.status == 202
    again = await client.post("/api/kb/reindex", headers=ADMIN)
    assert again.status == 409 and "already running" in (await again.json())["error"]
    seen = await index_ready(client)
    assert seen[0]["state"] == "indexing" and seen[-1]["state"] == "ready", seen[-1]["error"]
    assert {s["phase"] for s in seen} >= {"warming"} or len(seen) > 1
    assert not seen[-1]["stale"] and seen[-1]["documents"] == 3
    listing = await (await client.get("/api/kb", headers=ADMIN)).json()
    assert next(d for d in listing["documents"] if d["name"] == "lighthouse.md")["chunks"] >= 1
    assert "Barnaby Thistlewood" in kb_stack.prompts.grounded_system  # the new documents are in the system prompt
    assert kb_stack.llm.holds(kb_stack.prompts.warm_up_prefixes()[0])  # and that prefix is cached already

    url, _ = await live_server(
        stack=kb_stack, app_config=config.model_copy(update={"data_dir": str(tmp_path / "live")})
    )
    async with TaraClient(url) as caller:
        caller.send({"type": "text", "text": QUESTION})
        done = await caller.wait_for("agent_done", timeout=120)
    assert "barnaby" in done["text"].lower()


async def test_a_failed_reindex_keeps_the_old_index_working(api, kb_stack, monkeypatch):
    client = await api(stack=kb_stack)
    old_retriever, old_prompts = kb_stack.retriever, kb_stack.prompts

    def broken(progress=None):
        raise OSError("disk full")

    monkeypatch.setattr(old_retriever, "refreshed", broken)
    assert (await client.post("/api/kb/reindex", headers=ADMIN)).status == 202
    final = (await index_ready(client))[-1]
    assert final["state"] == "failed" and "disk full" in final["error"]
    assert kb_stack.retriever is old_retriever and kb_stack.prompts is old_prompts
    passages = await kb_stack.retriever.retrieve("What is the observatory's telescope called?")
    assert passages[0].source == "orchid-valley-observatory.md"
    monkeypatch.undo()
    assert (await client.post("/api/kb/reindex", headers=ADMIN)).status == 202  # and it can be tried again
    assert (await index_ready(client))[-1]["state"] == "ready"
