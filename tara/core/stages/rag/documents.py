"""Reading a knowledge-base folder: plain text, markdown and PDF (pypdf)."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from tara.core.stages.rag import Document

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
        if path.suffix.lower() == ".md":
            text = spell_out_tables(text)
    return Document(source=str(path.relative_to(kb_dir)), text=text.strip())


_RULE_CELL = re.compile(r":?-+:?")


def _cells(line: str) -> list[str] | None:
    """The cells of a markdown table row, or None for a line that is not one."""
    line = line.strip()
    if len(line) < 2 or not (line.startswith("|") and line.endswith("|")):
        return None
    return [cell.strip() for cell in line[1:-1].split("|")]


def spell_out_tables(markdown: str) -> str:
    """Markdown tables of three or more columns as one line per row, each cell with its column's name.

    A small model reads "| Tandem | 12 euros | 40 euros |" below "| bike | per hour | per day |" poorly
    (Qwen2.5 1.5B gave the tandem's hourly price for a day); "Tandem, per hour: 12 euros; per day: 40
    euros." it reads right. Two columns (a name and its value) read well as they are.
    Hand-parsed rather than with markdown-it (which rich brings): only the one-line pipe rows matter,
    and every other line must pass through as written, not re-rendered.
    """
    lines, out = markdown.splitlines(), []
    header: list[str] | None = None  # the column names of the wide table being spelled out
    for index, line in enumerate(lines):
        cells = _cells(line)
        if cells is None:
            header = None
            out.append(line)
        elif header is None:
            below = _cells(lines[index + 1]) if index + 1 < len(lines) else None
            if len(cells) >= 3 and below and all(_RULE_CELL.fullmatch(cell) for cell in below):
                header = cells  # (said with every row instead)
            else:
                out.append(line)
        elif len(cells) != len(header):
            out.append(line)
        elif not all(_RULE_CELL.fullmatch(cell) for cell in cells):
            named = "; ".join(f"{name}: {cell}" for name, cell in zip(header[1:], cells[1:], strict=True) if cell)
            out.append(f"{cells[0]}, {named}.")
    return "\n".join(out)


_NAME = re.compile(r"[A-Z][\w-]*(?: [A-Z0-9][\w-]*)*")
_ARTICLES = {"The", "A", "An", "Our", "Your", "This", "That"}
_SENTENCE_START = re.compile(r"(?:^|[.!?:#|\n-]\s*|\A)$")  # a sentence, a table cell or a list item
# Whisper knows these; naming them would only crowd the documents' own names out of its short prompt.
_KNOWN = {
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
}


def vocabulary(documents: list[Document], limit: int = 30) -> list[str]:
    """Names from the documents, most frequent first: speech-recognition hints.

    A name is a run of capitalised words (minus a leading article), or a single capitalised word
    in mid-sentence; a sentence's first word alone says nothing.
    """
    counts: Counter[str] = Counter()
    for document in documents:
        for match in _NAME.finditer(document.text):
            words = match.group(0).split(" ")
            if words[0] in _ARTICLES:
                words = words[1:]
            before = document.text[max(0, match.start() - 3) : match.start()]
            if not words or (
                len(words) == 1
                and (_SENTENCE_START.search(before) or len(words[0]) < 3 or words[0].rstrip("s") in _KNOWN)
            ):
                continue
            counts[" ".join(words)] += 1
    return [term for term, _ in counts.most_common(limit)]


_WORD = re.compile(r"[A-Za-z0-9]+")


def document_words(documents: list[Document]) -> frozenset[str]:
    """The documents' own words and numbers, lower case: what a misheard word may have been."""
    return frozenset(match.group(0).lower() for document in documents for match in _WORD.finditer(document.text))
