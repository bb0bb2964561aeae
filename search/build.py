"""Build and incrementally update an index from a folder of articles.

Only files whose size or modification time changed are parsed; only articles
whose content hash changed are analysed and embedded; everything else is
carried over from the previous generation, row for row.

Learned questions (``search.learned``) are indexed with their article: an article whose learned questions
change is analysed and embedded again like an edited one (its row hash includes them), and only it.

Like a static-site build that fails, a published article whose new revision
does not parse keeps its last good version (records, rows and vectors carried
over) until the file is fixed; every problem is recorded in the generation
(``errors.json``) with the time it was first seen.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import shutil
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import ann
from .articles import Article, ArticleError, load_article, translation_lang
from .broken import BrokenFile
from .dense import DenseIndex
from .embeddings import Embedder, EmbedderUnavailable, EmbeddingCache, embed_cached, release_memory, text_key
from .folder import load_categories, walk
from .generation import Block, Doc, FileNote, Generation, IndexCorrupt
from .learned import as_mapping, learned_hash, normalise, read_learned, to_index
from .lexical import TermCounts, write_whoosh
from .store import IndexStore
from .tuning import TUNING_FILE, load_tuning

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Learned = Mapping[str, Sequence[str]] | Path | str  # slug -> learned questions, or the file that holds them

# Rows a block holds at most. An edit rewrites the blocks of the articles it touches and links the rest:
# smaller blocks make an edit cheaper, more of them make opening the index slower.
BLOCK_ROWS = 1000


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
    """The published generation a build starts from; its blocks' docs and records are read only when needed."""

    generation: Generation | None = None
    files: dict[str, FileNote] = field(default_factory=dict)  # rel path -> [mtime_ns, size, slug|None, hash]
    dense: bool = False
    model: str | None = None
    site: dict[str, Any] = field(default_factory=dict)  # categories and redirects
    errors: tuple[BrokenFile, ...] = ()
    tuning: dict[str, Any] = field(default_factory=dict)  # Tuning.record() of the synonyms and pins
    blocks: list[Block] = field(default_factory=list)
    slugs: list[list[str]] = field(default_factory=list)  # each block's slugs, in row order
    hashes: dict[str, str] = field(default_factory=dict)  # slug -> content hash of the version indexed
    where: dict[str, tuple[int, int]] = field(default_factory=dict)  # slug -> (block, row in the block)
    _records: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def read(cls, store: IndexStore) -> _Previous:
        if store.current_name() is None:
            return cls()
        try:
            generation = store.current()
            manifest = generation.manifest()
            rows, layout = generation.rows(), generation.layout()
            old = cls(generation, generation.files(), bool(manifest.get("dense")), manifest.get("model"),
                      generation.site(), generation.errors(), generation.tuning(), [block for block, _n in layout])
            start = 0
            for number, (_block, n) in enumerate(layout):
                old.slugs.append([slug for slug, _hash in rows[start:start + n]])
                for row, (slug, digest) in enumerate(rows[start:start + n]):
                    old.hashes[slug] = digest
                    old.where[slug] = (number, row)
                start += n
            return old
        except (OSError, ValueError, KeyError, TypeError, IndexCorrupt) as exc:
            log.warning("rebuilding the index from scratch: %s", exc)
            return cls()

    def block_records(self, number: int) -> dict[str, dict[str, Any]]:
        """Return the records of one block (read once)."""
        if number not in self._records:
            self._records[number] = self.blocks[number].records()
        return self._records[number]

    def record(self, slug: str) -> dict[str, Any] | None:
        """Return the published record of an article, or None if it has none."""
        place = self.where.get(slug)
        return self.block_records(place[0])[slug] if place else None


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

    keep: set[str]  # slugs whose rows are carried over
    fresh: list[Article]  # added or changed articles, in slug order
    removed: list[str]
    changed: int  # how many of fresh replace an article of the same slug
    records: dict[str, dict[str, Any]]  # the record of each fresh article, and of each kept one whose changed
    site: dict[str, Any]
    errors: tuple[BrokenFile, ...]
    tuning: dict[str, Any]  # Tuning.record(): the synonyms and pins search applies
    hashes: dict[str, str] = field(default_factory=dict)  # each fresh article's row hash (learned questions in)

    def is_noop(self, old: _Previous, want_dense: bool) -> bool:
        """Return whether the plan is what ``old`` already holds (nothing to publish)."""
        return (old.generation is not None and not self.fresh and not self.removed and not self.records
                and (old.dense or not want_dense) and self.site == old.site and self.errors == old.errors
                and self.tuning == old.tuning)


def build_index(articles_dir: Path | str, index_dir: Path | str, embedder: Embedder | None, *,
                progress: Progress | None = None, force: bool = False,
                cache_path: Path | str | None = None, learned: Learned | None = None) -> BuildReport:
    """Build or update the index in ``index_dir`` from the articles in ``articles_dir``.

    ``learned`` gives articles questions beyond their own (slug -> questions, or a learned-questions file,
    which may be missing): searched like the editor's questions, lexically and by meaning, but never shown
    as theirs. Learned questions of an article that is not there are ignored.

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
    extra = _prepared(learned)
    with store.build_lock():
        previous = _Previous.read(store)  # the last good versions of broken files come from here, always
        old = _Previous() if force else previous
        if embedder is not None and old.generation is not None and (not old.dense or old.model != embedder.name):
            old = _Previous()  # the last build had no model, or another one: every article needs new vectors
        scan = _scan(root, previous, old, progress)
        plan = _diff(root, scan, previous, old, extra)
        if plan.is_noop(old, embedder is not None) and not _lacks_graph(old, embedder):
            assert old.generation is not None
            if scan.files != old.files:  # only timestamps moved: remember them, so next time reads nothing
                old.generation.write_files(scan.files)
            return BuildReport(old.generation.name, len(plan.keep), 0, 0, 0, 0, old.dense,
                               time.perf_counter() - started, plan.errors, published=False)
        files, errors, removed, changed = scan.files, plan.errors, len(plan.removed), plan.changed
        total, added = len(plan.keep) + len(plan.fresh), len(plan.fresh) - plan.changed
        del scan  # keep memory for the model while embedding
        generation = store.new_generation()
        try:
            embedded, dense = _write_generation(generation, old, plan, embedder,
                                                EmbeddingCache(cache_path or store.cache_path), progress)
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
    # Translations (``<slug>.<lang>.md``) are not articles of this index: each language is searched on its own.
    paths = [p for p in found.articles if not translation_lang(p)]
    prefix = os.path.join(str(root), "")
    for number, path in enumerate(paths):
        name = str(path)  # walk names every file below root: cut the prefix rather than ask pathlib (10,000 times)
        rel = name[len(prefix):] if name.startswith(prefix) else str(path.relative_to(root))
        entry: FileNote | None
        try:
            stat = os.stat(name)
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


def _prepared(learned: Learned | None) -> dict[str, tuple[str, ...]]:
    """Return learned questions as slug -> normalised questions, each once (read from the file if one is named)."""
    if learned is None:
        return {}
    found = read_learned(learned) if isinstance(learned, Path | str) else as_mapping(learned)
    prepared = {}
    for slug, questions in found.items():
        texts = tuple(dict.fromkeys(t for t in map(normalise, questions) if t))
        if texts:
            prepared[slug] = texts
    return prepared


def _diff(root: Path, scan: _Scan, previous: _Previous, old: _Previous, learned: dict[str, tuple[str, ...]]
          ) -> _Plan:
    """Compare the folder with ``old`` by content hash: what is kept, fresh or removed, and what the site shows.

    A row's hash is its article's content hash with its learned questions (``learned_hash``): computed from
    the files' notes, so an article whose file did not change is not read again to know that.
    """
    indexed = {s: learned_hash(digest, learned.get(s, ())) for s, (digest, _rel) in scan.current.items()}
    keep = {s for s, digest in indexed.items() if old.hashes.get(s) == digest}
    fresh_slugs = sorted(s for s in scan.current if s not in keep)
    for slug in fresh_slugs:
        if slug not in scan.parsed:  # stat unchanged but not in the last index, or its learned questions changed
            scan.parsed[slug] = _read_again(root, scan.current[slug][1], slug, old)
    removed = [s for s in old.hashes if s not in scan.current]
    # What the site shows changes without a search change too (related, aliases, dates, categories): the
    # record of every article read again is compared with the published one.
    records = {}
    for slug in sorted(scan.current):
        article = scan.parsed.get(slug)
        if article is not None:
            record = article.record(root)
            if slug not in keep or record != old.record(slug):
                records[slug] = record
    folder_errors: list[ArticleError] = []  # of the category files and _search.yml
    site = _site_data(root, old, scan.current.keys(), removed,
                      [scan.parsed[s] for s in fresh_slugs if s not in old.hashes], folder_errors)
    tuning = _tuning_data(root, scan, old, previous, folder_errors)
    errors = _broken(root, scan.failures + [_Failure(e) for e in folder_errors], previous.errors)
    fresh = [_with_learned(scan.parsed[s], learned.get(s, ())) for s in fresh_slugs]
    return _Plan(keep, fresh, removed, sum(1 for s in fresh_slugs if s in old.hashes), records, site, errors,
                 tuning, {s: indexed[s] for s in fresh_slugs})


def _read_again(root: Path, rel: str, slug: str, old: _Previous) -> Article:
    """Read an article whose file is unchanged; a broken file's last good version is its published record."""
    try:
        return load_article(root / rel, root)
    except ArticleError:
        record = old.record(slug)
        if record is None:
            raise
        return Article.from_record(record)


def _with_learned(article: Article, learned: tuple[str, ...]) -> Article:
    """Return the article as indexed: with the learned questions that are not already its own."""
    questions = to_index(learned, article.questions, article.title) if learned else ()
    return replace(article, learned=questions) if questions or article.learned else article


_Row = tuple[int, int] | Article  # a row of a new block: (old block, row in it) carried over, or a fresh article


def _needs_graph(generation: Generation) -> bool:
    return sum(len(b.vectors()) for b in generation.blocks()) >= ann.MIN_PASSAGES


def _lacks_graph(old: _Previous, embedder: Embedder | None) -> bool:
    """Whether the last generation is large enough for a passage graph but has none (built before graphs)."""
    return (embedder is not None and old.generation is not None and old.dense
            and not old.generation.graph_path.exists() and _needs_graph(old.generation))


def _write_generation(generation: Generation, old: _Previous, plan: _Plan, embedder: Embedder | None,
                      cache: EmbeddingCache, progress: Progress | None) -> tuple[int, bool]:
    """Write everything but the file notes: link untouched blocks, write new ones; return (embedded, dense)."""
    dirty = set(plan.removed) | {a.slug for a in plan.fresh} | set(plan.records)
    untouched: list[int] = []  # old blocks taken as they are
    carried: list[_Row] = []
    for number, slugs in enumerate(old.slugs):
        if dirty.isdisjoint(slugs):
            untouched.append(number)
        else:
            carried += [(number, row) for row, slug in enumerate(slugs) if slug in plan.keep]
    # A last block with room takes the new rows, so adding articles one by one does not make tiny blocks.
    if untouched and (carried or plan.fresh) and (
            len(old.slugs[untouched[-1]]) + len(carried) + len(plan.fresh) <= BLOCK_ROWS):
        number = untouched.pop()
        carried = [*((number, row) for row in range(len(old.slugs[number]))), *carried]
    new_rows: list[_Row] = [*carried, *plan.fresh]
    chunks = [new_rows[i:i + BLOCK_ROWS] for i in range(0, len(new_rows), BLOCK_ROWS)]

    if old.generation is not None:
        generation.link_whoosh(old.generation)
    _tick(progress, "analyse", 0, len(plan.fresh))
    write_whoosh(generation.whoosh, plan.fresh, plan.removed,
                 replace=[a.slug for a in plan.fresh if a.slug in old.hashes])
    linked = [(generation.link_block(old.blocks[n]), len(old.slugs[n])) for n in untouched]
    rows = [(slug, old.hashes[slug]) for n in untouched for slug in old.slugs[n]]
    vocab = old.generation.vocab() if old.generation is not None else {}
    written: list[tuple[Block, list[_Row]]] = []
    serial = generation.name.removeprefix(".tmp-gen-")
    for number, chunk in enumerate(chunks):
        block = generation.new_block(f"{serial}-{number:03d}")
        vocab = _write_block(block, chunk, old, plan, vocab)
        written.append((block, chunk))
        rows += [_slug_hash(r, old, plan) for r in chunk]
    generation.write_vocab(vocab)
    _tick(progress, "analyse", len(plan.fresh), len(plan.fresh))
    generation.write_blocks([*linked, *((b, len(c)) for b, c in written)], rows)
    generation.write_site(plan.site)
    generation.write_tuning(plan.tuning)
    generation.write_errors(plan.errors)
    release_memory()
    try:
        if embedder is None:
            generation.drop_vectors()  # links to the last generation's vectors, which this one does not serve
            return 0, False
        if not rows:
            raise EmbedderUnavailable("nothing to embed")  # no articles at all: lexical-only is right
        embedded = _write_dense(written, old, plan, embedder, cache, progress)
        if _needs_graph(generation):
            _tick(progress, "graph", 0, 1)
            generation.write_graph(old.generation if old.dense else None)
            _tick(progress, "graph", 1, 1)
        return embedded, True
    except EmbedderUnavailable as exc:
        log.warning("building a lexical-only index: %s", exc)
        generation.drop_vectors()
        return 0, False
    finally:
        cache.close()


def _slug_hash(row: _Row, old: _Previous, plan: _Plan) -> tuple[str, str]:
    if isinstance(row, Article):
        return row.slug, plan.hashes[row.slug]
    slug = old.slugs[row[0]][row[1]]
    return slug, old.hashes[slug]


def _write_block(block: Block, chunk: list[_Row], old: _Previous, plan: _Plan, vocab: dict[str, int]
                 ) -> dict[str, int]:
    """Write a new block's docs, records and term counts; return the vocabulary grown by its fresh articles."""
    fresh = [r for r in chunk if isinstance(r, Article)]
    carried = [r for r in chunk if not isinstance(r, Article)]  # carried rows come first (see _write_generation)
    docs: list[Doc] = []
    records: dict[str, dict[str, Any]] = {}
    parts: list[TermCounts] = []
    for number, group in itertools.groupby(carried, key=lambda r: r[0]):
        local = [r[1] for r in group]
        source = old.blocks[number]
        block_docs, block_records = source.docs(), old.block_records(number)
        for row in local:
            doc = block_docs[row]
            docs.append(doc)
            records[doc.slug] = plan.records.get(doc.slug) or block_records[doc.slug]
        parts.append(TermCounts(vocab, source.counts(len(vocab))).rows(local))
    docs += [Doc.of(a, plan.hashes[a.slug]) for a in fresh]
    records.update((a.slug, plan.records[a.slug]) for a in fresh)
    counts = TermCounts.stacked(vocab, parts).extended(fresh)
    block.write_docs(docs)
    block.write_records(records)
    block.write_counts(counts.counts)
    return counts.vocab


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
    record = previous.record(slug) if last is not None and slug is not None else None
    if last is None or slug is None or record is None:
        failures.append(_Failure(error, getattr(error, "slug", None)))
        return None
    failures.append(_Failure(error, slug, last[0]))
    if old is not previous:  # a full rebuild: index the kept version again from its record
        parsed[slug] = Article.from_record(record)
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


def _site_data(root: Path, old: _Previous, current: Collection[str], removed: list[str],
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
        before = old.record(slug)
        if before is not None:
            target = by_body.get(before["body"].strip()) or by_title.get(before["title"])
            if target:
                redirects[slug] = target
    redirects = {old_slug: new for old_slug, new in redirects.items() if old_slug not in current}
    for old_slug in list(redirects):  # follow chains of renames to the article's current slug
        seen = {old_slug}
        while redirects[old_slug] in redirects and redirects[old_slug] not in seen:
            seen.add(redirects[old_slug])
            redirects[old_slug] = redirects[redirects[old_slug]]
    return {"categories": categories, "redirects": redirects}


def _tuning_data(root: Path, scan: _Scan, old: _Previous, previous: _Previous,
                 errors: list[ArticleError]) -> dict[str, Any]:
    """Return the synonyms and pins of ``_search.yml``, its pins checked against the published articles.

    A file with any error is recorded like a broken article, and the last good tuning stays in force
    (warnings, like a pin past its date, are for ``kb check``). Reading it costs nothing worth saving: an
    edit to it alone publishes a generation whose blocks are all the last one's, nothing re-embedded.
    """
    tuning, problems = load_tuning(root)

    def aliases() -> dict[str, str]:  # only when a pin names no current slug: it may read every record
        found: dict[str, str] = {}
        for slug in scan.current:
            article = scan.parsed.get(slug)
            record = old.record(slug) if article is None else None
            for alias in article.aliases if article is not None else (record or {}).get("aliases", ()):
                found.setdefault(alias, slug)
        return found

    tuning, unknown = tuning.resolve(root / TUNING_FILE, scan.current.keys(), aliases)
    failed = [p for p in (*problems, *unknown) if not p.warning]
    if failed:
        errors.extend(failed)
        return previous.tuning
    return tuning.record()


def _write_dense(written: list[tuple[Block, list[_Row]]], old: _Previous, plan: _Plan, embedder: Embedder,
                 cache: EmbeddingCache, progress: Progress | None) -> int:
    """Write each new block's passage vectors: carried rows' copied, fresh articles' embedded (or cached).

    Old vectors are memory-mapped and new ones streamed to the file: no copy of a matrix in memory.
    """
    # An edited article mostly repeats its previous version: reuse those passages' vectors.
    known: dict[bytes, np.ndarray] = {}
    replaced = sorted(old.where[a.slug] for a in plan.fresh if a.slug in old.where) if old.dense else []
    for number, group in itertools.groupby(replaced, key=lambda r: r[0]):
        arrays, vectors = old.blocks[number].passages(), old.blocks[number].vectors()
        for i in np.flatnonzero(np.isin(arrays["owners"], [r[1] for r in group])):
            known[bytes(arrays["keys"][i])] = np.asarray(vectors[i])
    planned = [(block, chunk, DenseIndex.build_arrays([r for r in chunk if isinstance(r, Article)]))
               for block, chunk in written]
    todo = len({k for *_, (texts, *_arrays) in planned for k in map(text_key, texts) if k not in known})
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        _tick(progress, "embed", done[0], todo)

    embedded = 0
    for block, chunk, passages in planned:
        embedded += _write_block_vectors(block, chunk, passages, old, embedder, cache, known, step)
    return embedded


def _write_block_vectors(block: Block, chunk: list[_Row], passages: tuple[list[str], np.ndarray, np.ndarray,
                         np.ndarray], old: _Previous, embedder: Embedder, cache: EmbeddingCache,
                         known: dict[bytes, np.ndarray], step: Callable[[int], None]) -> int:
    """Write one new block's vectors and passages; return how many texts were embedded."""
    texts, owners, kinds, sections = passages
    keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype="S16") if texts else np.zeros(0, "S16")
    carried = [r for r in chunk if not isinstance(r, Article)]
    kept_parts: list[tuple[np.ndarray, ...]] = []
    copies: list[tuple[np.ndarray, np.ndarray]] = []
    start = 0
    for number, group in itertools.groupby(carried, key=lambda r: r[0]):
        local = [r[1] for r in group]
        arrays = old.blocks[number].passages()
        remap = np.full(int(arrays["owners"].max(initial=-1)) + 1, -1, dtype=np.int64)
        remap[local] = np.arange(start, start + len(local))
        new_owner = remap[arrays["owners"]]
        rows = np.flatnonzero(new_owner >= 0)
        rows = rows[np.argsort(new_owner[rows], kind="stable")]
        kept_parts.append((new_owner[rows].astype(np.int32), arrays["kinds"][rows], arrays["sections"][rows],
                           arrays["keys"][rows]))
        copies.append((old.blocks[number].vectors(), rows))
        start += len(local)
    total = sum(len(rows) for _v, rows in copies) + len(texts)
    dim = copies[0][0].shape[1] if copies else embedder.dim
    with block.vector_writer(total, dim) as write:
        for vectors, rows in copies:
            for at in range(0, len(rows), 4096):
                write(np.asarray(vectors[rows[at:at + 4096]]))
        embedded = embed_cached(embedder, texts, cache, write, known, step)
    kept_parts.append((owners + start, kinds, sections, keys))
    block.write_passages(owners=np.concatenate([p[0] for p in kept_parts]).astype(np.int32),
                         kinds=np.concatenate([p[1] for p in kept_parts]),
                         sections=np.concatenate([p[2] for p in kept_parts]),
                         keys=np.concatenate([p[3] for p in kept_parts]))
    return embedded


def _tick(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)
