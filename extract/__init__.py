"""medicalrec.extract: PDFs and OpenAlex metadata in, experiments with provenance out.

`read_pdf` turns a file into pages of text (or a `PdfProblem` with a status and a one-line
reason); `batch.run_batch` drives many files into a KB; `pipeline` is the NLP half. Names are
imported on first use, so `medicalrec --help` does not pay for pypdf or spaCy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "PDF_PROBLEMS": "pdf", "Page": "pdf", "PdfDocument": "pdf", "PdfProblem": "pdf", "read_pdf": "pdf",
    "sha256_file": "pdf", "run_batch": "batch", "FileOutcome": "batch", "OpenAlex": "openalex",
    "OpenAlexConfig": "openalex",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
