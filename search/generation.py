"""One index generation: the files of one folder, written once by a build and read by every engine.

Only this module knows the files' names and formats. Layout of a generation folder::

    manifest.json               written last (by IndexStore.publish): format, counts, model, each file's size
    blocks.json                 the blocks, in row order, with their number of rows
    rows.json                   each row's slug and hash: the content hash, with the learned questions if any
                                (all an incremental build reads of the rows)
    site.json                   categories, and the redirects of renamed articles
    tuning.json                 the editors' synonyms and pins from _search.yml, as checked (see ``tuning``)
    errors.json                 the files the build could not take as they are (BrokenFile records)
    files.json                  the builder's note of each article file: time, size, slug, hash
    whoosh/                     the whoosh index: each article's slug and its words, for spelling correction
    vocab.txt                   the term of each column of the term counts (it only grows from build to build)
    blocks/<name>/              up to 1,000 consecutive rows (see ``Block``), hard links to an earlier
                                generation's block when none of its articles changed:
        docs.json               a Doc per article, in row order
        articles.json           each article's record by slug, for the site's pages
        tf_<field>.npz          per-field term counts, from which BM25F is computed on open
        vectors.npy             passage vectors, memory-mapped when served: workers share the pages
        passages.npz            each passage's owner (row in the block), kind, section and text key
        articles.npy            one vector per article (its passages' normalised mean), for related articles
    graph.usearch               a large generation's passage graph (see ``ann``), memory-mapped when served

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

from .ann import Graph, keys_of, open_graph, write_graph
from .articles import Article
from .broken import BrokenFile
from .dense import DenseIndex
from .errors import SearchError
from .lexical import FIELDS, TermCounts
from .library import Library
from .text import section_units


class IndexCorrupt(SearchError, RuntimeError):
    """The published index is incomplete, unreadable or of another format; rebuild it with ``kb index``."""


FORMAT_VERSION = 5  # bump when the analyzer or any file's layout changes: old generations are rebuilt

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
    hash: str  # the row hash of the version indexed: Article.content_hash with its learned questions
    # (anchor, heading, text) a section; its text as a reader sees it, one unit a line (text.section_units)
    sections: tuple[tuple[str, str, str], ...]
    questions: tuple[str, ...] = ()  # how customers ask it (learned ones too): a query that is one puts it first

    @classmethod
    def of(cls, article: Article, row_hash: str | None = None) -> Doc:
        """Return the indexed form of an article (``row_hash``: its hash with learned questions, if any)."""
        return cls(article.slug, article.title, article.summary, article.category, row_hash or article.content_hash,
                   tuple((s.anchor, s.heading, "\n".join(section_units(s.text))) for s in article.sections),
                   (*article.questions, *article.learned))

    def record(self) -> dict[str, Any]:
        """Return the doc as JSON-ready data."""
        return {"slug": self.slug, "title": self.title, "summary": self.summary, "category": self.category,
                "hash": self.hash, "sections": [list(s) for s in self.sections], "questions": list(self.questions)}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Doc:
        """Rebuild a doc from ``record`` data."""
        return cls(data["slug"], data["title"], data["summary"], data["category"], data["hash"],
                   tuple((a, h, t) for a, h, t in data["sections"]), tuple(data["questions"]))


class Block:
    """A run of consecutive rows: their docs, records, term counts and passage vectors, written once.

    A block is never changed after its generation is published, so the next generation shares an
    untouched block's files by hard links and rewrites only the blocks whose articles changed.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    def docs(self) -> list[Doc]:
        """Return the block's articles in row order."""
        return [Doc.from_record(d) for d in _read(self.path / "docs.json")]

    def write_docs(self, docs: Sequence[Doc]) -> None:
        _write(self.path / "docs.json", [d.record() for d in docs])

    def records(self) -> dict[str, dict[str, Any]]:
        """Return the block's ``Article.record()`` by slug."""
        return _read(self.path / "articles.json")  # type: ignore[no-any-return]

    def write_records(self, records: dict[str, dict[str, Any]]) -> None:
        _write(self.path / "articles.json", records)

    def counts(self, n_terms: int) -> dict[str, sp.csr_matrix]:
        """Return the block's per-field term counts, ``n_terms`` columns wide (the vocabulary only grows)."""
        counts = {}
        for name in FIELDS:
            m = sp.load_npz(self.path / f"tf_{name}.npz").tocsr()
            counts[name] = sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], n_terms))
        return counts

    def write_counts(self, counts: dict[str, sp.csr_matrix]) -> None:
        for name, matrix in counts.items():
            sp.save_npz(self.path / f"tf_{name}.npz", matrix, compressed=False)

    @property
    def has_vectors(self) -> bool:
        return (self.path / "vectors.npy").exists()

    def passages(self) -> dict[str, np.ndarray]:
        """Return each passage's ``owners`` (row of its article in the block), ``kinds``, ``sections``, ``keys``."""
        with np.load(self.path / "passages.npz") as arrays:
            return {name: arrays[name] for name in arrays.files}

    def vectors(self) -> np.ndarray:
        """Return the passage vectors memory-mapped, read-only: every process opening them shares the pages."""
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
        np.save(self.path / "articles.npy", self.dense().article_vectors())

    def article_vectors(self) -> np.ndarray:
        """Return one vector per article, memory-mapped (computed from the passages in a block without them)."""
        path = self.path / "articles.npy"
        return np.load(path, mmap_mode="r") if path.exists() else self.dense().article_vectors()

    def drop_vectors(self) -> None:
        """Remove the dense files (a build that lost its model half-way publishes a lexical-only index)."""
        for name in ("vectors.npy", "passages.npz", "articles.npy"):
            (self.path / name).unlink(missing_ok=True)

    def dense(self, *, title_weight: float = 0.3) -> DenseIndex:
        """Return the block's passage vectors as a dense index."""
        arrays = self.passages()
        return DenseIndex(self.vectors(), arrays["owners"], arrays["kinds"], arrays["sections"],
                          title_weight=title_weight)


class Generation(Block):
    """The files of one generation folder: being built, or published and never changed again.

    Its rows are its blocks' rows, block after block (``blocks.json``); a folder without ``blocks.json``
    is one block itself (what a test writes by hand).
    """

    def __init__(self, path: Path | str):
        super().__init__(path)
        self._manifest: dict[str, Any] | None = None

    # ----------------------------------------------------------------------- the manifest

    def manifest(self) -> dict[str, Any]:
        """Return the manifest, checked to be of this format and to match every file's size.

        It is read and checked once a ``Generation``: the store checks it before handing the generation
        out, and an engine then reads the model from it; a published generation never changes.
        """
        if self._manifest is None:
            self._manifest = self._checked_manifest()
        return self._manifest

    def _checked_manifest(self) -> dict[str, Any]:
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
            try:
                if os.stat(file).st_size != size:
                    raise IndexCorrupt(f"{file} is missing or truncated")
            except FileNotFoundError:
                raise IndexCorrupt(f"{file} is missing or truncated") from None
        return data

    def write_manifest(self, meta: dict[str, Any]) -> None:
        """Write the manifest last: the format, ``meta``, and the size of every file written so far."""
        files = {str(p.relative_to(self.path)): p.stat().st_size
                 for p in sorted(self.path.rglob("*")) if p.is_file() and p.name != FILES}
        (self.path / MANIFEST).write_text(json.dumps({**meta, "format": FORMAT_VERSION, "files": files}, indent=1))
        self._manifest = None

    # ----------------------------------------------------------------------- blocks

    def blocks(self) -> list[Block]:
        """Return the generation's blocks in row order."""
        return [block for block, _rows in self.layout()]

    def layout(self) -> list[tuple[Block, int]]:
        """Return the generation's blocks in row order, each with its number of rows."""
        try:
            names = _read(self.path / "blocks.json")
        except FileNotFoundError:
            return [(Block(self.path), -1)]
        return [(Block(self.path / "blocks" / name), rows) for name, rows in names]

    def new_block(self, name: str) -> Block:
        """Return a new empty block of this generation."""
        path = self.path / "blocks" / name
        path.mkdir(parents=True)
        return Block(path)

    def link_block(self, source: Block) -> Block:
        """Take another generation's block as it is, sharing its files by hard links."""
        target = self.path / "blocks" / source.name
        shutil.copytree(source.path, target, copy_function=_link_or_copy)
        return Block(target)

    def write_blocks(self, blocks: Sequence[tuple[Block, int]], rows: Sequence[tuple[str, str]]) -> None:
        """Write the blocks in order with their sizes, and each row's slug and content hash (what a build reads)."""
        _write(self.path / "blocks.json", [[b.name, n] for b, n in blocks])
        _write(self.path / "rows.json", [list(r) for r in rows])

    def rows(self) -> list[tuple[str, str]]:
        """Return each row's (slug, content hash), in row order, without reading the docs."""
        return [(slug, digest) for slug, digest in _read(self.path / "rows.json")]

    # ----------------------------------------------------------------------- articles

    def docs(self) -> list[Doc]:
        """Return the indexed articles in row order."""
        return [d for b in self.blocks() for d in b.docs()]

    def records(self) -> dict[str, dict[str, Any]]:
        """Return every published article's ``Article.record()`` by slug, in slug order."""
        merged: dict[str, dict[str, Any]] = {}
        for block in self.blocks():
            merged.update(block.records())
        return dict(sorted(merged.items()))

    def site(self) -> dict[str, Any]:
        """Return the categories and redirects: ``{"categories": [...], "redirects": {old: new}}``."""
        return _read(self.path / "site.json")  # type: ignore[no-any-return]

    def write_site(self, site: dict[str, Any]) -> None:
        _write(self.path / "site.json", site)

    def tuning(self) -> dict[str, Any]:
        """Return the ``Tuning.record()`` of the synonyms and pins (``{}``: none, or built before tuning)."""
        try:
            return _read(self.path / "tuning.json")  # type: ignore[no-any-return]
        except FileNotFoundError:
            return {}

    def write_tuning(self, tuning: dict[str, Any]) -> None:
        _write(self.path / "tuning.json", tuning)

    def errors(self) -> tuple[BrokenFile, ...]:
        """Return the problems recorded in the generation (none in one built before they were recorded)."""
        try:
            return tuple(BrokenFile.from_record(r) for r in _read(self.path / "errors.json"))
        except FileNotFoundError:
            return ()

    def write_errors(self, errors: Sequence[BrokenFile]) -> None:
        _write(self.path / "errors.json", [e.record() for e in errors])

    def files(self) -> dict[str, FileNote]:
        """Return the builder's note of each article file by path relative to the articles folder."""
        return _read(self.path / FILES)  # type: ignore[no-any-return]

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

    def vocab(self) -> dict[str, int]:
        """Return the term of each column of the term counts."""
        text = (self.path / "vocab.txt").read_text(encoding="utf-8")
        return {t: i for i, t in enumerate(text.split("\n") if text else [])}

    def write_vocab(self, vocab: dict[str, int]) -> None:
        (self.path / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.__getitem__)), encoding="utf-8")

    def term_counts(self) -> TermCounts:
        """Return the per-field term counts of every row."""
        vocab = self.vocab()
        return TermCounts.stacked(vocab, [TermCounts(vocab, b.counts(len(vocab))) for b in self.blocks()])

    def write_term_counts(self, counts: TermCounts) -> None:
        """Write term counts as this generation's one block (see ``Block``)."""
        self.write_vocab(counts.vocab)
        self.write_counts(counts.counts)

    # ----------------------------------------------------------------------- dense

    @property
    def has_vectors(self) -> bool:
        blocks = self.blocks()
        return bool(blocks) and all(b.has_vectors for b in blocks)

    @property
    def graph_path(self) -> Path:
        return self.path / "graph.usearch"

    def dense(self, *, title_weight: float = 0.3) -> DenseIndex:
        """Return the passage vectors as a dense index, each block's memory-mapped, with the graph if any."""
        vectors, owners, kinds, sections, keys = [], [], [], [], []
        start = 0
        for block in self.blocks():
            arrays = block.passages()
            vectors.append(block.vectors())
            owners.append(arrays["owners"] + start)
            kinds.append(arrays["kinds"])
            sections.append(arrays["sections"])
            keys.append(arrays["keys"])
            start += int(arrays["owners"].max(initial=-1)) + 1  # every article has passages
        graph = None
        if self.graph_path.exists():
            graph = Graph(open_graph(self.graph_path), keys_of(np.concatenate(keys)))
        return DenseIndex(vectors, np.concatenate(owners), np.concatenate(kinds), np.concatenate(sections),
                          title_weight=title_weight, graph=graph)

    def article_vector_blocks(self) -> list[np.ndarray]:
        """Return each block's article vectors (see ``Block.article_vectors``), in row order."""
        return [block.article_vectors() for block in self.blocks()]

    def write_graph(self, previous: Generation | None) -> tuple[int, int]:
        """Write the passage graph, starting from the previous generation's; return (added, removed)."""
        blocks = self.blocks()
        return write_graph(self.graph_path, [keys_of(b.passages()["keys"]) for b in blocks],
                           [b.vectors() for b in blocks], previous.graph_path if previous is not None else None)

    def drop_vectors(self) -> None:
        """Remove the dense files of every block (a build that lost its model half-way goes lexical-only)."""
        for block in self.blocks():
            block.drop_vectors()
        self.graph_path.unlink(missing_ok=True)


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
