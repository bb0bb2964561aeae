"""Score normalisation and fusion: pure functions over per-article score arrays."""

from __future__ import annotations

import numpy as np

from .errors import InvalidArgument

# Chosen on the dev queries of ../shared/eval: one setting for every set (README "Search quality").
DEFAULT_LEXICAL_WEIGHT = 0.15
DEFAULT_POOL = 100
DEFAULT_DENSE_SPREAD = 0.4


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the indices of the ``k`` highest scores, best first, ties in index order."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - len(above)]
    chosen = np.concatenate([above, tied])
    return chosen[np.lexsort((chosen, -scores[chosen]))]


def _kth_largest(scores: np.ndarray, k: int) -> float:
    k = min(k, len(scores))
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def minmax(scores: np.ndarray, pool: int = DEFAULT_POOL, spread: float = 0.0) -> np.ndarray:
    """Scale scores to [0, 1] between the ``pool``-th best and the best; lower scores clip to 0.

    Using the pool's floor rather than the global minimum keeps one far-off
    article from squashing the differences that matter at the top. ``spread``
    is the least range stretched to the full scale: when every score is about
    the same (a query the model cannot make sense of, like a product code),
    the differences stay small instead of being blown up to 0..1.
    """
    if not len(scores):
        return scores.astype(np.float32)
    high, low = float(scores.max()), _kth_largest(scores, pool)
    span = max(high - low, spread)
    if span <= 0:
        return (scores >= high).astype(np.float32) * (1.0 if high > 0 else 0.0)
    with np.errstate(over="ignore"):
        return np.clip((scores - low) / span, 0.0, 1.0).astype(np.float32)


def convex(lexical: np.ndarray, dense: np.ndarray, lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
           pool: int = DEFAULT_POOL, dense_spread: float = DEFAULT_DENSE_SPREAD) -> np.ndarray:
    """Fuse two score arrays: ``w · minmax(lexical) + (1 - w) · minmax(dense)``."""
    if not 0.0 <= lexical_weight <= 1.0:
        raise InvalidArgument(f"lexical weight must be between 0 and 1, not {lexical_weight}")
    lex = minmax(lexical, pool) if lexical.any() else np.zeros_like(lexical, dtype=np.float32)
    fused = lexical_weight * lex + (1.0 - lexical_weight) * minmax(dense, pool, dense_spread)
    return fused.astype(np.float32)


def reciprocal_rank(rankings: list[np.ndarray], n: int, k: int = 60) -> np.ndarray:
    """Return reciprocal-rank-fusion scores over ``n`` items from several best-first rankings."""
    fused = np.zeros(n, dtype=np.float32)
    for ranking in rankings:
        fused[ranking] += 1.0 / (k + 1.0 + np.arange(len(ranking)))
    return fused
