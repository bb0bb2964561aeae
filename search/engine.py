"""The search engine: build and update an index from articles, open it, answer queries."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import answers, fusion, highlight
from .analysis import FUNCTION_WORDS, TOKEN_PATTERN, clean_query, stems
from .answers import Answer
from .dense import DenseIndex
from .embeddings import Embedder, EmbedderUnavailable, same_model
from .errors import SearchError
from .generation import MANIFEST, Doc, IndexCorrupt
from .lexical import (
    DEFAULT_FIELD_B,
    DEFAULT_FIELD_WEIGHTS,
    DEFAULT_K1,
    LexicalIndex,
    ParsedQuery,
)
from .library import Library
from .store import IndexStore
from .tuning import Tuning, pinned_first


class QueryError(SearchError, ValueError):
    """A search request that cannot be answered as asked (unknown mode, bad limit)."""


class NotLoaded(SearchError, RuntimeError):
    """Something was asked of an engine that it was opened without (the articles, without ``pages=True``)."""


log = logging.getLogger(__name__)

MODES = ("hybrid", "lexical", "dense")
QUERY_CACHE = 2048  # query vectors remembered
SECTION_WORDS = 0.2  # for the answer, a section holding every topic word of the query gains this much cosine
SPELLING_GAIN = 0.02  # how much closer the corrected query's best article must be than the typed one's


@dataclass(frozen=True)
class SearchConfig:
    """How rankings are fused. Defaults were chosen on the dev queries of ../shared/eval (see README)."""

    lexical_weight: float = fusion.DEFAULT_LEXICAL_WEIGHT
    title_weight: float = 0.3
    pool: int = fusion.DEFAULT_POOL
    dense_spread: float = fusion.DEFAULT_DENSE_SPREAD
    min_dense_score: float = 0.3  # below this cosine, a match on meaning alone is not a candidate
    # Which candidates are results (see SearchEngine._confident; chosen on the dev queries, README "Honest
    # result sets"): the best article's cosine plus its lead over the next nine must reach ``confidence``,
    # and then the articles within ``confidence_margin`` of the best are results.
    confidence: float = 0.5
    confidence_margin: float = 0.15
    # Or an article holds every word of the query and scores at least this share of the best BM25F.
    lexical_share: float = 0.5
    lexical_min_cosine: float = 0.2  # ... and, with a model, is at least this close in meaning
    most_results: int = 10  # of the confident articles, the best this many (by fused score) are the results
    nearest: int = 3  # shown as "These might help" when no article answers with confidence
    # The best result's section is shown as the answer when the article's cosine reaches answer_confidence
    # and its fused score leads every other candidate's by answer_lead (README "The answer on top").
    answer_confidence: float = 0.45
    answer_lead: float = 0.15
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
    suggestion: str | None = None  # the corrected query these results are for, when a correction was applied
    fallback: bool = False  # True when dense search was asked for but the model is unavailable
    took_ms: float = 0.0
    categories: dict[str, int] = field(default_factory=dict)  # matching articles per category, unfiltered
    # When no article answers with confidence (total 0): the closest few candidates, "These might help".
    nearest: list[Hit] = field(default_factory=list)
    answer: Answer | None = None  # the best result's answering sentences, when it answers with confidence
    pinned: str | None = None  # the article editors pinned to this query (_search.yml), ranked first
    parsed: ParsedQuery | None = field(default=None, repr=False)  # the weighted terms ranked by (kb search --explain)


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
    asked: dict[str, list[int]] = field(default_factory=dict)  # a title or question, normalised -> rows
    tuning: Tuning = field(default_factory=Tuning)  # the editors' synonyms and pins
    published: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))  # when it was published


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
            tuning = Tuning.from_record(generation.tuning())
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
        asked: dict[str, list[int]] = {}
        for row, doc in enumerate(docs):
            for question in {asked_form(q) for q in (doc.title, *doc.questions)}:
                asked.setdefault(question, []).append(row)
        published = dt.datetime.fromtimestamp(int((generation.path / MANIFEST).stat().st_mtime), dt.UTC)
        return _Opened(generation.name, docs, lexical, dense, categories, library, rows, names, codes, vectors,
                       mismatch, asked=asked, tuning=tuning, published=published)

    @property
    def generation(self) -> str:
        return self._gen.name

    @property
    def published(self) -> dt.datetime:
        """When the open generation was published (to the second: what Last-Modified can say)."""
        return self._gen.published

    @property
    def mismatch(self) -> str | None:
        """Why the open generation's vectors are not used (another model embedded them), or None."""
        return self._gen.mismatch

    @property
    def tuning(self) -> Tuning:
        """Return the editors' synonyms and pins of the open generation."""
        return self._gen.tuning

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
            # A model that embeds queries unlike passages (E5's "query: ") says so with encode_queries.
            encode = getattr(self.embedder, "encode_queries", self.embedder.encode)
            vectors = encode(list(texts))
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
               mode: str = "hybrid", correct: bool = True, honest: bool = True) -> SearchResults:
        """Rank articles for a query; any string is accepted, and a bad mode or limit raises QueryError.

        The results are the articles that answer the query with confidence (see ``_confident``), with the
        answer on top when one answers it; ``honest=False`` makes every candidate a result and looks for no
        answer, for measuring the ranking itself. A misspelt word
        is corrected when the correction finds better results (``suggestion`` says so); ``correct=False``
        searches for the words as typed ("Search instead for ...").
        """
        started = time.perf_counter()
        if mode not in MODES:
            raise QueryError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not 0 < limit <= 100 or offset < 0:
            raise QueryError("limit must be between 1 and 100 and offset not negative")
        gen = self._gen
        text = clean_query(query)
        parsed = gen.lexical.parse(text)
        if not correct:
            parsed = parsed.uncorrected()
        parsed = gen.tuning.expand(parsed, gen.lexical.known)  # editors' synonyms join the terms (tuning.py)
        lexical = gen.lexical.scores(parsed)
        dense_scores = passage_scores = vectors = scored = None
        fallback = False
        corrects_all = bool(parsed.corrections) and self._corrects_all(gen, parsed)
        if mode != "lexical" and text:
            # A misspelt word means little to the model: the corrected query is encoded too, and the
            # correction is kept only when it finds a closer article than the query as typed (or the query
            # as typed matches nothing at all).
            wording = (text, parsed.suggestion) if parsed.suggestion else (text,)
            vectors = self.encode_query(*wording) if gen.dense is not None else None
            if vectors is None:
                fallback = True
            else:
                assert gen.dense is not None
                # A large index's graph names the articles worth scoring; the best lexical ones are scored
                # too, so the fusion sees their meaning as well.
                scored = gen.dense.candidates(vectors, fusion.top_k(lexical, self.config.pool))
                passage_scores = gen.dense.passage_scores(vectors[0], scored)
                dense_scores = gen.dense.scores(passage_scores)
                if len(vectors) > 1:
                    fixed = gen.dense.passage_scores(vectors[1], scored)
                    if corrects_all or (gen.dense.scores(fixed).max(initial=-1.0)
                                        >= dense_scores.max(initial=-1.0) + SPELLING_GAIN):
                        # Each passage keeps the closer of the two: the typed words may be right after all.
                        passage_scores = np.maximum(passage_scores, fixed)
                        dense_scores = gen.dense.scores(passage_scores)
                    else:
                        vectors = vectors[:1]
        by_meaning = vectors is not None and len(vectors) == 1
        if parsed.corrections and not corrects_all and (
                by_meaning or vectors is None and not self._corrects_better(gen, parsed)):
            # Not better than the query as typed ("rent a tent" is no "rest a tent"): no correction.
            parsed = gen.tuning.expand(parsed.uncorrected(), gen.lexical.known)  # (synonyms of the words typed)
            lexical = gen.lexical.scores(parsed)
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
        # An article whose own title or question the query is, then those holding the query's codes, come
        # first: "TH-45-GRN" is the backpack's SKU, not any article that mentions 45.
        first = np.zeros(len(gen.docs), dtype=np.float32)
        if mode != "dense":
            first[gen.lexical.holds_codes(parsed)] = 1.0
            first[gen.asked.get(asked_form(text), [])] = 2.0
            matched |= first > 0
        if first.any():
            score = score + first * (float(np.abs(score).max()) + 1.0)
        candidates = matched
        if honest:
            matched = matched & (self._confident(gen, parsed, lexical if mode != "dense" else None, dense_scores)
                                 | (first > 0))
            if np.count_nonzero(matched) > self.config.most_results:  # the best of them: a long list is no answer
                kept = fusion.top_k(np.where(matched, score, -np.inf), self.config.most_results)
                matched = np.zeros_like(matched)
                matched[kept] = True
        matched, pin = gen.tuning.pin(text, gen.rows, matched)  # an editors' pin joins the matches (tuning.py)
        counts = np.bincount(gen.category_codes[matched], minlength=len(gen.category_names))
        facets = {gen.category_names[i]: int(c) for i, c in enumerate(counts) if c}
        code = -1
        if category:
            code = gen.category_names.index(category) if category in gen.category_names else -1
            matched = matched & (gen.category_codes == code)
        total = int(np.count_nonzero(matched))
        ranked = fusion.top_k(np.where(matched, score, -np.inf), min(offset + limit, total))
        ranked, pinned = pinned_first(ranked, pin, matched)  # and goes first, unless the category filter left it out
        page = ranked[offset:]
        if scored is not None and gen.dense is not None and vectors is not None:
            unscored = np.setdiff1d(page, scored)  # shown, but not among the candidates: find its best section
            if len(unscored):
                _passage_scores(gen.dense, vectors, unscored, passage_scores)
        weights = gen.lexical.informative(parsed.terms)  # each term by what it tells, for snippets and the answer
        hits = [self._hit(gen, int(d), parsed, weights, score, lexical, dense_scores, passage_scores)
                for d in page]
        answer = None
        # The query is the article's own question, or editors pinned the article to it: that is the answer.
        sure = bool(hits) and (first[page[0]] == 2.0 or pinned == hits[0].slug)
        if hits and not offset and honest and (sure or dense_scores is not None and self._answers(
                int(page[0]), dense_scores, np.where(candidates, score, -np.inf))):
            answer = self._answer(gen, hits[0], parsed, weights, 1.0 if sure else hits[0].dense_score,
                                  passage_scores)
        nearest: list[Hit] = []
        if not total and not offset:
            if category:
                candidates = candidates & (gen.category_codes == code)
            closest = fusion.top_k(np.where(candidates, score, -np.inf),
                                   min(self.config.nearest, int(np.count_nonzero(candidates))))
            nearest = [self._hit(gen, int(d), parsed, weights, score, lexical, dense_scores, passage_scores)
                       for d in closest]
        # A correction that finds no answer either is not offered as one ("belt pizza in naples").
        return SearchResults(query=text, mode=mode, hits=hits, total=total,
                             suggestion=parsed.suggestion if total else None,
                             fallback=fallback, took_ms=(time.perf_counter() - started) * 1000,
                             categories=facets, nearest=nearest, answer=answer, pinned=pinned, parsed=parsed)

    def _answers(self, top: int, dense: np.ndarray, score: np.ndarray) -> bool:
        """Return whether the best result is sure enough to show its answer: close in meaning, and well ahead
        of every other candidate (when two articles are as good, neither is *the* answer)."""
        if dense[top] < self.config.answer_confidence:
            return False
        others = np.delete(score, top)
        return not len(others) or bool(score[top] - others.max() >= self.config.answer_lead)

    @staticmethod
    def _answer(gen: _Opened, hit: Hit, parsed: ParsedQuery, weights: dict[str, float], score: float | None,
                passage_scores: np.ndarray | None) -> Answer | None:
        """Return the answering sentences of a hit's best section for the answer, or None when it has no text.

        The section is the one closest in meaning (its best chunk's cosine) plus a share of the query's topic
        words it holds: a query that is an article's own question matched no section by meaning at all.
        """
        row = gen.rows[hit.slug]
        record = gen.docs[row]
        by_meaning = gen.dense.section_scores(passage_scores, row) if (
            gen.dense is not None and passage_scores is not None) else {}
        topic = [(t, w) for t, w in parsed.words.items()
                 if w not in FUNCTION_WORDS and t in parsed.terms and t not in parsed.synonyms]  # words typed

        def held(text: str) -> float:
            lower = text.lower()
            return sum(1 for t, w in topic if t in lower or w in lower) / len(topic) if topic else 0.0

        def fit(number: int) -> float:  # a heading naming the query's words says most ("Check your balance")
            _, heading, text = record.sections[number]
            return by_meaning.get(number, 0.0) + SECTION_WORDS * (held(f"{heading} {text}") + held(heading))

        if not record.sections:
            return None
        anchor, heading, text = record.sections[max(range(len(record.sections)), key=fit)]
        found = answers.extract(text, weights, parsed.words)
        if not found:
            return None
        url = f"/articles/{record.slug}" + (f"#{anchor}" if anchor else "")
        return Answer(record.slug, record.title, anchor, heading, url, found, float(score or 0.0),
                      answers.revision(heading, text))

    @staticmethod
    def _corrects_all(gen: _Opened, parsed: ParsedQuery) -> bool:
        """Return whether the query as typed matches no article at all: then a correction is all there is."""
        uncorrected = parsed.uncorrected()
        return not uncorrected.terms or not gen.lexical.scores(uncorrected).any()

    @staticmethod
    def _corrects_better(gen: _Opened, parsed: ParsedQuery) -> bool:
        """Return whether, by words alone, the corrected query finds an article holding all its words and the
        query as typed does not."""
        return bool(gen.lexical.holds_all(parsed).any() and not gen.lexical.holds_all(parsed.uncorrected()).any())

    def _confident(self, gen: _Opened, parsed: ParsedQuery, lexical: np.ndarray | None,
                   dense: np.ndarray | None) -> np.ndarray:
        """Return which articles answer the query with confidence: the results; the other candidates are not.

        Nearly every query is near every article in meaning (cosines of 0.2 to 0.4 are the floor of any
        text), so a candidate is not a result. By meaning: the best article is confident when its cosine
        plus its lead over the mean of the next nine reaches ``confidence`` (a high score alone is not
        enough where many articles score high: that is a topic, not an answer), and then the articles
        within ``confidence_margin`` of it are results too, ten at most (a longer list is no answer).
        By words: an article holding every topic word of the query (a typo's correction counts) whose
        BM25F is at least ``lexical_share`` of the best and, with a model, whose cosine is at least
        ``lexical_min_cosine``, ten at most; the only rule without a model.
        """
        cfg = self.config
        shown = np.zeros(len(gen.docs), dtype=bool)
        if dense is not None and len(dense):
            top = fusion.top_k(dense, 10)
            best = float(dense[top[0]])
            rest = float(dense[top[1:]].mean()) if len(top) > 1 else 0.0
            if 2 * best - rest >= cfg.confidence:
                shown[top[dense[top] >= best - cfg.confidence_margin]] = True
        if lexical is not None and parsed.terms:
            best_lexical = float(lexical.max())
            if best_lexical > 0:
                holds = gen.lexical.holds_all(parsed) & (lexical >= cfg.lexical_share * best_lexical)
                if dense is not None:  # every word, but far from it in meaning, is no answer
                    holds &= dense >= cfg.lexical_min_cosine
                holding = np.flatnonzero(holds)
                shown[holding[fusion.top_k(lexical[holding], 10)]] = True
        return shown

    def _hit(self, gen: _Opened, doc: int, parsed: ParsedQuery, weights: dict[str, float], score: np.ndarray,
             lexical: np.ndarray, dense: np.ndarray | None, passage_scores: np.ndarray | None) -> Hit:
        record = gen.docs[doc]
        sections = record.sections
        best = -1
        if passage_scores is not None and gen.dense is not None:
            best = gen.dense.best_section(passage_scores, doc)
        if parsed.codes and sections:  # the section that holds the query's code, so its snippet shows it
            best = next((i for i, (_, h, t) in enumerate(sections) if set(parsed.codes) <= set(stems(f"{h} {t}"))),
                        best)
        if best < 0 and sections and parsed.terms:
            best = max(range(len(sections)), key=lambda i: parsed.matches(f"{sections[i][1]} {sections[i][2]}"))
        anchor, heading, text = sections[best] if 0 <= best < len(sections) else ("", "", "")
        snippet = highlight.snippet(text or record.summary, weights)
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


def asked_form(text: str) -> str:
    """Return a question as it is compared with a query: lowercase words and codes, nothing else."""
    return " ".join(m.group(0) for m in TOKEN_PATTERN.finditer(text.lower()))


def hit_dict(hit: Hit) -> dict[str, Any]:
    """Return a hit as a JSON-ready dict."""
    return asdict(hit)
