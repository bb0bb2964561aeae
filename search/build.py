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
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .articles import Article, ArticleError, load_article
from .broken import BrokenFile
from .dense import DenseIndex
from .embeddings import Embedder, EmbedderUnavailable, EmbeddingCache, embed_cached, release_memory, text_key
from .folder import load_categories, walk
from .generation import Doc, FileNote, Generation, IndexCorrupt
from .lexical import TermCounts, write_whoosh
from .store import IndexStore

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

    generation: Generation | None = None
    docs: list[Doc] = field(default_factory=list)
    files: dict[str, FileNote] = field(default_factory=dict)  # rel path -> [mtime_ns, size, slug|None, hash]
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
            generation = store.current()
            manifest = generation.manifest()
            return cls(generation, generation.docs(), generation.files(), bool(manifest.get("dense")),
                       manifest.get("model"), generation.records(), generation.site(), generation.errors())
        except (OSError, ValueError, KeyError, TypeError, IndexCorrupt) as exc:
            log.warning("rebuilding the index from scratch: %s", exc)
            return cls()

    def rows(self) -> dict[str, int]:
        """Return each indexed slug's row."""
        return {d.slug: i for i, d in enumerate(self.docs)}


@dataclass
class _Scan:
    """What a build found in the articles folder."""

    files: dict[str, FileNote] = field(default_factory=dict)  # every file taken, by relative path
    parsed: dict[str, Article] = field(default_factory=dict)  # slug -> article read (or taken from a record)
    current: dict[str, tuple[str, str]] = field(default_factory=dict)  # slug -> (content hash, relative path)
    failures: list[_Failure] = field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    """What the next generation holds: articles kept row for row, fresh ones, and what the site shows."""

    keep: list[str]  # slugs whose rows are carried over, in slug order
    fresh: list[Article]  # added or changed articles, in slug order
    removed: list[str]
    changed: int  # how many of fresh replace an article of the same slug
    records: dict[str, dict[str, Any]]
    site: dict[str, Any]
    errors: tuple[BrokenFile, ...]

    def is_noop(self, old: _Previous, want_dense: bool) -> bool:
        """Return whether the plan is what ``old`` already holds (nothing to publish)."""
        return (old.generation is not None and not self.fresh and not self.removed and (old.dense or not want_dense)
                and self.records == old.records and self.site == old.site and self.errors == old.errors)


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
        if embedder is not None and old.generation is not None and (not old.dense or old.model != embedder.name):
            old = _Previous()  # the last build had no model, or another one: every article needs new vectors
        scan = _scan(root, previous, old, progress)
        plan = _diff(root, scan, previous, old)
        if plan.is_noop(old, embedder is not None):
            assert old.generation is not None
            if scan.files != old.files:  # only timestamps moved: remember them, so next time reads nothing
                old.generation.write_files(scan.files)
            return BuildReport(old.generation.name, len(plan.keep), 0, 0, 0, 0, old.dense,
                               time.perf_counter() - started, plan.errors, published=False)
        files, errors, removed, changed = scan.files, plan.errors, len(plan.removed), plan.changed
        total, added = len(plan.keep) + len(plan.fresh), len(plan.fresh) - plan.changed
        generation = store.new_generation()
        try:
            passages, keep_rows, replaced = _write_articles(generation, old, plan, progress)
            del scan, plan  # keep memory for the model while embedding
            release_memory()
            embedded, dense = 0, False
            if embedder is not None:
                try:
                    embedded = _write_dense(generation, passages, keep_rows, replaced,
                                            old.generation if old.dense else None, embedder,
                                            EmbeddingCache(cache_path or store.cache_path), progress)
                    dense = True
                except EmbedderUnavailable as exc:
                    log.warning("building a lexical-only index: %s", exc)
                    generation.drop_vectors()
            generation.write_files(files)
            final = store.publish(generation, {
                "articles": total, "dense": dense, "model": embedder.name if dense and embedder else None,
                "built_at": time.time(),
            })
        except BaseException:
            shutil.rmtree(generation.path, ignore_errors=True)
            raise
    return BuildReport(final.name, total, added, changed, removed, embedded, dense, time.perf_counter() - started,
                       errors)


def _scan(root: Path, previous: _Previous, old: _Previous, progress: Progress | None) -> _Scan:
    """Read the articles folder: parse the files whose time or size changed since ``old``, note the rest."""
    found = walk(root)
    scan = _Scan(failures=[_Failure(e) for e in found.refused])
    paths = found.articles
    for number, path in enumerate(paths):
        rel = str(path.relative_to(root))
        entry: FileNote | None
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
                    scan.parsed[slug] = article
            entry = [stat.st_mtime_ns, stat.st_size, slug, digest]
        except FileNotFoundError:
            if not path.is_symlink():
                continue  # deleted while we read the folder: the next build sees it gone
            error: ArticleError = ArticleError(path, "is a link to a file that does not exist")
            entry = _keep_last_good(error, rel, previous, old, scan.parsed, scan.failures)
        except ArticleError as exc:
            entry = _keep_last_good(exc, rel, previous, old, scan.parsed, scan.failures)
        if entry is None:
            continue
        slug = entry[2]
        if slug is not None and slug in scan.current:
            scan.failures.append(_Failure(ArticleError(path, f"'{slug}' is already the slug of "
                                                             f"{scan.current[slug][1]}", field="slug"), slug))
            continue
        scan.files[rel] = entry
        if slug is not None:
            scan.current[slug] = (entry[3], rel)
        if number % 500 == 0:
            _tick(progress, "read", number, len(paths))
    return scan


def _diff(root: Path, scan: _Scan, previous: _Previous, old: _Previous) -> _Plan:
    """Compare the folder with ``old`` by content hash: what is kept, fresh or removed, and what the site shows."""
    old_rows = old.rows()

    def unchanged(slug: str) -> bool:
        i = old_rows.get(slug)
        return i is not None and old.docs[i].hash == scan.current[slug][0]

    keep = sorted(s for s in scan.current if unchanged(s))
    fresh_slugs = sorted(s for s in scan.current if not unchanged(s))
    for slug in fresh_slugs:
        if slug not in scan.parsed:  # stat unchanged but not in the last index
            scan.parsed[slug] = load_article(root / scan.current[slug][1], root)
    removed = [s for s in old_rows if s not in scan.current]
    # What the site shows changes without a search change too (related, aliases, dates, categories).
    records = {s: scan.parsed[s].record(root) if s in scan.parsed else old.records[s] for s in sorted(scan.current)}
    category_errors: list[ArticleError] = []
    site = _site_data(root, old, records, removed, [scan.parsed[s] for s in fresh_slugs if s not in old_rows],
                      category_errors)
    errors = _broken(root, scan.failures + [_Failure(e) for e in category_errors], previous.errors)
    return _Plan(keep, [scan.parsed[s] for s in fresh_slugs], removed, sum(1 for s in fresh_slugs if s in old_rows),
                 records, site, errors)


def _write_articles(generation: Generation, old: _Previous, plan: _Plan, progress: Progress | None
                    ) -> tuple[tuple[list[str], np.ndarray, np.ndarray, np.ndarray], list[int], list[int]]:
    """Write everything but the vectors; return the fresh articles' passages, the kept rows and the replaced ones."""
    old_rows = old.rows()
    keep_rows = [old_rows[s] for s in plan.keep]
    if old.generation is not None:
        generation.link_whoosh(old.generation)
        counts = old.generation.term_counts().rows(keep_rows)
    else:
        counts = TermCounts.empty()
    fresh = plan.fresh
    _tick(progress, "analyse", 0, len(fresh))
    write_whoosh(generation.whoosh, fresh, plan.removed, replace=[a.slug for a in fresh if a.slug in old_rows])
    generation.write_term_counts(counts.extended(fresh))
    del counts
    _tick(progress, "analyse", len(fresh), len(fresh))
    generation.write_docs([old.docs[i] for i in keep_rows] + [Doc.of(a) for a in fresh])
    generation.write_records(plan.records)
    generation.write_site(plan.site)
    generation.write_errors(plan.errors)
    replaced = [old_rows[a.slug] for a in fresh if a.slug in old_rows]
    return DenseIndex.build_arrays(fresh), keep_rows, replaced


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


def _write_dense(generation: Generation, passages: tuple[list[str], np.ndarray, np.ndarray, np.ndarray],
                 keep_rows: list[int], replaced: list[int], old: Generation | None, embedder: Embedder,
                 cache: EmbeddingCache, progress: Progress | None) -> int:
    """Write passage vectors: the kept articles' rows copied, the fresh articles' embedded (or cached).

    The old vectors are memory-mapped and the new ones streamed to the file: no copy of the matrix in memory.
    """
    texts, owners, kinds, sections = passages
    keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype="S16") if texts else np.zeros(0, "S16")
    kept: tuple[np.ndarray, ...] = (np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros(0, np.int32),
                                    np.zeros(0, "S16"))
    rows = np.zeros(0, np.int64)
    known: dict[bytes, np.ndarray] = {}
    old_vectors = None
    if old is not None:
        arrays = old.passages()
        old_vectors = old.vectors()
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

    with generation.vector_writer(total, dim) as write:
        if old_vectors is not None:
            for start in range(0, len(rows), 4096):
                write(np.asarray(old_vectors[rows[start:start + 4096]]))
        try:
            embedded = embed_cached(embedder, texts, cache, write, known, step)
        finally:
            cache.close()
    generation.write_passages(owners=np.concatenate([kept[0], owners + len(keep_rows)]),
                              kinds=np.concatenate([kept[1], kinds]), sections=np.concatenate([kept[2], sections]),
                              keys=np.concatenate([kept[3], keys]))
    return embedded


def _tick(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)
