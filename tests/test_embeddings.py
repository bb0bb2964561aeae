"""The embeddings module: nothing happens when it is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_import_loads_no_library_and_reads_no_cpu_flags():
    """Importing search.embeddings neither opens libc nor reads /proc/cpuinfo: both wait for first use."""
    probe = ("import search.embeddings as e; "
             "print(e._malloc_trim.cache_info().currsize, e._cpu_has_bf16.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parent.parent, check=True,
                         capture_output=True, text=True).stdout
    assert out.split() == ["0", "0"]



def test_the_precision_names_the_runtime():
    """auto and int8 take ONNX Runtime for the packaged model; a model folder or float32 takes torch."""
    from search import OnnxEmbedder, SentenceTransformerEmbedder, choose_embedder
    from search.errors import InvalidArgument

    assert isinstance(choose_embedder(), OnnxEmbedder) and isinstance(choose_embedder("", "int8"), OnnxEmbedder)
    assert choose_embedder().name == "all-MiniLM-L6-v2/onnx-int8"
    assert isinstance(choose_embedder("", "float32"), SentenceTransformerEmbedder)
    assert isinstance(choose_embedder("/models/other"), SentenceTransformerEmbedder)
    for model, precision in (("", "int4"), ("/models/other", "int8")):
        with pytest.raises(InvalidArgument):
            choose_embedder(model, precision)


@pytest.mark.model
def test_int8_vectors_agree_with_float32(real_embedder):
    """The int8 model's vectors of the sample articles' passages point where torch float32's do."""
    from search import SentenceTransformerEmbedder, load_corpus
    from search.dense import passages

    texts = [p.text for a in load_corpus(ROOT / "articles").articles[:25] for p in passages(a)]
    assert len(texts) > 100
    fp32 = SentenceTransformerEmbedder(precision="float32").encode(texts)
    int8 = real_embedder.encode(texts)
    cosine = (fp32 * int8).sum(axis=1)
    assert real_embedder.name.endswith("onnx-int8")
    assert cosine.min() > 0.98 and cosine.mean() > 0.995, (cosine.min(), cosine.mean())


@pytest.mark.model
def test_int8_ranks_the_golden_queries_as_well(real_embedder, tmp_path):
    """nDCG@10 of the golden queries over the bundled articles, hybrid, with the int8 model: at least 0.85."""
    from search import SearchEngine, build_index
    from search.evaluate import evaluate, load_queries

    build_index(ROOT / "articles", tmp_path / "index", real_embedder)
    engine = SearchEngine(tmp_path / "index", real_embedder)
    queries = load_queries(ROOT / "tests" / "golden_queries.jsonl")
    scores = evaluate(lambda q: [h.slug for h in engine.search(q, limit=10).hits], queries)
    assert scores["ndcg@10"] >= 0.85, scores


@pytest.mark.model
def test_threads_may_encode_at_once(real_embedder):
    """Eight threads encoding together get exactly the vectors one thread gets (no lock, no shared state)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    texts = [f"where is my parcel number {n}, it was due on day {n % 7}" * (1 + n % 5) for n in range(64)]
    alone = real_embedder.encode(texts)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda t: real_embedder.encode([t])[0], texts))
    assert np.allclose(np.stack(together), alone, atol=1e-5)
