"""Dense retrieval: article texts to embed, and exact top-k by dot product over normalised vectors."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .analysis import markdown_text
from .ann import Graph, spans
from .articles import Article

# all-MiniLM-L6-v2 reads at most 256 word pieces (~190 words). A section of up to MAX_CHUNK_WORDS is one
# passage; a longer one is cut into equal parts, at sentence ends, so no tiny tail passage is embedded.
MAX_CHUNK_WORDS = 150

KIND_TITLE, KIND_QUESTION, KIND_CHUNK = 0, 1, 2


@dataclass(frozen=True)
class Passage:
    """One text to embed: the article's title, one of its questions, or a chunk of one section."""

    kind: int
    section: int  # index into Article.sections; -1 for title and questions
    text: str


def _chunks(text: str, most: int = MAX_CHUNK_WORDS) -> list[str]:
    """Split text into the fewest runs of at most about ``most`` words, of equal size, at sentence ends."""
    words = text.split()
    if len(words) <= most:
        return [" ".join(words)] if words else []
    target = math.ceil(len(words) / math.ceil(len(words) / most))
    chunks: list[list[str]] = [[]]
    for sentence in re.split(r"(?<=[.!?])\s+|\n{2,}", text):
        words = sentence.split()
        # A sentence longer than a whole chunk is cut into target-sized pieces of its own.
        pieces = [words[i:i + target] for i in range(0, len(words), target)] if len(words) > most else [words]
        for piece in pieces:
            if chunks[-1] and len(chunks[-1]) + len(piece) > most:
                chunks.append([])
            chunks[-1].extend(piece)
            if len(chunks[-1]) >= target:
                chunks.append([])
    return [" ".join(c) for c in chunks if c]


def passages(article: Article) -> list[Passage]:
    """Return the texts of an article to embed: title first, then questions (the editor's, then the learned
    ones), then section chunks."""
    title = f"{article.title}. {article.summary}".strip() if article.summary else article.title
    out = [Passage(KIND_TITLE, -1, title)]
    out += [Passage(KIND_QUESTION, -1, q) for q in (*article.questions, *article.learned)]
    for number, section in enumerate(article.sections):
        prefix = f"{article.title}. {section.heading}." if section.heading else f"{article.title}."
        for chunk in _chunks(markdown_text(section.text)):
            out.append(Passage(KIND_CHUNK, number, f"{prefix} {chunk}"))
    if all(p.kind != KIND_CHUNK for p in out):  # every article needs one chunk; see DenseIndex
        out.append(Passage(KIND_CHUNK, 0 if article.sections else -1, title))
    return out


class DenseIndex:
    """Normalised passage vectors grouped by article, scored by exact dot product.

    An article's dense score blends its best title-or-question match with its
    best section match: ``title_weight · title + (1 - title_weight) · section``.

    The vectors may come as consecutive blocks of rows (a generation's blocks, each memory-mapped from
    its file, so every process serving the index shares the same pages); they are never copied together.
    With a ``graph`` (a large generation's, see ``ann``), only the candidate articles are scored.
    """

    def __init__(self, vectors: np.ndarray | Sequence[np.ndarray], owners: np.ndarray, kinds: np.ndarray,
                 sections: np.ndarray, *, title_weight: float = 0.3, graph: Graph | None = None):
        parts = [vectors] if isinstance(vectors, np.ndarray) else list(vectors)
        self.blocks = [np.ascontiguousarray(v, dtype=np.float32) for v in parts if len(v)] or [
            np.ascontiguousarray(parts[0], dtype=np.float32) if parts else np.zeros((0, 0), np.float32)]
        self.owners = owners.astype(np.int32)
        self.kinds = kinds.astype(np.int8)
        self.sections = sections.astype(np.int32)
        self.title_weight = title_weight
        n_docs = int(owners.max()) + 1 if len(owners) else 0
        self.n_docs = n_docs
        # Each article's rows are contiguous: titles and questions, then chunks.
        title_starts = np.searchsorted(owners, np.arange(n_docs), side="left")
        heads = np.bincount(owners[kinds != KIND_CHUNK], minlength=n_docs)
        chunk_starts = title_starts + heads
        self._bounds = np.empty(2 * n_docs, dtype=np.int64)
        self._bounds[0::2], self._bounds[1::2] = title_starts, chunk_starts
        self._ends = np.append(title_starts[1:], len(owners)) if n_docs else np.zeros(0, np.int64)
        self._block_starts = np.cumsum([0, *(len(b) for b in self.blocks)])
        self.graph = graph

    @classmethod
    def build_arrays(cls, articles: Sequence[Article]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Return the passage texts of articles with their owner, kind and section arrays."""
        texts: list[str] = []
        owners, kinds, sections = [], [], []
        for number, article in enumerate(articles):
            for passage in passages(article):
                texts.append(passage.text)
                owners.append(number)
                kinds.append(passage.kind)
                sections.append(passage.section)
        return (texts, np.asarray(owners, np.int32), np.asarray(kinds, np.int8),
                np.asarray(sections, np.int32))

    @property
    def vectors(self) -> np.ndarray:
        """Return every passage vector as one matrix (a copy when there are several blocks)."""
        return self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)

    def candidates(self, queries: np.ndarray, also: np.ndarray) -> np.ndarray | None:
        """Return the articles worth scoring for these query vectors, sorted, or None when all are.

        With a graph: the owners of the passages nearest to any of the queries, and the articles ``also``
        named (the best lexical matches, whose dense score the fusion needs too).
        """
        if self.graph is None:
            return None
        rows = [self.graph.nearest_rows(query) for query in queries]
        return np.union1d(self.owners[np.concatenate(rows)], np.asarray(also, dtype=np.int64))

    def passage_scores(self, query: np.ndarray, docs: np.ndarray | None = None,
                       out: np.ndarray | None = None) -> np.ndarray:
        """Return the cosine similarity of every passage to a normalised query vector.

        With ``docs`` (sorted article rows), only their passages are scored; the others are -1 (or keep
        what ``out`` holds, when an array of an earlier call is given to fill in).
        """
        query = query.astype(np.float32)
        if docs is not None:
            if out is None:
                out = np.full(len(self.owners), -1.0, dtype=np.float32)
            rows = spans(self._bounds[0::2][docs], self._ends[docs])
            cuts = np.searchsorted(rows, self._block_starts)
            for number, block in enumerate(self.blocks):
                part = rows[cuts[number]:cuts[number + 1]]
                if len(part):
                    out[part] = block[part - self._block_starts[number]] @ query
            return out
        if len(self.blocks) == 1:
            return self.blocks[0] @ query
        out = np.empty(sum(len(b) for b in self.blocks), dtype=np.float32)
        start = 0
        for block in self.blocks:
            np.matmul(block, query, out=out[start:start + len(block)])
            start += len(block)
        return out

    def scores(self, passage_scores: np.ndarray) -> np.ndarray:
        """Return each article's dense score from its passages' scores."""
        if not self.n_docs:
            return np.zeros(0, dtype=np.float32)
        best = np.maximum.reduceat(passage_scores, self._bounds)
        title, section = best[0::2], best[1::2]
        return (self.title_weight * title + (1.0 - self.title_weight) * section).astype(np.float32)

    def article_vectors(self) -> np.ndarray:
        """Return one normalised vector per article: the mean of its passages' vectors."""
        dim = self.blocks[0].shape[1]
        if not self.n_docs:
            return np.zeros((0, dim), dtype=np.float32)
        sums = np.empty((self.n_docs, dim), dtype=np.float32)
        start = 0  # each block holds whole articles: sum each block's own rows
        for block in self.blocks:
            first, end = start, start + len(block)
            docs = np.flatnonzero((self._bounds[0::2] >= first) & (self._bounds[0::2] < end))
            sums[docs] = np.add.reduceat(block, self._bounds[0::2][docs] - first, axis=0)
            start = end
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return (sums / np.maximum(norms, 1e-12)).astype(np.float32)

    def section_scores(self, passage_scores: np.ndarray, doc: int) -> dict[int, float]:
        """Return the best score of each of the article's sections that has chunks, by section index."""
        start, end = self._bounds[2 * doc + 1], self._ends[doc]
        out: dict[int, float] = {}
        for section, value in zip(self.sections[start:end].tolist(), passage_scores[start:end].tolist(),
                                  strict=True):
            out[section] = max(value, out.get(section, -1.0))
        return out

    def best_section(self, passage_scores: np.ndarray, doc: int) -> int:
        """Return the index of the article's section whose chunk matched best (-1: none)."""
        start, end = self._bounds[2 * doc + 1], self._ends[doc]
        return int(self.sections[start + int(np.argmax(passage_scores[start:end]))])
