"""Retrieval over the knowledge base: one small async interface, backends picked by ``rag.backend``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tara.core.registry import Registry


@dataclass(frozen=True)
class Passage:
    text: str
    source: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the knowledge-base dir
    text: str


Progress = Callable[[int, int], None]  # (done, total) while an index is built


class Retriever(ABC):
    documents: list[Document]
    kb_dir: Path
    skipped: list[str]  # unreadable files and why
    index_dir: Path  # where the index is kept (`tara index` prints it)
    rebuilt: bool  # whether loading rebuilt the index rather than reading a current one

    @abstractmethod
    async def retrieve(self, query: str, k: int | None = None) -> list[Passage]:
        """The ``k`` passages most similar to ``query``, best first, with similarity scores."""

    @abstractmethod
    def refreshed(self, progress: Progress | None = None) -> Retriever:
        """A new retriever over the folder's current documents (blocking: run it in a thread); this one
        keeps working, and is untouched if the rebuild fails."""

    def chunk_counts(self) -> dict[str, int]:
        """Indexed chunks per document source."""
        return {}


RETRIEVERS: Registry[Retriever] = Registry(
    "rag.backend", {"llama-index-faiss": "tara.core.stages.rag.llamaindex:LlamaIndexRetriever"}
)
