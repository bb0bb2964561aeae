"""Ranking quality: nDCG@k, MRR@k, Recall@k and Hit@1 over labelled queries (binary relevance); how often
the answer on top is shown and right; how honest the shown result sets are, with some articles withheld."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .articles import ArticleError, load_article, translation_lang
from .errors import SearchError


class QueryFileError(SearchError, ValueError):
    """A query file line that is not ``{"query": str, "relevant": [slug, ...]}``."""


METRICS = ("ndcg@10", "mrr@10", "recall@5", "recall@10", "hit@1")


@dataclass(frozen=True)
class LabelledQuery:
    """A query and the slugs of the articles that answer it."""

    query: str
    relevant: frozenset[str]
    sections: frozenset[str] = frozenset()  # "slug#anchor" of the sections that answer it, when labelled
    # The first relevant slug of the file: the article a visitor opened (kb eval --learn-from).
    first: str = field(default="", compare=False)


def load_queries(path: Path | str) -> list[LabelledQuery]:
    """Read a JSON-lines query file; errors name the file and line."""
    queries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise QueryFileError(f"{path}:{number}: not JSON: {exc}") from None
        relevant = item.get("relevant") if isinstance(item, dict) else None
        if not (isinstance(item, dict) and isinstance(item.get("query"), str) and isinstance(relevant, list)
                and relevant and all(isinstance(s, str) for s in relevant)):
            raise QueryFileError(f'{path}:{number}: expected {{"query": "...", "relevant": ["slug", ...]}}')
        sections = item.get("sections", [])
        if not (isinstance(sections, list) and all(isinstance(s, str) and "#" in s for s in sections)):
            raise QueryFileError(f'{path}:{number}: "sections" must be a list of "slug#anchor"')
        queries.append(LabelledQuery(item["query"], frozenset(relevant), frozenset(sections), relevant[0]))
    return queries


def dcg(gains: Sequence[float]) -> float:
    """Return the discounted cumulative gain of gains in rank order."""
    return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))


def ndcg_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    """Return nDCG@k with binary gains."""
    ideal = dcg([1.0] * min(k, len(relevant)))
    return dcg([1.0 if s in relevant else 0.0 for s in ranked[:k]]) / ideal if ideal else 0.0


def mrr_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    """Return the reciprocal rank of the first relevant result within k, else 0."""
    return next((1.0 / (rank + 1) for rank, s in enumerate(ranked[:k]) if s in relevant), 0.0)


def recall_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    """Return the share of relevant articles found within k."""
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def score_ranking(ranked: Sequence[str], relevant: frozenset[str]) -> dict[str, float]:
    """Return every metric for one query's ranking (a repeated slug counts once, at its best rank)."""
    ranked = list(dict.fromkeys(ranked))
    return {
        "ndcg@10": ndcg_at(ranked, relevant, 10),
        "mrr@10": mrr_at(ranked, relevant, 10),
        "recall@5": recall_at(ranked, relevant, 5),
        "recall@10": recall_at(ranked, relevant, 10),
        "hit@1": 1.0 if ranked[:1] and ranked[0] in relevant else 0.0,
    }


def evaluate(rank: Callable[[str], Sequence[str]], queries: Sequence[LabelledQuery]) -> dict[str, float]:
    """Return each metric averaged over the queries, ranking each with ``rank(query) -> slugs``."""
    totals = dict.fromkeys(METRICS, 0.0)
    for query in queries:
        for name, value in score_ranking(rank(query.query), query.relevant).items():
            totals[name] += value
    return {name: round(total / len(queries), 4) if queries else 0.0 for name, total in totals.items()}


def answer_report(answer: Callable[[str], str | None], queries: Sequence[LabelledQuery]) -> dict[str, float | None]:
    """Return how often an answer is shown and how often it is right, over queries an index can answer.

    ``answer(query)`` is the shown answer's ``"slug#anchor"``, or None. An answer is right when it comes from
    a relevant article, and for a query labelled with its answering ``sections``, from one of those.
    """
    shown = right = 0
    for query in queries:
        found = answer(query.query)
        if found is None:
            continue
        shown += 1
        right += found in query.sections if query.sections else found.split("#", 1)[0] in query.relevant
    return {"answer_coverage": round(shown / len(queries), 4) if queries else None,
            "answer_precision": round(right / shown, 4) if shown else None}


def withhold(articles_dir: Path | str, target: Path | str, fraction: float) -> set[str]:
    """Copy an articles folder to ``target`` without a deterministic ``fraction`` of its articles; return the
    withheld articles' slugs. The same files are withheld on every run: those first by the SHA-256 of their
    path in the folder."""
    root = Path(articles_dir).resolve()
    # The source language's articles: translations are never in its index, so never counted or copied.
    files = sorted((p for p in root.rglob("*.md") if not translation_lang(p)),
                   key=lambda p: hashlib.sha256(p.relative_to(root).as_posix().encode()).digest())
    left_out = {p.resolve() for p in files[:round(fraction * len(files))]}
    shutil.copytree(root, target, ignore=lambda folder, names: [
        n for n in names if (Path(folder) / n).resolve() in left_out or translation_lang(Path(n))])
    slugs = set()
    for path in left_out:
        try:
            slugs.add(load_article(path, root).slug)
        except ArticleError:  # a broken file is not indexed either way
            continue
    return slugs


def gap_report(shown: Callable[[str], Sequence[str]], queries: Sequence[LabelledQuery],
               available: set[str]) -> dict[str, float | int | None]:
    """Return how honest the shown result sets are over an index holding only the ``available`` articles.

    A query none of whose relevant articles is available is unanswerable: it should show no result.
    An answerable one should show a relevant article among its results (``shown(query)``, every one).
    """
    answerable = shown_right = unanswerable = empty = 0
    for query in queries:
        results = set(shown(query.query))
        if query.relevant & available:
            answerable += 1
            shown_right += bool(results & query.relevant)
        else:
            unanswerable += 1
            empty += not results
    return {"answerable": answerable, "unanswerable": unanswerable,
            "answerable_shown": round(shown_right / answerable, 4) if answerable else None,
            "unanswerable_empty": round(empty / unanswerable, 4) if unanswerable else None}
