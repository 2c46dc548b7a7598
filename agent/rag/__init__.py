"""Retrieval over the knowledge base: one small async interface, backends picked by ``rag.backend``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

from agent.registry import Registry


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


class Retriever(ABC):
    documents: list[Document]

    @abstractmethod
    async def retrieve(self, query: str, k: int | None = None) -> list[Passage]:
        """The ``k`` passages most similar to ``query``, best first, with similarity scores."""


RETRIEVERS: Registry[Retriever] = Registry("rag.backend", {"llama-index-faiss": "agent.rag.llamaindex:LlamaIndexRetriever"})
