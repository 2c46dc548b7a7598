"""llama-index + FAISS retriever, embedding with the packaged MiniLM model, fully offline.

The index is persisted under the data dir, keyed by the knowledge-base folder, and rebuilt only when
a document or an index setting changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

from agent.assets import EMBED_MODELS, resolve_model
from agent.config import RAGConfig
from agent.devices import resolve_device
from agent.rag import Document, Passage, Retriever
from agent.rag.documents import fingerprint, kb_files, read_document

log = logging.getLogger(__name__)
MANIFEST = "tara-manifest.json"


class LlamaIndexRetriever(Retriever):
    def __init__(self, config: RAGConfig, data_dir: Path, kb_dir: Path | None = None, show_progress: bool = True) -> None:
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
        return json.dumps({"embed": self.config.embed_model, "chunk": self.config.chunk_size,
                           "overlap": self.config.chunk_overlap, "version": 1})

    def load_or_build(self, show_progress: bool = True) -> None:
        """Load the persisted index, or (re)build it when the documents changed."""
        from llama_index.core import StorageContext, load_index_from_storage
        from llama_index.vector_stores.faiss import FaissVectorStore

        files = kb_files(self.kb_dir)
        self.documents, self.skipped = [], []
        for path in files:
            try:
                self.documents.append(read_document(path, self.kb_dir))
            except Exception as exc:  # one unreadable file must not take the knowledge base down
                log.warning("skipping %s: %s", path, exc)
                self.skipped.append(f"{path.name}: {exc}")
        current = fingerprint(files, self.kb_dir, self._settings())
        manifest = self.index_dir / MANIFEST
        if manifest.exists() and json.loads(manifest.read_text()).get("fingerprint") == current:
            store = FaissVectorStore.from_persist_dir(str(self.index_dir))
            context = StorageContext.from_defaults(vector_store=store, persist_dir=str(self.index_dir))
            index = load_index_from_storage(context, embed_model=self._embed)
            self.rebuilt = False
        else:
            index = self._build(show_progress)
            manifest.write_text(json.dumps({"fingerprint": current, "kb_dir": str(self.kb_dir),
                                            "documents": [d.source for d in self.documents]}))
            self.rebuilt = True
        self._index = index if self.documents else None
        if self._index is not None and self.device == "cuda":
            self._gpu_resources = _search_on_gpu(index.vector_store)

    def _build(self, show_progress: bool):
        import faiss
        from llama_index.core import Document as LIDocument
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.vector_stores.faiss import FaissVectorStore

        self.index_dir.mkdir(parents=True, exist_ok=True)
        dimension = len(self._embed.get_text_embedding("dimension probe"))
        store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(dimension))  # normalised vectors: IP = cosine
        context = StorageContext.from_defaults(vector_store=store)
        splitter = SentenceSplitter(chunk_size=self.config.chunk_size, chunk_overlap=self.config.chunk_overlap)
        documents = [LIDocument(text=d.text, metadata={"source": d.source}) for d in self.documents if d.text]
        index = VectorStoreIndex.from_documents(
            documents, storage_context=context, embed_model=self._embed,
            transformations=[splitter], show_progress=show_progress,
        )
        index.storage_context.persist(persist_dir=str(self.index_dir))
        log.info("indexed %d documents from %s into %s", len(documents), self.kb_dir, self.index_dir)
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
