"""The passage graph: an approximate nearest-neighbour index (usearch HNSW) over a large generation's vectors.

Below ``MIN_PASSAGES`` passages an exact scan is as fast (about 1.5 ms for 20,000 on one core) and
exact, so no graph is written. Above it the graph finds the ``CANDIDATES`` passages nearest to a query,
and the engine scores only their articles (and the best lexical ones) exactly: the graph chooses which
articles to look at, never their scores.

A passage's key in the graph is its text key (the digest its vector is cached under), so a passage
that did not change keeps its key from build to build: an update copies the last graph, removes the
passages that are gone and adds the new ones, instead of building it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from usearch.index import Index

log = logging.getLogger(__name__)

MIN_PASSAGES = 20_000
CANDIDATES = 256  # nearest passages a query asks the graph for
EXPANSION_SEARCH = 384  # how widely the graph is searched (recall against exact top-256: see README)
REBUILD_SHARE = 0.25  # an update that removes more than this share of the graph builds it anew
_KEY_MASK = np.uint64(2**63 - 1)  # usearch keeps the largest key for itself


def keys_of(text_keys: np.ndarray) -> np.ndarray:
    """Return each passage's graph key: the first 63 bits of its 16-byte text key."""
    raw = np.ascontiguousarray(text_keys, dtype="S16").tobytes()
    return np.frombuffer(raw, dtype="<u8")[0::2] & _KEY_MASK


def spans(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Return the concatenation of ``range(start, end)`` for each pair, as one array."""
    lengths = (ends - starts).astype(np.int64)
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)


def open_graph(path: Path) -> Index:
    """Open a graph memory-mapped: every process serving the generation shares its pages."""
    graph = Index.restore(str(path), view=True, expansion_search=EXPANSION_SEARCH)
    if graph is None:
        raise ValueError(f"{path} is not a usearch index")
    return graph


def write_graph(target: Path, keys: Sequence[np.ndarray], vectors: Sequence[np.ndarray],
                previous: Path | None) -> tuple[int, int]:
    """Write the graph of a generation's passages (``keys`` and ``vectors`` block by block) to ``target``.

    Starts from the ``previous`` generation's graph when there is one and most of it is still wanted;
    returns how many passages were added and removed.
    """
    every = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    unique, first = np.unique(every, return_index=True)  # a text in two articles is one point of the graph
    graph = None
    had = gone = np.zeros(0, np.uint64)
    if previous is not None and previous.exists():
        try:
            graph = Index.restore(str(previous))  # a copy in memory, to change
            if graph is not None:
                had = np.asarray(graph.keys, dtype=np.uint64)
                gone = np.setdiff1d(had, unique, assume_unique=True)
                if graph.ndim != vectors[0].shape[1] or len(gone) > REBUILD_SHARE * len(had):
                    graph = None
        except (OSError, RuntimeError, ValueError) as exc:  # unreadable: build it anew
            log.warning("cannot update the passage graph %s (%s): building it anew", previous, exc)
            graph = None
    if graph is None:
        graph = Index(ndim=vectors[0].shape[1], metric="ip", dtype="i8", connectivity=16, expansion_add=128)
        had = gone = np.zeros(0, np.uint64)
    elif len(gone):
        graph.remove(gone)
    fresh = ~np.isin(unique, had, assume_unique=True)  # the keys the graph lacks
    rows = np.sort(first[fresh])  # rows of the generation whose vectors the graph lacks
    starts = np.cumsum([0, *(len(v) for v in vectors)])
    for number, block in enumerate(vectors):
        local = rows[(rows >= starts[number]) & (rows < starts[number + 1])] - starts[number]
        for at in range(0, len(local), 8192):
            part = local[at:at + 8192]
            graph.add(keys[number][part], np.asarray(block[part], dtype=np.float32), threads=0)
    graph.save(str(target))
    return len(rows), len(gone)


class Graph:
    """A generation's graph with the lookup from a key back to the passage rows that have it."""

    def __init__(self, graph: Index, keys: np.ndarray):
        self.graph = graph
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]

    def nearest_rows(self, query: np.ndarray, count: int | None = None) -> np.ndarray:
        """Return the rows of the ``count`` (default ``CANDIDATES``) passages nearest to a normalised query;
        for a text that several passages repeat, all their rows."""
        found = np.asarray(self.graph.search(query.astype(np.float32), count or CANDIDATES).keys, dtype=np.uint64)
        low = np.searchsorted(self._sorted, found, side="left")
        high = np.searchsorted(self._sorted, found, side="right")
        return self._order[spans(low, high)]
