"""Reading a knowledge-base folder: plain text, markdown and PDF (pypdf)."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from agent.rag import Document

SUPPORTED = {".txt", ".md", ".pdf"}


def kb_files(kb_dir: Path) -> list[Path]:
    if not kb_dir.is_dir():
        raise FileNotFoundError(f"knowledge-base folder not found: {kb_dir}")
    return sorted(p for p in kb_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED)


def fingerprint(files: list[Path], kb_dir: Path, settings: str) -> str:
    """Changes whenever a document is added, removed or edited, or index settings change."""
    digest = hashlib.sha256(settings.encode())
    for path in files:
        digest.update(str(path.relative_to(kb_dir)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def read_document(path: Path, kb_dir: Path) -> Document:
    if path.suffix.lower() == ".pdf":
        from pypdf import PdfReader

        text = "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
    return Document(source=str(path.relative_to(kb_dir)), text=text.strip())


_TERM = re.compile(r"\b(?:[A-Z][a-zA-Z0-9-]+(?:\s+[A-Z][a-zA-Z0-9-]+)*|[A-Za-z]*\d[\w-]*)\b")
_COMMON = {"The", "This", "That", "These", "Those", "It", "If", "In", "On", "For", "To", "A", "An", "And", "Or",
           "You", "Your", "We", "Our", "Do", "Does", "Is", "Are", "When", "What", "How", "Why", "Yes", "No", "I"}


def vocabulary(documents: list[Document], limit: int = 60) -> list[str]:
    """Names, products and numbers from the documents, most frequent first (speech-recognition hints)."""
    counts: Counter[str] = Counter()
    for document in documents:
        for match in _TERM.finditer(document.text):
            term = match.group(0)
            if term not in _COMMON and len(term) > 1:
                counts[term] += 1
    return [term for term, _ in counts.most_common(limit)]
