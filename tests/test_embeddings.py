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
             "print(e._malloc_trim.cache_info().currsize, e.cpu_flags.cache_info().currsize)")
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
    assert real_embedder.name.endswith(("onnx-int8", "onnx-int8r"))
    # Integer products cost a little precision (0.994 mean measured here); nDCG is unchanged (README).
    assert cosine.min() > 0.98 and cosine.mean() > 0.99, (cosine.min(), cosine.mean())


@pytest.mark.model
def test_the_int8_model_multiplies_integers_and_is_made_once(real_embedder, tmp_path):
    """The packaged file computes in float32; the model served is rewritten to integer matrix products,
    once per cache folder, and its 7-bit variant (for CPUs without VNNI) agrees with float32 too."""
    import onnx

    from search import SentenceTransformerEmbedder
    from search.onnx import OnnxEmbedder, packaged_onnx_model, quantised_model

    def integer_products(path):
        return sum(n.op_type in {"MatMulInteger", "DynamicQuantizeMatMul"} for n in onnx.load(path).graph.node)

    assert integer_products(packaged_onnx_model()) == 0
    made = quantised_model(packaged_onnx_model(), tmp_path, reduce_range=True)
    assert integer_products(made) == 36  # every weight product of the six layers
    stamp = made.stat().st_mtime_ns
    assert quantised_model(packaged_onnx_model(), tmp_path, reduce_range=True) == made
    assert made.stat().st_mtime_ns == stamp and [p.name for p in tmp_path.iterdir()] == [made.name]
    seven_bit = OnnxEmbedder(cache_dir=tmp_path)
    seven_bit.reduce_range = True
    assert seven_bit.name == "all-MiniLM-L6-v2/onnx-int8r"
    texts = ["where is my parcel", "How long does a PayPal refund take? PayPal: within 24 hours.",
             "Returns are free within 30 days of delivery; print the label from your account."]
    cosine = (seven_bit.encode(texts) * SentenceTransformerEmbedder(precision="float32").encode(texts)).sum(axis=1)
    assert cosine.min() > 0.97, cosine


@pytest.mark.model
def test_int8_ranks_the_golden_queries_as_well(bundled_engine):
    """nDCG@10 of the golden queries over the bundled articles, hybrid, with the int8 model: at least 0.85."""
    from search.evaluate import evaluate, load_queries

    queries = load_queries(ROOT / "tests" / "golden_queries.jsonl")
    scores = evaluate(lambda q: [h.slug for h in bundled_engine.search(q, limit=10, honest=False).hits], queries)
    assert scores["ndcg@10"] >= 0.85, scores


@pytest.mark.model
def test_threads_may_encode_at_once(real_embedder):
    """Eight threads encoding together get exactly the vectors one thread gets (no lock, no shared state)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    texts = [f"where is my parcel number {n}, it was due on day {n % 7}" * (1 + n % 5) for n in range(64)]
    alone = np.stack([real_embedder.encode([t])[0] for t in texts])
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda t: real_embedder.encode([t])[0], texts))
    assert np.allclose(np.stack(together), alone, atol=1e-5)
    # In a batch, activations share one int8 scale: a text's vector moves a little with its neighbours.
    assert (real_embedder.encode(texts) * alone).sum(axis=1).min() > 0.99
