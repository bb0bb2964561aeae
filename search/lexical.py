"""Lexical retrieval: whoosh analysis and index, with BM25F scores from a precomputed sparse matrix.

whoosh is the index of record and the analyser: its analysers (ShopAnalyzer)
tokenise and stem every field, its index keeps the documents by slug and the
vocabulary that spelling correction draws on (snippets are cut in ``highlight``).
The stemmed fields themselves are counted into term-count matrices and not indexed
by whoosh: nothing reads them back, and indexing them was most of a cold
build's time (290 of 370 s at 10,000 articles). Scoring a query through whoosh's searcher costs ~30 ms
at 10,000 articles, so the BM25F weight of every (article, term) pair is
precomputed into a sparse matrix; a query then costs one column slice and a
dot product (well under a millisecond).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from rapidfuzz import process
from rapidfuzz.distance import OSA
from whoosh import fields, index
from whoosh.filedb.filestore import FileStorage

from . import highlight
from .analysis import (
    FUNCTION_WORDS,
    SPLIT_RE,
    STOP,
    TOKEN_PATTERN,
    WORD_PATTERN,
    clean_query,
    markdown_text,
    stems,
    word_analyzer,
)
from .articles import Article

# Fields searched, in the order of the matrices, with their default BM25F weights.
FIELDS = ("title", "questions", "headings", "tags", "body")
# Chosen on the dev queries of ../shared/eval (one setting for all sets; README "Search quality").
# Scaling every weight and k1 together changes nothing, so body is the unit of 0.25.
DEFAULT_FIELD_WEIGHTS: Mapping[str, float] = {
    "title": 2.0, "questions": 1.5, "headings": 0.5, "tags": 0.5, "body": 0.25,
}
DEFAULT_FIELD_B: Mapping[str, float] = {
    "title": 1.0, "questions": 0.75, "headings": 0.5, "tags": 0.3, "body": 0.75,
}
DEFAULT_K1 = 1.5

MAX_QUERY_TERMS = 32
MAX_CORRECTED_WORDS = 6
FUZZY_WEIGHT = 0.8  # a typo-corrected term counts a little less than an exact one
PART_WEIGHT = 0.3  # each part of a code like TH-45-GRN, against 1.0 for the whole code

def schema() -> fields.Schema:
    """Return the whoosh schema of the article index: each article's slug and its words, for spelling."""
    return fields.Schema(
        slug=fields.ID(unique=True),
        spell=fields.TEXT(analyzer=word_analyzer(), phrase=False),
    )


def article_fields(article: Article, *, learned: bool = True) -> dict[str, str]:
    """Return the text of each searched field of an article; its learned questions join its questions."""
    return {
        "title": article.title,
        "questions": "\n".join((*article.questions, *article.learned) if learned else article.questions),
        "headings": "\n".join(s.heading for s in article.sections if s.heading),
        "tags": " ".join((*article.tags, article.category)),
        "body": markdown_text(f"{article.summary}\n{article.body}"),
    }


# --------------------------------------------------------------------------- building


@dataclass
class TermCounts:
    """Per-field term counts of a set of articles: one sparse docs × vocab matrix a field."""

    vocab: dict[str, int]
    counts: dict[str, sp.csr_matrix]

    @classmethod
    def empty(cls) -> TermCounts:
        return cls({}, {f: sp.csr_matrix((0, 0), dtype=np.float32) for f in FIELDS})

    @classmethod
    def stacked(cls, vocab: dict[str, int], parts: Sequence[TermCounts]) -> TermCounts:
        """Return the rows of several counts over the same vocabulary, one after another."""
        if not parts:
            return cls(vocab, {f: sp.csr_matrix((0, len(vocab)), dtype=np.float32) for f in FIELDS})
        return cls(vocab, {f: sp.vstack([p.counts[f] for p in parts], format="csr") for f in FIELDS})

    @property
    def n_docs(self) -> int:
        return int(self.counts[FIELDS[0]].shape[0])

    def rows(self, docs: Sequence[int]) -> TermCounts:
        """Return the counts of some articles only, in the order given."""
        idx = np.asarray(docs, dtype=np.int64)
        return TermCounts(self.vocab, {f: m[idx] for f, m in self.counts.items()})

    def extended(self, articles: Sequence[Article]) -> TermCounts:
        """Return these counts with rows for more articles appended (the vocabulary grows as needed)."""
        vocab = dict(self.vocab)
        new_rows: dict[str, list[Counter[str]]] = {f: [] for f in FIELDS}
        for article in articles:
            for name, text in article_fields(article).items():
                new_rows[name].append(Counter(stems(text)))
                for term in new_rows[name][-1]:
                    vocab.setdefault(term, len(vocab))
        counts = {}
        for name in FIELDS:
            data: list[int] = []
            cols: list[int] = []
            indptr = [0]
            for counter in new_rows[name]:
                cols.extend(vocab[t] for t in counter)
                data.extend(counter.values())
                indptr.append(len(cols))
            added = sp.csr_matrix((np.asarray(data, np.float32), np.asarray(cols, np.int32), indptr),
                                  shape=(len(articles), len(vocab)))
            old = self.counts[name]
            old = sp.csr_matrix((old.data, old.indices, old.indptr), shape=(old.shape[0], len(vocab)))
            counts[name] = sp.vstack([old, added], format="csr")
        return TermCounts(vocab, counts)


def write_whoosh(directory: Path, articles: Sequence[Article], removed: Iterable[str] = (),
                 replace: Iterable[str] = ()) -> None:
    """Add articles, replace those whose slug is in ``replace``, delete removed slugs.

    ``directory`` may share its files with the published generation by hard links: whoosh names new files
    with the global ``random``, which a forked or seeded process may repeat, so the names are drawn from a
    fresh seed, and a file is never opened for writing through a link (see ``_UnlinkingStorage``).
    """
    state = random.getstate()
    random.seed()  # from os.urandom; put back afterwards, for whoever relies on the sequence
    try:
        _write_whoosh(directory, articles, removed, replace)
    finally:
        random.setstate(state)


class _UnlinkingStorage(FileStorage):
    """A whoosh folder where creating a file replaces any file of that name instead of writing into it."""

    def create_file(self, name: str, excl: bool = False, mode: str = "wb", **kwargs: object) -> Any:
        if not excl:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._fpath(name))  # break a hard link: the other generation keeps its file
        return super().create_file(name, excl=excl, mode=mode, **kwargs)


def _write_whoosh(directory: Path, articles: Sequence[Article], removed: Iterable[str],
                  replace: Iterable[str]) -> None:
    storage = _UnlinkingStorage(str(directory))
    if index.exists_in(str(directory)):
        ix = storage.open_index()
        writer = ix.writer(limitmb=128)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        ix = storage.create_index(schema())
        # A cold build of many articles is worth two processes (3x faster here, one segment each).
        big = len(articles) >= 500 and (os.cpu_count() or 1) > 1
        writer = ix.writer(limitmb=128, procs=2, multisegment=True) if big else ix.writer(limitmb=128)
    replace = set(replace)
    try:
        for slug in removed:
            writer.delete_by_term("slug", slug)
        for article in articles:
            # Customers' words are no spelling dictionary: a learned typo would stop being corrected.
            texts = article_fields(article, learned=False)
            # Spelling needs each word once a document (its document frequency), not every occurrence, and
            # the analyser lowercases: a word is given once whatever its case (whoosh costs ~25 µs a word).
            words = " ".join(dict.fromkeys(WORD_PATTERN.findall(" ".join(texts.values()).lower())))
            add = writer.update_document if article.slug in replace else writer.add_document
            add(slug=article.slug, spell=words)
    except BaseException:
        writer.cancel()
        raise
    writer.commit()
    ix.close()


# --------------------------------------------------------------------------- querying


class Alternatives(NamedTuple):
    """A synonym group a query uses (see ``tuning``): an article holding any one of its entries holds the
    query's words of the group."""

    terms: tuple[str, ...]  # the query's terms of the group, typed or corrected, whether an article has them or not
    entries: tuple[tuple[str, ...], ...]  # the terms of each entry of the group that some article has, all of them


@dataclass(frozen=True)
class ParsedQuery:
    """Weighted index terms of a query, with the typo corrections that were applied."""

    text: str
    terms: dict[str, float]
    corrections: dict[str, str] = field(default_factory=dict)
    words: dict[str, str] = field(default_factory=dict)  # index term -> the query word it came from
    codes: tuple[str, ...] = ()  # index terms of rare whole codes: a SKU (TH-45-GRN), a part number (30910)
    unknown: tuple[str, ...] = ()  # topic words in no article, uncorrected: no article holds every word
    synonyms: dict[str, str] = field(default_factory=dict)  # term added by tuning.py -> the entry it stands in for
    either: tuple[Alternatives, ...] = ()  # the synonym groups it uses (tuning.py)

    def matches(self, text: str) -> float:
        """Return how well a passage of text matches, fast: the weights of query words found in it.

        A substring test on the lowercased text stands in for analysis; it is only
        used to choose which section of an already-ranked article to link to.
        """
        lower = text.lower()
        return sum(w for t, w in self.terms.items()
                   if self.words.get(t, t) not in FUNCTION_WORDS and (t in lower or self.words.get(t, t) in lower))

    def uncorrected(self) -> ParsedQuery:
        """Return the query without its typo corrections: the words as typed that the index knows (without
        synonyms either: ``Tuning.expand`` adds those of the words as typed again)."""
        if not self.corrections:
            return self
        fixes = set(self.corrections.values())
        kept = {t: w for t, w in self.terms.items() if t not in self.synonyms and (
            self.words.get(t) not in fixes or self.words.get(t) in self.text.lower().split())}
        return ParsedQuery(self.text, kept, {}, {t: w for t, w in self.words.items() if t in kept}, self.codes,
                           (*self.unknown, *self.corrections))

    @property
    def suggestion(self) -> str | None:
        """Return the query with misspelt words corrected, or None when nothing was corrected."""
        if not self.corrections:
            return None
        return re.sub(r"\w+", lambda m: self.corrections.get(m.group(0).lower(), m.group(0)), self.text)


class LexicalIndex:
    """BM25F over the article fields, read from a built index folder."""

    def __init__(self, directory: Path, counts: TermCounts, *,
                 weights: Mapping[str, float] = DEFAULT_FIELD_WEIGHTS,
                 b: Mapping[str, float] = DEFAULT_FIELD_B, k1: float = DEFAULT_K1):
        self.vocab = counts.vocab
        # The index's own vocabulary of unstemmed words with their document frequencies, by first
        # letter (typos rarely hit the first one). Read once: no file stays open while serving.
        self._words: dict[str, list[str]] = {}
        self._word_freq: dict[str, int] = {}
        ix = index.open_dir(str(directory), readonly=True)
        try:
            with ix.reader() as reader:
                for raw, info in reader.iter_field("spell"):
                    word = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                    if word.isalpha():
                        self._words.setdefault(word[0], []).append(word)
                        self._word_freq[word] = info.doc_frequency()
        finally:
            ix.close()
        self.matrix = bm25f_matrix(counts, weights=weights, b=b, k1=k1)
        self.doc_freq = np.diff(self.matrix.indptr)

    def parse(self, text: str) -> ParsedQuery:
        """Turn any string into weighted index terms; never raises, unknown words get typo-corrected."""
        text = clean_query(text)
        terms: dict[str, float] = {}
        corrections: dict[str, str] = {}
        words: dict[str, str] = {}
        codes: list[str] = []
        unknown: list[str] = []
        for raw in TOKEN_PATTERN.finditer(text):
            if len(terms) >= MAX_QUERY_TERMS:
                break
            word = raw.group(0).lower()
            parts = [p for p in SPLIT_RE.split(word) if p]
            whole = "".join(parts)
            code = _stemmer_one(whole) if _is_code(whole) else None
            if code is not None and self._known(code) and self._rare(code):
                codes.append(code)
            if len(parts) > 1:  # a code like TH-45-GRN: the whole code counts most, its parts a little
                if not self._add(terms, corrections, words, "".join(parts), 1.0):
                    unknown.append(word)
                for part in parts:
                    self._add(terms, corrections, words, part, PART_WEIGHT)
            elif not self._add(terms, corrections, words, word, 1.0) and word not in FUNCTION_WORDS:
                unknown.append(word)
        return ParsedQuery(text, terms, corrections, words, tuple(dict.fromkeys(codes)),
                           tuple(dict.fromkeys(unknown)))

    def _add(self, terms: dict[str, float], corrections: dict[str, str], words: dict[str, str], word: str,
             weight: float) -> bool:
        """Add a query word's index term, or the term of its spelling correction at a lower weight; return
        whether the index knows either (a stop word counts as known: it is no topic)."""
        if word in STOP:
            return True
        stem = _stemmer_one(word)
        if self._known(stem):
            assert stem is not None
            terms[stem] = max(terms.get(stem, 0.0), weight)
            words.setdefault(stem, word)
            return True
        if len(corrections) >= MAX_CORRECTED_WORDS or len(word) < 4 or not word.isalpha():
            return False
        for fix in self.correct(word):
            fixed = _stemmer_one(fix)
            if fixed is not None and self._known(fixed):
                corrections.setdefault(word, fix)
                terms[fixed] = max(terms.get(fixed, 0.0), weight * FUZZY_WEIGHT)
                words.setdefault(fixed, fix)
                return True
        return False

    def correct(self, word: str, limit: int = 1) -> list[str]:
        """Return index words close to a misspelt one: fewest edits first, then the most common.

        Edits count a swap of two neighbouring letters as one (``refnud`` → ``refund``);
        words of up to 7 letters may be one edit away, longer ones two.
        """
        maxdist = 1 if len(word) <= 7 else 2
        found = process.extract(word, self._words.get(word[0], []), scorer=OSA.distance,
                                score_cutoff=maxdist, limit=50)
        ranked = sorted(found, key=lambda m: (m[1], -self._word_freq.get(m[0], 0), m[0]))
        return [match[0] for match in ranked[:limit] if match[0] != word]

    def _rare(self, term: str) -> bool:
        """Return whether a term is in few articles (at most 3, or 2% of them): a code that names a thing,
        like a SKU, and not one a whole help centre is about ("COVID-19")."""
        return int(self.doc_freq[self.vocab[term]]) <= max(3, 0.02 * self.matrix.shape[1])

    def known(self, term: str) -> bool:
        """Return whether some article has this index term (only such terms can be searched)."""
        return self._known(term)

    def _known(self, stem: str | None) -> bool:
        term = self.vocab.get(stem) if stem else None
        return term is not None and term < len(self.doc_freq) and bool(self.doc_freq[term])

    def holds_all(self, query: ParsedQuery) -> np.ndarray:
        """Return which articles hold every topic word of the query: its words and corrections, not its
        function words ("how", "my"), nor a code's parts (weighted less) when the whole code is there.

        A word of an editors' synonym group is held by an article holding any entry of the group, even a word
        that no article has ("rucksack", with [rucksack, backpack]).
        """
        grouped = {t for group in query.either for t in group.terms}
        if any(_stemmer_one("".join(SPLIT_RE.split(word))) not in grouped for word in query.unknown):
            return np.zeros(self.matrix.shape[1], dtype=bool)
        topic = [t for t, w in query.terms.items()
                 if w >= FUZZY_WEIGHT and t not in grouped and query.words.get(t, t) not in FUNCTION_WORDS]
        held = self._holding(topic) if topic or not query.either else np.ones(self.matrix.shape[1], dtype=bool)
        for group in query.either:
            held &= np.logical_or.reduce([self._holding(entry) for entry in group.entries])
        return held

    def holds_codes(self, query: ParsedQuery) -> np.ndarray:
        """Return which articles hold every whole code of the query (none do when it has none)."""
        return self._holding(list(query.codes))

    def _holding(self, terms: Sequence[str]) -> np.ndarray:
        n_docs = self.matrix.shape[1]
        if not terms:
            return np.zeros(n_docs, dtype=bool)
        rows = self.matrix[np.asarray([self.vocab[t] for t in terms], dtype=np.int64)]
        return np.bincount(rows.indices, minlength=n_docs) == len(terms)

    def scores(self, query: ParsedQuery) -> np.ndarray:
        """Return the BM25F score of every article for a parsed query."""
        n_docs = self.matrix.shape[1]
        if not query.terms:
            return np.zeros(n_docs, dtype=np.float32)
        ids = np.fromiter((self.vocab[t] for t in query.terms), dtype=np.int64)
        weights = np.fromiter(query.terms.values(), dtype=np.float32)
        return np.asarray(self.matrix[ids].T @ weights, dtype=np.float32).ravel()

    def snippet(self, text: str, terms: Iterable[str] | Mapping[str, float]) -> str:
        """Return whole sentences of a section's text (its units one a line), HTML-escaped, matched words in
        ``<mark>``; ``terms`` are a query's index terms, or ``ParsedQuery.terms`` with their weights.

        A term counts as its weight times its idf, so the sentence naming "PayPal" beats one that only says
        "refund" for "paypal refund"; see ``highlight.snippet``.
        """
        return highlight.snippet(text, self.informative(terms))

    def informative(self, terms: Iterable[str] | Mapping[str, float]) -> dict[str, float]:
        """Return query terms weighted by how much they tell: their weight times their idf."""
        given = terms if isinstance(terms, Mapping) else dict.fromkeys(terms, 1.0)
        n_docs = self.matrix.shape[1]
        weights = {}
        for term, weight in given.items():
            row = self.vocab.get(term)
            freq = int(self.doc_freq[row]) if row is not None and row < len(self.doc_freq) else 0
            weights[term] = weight * math.log1p((n_docs - freq + 0.5) / (freq + 0.5))
        return weights


def _is_code(token: str) -> bool:
    """Return whether a query token looks like a code that names one thing: letters and digits together
    (TH-45-GRN, NW-482193) or a number of five or more digits (a part number); not a year or a quantity."""
    digits = sum(c.isdigit() for c in token)
    return len(token) >= 4 and digits > 0 and (digits < len(token) or digits >= 5)


def _stemmer_one(word: str) -> str | None:
    out = stems(word)
    return out[-1] if out else None


def bm25f_matrix(counts: TermCounts, *, weights: Mapping[str, float], b: Mapping[str, float],
                 k1: float) -> sp.csr_matrix:
    """Return the terms × articles matrix of BM25F weights: idf · tf̃ / (k1 + tf̃).

    tf̃ sums each field's term count, weighted by the field's weight and
    normalised by its length against the field's average length (BM25F,
    Robertson & Zaragoza 2009).
    """
    n_docs, n_terms = counts.n_docs, len(counts.vocab)
    combined = sp.csr_matrix((n_docs, n_terms), dtype=np.float32)
    for name in FIELDS:
        matrix = counts.counts[name]
        matrix = sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(n_docs, n_terms))
        lengths = np.asarray(matrix.sum(axis=1), dtype=np.float32).ravel()
        average = float(lengths.mean()) if n_docs and lengths.mean() > 0 else 1.0
        norm = (1.0 - b[name]) + b[name] * lengths / average
        combined = combined + sp.diags(weights[name] / norm) @ matrix
    combined = sp.csr_matrix(combined, dtype=np.float32)
    combined.eliminate_zeros()
    doc_freq = np.bincount(combined.indices, minlength=n_terms).astype(np.float32)
    idf = np.log1p((n_docs - doc_freq + 0.5) / (doc_freq + 0.5)).astype(np.float32)
    combined.data = combined.data / (k1 + combined.data)
    weighted = combined @ sp.diags(idf)
    return sp.csr_matrix(weighted.T, dtype=np.float32)

