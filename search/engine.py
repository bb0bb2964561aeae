"""The search engine: build and update an index from articles, open it, answer queries."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import fusion
from .analysis import clean_query
from .dense import DenseIndex
from .embeddings import Embedder, EmbedderUnavailable, same_model
from .errors import SearchError
from .generation import Doc, IndexCorrupt
from .lexical import (
    DEFAULT_FIELD_B,
    DEFAULT_FIELD_WEIGHTS,
    DEFAULT_K1,
    LexicalIndex,
    ParsedQuery,
)
from .library import Library
from .store import IndexStore


class QueryError(SearchError, ValueError):
    """A search request that cannot be answered as asked (unknown mode, bad limit)."""


class NotLoaded(SearchError, RuntimeError):
    """Something was asked of an engine that it was opened without (the articles, without ``pages=True``)."""


log = logging.getLogger(__name__)

MODES = ("hybrid", "lexical", "dense")
QUERY_CACHE = 2048  # query vectors remembered


@dataclass(frozen=True)
class SearchConfig:
    """How rankings are fused. Defaults were chosen on the dev queries of ../shared/eval (see README)."""

    lexical_weight: float = fusion.DEFAULT_LEXICAL_WEIGHT
    title_weight: float = 0.3
    pool: int = fusion.DEFAULT_POOL
    dense_spread: float = fusion.DEFAULT_DENSE_SPREAD
    min_dense_score: float = 0.3  # below this cosine, a match on meaning alone is not shown
    k1: float = DEFAULT_K1
    field_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FIELD_WEIGHTS))
    field_b: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FIELD_B))


@dataclass(frozen=True)
class Hit:
    """One ranked article, linked to its best-matching section, with each retriever's score."""

    slug: str
    title: str
    url: str
    anchor: str
    section: str
    summary: str
    category: str
    snippet: str  # HTML-escaped, matched terms in <mark>
    score: float
    lexical_score: float
    dense_score: float | None


@dataclass(frozen=True)
class SearchResults:
    """A page of hits, the number of matching articles, and how the answer was produced."""

    query: str
    mode: str
    hits: list[Hit]
    total: int
    suggestion: str | None = None
    fallback: bool = False  # True when dense search was asked for but the model is unavailable
    took_ms: float = 0.0
    categories: dict[str, int] = field(default_factory=dict)  # matching articles per category, unfiltered


@dataclass
class _Opened:
    """A generation as an engine holds it in memory."""

    name: str
    docs: list[Doc]
    lexical: LexicalIndex
    dense: DenseIndex | None
    categories: np.ndarray
    library: Library | None
    rows: dict[str, int]
    category_names: list[str]
    category_codes: np.ndarray
    article_vectors: list[np.ndarray] | None = None  # each block's, memory-mapped
    mismatch: str | None = None  # why its vectors are not used: another model embedded them
    related: dict[tuple[str, int], list[str]] = field(default_factory=dict)  # computed once a generation


class SearchEngine:
    """Answers queries from the published generation of an index folder; reloads when it changes."""

    def __init__(self, index_dir: Path | str, embedder: Embedder | None = None,
                 config: SearchConfig | None = None, *, pages: bool = False, query_cache: int = QUERY_CACHE,
                 wait_for_model: bool = True):
        self.store = IndexStore(index_dir)
        self.embedder = embedder
        # A server must not keep its first visitors waiting while the model loads (seconds to tens of
        # seconds): with wait_for_model False, queries are answered lexically, flagged as a fallback, until
        # the model (loading in the background) is in memory. A command line waits instead.
        self.wait_for_model = wait_for_model
        self._loader: threading.Thread | None = None
        self.config = config or SearchConfig()
        self.pages = pages  # also load the articles themselves, for a site to show
        self.dense_error: str | None = None if embedder else "no embedding model configured"
        self._lock = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}  # query text -> vector, oldest first
        self.query_cache = query_cache
        self._gen = self._open()

    def _open(self) -> _Opened:
        generation = self.store.current()
        cfg = self.config
        try:
            docs = generation.docs()
            lexical = LexicalIndex(generation.whoosh, generation.term_counts(), weights=cfg.field_weights,
                                   b=cfg.field_b, k1=cfg.k1)
            dense = generation.dense(title_weight=cfg.title_weight) if generation.has_vectors else None
            built_with = generation.manifest().get("model") if dense is not None else None
            library = generation.library() if self.pages else None
        except Exception as exc:  # any unreadable part means the index must be rebuilt: say which
            raise IndexCorrupt(f"cannot open the index in {generation.path} ({type(exc).__name__}: {exc}); "
                               "rebuild it with 'kb index --force'") from exc
        categories = np.array([d.category for d in docs], dtype=object)
        names: list[str] = sorted({d.category for d in docs})
        codes = np.searchsorted(np.array(names, dtype=str), categories.astype(str)).astype(np.int64)
        rows = {d.slug: i for i, d in enumerate(docs)}
        mismatch = None
        if dense is not None and self.embedder is not None and not same_model(str(built_with), self.embedder.name):
            # Vectors of two models are not comparable; those of one model on two runtimes are (cosine ≥ 0.98).
            mismatch = (f"the index was embedded by {built_with}, queries would be by {self.embedder.name}: "
                        "lexical search until 'kb index' re-embeds it")
            log.warning("%s: %s", generation.name, mismatch)
            dense = None
        vectors = generation.article_vector_blocks() if dense is not None and self.pages else None
        return _Opened(generation.name, docs, lexical, dense, categories, library, rows, names, codes, vectors,
                       mismatch)

    @property
    def generation(self) -> str:
        return self._gen.name

    @property
    def mismatch(self) -> str | None:
        """Why the open generation's vectors are not used (another model embedded them), or None."""
        return self._gen.mismatch

    @property
    def articles(self) -> int:
        return len(self._gen.docs)

    @property
    def library(self) -> Library:
        """Return the published articles (an engine opened with ``pages=True``)."""
        if self._gen.library is None:
            raise NotLoaded("this engine was opened without pages=True")
        return self._gen.library

    def related(self, slug: str, limit: int = 5) -> list[str]:
        """Return the slugs of the articles nearest in meaning to this one, nearest first."""
        gen = self._gen
        cached = gen.related.get((slug, limit))
        if cached is None:
            cached = gen.related[(slug, limit)] = self._related(gen, slug, limit)
        return cached

    def _related(self, gen: _Opened, slug: str, limit: int) -> list[str]:
        row = gen.rows.get(slug)
        if row is None:
            return []
        if gen.article_vectors is not None:
            starts = np.cumsum([0, *(len(b) for b in gen.article_vectors)])
            block = int(np.searchsorted(starts, row, side="right")) - 1
            mine = np.asarray(gen.article_vectors[block][row - starts[block]])
            similarity = np.concatenate([b @ mine for b in gen.article_vectors])
        else:  # no vectors: articles sharing the most title words, then the same category
            parsed = gen.lexical.parse(gen.docs[row].title)
            similarity = gen.lexical.scores(parsed) + (gen.categories == gen.categories[row]) * 1e-3
        similarity = np.asarray(similarity, dtype=np.float64)
        similarity[row] = -np.inf
        return [gen.docs[int(i)].slug for i in fusion.top_k(similarity, min(limit, len(gen.docs) - 1))]

    def slugs(self) -> list[str]:
        """Return the slugs of the indexed articles."""
        return [d.slug for d in self._gen.docs]

    def refresh(self) -> bool:
        """Switch to a newer published generation if there is one; return whether it switched."""
        if self.store.current_name() == self._gen.name:
            return False
        with self._lock:
            if self.store.current_name() == self._gen.name:
                return False
            self._gen = self._open()  # requests still running finish on the old one; nothing to close
        return True

    def encode_query(self, *texts: str) -> np.ndarray | None:
        """Return the queries' vectors (one row each), or None (with a logged warning, once) when the model
        is unavailable. Recent queries' vectors are remembered: popular questions are asked again and again."""
        if self.embedder is None or self.dense_error is not None:
            return None
        known = [self._vectors.get(t) for t in texts]
        if all(v is not None for v in known):
            return np.stack(known)  # type: ignore[arg-type]
        if not self._model_ready(self.embedder):
            return None
        try:
            vectors = self.embedder.encode(list(texts))
            with self._lock:
                for text, vector in zip(texts, vectors, strict=True):
                    self._vectors[text] = vector
                    if len(self._vectors) > self.query_cache:
                        self._vectors.pop(next(iter(self._vectors)))
            return vectors
        except EmbedderUnavailable as exc:
            self.dense_error = str(exc)
            log.warning("semantic search unavailable, answering from the lexical index: %s", exc)
            return None

    def _model_ready(self, embedder: Embedder) -> bool:
        """Return whether a query can be encoded now; if not, make sure the model is loading in the background."""
        if self.wait_for_model or embedder.loaded:
            return True
        if embedder.error:
            self.dense_error = embedder.error
            return False
        with self._lock:
            if self._loader is None:
                self._loader = threading.Thread(target=self._load_model, args=(embedder,), name="kb-model-load",
                                                daemon=True)
                self._loader.start()
        return False

    def _load_model(self, embedder: Embedder) -> None:
        try:
            embedder.load()
        except EmbedderUnavailable as exc:
            self.dense_error = str(exc)
            log.warning("semantic search unavailable, answering from the lexical index: %s", exc)

    def search(self, query: str, *, limit: int = 10, offset: int = 0, category: str | None = None,
               mode: str = "hybrid") -> SearchResults:
        """Rank articles for a query; any string is accepted, and a bad mode or limit raises QueryError."""
        started = time.perf_counter()
        if mode not in MODES:
            raise QueryError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not 0 < limit <= 100 or offset < 0:
            raise QueryError("limit must be between 1 and 100 and offset not negative")
        gen = self._gen
        text = clean_query(query)
        parsed = gen.lexical.parse(text)
        lexical = gen.lexical.scores(parsed)
        dense_scores = passage_scores = vectors = scored = None
        fallback = False
        if mode != "lexical" and text:
            # A misspelt word means little to the model: the corrected query is encoded too, and each
            # passage keeps the better of the two similarities.
            wording = (text, parsed.suggestion) if parsed.suggestion else (text,)
            vectors = self.encode_query(*wording) if gen.dense is not None else None
            if vectors is None:
                fallback = True
            else:
                assert gen.dense is not None
                # A large index's graph names the articles worth scoring; the best lexical ones are scored
                # too, so the fusion sees their meaning as well.
                scored = gen.dense.candidates(vectors, fusion.top_k(lexical, self.config.pool))
                passage_scores = _passage_scores(gen.dense, vectors, scored)
                dense_scores = gen.dense.scores(passage_scores)
        matched = lexical > 0
        if dense_scores is not None:
            close = dense_scores >= self.config.min_dense_score
            if mode == "dense":
                matched, score = close, dense_scores
            else:
                matched |= close
                score = fusion.convex(lexical, dense_scores, self.config.lexical_weight, self.config.pool,
                                     self.config.dense_spread)
        else:
            score = lexical
        counts = np.bincount(gen.category_codes[matched], minlength=len(gen.category_names))
        facets = {gen.category_names[i]: int(c) for i, c in enumerate(counts) if c}
        if category:
            code = gen.category_names.index(category) if category in gen.category_names else -1
            matched &= gen.category_codes == code
        total = int(np.count_nonzero(matched))
        ranked = fusion.top_k(np.where(matched, score, -np.inf), min(offset + limit, total))
        page = ranked[offset:]
        if scored is not None and gen.dense is not None and vectors is not None:
            unscored = np.setdiff1d(page, scored)  # shown, but not among the candidates: find its best section
            if len(unscored):
                _passage_scores(gen.dense, vectors, unscored, passage_scores)
        hits = [self._hit(gen, int(d), parsed, score, lexical, dense_scores, passage_scores) for d in page]
        return SearchResults(query=text, mode=mode, hits=hits, total=total, suggestion=parsed.suggestion,
                             fallback=fallback, took_ms=(time.perf_counter() - started) * 1000,
                             categories=facets)

    def _hit(self, gen: _Opened, doc: int, parsed: ParsedQuery, score: np.ndarray, lexical: np.ndarray,
             dense: np.ndarray | None, passage_scores: np.ndarray | None) -> Hit:
        record = gen.docs[doc]
        sections = record.sections
        best = -1
        if passage_scores is not None and gen.dense is not None:
            best = gen.dense.best_section(passage_scores, doc)
        if best < 0 and sections and parsed.terms:
            best = max(range(len(sections)), key=lambda i: parsed.matches(f"{sections[i][1]} {sections[i][2]}"))
        anchor, heading, text = sections[best] if 0 <= best < len(sections) else ("", "", "")
        snippet = gen.lexical.snippet(text or record.summary, parsed.terms)
        return Hit(
            slug=record.slug, title=record.title, url=f"/articles/{record.slug}" + (f"#{anchor}" if anchor else ""),
            anchor=anchor, section=heading, summary=record.summary, category=record.category,
            snippet=snippet, score=float(score[doc]), lexical_score=float(lexical[doc]),
            dense_score=float(dense[doc]) if dense is not None else None,
        )


def _passage_scores(dense: DenseIndex, vectors: np.ndarray, docs: np.ndarray | None,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Return each passage's best similarity to any of the query vectors (only ``docs``' passages, if given,
    written into ``out``, if given)."""
    out = dense.passage_scores(vectors[0], docs, out)
    for vector in vectors[1:]:
        np.maximum(out, dense.passage_scores(vector, docs), out=out)
    return out


def hit_dict(hit: Hit) -> dict[str, Any]:
    """Return a hit as a JSON-ready dict."""
    return asdict(hit)
