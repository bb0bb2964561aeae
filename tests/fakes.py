"""Test doubles that cannot be real here without the cost of the model: a deterministic embedder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from search.embeddings import EmbedderUnavailable, EncodeProgress


class HashingEmbedder:
    """Bag-of-words vectors from hashed words: deterministic, instant, and counts its calls."""

    def __init__(self, dim: int = 64):
        self._dim = dim
        self.encoded: list[str] = []
        self.error: str | None = None

    @property
    def name(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def loaded(self) -> bool:
        return True

    def load(self) -> None:
        """Load nothing: there is no model."""

    def encode(self, texts: Sequence[str], *, progress: EncodeProgress | None = None) -> np.ndarray:
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dim] += 1.0
        out[:, 0] += 1e-3  # no all-zero rows
        if progress:
            progress(len(texts))
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class BrokenEmbedder(HashingEmbedder):
    """An embedder whose model cannot load, like a missing or corrupt model folder."""

    @property
    def loaded(self) -> bool:
        return False

    def load(self) -> None:
        """Fail as a missing model file does, and remember why (as SentenceTransformerEmbedder does)."""
        self.error = "cannot load the embedding model: model.safetensors is missing"
        raise EmbedderUnavailable(self.error)

    def encode(self, texts: Sequence[str], *, progress: EncodeProgress | None = None) -> np.ndarray:
        self.load()  # raises
        return super().encode(texts, progress=progress)
