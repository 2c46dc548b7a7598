"""The knowledge base behind a running stack: its documents, uploads, deletions and reindexing.

A reindex builds a new retriever in a worker thread while the old one keeps answering, then swaps
three things together on the event loop: the retriever, the prompt builder (a small knowledge base
sits whole in the system prompt) and the LLM's cached prefix (warmed with the new system prompt
first), plus the speech-recognition hints. Live sessions read them from the stack at every turn, so
their next question is answered from the new documents. A failed reindex changes nothing.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from tara.core.conversation.prompt import PromptBuilder
from tara.core.stack import AgentStack
from tara.core.stages.rag import Retriever
from tara.core.stages.rag.documents import SUPPORTED, document_words, kb_files, vocabulary

log = logging.getLogger(__name__)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ ()+-]{0,119}")


class DocumentRejected(ValueError):
    """A name or content the knowledge base does not take."""


class DocumentExists(ValueError):
    pass


class DocumentNotFound(KeyError):
    pass


class ReindexRunning(RuntimeError):
    pass


def safe_document_name(name: str) -> str:
    """A plain file name in the folder: no path, no hidden file, a supported extension; DocumentRejected otherwise."""
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise DocumentRejected(f"{name!r} is not a plain file name (no folders, '..' or hidden names)")
    if not _SAFE_NAME.fullmatch(name):
        raise DocumentRejected(
            f"{name!r}: use letters, digits, spaces and . _ - ( ) + (at most 120), starting with a letter or digit"
        )
    if Path(name).suffix.lower() not in SUPPORTED:
        raise DocumentRejected(f"{name!r}: only {', '.join(sorted(SUPPORTED))} files are indexed")
    return name


def check_content(name: str, data: bytes) -> None:
    """A PDF must parse; text must be UTF-8 and not empty."""
    if Path(name).suffix.lower() == ".pdf":
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        if not data.startswith(b"%PDF-"):
            raise DocumentRejected(f"{name!r} is not a PDF file")
        try:
            pages = PdfReader(io.BytesIO(data)).pages
            "".join(page.extract_text() or "" for page in pages)
        except (PyPdfError, ValueError, KeyError, TypeError) as exc:
            raise DocumentRejected(f"{name!r} is not a readable PDF: {exc}") from None
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentRejected(f"{name!r} is not UTF-8 text") from None
    if "\x00" in text or not text.strip():
        raise DocumentRejected(f"{name!r} is empty or not text")


@dataclass
class IndexStatus:
    state: Literal["ready", "indexing", "failed"] = "ready"
    phase: str = ""  # while indexing: reading / embedding / warming
    done: int = 0
    total: int = 0
    error: str | None = None
    started: float | None = None
    finished: float | None = None

    @property
    def progress(self) -> float:
        if self.state != "indexing":
            return 1.0 if self.state == "ready" else 0.0
        embedding = self.done / self.total if self.total else 0.0
        return round({"reading": 0.0, "embedding": 0.05 + 0.85 * embedding, "warming": 0.9}.get(self.phase, 0.0), 3)


class KnowledgeBase:
    def __init__(self, stack: AgentStack) -> None:
        self.stack = stack
        self.status = IndexStatus(finished=time.time())
        self._edited = False  # a document was replaced since the index was built
        self._task: asyncio.Task | None = None

    @property
    def kb_dir(self) -> Path:
        return self.stack.retriever.kb_dir

    # ------------------------------------------------------------------ reading

    def describe(self) -> dict[str, Any]:
        retriever: Retriever = self.stack.retriever
        chunks = retriever.chunk_counts()
        indexed = {document.source for document in retriever.documents}
        documents = []
        for path in kb_files(self.kb_dir) if self.kb_dir.is_dir() else []:
            source, stat = str(path.relative_to(self.kb_dir)), path.stat()
            documents.append(
                {
                    "name": source,
                    "bytes": stat.st_size,
                    "modified": stat.st_mtime,
                    "indexed": source in indexed,
                    "chunks": chunks.get(source, 0),
                }
            )
        on_disk = {document["name"] for document in documents}
        return {
            "folder": str(self.kb_dir),
            "documents": documents,
            "index": asdict(self.status)
            | {
                "progress": self.status.progress,
                "stale": self._edited or on_disk != indexed,
                "documents": len(indexed),
                "chunks": sum(chunks.values()),
                "in_prompt": self.stack.prompts.inline,
                "skipped": list(retriever.skipped),
            },
        }

    # ------------------------------------------------------------------ changes

    async def save(self, name: str, data: bytes, replace: bool = False) -> bool:
        """Check and write a document in a worker thread (a PDF can take seconds to parse: the event loop
        carries every live call); index it with ``reindex``. Returns whether it replaced one."""
        name = safe_document_name(name)
        return await asyncio.to_thread(self._save, name, data, replace)

    def _save(self, name: str, data: bytes, replace: bool) -> bool:
        """Write atomically: a temporary file renamed into place."""
        check_content(name, data)
        target = self.kb_dir / name
        existed = target.exists()
        if existed and not replace:
            raise DocumentExists(f"{name!r} exists already (add ?replace=1 to replace it)")
        self.kb_dir.mkdir(parents=True, exist_ok=True)
        partial = self.kb_dir / f".upload-{uuid.uuid4().hex}.partial"
        try:
            partial.write_bytes(data)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        self._edited = self._edited or existed
        log.info("knowledge base: saved %s (%d bytes)", name, len(data))
        return existed

    def delete(self, name: str) -> None:
        name = safe_document_name(name)
        target = self.kb_dir / name
        if not target.is_file():
            raise DocumentNotFound(name)
        target.unlink()
        log.info("knowledge base: deleted %s", name)

    # ------------------------------------------------------------------ reindex

    def reindex(self) -> asyncio.Task:
        """Start rebuilding in the background; ReindexRunning if one is under way."""
        if self._task is not None and not self._task.done():
            raise ReindexRunning("a reindex is already running")
        self.status = IndexStatus("indexing", "reading", started=time.time())
        self._edited = False
        self._task = asyncio.get_running_loop().create_task(self._reindex(self.status))
        return self._task

    async def _reindex(self, status: IndexStatus) -> None:
        stack, loop = self.stack, asyncio.get_running_loop()

        def progress(done: int, total: int) -> None:
            loop.call_soon_threadsafe(lambda: _advance(status, "embedding", done, total))

        def build() -> tuple[Retriever, PromptBuilder]:
            fresh = stack.retriever.refreshed(progress)
            return fresh, PromptBuilder(stack.config.llm, stack.config.rag, fresh.documents, stack.llm.count_tokens)

        try:
            fresh, prompts = await asyncio.to_thread(build)
            _advance(status, "warming", status.done, status.total)
            await stack.llm.warm_up(prompts.warm_up_prefixes())  # the new system prompt is cached before use
        except Exception as exc:  # the old index, prompts and cache stay as they were
            log.exception("knowledge base: reindex failed")
            status.state, status.error, status.finished = "failed", f"{type(exc).__name__}: {exc}", time.time()
            return
        stack.retriever, stack.prompts = fresh, prompts  # one step on the loop: turns see both or neither
        if stack.config.stt.hotwords_from_kb:
            stack.stt.set_vocabulary(vocabulary(fresh.documents), document_words(fresh.documents))
        status.state, status.phase, status.finished = "ready", "", time.time()
        assert status.started is not None  # reindex() starts every status it runs
        log.info(
            "knowledge base: reindexed %d documents in %.1fs (%s)",
            len(fresh.documents),
            status.finished - status.started,
            "in the prompt" if prompts.inline else "retrieved",
        )

    async def wait(self) -> None:
        """Until the running reindex (if any) is over."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def _advance(status: IndexStatus, phase: str, done: int, total: int) -> None:
    if status.state == "indexing":
        status.phase, status.done, status.total = phase, done, total
