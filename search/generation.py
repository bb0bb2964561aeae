"""One index generation: the files of one folder, written once by a build and read by every engine.

Only this module knows the files' names and formats. Layout of a generation folder::

    manifest.json               written last (by IndexStore.publish): format, counts, model, each file's size
    docs.json                   a Doc per article, in the row order of every matrix below
    articles.json               each article's record by slug, for the site's pages
    site.json                   categories, and the redirects of renamed articles
    errors.json                 the files the build could not take as they are (BrokenFile records)
    files.json                  the builder's note of each article file: time, size, slug, hash
    whoosh/                     the whoosh index: analysed fields and the spelling vocabulary
    vocab.txt, tf_<field>.npz   per-field term counts, from which BM25F is computed on open
    vectors.npy, passages.npz   passage vectors, with their owner, kind, section and text key (dense only)

A generation written by another ``FORMAT_VERSION`` is refused on open (``IndexCorrupt``); a build then
starts from scratch instead of carrying anything over.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .analysis import markdown_text
from .articles import Article
from .broken import BrokenFile
from .dense import DenseIndex
from .errors import SearchError
from .lexical import FIELDS, TermCounts
from .library import Library


class IndexCorrupt(SearchError, RuntimeError):
    """The published index is incomplete, unreadable or of another format; rebuild it with ``kb index``."""


FORMAT_VERSION = 3  # bump when the analyzer or any file's layout changes: old generations are rebuilt

MANIFEST = "manifest.json"
FILES = "files.json"  # the builder's note, rewritten in place when only timestamps change: not in the manifest

FileNote = list[Any]  # files.json entry of one article file: [mtime_ns, size, slug or None, content hash]


@dataclass(frozen=True)
class Doc:
    """One indexed article as a hit shows it; its place in ``docs.json`` is its row in every matrix."""

    slug: str
    title: str
    summary: str
    category: str
    hash: str  # Article.content_hash of the version indexed
    sections: tuple[tuple[str, str, str], ...]  # (anchor, heading, plain text) a section, for snippets

    @classmethod
    def of(cls, article: Article) -> Doc:
        """Return the indexed form of an article."""
        return cls(article.slug, article.title, article.summary, article.category, article.content_hash,
                   tuple((s.anchor, s.heading, " ".join(markdown_text(s.text).split())) for s in article.sections))

    def record(self) -> dict[str, Any]:
        """Return the doc as JSON-ready data."""
        return {"slug": self.slug, "title": self.title, "summary": self.summary, "category": self.category,
                "hash": self.hash, "sections": [list(s) for s in self.sections]}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Doc:
        """Rebuild a doc from ``record`` data."""
        return cls(data["slug"], data["title"], data["summary"], data["category"], data["hash"],
                   tuple((a, h, t) for a, h, t in data["sections"]))


class Generation:
    """The files of one generation folder: being built, or published and never changed again."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Generation({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # ----------------------------------------------------------------------- the manifest

    def manifest(self) -> dict[str, Any]:
        """Return the manifest, checked to be of this format and to match every file's size."""
        try:
            data = json.loads((self.path / MANIFEST).read_text())
        except FileNotFoundError:
            raise IndexCorrupt(f"{self.path} has no manifest: the index is incomplete") from None
        except (OSError, ValueError) as exc:
            raise IndexCorrupt(f"{self.path}/{MANIFEST} is unreadable: {exc}") from None
        if not isinstance(data, dict):
            raise IndexCorrupt(f"{self.path}/{MANIFEST} is not an object")
        if data.get("format") != FORMAT_VERSION:
            raise IndexCorrupt(f"{self.path} was built by another version (format {data.get('format')}, this "
                               f"version reads format {FORMAT_VERSION}): rebuild it with 'kb index'")
        for name, size in data.get("files", {}).items():
            file = self.path / name
            if not file.exists() or file.stat().st_size != size:
                raise IndexCorrupt(f"{file} is missing or truncated")
        return data

    def write_manifest(self, meta: dict[str, Any]) -> None:
        """Write the manifest last: the format, ``meta``, and the size of every file written so far."""
        files = {str(p.relative_to(self.path)): p.stat().st_size
                 for p in sorted(self.path.rglob("*")) if p.is_file() and p.name != FILES}
        (self.path / MANIFEST).write_text(json.dumps({**meta, "format": FORMAT_VERSION, "files": files}, indent=1))

    # ----------------------------------------------------------------------- articles

    def docs(self) -> list[Doc]:
        """Return the indexed articles in row order."""
        return [Doc.from_record(d) for d in self._read("docs.json")]

    def write_docs(self, docs: Sequence[Doc]) -> None:
        self._write("docs.json", [d.record() for d in docs])

    def records(self) -> dict[str, dict[str, Any]]:
        """Return every published article's ``Article.record()`` by slug."""
        return self._read("articles.json")  # type: ignore[no-any-return]

    def write_records(self, records: dict[str, dict[str, Any]]) -> None:
        self._write("articles.json", records)

    def site(self) -> dict[str, Any]:
        """Return the categories and redirects: ``{"categories": [...], "redirects": {old: new}}``."""
        return self._read("site.json")  # type: ignore[no-any-return]

    def write_site(self, site: dict[str, Any]) -> None:
        self._write("site.json", site)

    def errors(self) -> tuple[BrokenFile, ...]:
        """Return the problems recorded in the generation (none in one built before they were recorded)."""
        try:
            return tuple(BrokenFile.from_record(r) for r in self._read("errors.json"))
        except FileNotFoundError:
            return ()

    def write_errors(self, errors: Sequence[BrokenFile]) -> None:
        self._write("errors.json", [e.record() for e in errors])

    def files(self) -> dict[str, FileNote]:
        """Return the builder's note of each article file by path relative to the articles folder."""
        return self._read(FILES)  # type: ignore[no-any-return]

    def write_files(self, files: dict[str, FileNote]) -> None:
        """Write the builder's note, atomically: a published generation's note is rewritten in place."""
        temporary = self.path / f".{FILES}.tmp"
        temporary.write_text(json.dumps(files))
        os.replace(temporary, self.path / FILES)

    def library(self) -> Library:
        """Return the published articles, as the site shows them."""
        return Library.from_data(self.records(), self.site(), self.errors())

    # ----------------------------------------------------------------------- lexical

    @property
    def whoosh(self) -> Path:
        return self.path / "whoosh"

    def link_whoosh(self, source: Generation) -> None:
        """Start this generation's whoosh index as a copy of another's, sharing its files by hard links.

        whoosh never rewrites a file in place (new segments, a new TOC), so sharing is safe; see
        ``lexical.write_whoosh`` for how a file is never opened for writing through a link.
        """
        shutil.copytree(source.whoosh, self.whoosh, ignore=shutil.ignore_patterns("*LOCK*"),
                        copy_function=_link_or_copy)

    def term_counts(self) -> TermCounts:
        """Return the per-field term counts."""
        text = (self.path / "vocab.txt").read_text(encoding="utf-8")
        terms = text.split("\n") if text else []
        counts = {name: sp.load_npz(self.path / f"tf_{name}.npz").tocsr() for name in FIELDS}
        return TermCounts({t: i for i, t in enumerate(terms)}, counts)

    def write_term_counts(self, counts: TermCounts) -> None:
        terms = sorted(counts.vocab, key=counts.vocab.__getitem__)
        (self.path / "vocab.txt").write_text("\n".join(terms), encoding="utf-8")
        for name, matrix in counts.counts.items():
            sp.save_npz(self.path / f"tf_{name}.npz", matrix, compressed=False)

    # ----------------------------------------------------------------------- dense

    @property
    def has_vectors(self) -> bool:
        return (self.path / "vectors.npy").exists()

    def dense(self, *, title_weight: float = 0.3) -> DenseIndex:
        """Return the passage vectors as a dense index."""
        arrays = self.passages()
        return DenseIndex(np.load(self.path / "vectors.npy"), arrays["owners"], arrays["kinds"], arrays["sections"],
                          title_weight=title_weight)

    def passages(self) -> dict[str, np.ndarray]:
        """Return each passage's ``owners`` (row of its article), ``kinds``, ``sections`` and text ``keys``."""
        with np.load(self.path / "passages.npz") as arrays:
            return {name: arrays[name] for name in arrays.files}

    def vectors(self) -> np.ndarray:
        """Return the passage vectors memory-mapped, read-only: a build copies rows without loading them all."""
        return np.load(self.path / "vectors.npy", mmap_mode="r")  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def vector_writer(self, rows: int, dim: int) -> Iterator[Callable[[np.ndarray], None]]:
        """Yield a function that appends blocks of rows to ``vectors.npy``: the matrix is never whole in memory."""
        with open(self.path / "vectors.npy", "wb") as handle:
            np.lib.format.write_array_header_1_0(handle, {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                "shape": (rows, dim)})

            def write(block: np.ndarray) -> None:
                handle.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())

            yield write

    def write_passages(self, *, owners: np.ndarray, kinds: np.ndarray, sections: np.ndarray,
                       keys: np.ndarray) -> None:
        np.savez(self.path / "passages.npz", owners=owners, kinds=kinds, sections=sections, keys=keys)

    def drop_vectors(self) -> None:
        """Remove the dense files (a build that lost its model half-way publishes a lexical-only index)."""
        for name in ("vectors.npy", "passages.npz"):
            (self.path / name).unlink(missing_ok=True)

    # ----------------------------------------------------------------------- JSON files

    def _read(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def _write(self, name: str, data: Any) -> None:
        (self.path / name).write_text(json.dumps(data))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
