"""PDFs built by hand for the tests (no PDF writer in the dependencies)."""

from __future__ import annotations

import zlib


def pdf(content: bytes, compress: bool = False) -> bytes:
    """A one-page PDF whose page draws ``content`` (PDF text operators) in Helvetica."""
    stream = zlib.compress(content, 9) if compress else content
    flate = b" /Filter /FlateDecode" if compress else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(stream), flate) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with one line of text."""
    return pdf(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())


def slow_pdf(lines: int = 20000) -> bytes:
    """A small compressed PDF whose text takes pypdf seconds to extract (one text operator per line)."""
    return pdf(b"BT /F1 12 Tf 72 720 Td " + b"(a) Tj 0 -1 Td " * lines + b"ET", compress=True)
