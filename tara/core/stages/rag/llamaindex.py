"""llama-index + FAISS retriever, embedding with the packaged MiniLM model, fully offline.

The index is persisted under the data dir, keyed by the knowledge-base folder, and rebuilt only when
a document or an index setting changes. A rebuild is written beside the old index and swapped in
whole, so a build that fails leaves the old one on disk (and in memory) as it was.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import shutil
import uuid
from collections import Counter
from pathlib import Path
from typing import cast

from tara.core.assets import EMBED_MODELS, resolve_model
from tara.core.config import RAGConfig, make_private
from tara.core.devices import resolve_device
from tara.core.stages.rag import Document, Passage, Progress, Retriever
from tara.core.stages.rag.documents import fingerprint, kb_files, read_document

log = logging.getLogger(__name__)
MANIFEST = "tara-manifest.json"
EMBED_BATCH = 16  # chunks embedded between two progress reports


class LlamaIndexRetriever(Retriever):
    def __init__(
        self, config: RAGConfig, data_dir: Path, kb_dir: Path | None = None, show_progress: bool = True
    ) -> None:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        self.config = config
        self.kb_dir = Path(kb_dir or config.kb_dir).expanduser().resolve()
        embed_path = resolve_model(config.embed_model, EMBED_MODELS, "rag.embed_model", data_dir)
        self.device = resolve_device(config.device, "rag.device")
        self._embed = HuggingFaceEmbedding(model_name=str(embed_path), device=self.device)
        key = hashlib.sha256(str(self.kb_dir).encode()).hexdigest()[:16]
        self.index_dir = data_dir / "index" / key
        self.documents: list[Document] = []
        self.skipped: list[str] = []
        self.rebuilt = False
        self._index = None
        self.load_or_build(show_progress)

    def _settings(self) -> str:
        return json.dumps(
            {
                "embed": self.config.embed_model,
                "chunk": self.config.chunk_size,
                "overlap": self.config.chunk_overlap,
                "version": 2,  # 2: wide markdown tables spelled out row by row (documents.py)
            }
        )

    def load_or_build(self, show_progress: bool = True, progress: Progress | None = None) -> None:
        """Load the persisted index, or (re)build it when the documents changed."""
        from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
        from llama_index.vector_stores.faiss import FaissVectorStore

        if self.index_dir.parent.is_dir():  # an index kept by an older version may be world-readable
            make_private(self.index_dir.parent)
        files = kb_files(self.kb_dir)
        documents, skipped = [], []
        for path in files:
            try:
                documents.append(read_document(path, self.kb_dir))
            except Exception as exc:  # one unreadable file must not take the knowledge base down
                log.warning("skipping %s: %s", path, exc)
                skipped.append(f"{path.name}: {exc}")
        current = fingerprint(files, self.kb_dir, self._settings())
        manifest = self.index_dir / MANIFEST
        if manifest.exists() and json.loads(manifest.read_text()).get("fingerprint") == current:
            store = FaissVectorStore.from_persist_dir(str(self.index_dir))
            context = StorageContext.from_defaults(vector_store=store, persist_dir=str(self.index_dir))
            # (typed as any BaseIndex; what this storage holds is the VectorStoreIndex _build persisted)
            index = cast(VectorStoreIndex, load_index_from_storage(context, embed_model=self._embed))
            rebuilt = False
        else:
            index = self._build(documents, current, show_progress, progress)
            rebuilt = True
        self.documents, self.skipped, self.rebuilt = documents, skipped, rebuilt
        self._index = index if documents else None
        if self._index is not None and self.device == "cuda":
            self._gpu_resources = _search_on_gpu(index.vector_store)

    def refreshed(self, progress: Progress | None = None) -> LlamaIndexRetriever:
        """A new retriever over the folder as it is now, sharing the embedding model; this one is untouched."""
        fresh = copy.copy(self)
        fresh.load_or_build(show_progress=False, progress=progress)
        return fresh

    def chunk_counts(self) -> dict[str, int]:
        if self._index is None:
            return {}
        return dict(Counter(node.metadata.get("source", "?") for node in self._index.docstore.docs.values()))

    def _build(self, documents: list[Document], current: str, show_progress: bool, progress: Progress | None):
        """Split, embed (reporting progress) and persist beside the old index, then swap the folders."""
        import faiss
        from llama_index.core import Document as LIDocument
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.core.schema import MetadataMode
        from llama_index.vector_stores.faiss import FaissVectorStore

        dimension = len(self._embed.get_text_embedding("dimension probe"))
        store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(dimension))  # normalised vectors: IP = cosine
        context = StorageContext.from_defaults(vector_store=store)
        splitter = SentenceSplitter(chunk_size=self.config.chunk_size, chunk_overlap=self.config.chunk_overlap)
        nodes = splitter.get_nodes_from_documents(
            [LIDocument(text=d.text, metadata={"source": d.source}) for d in documents if d.text]
        )
        for start in range(0, len(nodes), EMBED_BATCH):
            batch = nodes[start : start + EMBED_BATCH]
            texts = [node.get_content(metadata_mode=MetadataMode.EMBED) for node in batch]
            for node, embedding in zip(batch, self._embed.get_text_embedding_batch(texts, show_progress=show_progress)):
                node.embedding = embedding
            if progress is not None:
                progress(start + len(batch), len(nodes))
        index = VectorStoreIndex(nodes, storage_context=context, embed_model=self._embed)  # embedded already

        staging = self.index_dir.with_name(f"{self.index_dir.name}.building-{uuid.uuid4().hex[:8]}")
        try:
            index.storage_context.persist(persist_dir=str(staging))
            (staging / MANIFEST).write_text(
                json.dumps(
                    {"fingerprint": current, "kb_dir": str(self.kb_dir), "documents": [d.source for d in documents]}
                )
            )
            make_private(staging)  # the docstore holds every document's full text
            old = self.index_dir.with_name(f"{self.index_dir.name}.old-{uuid.uuid4().hex[:8]}")
            if self.index_dir.exists():
                self.index_dir.rename(old)
            staging.rename(self.index_dir)
            self.index_dir.parent.chmod(0o700)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info(
            "indexed %d documents (%d chunks) from %s into %s", len(documents), len(nodes), self.kb_dir, self.index_dir
        )
        return index

    async def retrieve(self, query: str, k: int | None = None) -> list[Passage]:
        return await asyncio.to_thread(self._retrieve, query, k or self.config.top_k)

    def _retrieve(self, query: str, k: int) -> list[Passage]:
        if not query.strip() or self._index is None:
            return []
        nodes = self._index.as_retriever(similarity_top_k=k).retrieve(query)
        return [Passage(n.node.get_content(), n.node.metadata.get("source", "?"), float(n.score or 0.0)) for n in nodes]


def _search_on_gpu(store):
    """Move a loaded (already persisted) FAISS index to the GPU when this faiss build has GPU support.

    Returns the GPU resources, which must live as long as the index; None when searching stays on the CPU.
    """
    import faiss

    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        log.warning("rag.device is cuda but this faiss has no GPU support (faiss-gpu): searching on the CPU")
        return None
    resources = faiss.StandardGpuResources()
    store._faiss_index = faiss.index_cpu_to_gpu(resources, 0, store._faiss_index)  # noqa: SLF001 - no public setter
    return resources
