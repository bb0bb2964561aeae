"""Benchmark the engine on a synthetic corpus of realistic articles: build, update, latency, memory."""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import resource
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from .analysis import markdown_text
from .build import Progress, build_index
from .embeddings import Embedder, read_cpuinfo
from .engine import MODES, SearchEngine
from .errors import InvalidArgument
from .folder import load_corpus

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,]\d+)?%?|£\d+")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


class Babbler:
    """A second-order word Markov chain over real help-centre text: plausible sentences, real vocabulary."""

    def __init__(self, texts: Sequence[str], rng: random.Random):
        self.rng = rng
        self.next: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.starts: list[tuple[str, str]] = []
        for text in texts:
            for sentence in _SENTENCE_RE.split(markdown_text(text)):
                words = _WORD_RE.findall(sentence)
                if len(words) < 4:
                    continue
                self.starts.append((words[0], words[1]))
                for a, b, c in zip(words, words[1:], [*words[2:], "."], strict=False):
                    self.next[(a, b)].append(c)
        if not self.starts:
            raise InvalidArgument("the seed articles have no sentences to learn from")

    def sentence(self, most: int = 24) -> str:
        a, b = self.rng.choice(self.starts)
        words = [a, b]
        while len(words) < most:
            follow = self.next.get((a, b))
            if not follow:
                break
            c = self.rng.choice(follow)
            if c == ".":
                break
            words.append(c)
            a, b = b, c
        return " ".join(words)

    def words(self, count: int) -> str:
        out: list[str] = []
        while sum(len(s.split()) for s in out) < count:
            out.append(self.sentence().capitalize() + ".")
        return " ".join(out)


def write_corpus(target: Path, n: int, seed_dir: Path, *, seed: int = 7) -> list[str]:
    """Write ``n`` synthetic ~600-word articles (4-6 sections) under ``target``; return bench queries."""
    rng = random.Random(seed)
    seeds = load_corpus(seed_dir).articles
    babble = Babbler([f"{a.title}. {a.summary}. {' '.join(a.questions)}. {a.body}" for a in seeds], rng)
    queries = []
    for number in range(n):
        folder = target / f"category-{number % 8}"
        folder.mkdir(parents=True, exist_ok=True)
        title = babble.sentence(8).capitalize()
        sections = []
        for _ in range(rng.randint(4, 6)):
            heading = babble.sentence(5).capitalize()
            paragraphs = [babble.words(rng.randint(45, 70)) for _ in range(2)]
            sections.append(f"## {heading}\n\n" + "\n\n".join(paragraphs))
        if number % 10 == 0:
            sections[-1] += f"\n\nApplies to product code NB-{number:05d}-{rng.choice(['BLK', 'GRN', 'RED'])}."
        body = "\n\n".join(sections)
        questions = [babble.sentence(9).lower() + "?" for _ in range(rng.randint(0, 3))]
        front = [f"title: {title!r}", f"summary: {babble.sentence(16).capitalize()!r}",
                 f"questions: {questions!r}", "updated: 2026-10-01"]
        (folder / f"article-{number:05d}.md").write_text("---\n" + "\n".join(front) + "\n---\n\n" + body + "\n")
        words = [w for w in _WORD_RE.findall(rng.choice([title, body])) if len(w) > 3]
        if len(words) >= 4:
            start = rng.randrange(len(words) - 3)
            queries.append(" ".join(words[start:start + 4]).lower())
    return queries


# The instruction sets the embedding kernels use, by /proc/cpuinfo flag: a figure means little without them.
CPU_FEATURES = {
    "avx2": ("avx2",),
    "avx512": ("avx512f",),
    "vnni": ("avx512_vnni", "avx_vnni"),
    "amx": ("amx_tile", "amx_int8", "amx_bf16"),
    "bf16": ("avx512_bf16", "amx_bf16"),
}


def cpu_info(cpuinfo: Path | str = "/proc/cpuinfo") -> dict[str, Any]:
    """Return the CPU a figure was measured on: model, core counts, and which vector instruction sets it has."""
    model, flags = read_cpuinfo(cpuinfo)  # not Linux: the model and flags are unknown, the core counts are not
    return {"model": model, "cores": psutil.cpu_count(logical=False), "threads": psutil.cpu_count(),
            **{name: any(f in flags for f in names) for name, names in CPU_FEATURES.items()}}


def describe_cpu(cpu: dict[str, Any], embedder: str | None) -> str:
    """Return the one line a human-readable bench prints about the machine and the embedder."""
    features = [name.upper() if name != "bf16" else name for name in CPU_FEATURES if cpu.get(name)]
    return (f"CPU {cpu['model']} ({cpu['cores']} cores, {cpu['threads']} threads; "
            f"{' '.join(features) or 'no AVX2'}); embedder {embedder or 'none'}")


def _percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(cuts[49], 2), "p95": round(cuts[94], 2), "p99": round(cuts[98], 2)}


def _build_phases(articles: Path, index: Path, embedder: Embedder | None,
                  progress: Progress | None) -> dict[str, Any]:
    """Cold build, update after one changed article, no-op re-index: what ``kb index`` does, timed."""
    _exit_with_parent()
    started = time.perf_counter()
    build_index(articles, index, embedder, progress=progress)
    build_seconds = time.perf_counter() - started
    one = next(iter(sorted(articles.rglob("*.md"))))
    one.write_text(one.read_text() + "\nA new paragraph about parcel lockers and weekend delivery.\n")
    update = build_index(articles, index, embedder)
    noop = build_index(articles, index, embedder)
    return {
        "build_seconds": round(build_seconds, 2),
        "update_one_seconds": round(update.seconds, 3),
        "noop_reindex_seconds": round(noop.seconds, 3),
        "update_one_embedded": update.embedded,
        "noop_embedded": noop.embedded,
    }


def _exit_with_parent() -> None:
    """End this worker process when the bench that started it is gone (killed bench, no orphan build)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _peak_rss_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def run_bench(n: int, queries: int, seed_dir: Path, embedder: Embedder | None, *,
              progress: Progress | None = None, workdir: Path | None = None) -> dict[str, Any]:
    """Build, update and query a synthetic corpus of ``n`` articles; return the measured figures.

    Indexing runs in its own process, as ``kb index`` does beside the web
    server, so each process's peak memory is measured on its own.
    """
    with tempfile.TemporaryDirectory(dir=workdir, prefix="kb-bench-") as tmp:
        articles, index = Path(tmp) / "articles", Path(tmp) / "index"
        pool = write_corpus(articles, n, seed_dir)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as builder:
            figures = builder.submit(_build_phases, articles, index, embedder, progress).result()
        build_rss = _peak_rss_mb(resource.RUSAGE_CHILDREN)

        engine = SearchEngine(index, embedder, query_cache=0)  # time the work, not a cache
        rng = random.Random(11)
        sample = [rng.choice(pool) for _ in range(queries)]
        latency = {}
        # "hybrid_ranking": hybrid without the confidence rule and the answer, so that what they cost is
        # measured in the same run (the difference of the two p50s).
        for name, mode, honest in [*((m, m, True) for m in MODES), ("hybrid_ranking", "hybrid", False)]:
            modes_query = sample if mode == "lexical" or embedder is not None else []
            for query in modes_query[:5]:
                engine.search(query, mode=mode, honest=honest)  # warm caches
            times = []
            for query in modes_query:
                tick = time.perf_counter()
                engine.search(query, mode=mode, honest=honest)
                times.append((time.perf_counter() - tick) * 1000)
            if len(times) >= 2:
                latency[name] = _percentiles(times)
    serve_rss = _peak_rss_mb(resource.RUSAGE_SELF)
    return {
        "articles": n,
        "cpu": cpu_info(),
        "embedder": embedder.name if embedder is not None else None,
        **figures,
        "peak_rss_mb": max(build_rss, serve_rss),
        "build_peak_rss_mb": build_rss,
        "search_peak_rss_mb": serve_rss,
        "latency_ms": latency,
    }
