"""Score fusion: top-k selection, pool-floored min-max scaling, convex and reciprocal-rank fusion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from search.fusion import convex, minmax, reciprocal_rank, top_k


def test_top_k_orders_best_first():
    """top_k returns the k best indices, highest score first, for k below, at and above the length."""
    scores = np.array([0.1, 0.9, 0.3, 0.7, 0.5])
    assert top_k(scores, 3).tolist() == [1, 3, 4]
    assert top_k(scores, 5).tolist() == [1, 3, 4, 2, 0]
    assert top_k(scores, 50).tolist() == [1, 3, 4, 2, 0]
    assert top_k(scores, 0).tolist() == [] and top_k(np.zeros(0), 3).tolist() == []


def test_top_k_matches_a_full_sort_on_random_scores():
    """On distinct random scores, top_k equals the first k of a full descending sort."""
    rng = np.random.default_rng(7)
    scores = rng.normal(size=500)
    for k in (1, 10, 499):
        assert top_k(scores, k).tolist() == np.argsort(-scores)[:k].tolist()


def test_top_k_breaks_ties_by_index_when_all_tied_are_taken():
    """Equal scores inside the top k come out in index order."""
    assert top_k(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), 4).tolist() == [1, 2, 4, 3]
    assert top_k(np.array([2.0, 2.0, 2.0]), 3).tolist() == [0, 1, 2]


def test_top_k_breaks_ties_by_index_at_the_cut():
    """When a tie straddles the k-th place, the lower indices are kept, as the docstring promises."""
    assert top_k(np.array([0.0, 0.0, 1.0, 1.0]), 1).tolist() == [2]  # numpy 2.4 gives [3]
    rng = np.random.default_rng(11)
    for _ in range(200):
        scores = rng.integers(0, 4, size=int(rng.integers(2, 60))).astype(float)
        k = int(rng.integers(1, len(scores)))
        assert top_k(scores, k).tolist() == np.argsort(-scores, kind="stable")[:k].tolist()


def test_minmax_maps_best_to_one_and_pool_floor_to_zero():
    """The best score maps to 1, the pool-th best to 0, and scores below the pool clip to 0."""
    out = minmax(np.array([5.0, 3.0, 1.0, 0.0, -2.0]), pool=3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [1.0, 0.5, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(minmax(np.array([4.0, 2.0, 0.0])), [1.0, 0.5, 0.0])


def test_minmax_spread_keeps_flat_scores_small():
    """When every score is about the same, spread stops the tiny range being stretched to 0..1."""
    flat = np.array([0.50, 0.52, 0.51])
    np.testing.assert_allclose(minmax(flat), [0.0, 1.0, 0.5], atol=1e-6)
    spread = minmax(flat, spread=0.4)
    np.testing.assert_allclose(spread, [0.0, 0.05, 0.025], atol=1e-6)
    np.testing.assert_allclose(minmax(np.array([0.0, 1.0]), spread=0.4), [0.0, 1.0])


def test_minmax_empty_and_constant_arrays():
    """Empty input gives empty output; a constant array is all 1 when positive and all 0 otherwise."""
    assert minmax(np.zeros(0)).shape == (0,)
    assert minmax(np.full(4, 2.5)).tolist() == [1.0] * 4
    assert minmax(np.zeros(3)).tolist() == [0.0] * 3
    assert minmax(np.full(2, -1.0)).tolist() == [0.0] * 2


@settings(database=None, max_examples=300, deadline=None)
@given(
    scores=arrays(np.float64, st.integers(0, 40), elements=st.floats(-1e3, 1e3, allow_subnormal=False)),
    pool=st.integers(1, 50),
    spread=st.sampled_from([0.0, 0.1, 0.4, 2.0]),
)
def test_minmax_is_bounded_and_order_preserving(scores, pool, spread):
    """For any finite scores, minmax output lies in [0, 1] and never reverses the order of two scores."""
    out = minmax(scores, pool, spread)
    assert out.shape == scores.shape
    assert np.all((out >= 0.0) & (out <= 1.0))
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(out[order]) >= 0)


def test_convex_rejects_weights_outside_unit_interval():
    """Lexical weights below 0 or above 1 are a ValueError."""
    scores = np.array([1.0, 0.0])
    for weight in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            convex(scores, scores, weight)


def test_convex_extremes_are_pure_lexical_and_pure_dense():
    """Weight 1 gives the scaled lexical scores, weight 0 the scaled dense scores."""
    rng = np.random.default_rng(3)
    lexical, dense = rng.uniform(0, 20, 30), rng.uniform(-0.2, 0.9, 30)
    np.testing.assert_allclose(convex(lexical, dense, 1.0), minmax(lexical), atol=1e-6)
    np.testing.assert_allclose(convex(lexical, dense, 0.0), minmax(dense, spread=0.4), atol=1e-6)


def test_convex_rewards_documents_strong_in_both():
    """A document good on both signals outranks ones that are best on only one."""
    lexical = np.array([10.0, 0.5, 8.0, 0.0])
    dense = np.array([0.20, 0.90, 0.80, 0.10])
    fused = convex(lexical, dense, 0.5)
    assert top_k(fused, 1).tolist() == [2]
    assert fused[2] > max(fused[0], fused[1])


def test_convex_ignores_an_all_zero_lexical_array():
    """No lexical match at all leaves only the weighted dense part."""
    dense = np.array([0.2, 0.9, 0.5])
    np.testing.assert_allclose(convex(np.zeros(3), dense, 0.5), 0.5 * minmax(dense, spread=0.4), atol=1e-6)


def test_reciprocal_rank_sums_one_over_k_plus_rank():
    """Each ranking adds 1/(k+rank) to its items; items in both rankings beat items in one; unranked get 0."""
    fused = reciprocal_rank([np.array([2, 0]), np.array([2, 1])], n=4, k=60)
    np.testing.assert_allclose(fused, [1 / 62, 1 / 62, 2 / 61, 0.0], rtol=1e-6)
    assert top_k(fused, 1).tolist() == [2]
