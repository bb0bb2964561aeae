"""Ranking metrics on hand-computed examples, averaging over queries, and the query file reader."""

from __future__ import annotations

import math
import textwrap

import pytest

from search.evaluate import (
    METRICS,
    LabelledQuery,
    QueryFileError,
    evaluate,
    load_queries,
    mrr_at,
    ndcg_at,
    recall_at,
    score_ranking,
)
from tests.conftest import FIXTURES

ONE = frozenset({"b"})


def test_single_relevant_at_rank_two():
    """Relevant at rank 2: nDCG = 1/log2(3), MRR = 1/2, recall 1 within 2 and 0 within 1."""
    ranked = ["a", "b", "c"]
    assert ndcg_at(ranked, ONE, 10) == pytest.approx(1 / math.log2(3))
    assert mrr_at(ranked, ONE, 10) == 0.5
    assert (recall_at(ranked, ONE, 1), recall_at(ranked, ONE, 2)) == (0.0, 1.0)


def test_perfect_and_cut_off_rankings():
    """Relevant first scores 1 everywhere; relevant beyond k scores 0 for that k."""
    assert score_ranking(["b", "a"], ONE) == dict.fromkeys(METRICS, 1.0)
    late = ["x"] * 10 + ["b"]
    assert (ndcg_at(late, ONE, 10), mrr_at(late, ONE, 10), recall_at(late, ONE, 10)) == (0.0, 0.0, 0.0)
    assert mrr_at(late, ONE, 11) == pytest.approx(1 / 11)


def test_multiple_relevant():
    """Two relevant at ranks 1 and 3: nDCG = (1 + 1/2) / (1 + 1/log2 3); recall counts each found."""
    relevant = frozenset({"a", "c", "z"})
    ranked = ["a", "b", "c", "d"]
    ideal = 1 + 1 / math.log2(3) + 1 / 2
    assert ndcg_at(ranked, relevant, 10) == pytest.approx((1 + 1 / 2) / ideal)
    assert ndcg_at(ranked, frozenset({"a", "c"}), 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert recall_at(ranked, relevant, 2) == pytest.approx(1 / 3)
    assert recall_at(ranked, relevant, 10) == pytest.approx(2 / 3)
    assert mrr_at(["b", "c", "a"], relevant, 10) == 0.5


def test_empty_ranking_scores_zero():
    """A query that returns nothing scores 0 on every metric."""
    assert score_ranking([], ONE) == dict.fromkeys(METRICS, 0.0)


def test_hit_at_one():
    """hit@1 is 1 only when the first result is relevant."""
    assert score_ranking(["b", "a"], ONE)["hit@1"] == 1.0
    assert score_ranking(["a", "b"], ONE)["hit@1"] == 0.0


def test_evaluate_averages_over_queries():
    """evaluate ranks each query with the given function and averages each metric."""
    rankings = {"first": ["a", "b"], "second": ["x", "b"], "none": []}
    queries = [LabelledQuery("first", frozenset({"a"})), LabelledQuery("second", frozenset({"b"})),
               LabelledQuery("none", frozenset({"a"}))]
    asked: list[str] = []

    def rank(query: str) -> list[str]:
        asked.append(query)
        return rankings[query]

    result = evaluate(rank, queries)
    assert asked == ["first", "second", "none"]
    assert set(result) == set(METRICS)
    assert result["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert result["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 3, abs=1e-4)
    assert result["hit@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert result["recall@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert evaluate(rank, []) == dict.fromkeys(METRICS, 0.0)


def test_load_queries_reads_json_lines(tmp_path):
    """Each non-blank line becomes a LabelledQuery with its relevant slugs as a frozenset."""
    path = tmp_path / "q.jsonl"
    path.write_text(textwrap.dedent("""\
        {"query": "where is my parcel", "relevant": ["track-your-order"]}

        {"query": "refund", "relevant": ["refunds", "returns"], "note": "ignored"}
        """), encoding="utf-8")
    assert load_queries(path) == [
        LabelledQuery("where is my parcel", frozenset({"track-your-order"})),
        LabelledQuery("refund", frozenset({"refunds", "returns"})),
    ]


@pytest.mark.parametrize(("bad_line", "words"), [
    ('{"query": "refund", "relevant": ["refunds"]', "not JSON"),
    ('{"query": "refund"}', "expected"),
    ('{"query": "refund", "relevant": []}', "expected"),
    ('{"query": "refund", "relevant": "refunds"}', "expected"),
    ('["refund", ["refunds"]]', "expected"),
])
def test_load_queries_errors_name_file_and_line(tmp_path, bad_line, words):
    """A malformed line raises QueryFileError starting with file:line (blank lines still count)."""
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "ok", "relevant": ["a"]}\n\n' + bad_line + "\n", encoding="utf-8")
    with pytest.raises(QueryFileError) as info:
        load_queries(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert words in str(info.value)


def test_bundled_golden_queries_load():
    """The repository's golden query file parses into non-empty queries."""
    queries = load_queries(FIXTURES.parent / "golden_queries.jsonl")
    assert queries and all(q.query and q.relevant for q in queries)
