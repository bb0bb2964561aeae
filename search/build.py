"""Build and incrementally update an index from a folder of articles.

Only files whose size or modification time changed are parsed; only articles
whose content hash changed are analysed and embedded; everything else is
carried over from the previous generation, row for row.

Like a static-site build that fails, a published article whose new revision
does not parse keeps its last good version (records, rows and vectors carried
over) until the file is fixed; every problem is recorded in the generation
(``errors.json``) with the time it was first seen.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import markdown_text
from .articles import Article, ArticleError, load_article
from .broken import ERRORS_FILE, BrokenFile, read_errors
from .dense import DenseIndex
from .embeddings import Embedder, EmbedderUnavailable, EmbeddingCache, embed_cached, release_memory, text_key
from .folder import load_categories, walk
from .lexical import TermCounts, write_whoosh
from .store import IndexCorrupt, IndexStore

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class BuildReport:
    """What a build did, and the articles it had to leave out."""

    generation: str
    articles: int
    added: int
    changed: int
    removed: int
    embedded: int
    dense: bool
    seconds: float
    errors: tuple[BrokenFile, ...] = field(default=())  # each problem, and what is served instead
    published: bool = True  # False when the folder held nothing new and the last generation stays

    @property
    def unchanged(self) -> bool:
        """Return whether the build published nothing new (the site shows what it showed)."""
        return not self.published


@dataclass
class _Previous:
    """The published generation a build starts from."""

    path: Path | None = None
    docs: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, list[Any]] = field(default_factory=dict)  # rel path -> [mtime_ns, size, slug|None, hash]
    dense: bool = False
    model: str | None = None
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # slug -> Article.record()
    site: dict[str, Any] = field(default_factory=dict)  # categories and redirects
    errors: tuple[BrokenFile, ...] = ()

    @classmethod
    def read(cls, store: IndexStore) -> _Previous:
        if store.current_name() is None:
            return cls()
        try:
            path = store.current()
            manifest = store.manifest(path)
            docs = json.loads((path / "docs.json").read_text())
            files = json.loads((path / "files.json").read_text())
            records = json.loads((path / "articles.json").read_text())
            site = json.loads((path / "site.json").read_text())
            errors = read_errors(path)
        except (OSError, ValueError, KeyError, IndexCorrupt) as exc:
            log.warning("rebuilding the index from scratch: %s", exc)
            return cls()
        return cls(path, docs, files, bool(manifest.get("dense")), manifest.get("model"), records, site, errors)


def _doc_record(article: Article) -> dict[str, Any]:
    return {
        "slug": article.slug, "title": article.title, "summary": article.summary,
        "category": article.category, "hash": article.content_hash,
        # Plain text, for snippets; pages are rendered from articles.json.
        "sections": [[s.anchor, s.heading, " ".join(markdown_text(s.text).split())] for s in article.sections],
    }


def build_index(articles_dir: Path | str, index_dir: Path | str, embedder: Embedder | None, *,
                progress: Progress | None = None, force: bool = False,
                cache_path: Path | str | None = None) -> BuildReport:
    """Build or update the index in ``index_dir`` from the articles in ``articles_dir``.

    Drafts are left out, and so are later files repeating a slug and files or folders whose real path is
    outside the articles folder. A file that does not parse keeps its last good version published, if it
    had one, else it is left out; either way each problem is reported and recorded in the generation. An
    unchanged folder publishes nothing. Without a usable embedder the index is lexical-only, and the next
    build with a model adds the vectors.
    """
    started = time.perf_counter()
    root = Path(articles_dir)
    if not root.is_dir():
        raise ArticleError(root, "is not a folder of articles")
    store = IndexStore(index_dir)
    with store.build_lock():
        previous = _Previous.read(store)  # the last good versions of broken files come from here, always
        old = _Previous() if force else previous
        if embedder is not None and old.path is not None and (not old.dense or old.model != embedder.name):
            old = _Previous()  # the last build had no model, or another one: every article needs new vectors
        old_index = {d["slug"]: i for i, d in enumerate(old.docs)}
        files: dict[str, list[Any]] = {}
        parsed: dict[str, Article] = {}
        current: dict[str, tuple[str, str]] = {}  # slug -> (hash, rel path)
        found = walk(root)
        failures: list[_Failure] = [_Failure(e) for e in found.refused]
        paths = found.articles
        for number, path in enumerate(paths):
            rel = str(path.relative_to(root))
            entry: list[Any] | None
            try:
                stat = path.stat()
                seen = old.files.get(rel)
                if seen and seen[:2] == [stat.st_mtime_ns, stat.st_size]:
                    slug, digest = seen[2], seen[3]
                else:
                    article = load_article(path, root)
                    slug = None if article.draft else article.slug
                    digest = article.content_hash
                    if slug is not None:
                        parsed[slug] = article
                entry = [stat.st_mtime_ns, stat.st_size, slug, digest]
            except FileNotFoundError:
                if not path.is_symlink():
                    continue  # deleted while we read the folder: the next build sees it gone
                error: ArticleError = ArticleError(path, "is a link to a file that does not exist")
                entry = _keep_last_good(error, rel, previous, old, parsed, failures)
            except ArticleError as exc:
                entry = _keep_last_good(exc, rel, previous, old, parsed, failures)
            if entry is None:
                continue
            slug = entry[2]
            if slug is not None and slug in current:
                failures.append(_Failure(ArticleError(path, f"'{slug}' is already the slug of "
                                                            f"{current[slug][1]}", field="slug"), slug))
                continue
            files[rel] = entry
            if slug is not None:
                current[slug] = (entry[3], rel)
            if number % 500 == 0:
                _tick(progress, "read", number, len(paths))

        def unchanged(slug: str) -> bool:
            i = old_index.get(slug)
            return i is not None and old.docs[i]["hash"] == current[slug][0]

        keep = sorted(s for s in current if unchanged(s))
        fresh_slugs = sorted(s for s in current if not unchanged(s))
        missing = [s for s in fresh_slugs if s not in parsed]  # stat unchanged but not in the last index
        for slug in missing:
            parsed[slug] = load_article(root / current[slug][1], root)
        fresh = [parsed[s] for s in fresh_slugs]
        removed = [s for s in old_index if s not in current]
        changed = sum(1 for s in fresh_slugs if s in old_index)
        want_dense = embedder is not None
        # What the site shows changes without a search change too (related, aliases, dates, categories).
        records = {s: parsed[s].record(root) if s in parsed else old.records[s] for s in sorted(current)}
        category_errors: list[ArticleError] = []
        site = _site_data(root, old, records, removed, [parsed[s] for s in fresh_slugs if s not in old_index],
                          category_errors)
        errors = _broken(root, failures + [_Failure(e) for e in category_errors], previous.errors)
        if old.path is not None and not fresh and not removed and (old.dense or not want_dense) \
                and records == old.records and site == old.site and errors == old.errors:
            if files != old.files:  # only timestamps moved: remember them, so next time reads nothing
                _write_atomic(old.path / "files.json", json.dumps(files))
            return BuildReport(old.path.name, len(keep), 0, 0, 0, 0, old.dense,
                               time.perf_counter() - started, errors, published=False)

        folder = store.new_folder()
        try:
            keep_rows = [old_index[s] for s in keep]
            if old.path is not None:
                # Hard links: whoosh never rewrites a file in place (new segments, a new TOC), so the
                # new generation can share the old one's files instead of copying them.
                shutil.copytree(old.path / "whoosh", folder / "whoosh", ignore=shutil.ignore_patterns("*LOCK*"),
                                copy_function=_link_or_copy)
                counts = TermCounts.load(old.path).rows(keep_rows)
            else:
                counts = TermCounts.empty()
            _tick(progress, "analyse", 0, len(fresh))
            write_whoosh(folder / "whoosh", fresh, removed, replace=[a.slug for a in fresh if a.slug in old_index])
            counts.extended(fresh).save(folder)
            del counts
            _tick(progress, "analyse", len(fresh), len(fresh))
            docs = [old.docs[i] for i in keep_rows] + [_doc_record(a) for a in fresh]
            (folder / "docs.json").write_text(json.dumps(docs))
            (folder / "articles.json").write_text(json.dumps(records))
            (folder / "site.json").write_text(json.dumps(site))
            (folder / ERRORS_FILE).write_text(json.dumps([e.record() for e in errors]))
            del records
            passages = DenseIndex.build_arrays(fresh)
            replaced = [old_index[a.slug] for a in fresh if a.slug in old_index]
            added = len(fresh) - changed
            del fresh, parsed, docs  # keep memory for the model while embedding
            release_memory()
            embedded, dense = 0, False
            if want_dense:
                assert embedder is not None
                try:
                    embedded = _write_dense(folder, passages, keep_rows, replaced, old.path if old.dense else None,
                                            embedder, EmbeddingCache(cache_path or store.cache_path), progress)
                    dense = True
                except EmbedderUnavailable as exc:
                    log.warning("building a lexical-only index: %s", exc)
                    for partial in ("vectors.npy", "passages.npz"):
                        (folder / partial).unlink(missing_ok=True)
            (folder / "files.json").write_text(json.dumps(files))
            final = store.publish(folder, {
                "articles": len(keep_rows) + added + changed, "dense": dense,
                "model": embedder.name if dense and embedder else None, "built_at": time.time(),
            })
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return BuildReport(final.name, len(keep_rows) + added + changed, added, changed, len(removed), embedded, dense,
                       time.perf_counter() - started, errors)


@dataclass(frozen=True)
class _Failure:
    """A file the build could not take as it is: the error, and the last good version kept, if any."""

    error: ArticleError
    slug: str | None = None
    served_ns: int | None = None  # modification time of the version still served


def _keep_last_good(error: ArticleError, rel: str, previous: _Previous, old: _Previous,
                    parsed: dict[str, Article], failures: list[_Failure]) -> list[Any] | None:
    """Note a file that does not parse; return the files.json entry of its last good version, if it had one.

    The entry keeps the good version's time and size, so the next build reads the file again and the
    fixed version is indexed as soon as there is one.
    """
    last = previous.files.get(rel)
    slug = last[2] if last else None
    if last is None or slug is None or slug not in previous.records:
        failures.append(_Failure(error, getattr(error, "slug", None)))
        return None
    failures.append(_Failure(error, slug, last[0]))
    if old is not previous:  # a full rebuild: index the kept version again from its record
        parsed[slug] = Article.from_record(previous.records[slug])
    return list(last)


def _broken(root: Path, failures: list[_Failure], before: tuple[BrokenFile, ...]) -> tuple[BrokenFile, ...]:
    """Return every problem of the failed files, each dated from when its file was first seen broken."""
    since = {e.path: e.since for e in before}
    now = dt.datetime.now(dt.UTC)
    found = []
    for failure in failures:
        for problem in failure.error.problems:
            path = problem.path
            rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            served = dt.datetime.fromtimestamp(failure.served_ns / 1e9, dt.UTC) if failure.served_ns else None
            found.append(BrokenFile(rel, problem.line, problem.field, problem.message, since.get(rel, now),
                                    failure.slug, served))
    return tuple(sorted(found, key=lambda e: (e.path, e.line)))


def _site_data(root: Path, old: _Previous, records: dict[str, dict[str, Any]], removed: list[str],
               added: list[Article], errors: list[ArticleError]) -> dict[str, Any]:
    """Return the categories and the redirects of renamed articles, carried over from build to build.

    A published article whose file disappeared while a new one with the same body or title appeared
    was renamed: its old slug keeps redirecting to the new one from then on.
    """
    try:
        categories = [asdict(c) for c in load_categories(root).values()]
    except ArticleError as exc:
        errors.append(exc)
        categories = old.site.get("categories", [])
    redirects = dict(old.site.get("redirects", {}))
    by_body = {a.body.strip(): a.slug for a in added}
    by_title = {a.title: a.slug for a in added}
    for slug in removed:
        before = old.records.get(slug)
        if before is not None:
            target = by_body.get(before["body"].strip()) or by_title.get(before["title"])
            if target:
                redirects[slug] = target
    redirects = {old_slug: new for old_slug, new in redirects.items() if old_slug not in records}
    for old_slug in list(redirects):  # follow chains of renames to the article's current slug
        seen = {old_slug}
        while redirects[old_slug] in redirects and redirects[old_slug] not in seen:
            seen.add(redirects[old_slug])
            redirects[old_slug] = redirects[redirects[old_slug]]
    return {"categories": categories, "redirects": redirects}


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write_dense(folder: Path, passages: tuple[list[str], np.ndarray, np.ndarray, np.ndarray],
                 keep_rows: list[int], replaced: list[int], old_path: Path | None, embedder: Embedder,
                 cache: EmbeddingCache, progress: Progress | None) -> int:
    """Write passage vectors: the kept articles' rows copied, the fresh articles' embedded (or cached).

    The vectors go straight into a memory-mapped ``vectors.npy``: no copy of the matrix in memory.
    """
    texts, owners, kinds, sections = passages
    keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype="S16") if texts else np.zeros(0, "S16")
    kept: tuple[np.ndarray, ...] = (np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros(0, np.int32),
                                    np.zeros(0, "S16"))
    rows = np.zeros(0, np.int64)
    known: dict[bytes, np.ndarray] = {}
    old_vectors = None
    if old_path is not None:
        arrays = np.load(old_path / "passages.npz")
        old_vectors = np.load(old_path / "vectors.npy", mmap_mode="r")
        remap = np.full(int(arrays["owners"].max(initial=-1)) + 1, -1, dtype=np.int64)
        remap[keep_rows] = np.arange(len(keep_rows))
        new_owner = remap[arrays["owners"]] if len(remap) else np.zeros(0, np.int64)
        rows = np.flatnonzero(new_owner >= 0)
        rows = rows[np.argsort(new_owner[rows], kind="stable")]
        kept = (new_owner[rows].astype(np.int32), arrays["kinds"][rows], arrays["sections"][rows],
                arrays["keys"][rows])
        # An edited article mostly repeats its previous version: reuse those passages' vectors.
        again = np.flatnonzero(np.isin(arrays["owners"], replaced))
        known = {bytes(arrays["keys"][i]): np.asarray(old_vectors[i]) for i in again}
    total = len(rows) + len(texts)
    if not total:
        raise EmbedderUnavailable("nothing to embed")  # no articles at all: lexical-only is right
    dim = old_vectors.shape[1] if old_vectors is not None and len(rows) else embedder.dim
    todo = len({k for k in keys.tolist() if k not in known})
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        _tick(progress, "embed", done[0], todo)

    # Streamed to the file a block at a time: the whole matrix is never in memory while building.
    with open(folder / "vectors.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {
            "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
            "shape": (total, dim)})

        def write(block: np.ndarray) -> None:
            handle.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())

        if old_vectors is not None:
            for start in range(0, len(rows), 4096):
                write(np.asarray(old_vectors[rows[start:start + 4096]]))
        try:
            embedded = embed_cached(embedder, texts, cache, write, known, step)
        finally:
            cache.close()
    np.savez(folder / "passages.npz", owners=np.concatenate([kept[0], owners + len(keep_rows)]),
             kinds=np.concatenate([kept[1], kinds]), sections=np.concatenate([kept[2], sections]),
             keys=np.concatenate([kept[3], keys]))
    return embedded


def _tick(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)
