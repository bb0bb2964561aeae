"""``kb bench``: index and query timings on a synthetic corpus, or with ``--http`` the real server under load.

With ``--http`` the corpus and its index are kept in ``<instance>/bench/`` and reused by later runs (a
10,000-article index takes ~10 minutes to build once). Each run starts `kb serve --no-index` with the asked number of
workers, waits for /readyz, and drives article pages, the search API and the search page in turn from
client processes with keep-alive connections.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import psutil
from flask.cli import with_appcontext

from search import build_index
from search.bench import cpu_info, describe_cpu, run_bench, write_corpus
from search.build import Progress
from search.embeddings import Embedder

from .search_service import service

# "article": plain requests, most of them a page's first view in its worker (rendered); "article_repeat": the
# same pages again (each worker answers its copy from its event loop); "article_conditional": If-None-Match.
KINDS = ("article", "article_repeat", "article_conditional", "search_api", "search_page")


def prepare(root: Path, n: int, seed_dir: Path, embedder: Embedder | None,
            progress: Progress | None = None) -> tuple[Path, Path, list[str], list[str]]:
    """Return (articles, index, slugs, queries) for an ``n``-article corpus, writing and indexing it once."""
    folder = root / f"corpus-{n}"
    articles, index, meta = folder / "articles", folder / "index", folder / "bench.json"
    if not meta.exists():
        queries = write_corpus(articles, n, seed_dir)
        meta.write_text(json.dumps({"queries": queries}))
    build_index(articles, index, embedder, progress=progress)
    slugs = sorted(p.stem for p in articles.rglob("*.md"))
    return articles, index, slugs, json.loads(meta.read_text())["queries"]


def _request(path: str, etag: str | None) -> bytes:
    extra = f"If-None-Match: {etag}\r\n" if etag else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n{extra}\r\n".encode()


def _exchange(sock: socket.socket, request: bytes, pending: bytearray) -> int:
    """Send one request on a kept-alive socket and read its whole response; return its status."""
    sock.sendall(request)
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    pending[:] = body[length:]
    return status


def _client(base: tuple[str, int], paths: list[str], etags: dict[str, str], seconds: float, threads: int,
            seed: int, out: Any) -> None:
    """Drive requests from ``threads`` keep-alive connections for ``seconds``; put (latencies, errors) on out.

    A small HTTP/1.1 client on a raw socket (http.client costs more CPU than the server it measures). With
    ``etags`` each request is conditional (If-None-Match), as a browser or CDN revalidating its copy.
    """
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    requests = {p: _request(p, etags.get(p)) for p in paths}

    def run(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        sock = socket.create_connection(base, timeout=30)
        pending = bytearray()
        mine: list[float] = []
        bad = 0
        while time.monotonic() < deadline:
            request = requests[rng.choice(paths)]
            started = time.perf_counter()
            try:
                status = _exchange(sock, request, pending)
                if status >= 400:
                    bad += 1
                    continue
                mine.append((time.perf_counter() - started) * 1000)
            except (OSError, ValueError):
                bad += 1
                sock.close()
                sock = socket.create_connection(base, timeout=30)
                pending.clear()
        sock.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((latencies, errors[0]))


def drive(port: int, paths: list[str], seconds: float, clients: int,
          etags: dict[str, str] | None = None) -> dict[str, Any]:
    """Load the server with ``clients`` concurrent connections (in two processes); return rps and latency."""
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    processes = 2
    procs = [spawn.Process(target=_client, args=(("127.0.0.1", port), paths, etags or {}, seconds,
                                                 clients // processes, n, out))
             for n in range(processes)]
    for p in procs:
        p.start()
    latencies: list[float] = []
    errors = 0
    for _ in procs:
        got, bad = out.get()
        latencies += got
        errors += bad
    for p in procs:
        p.join()
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0.0] * 99
    return {"rps": round(len(latencies) / seconds, 1), "p50": round(cuts[49], 2), "p95": round(cuts[94], 2),
            "p99": round(cuts[98], 2), "errors": errors}


def _get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def _etag(port: int, path: str) -> str | None:
    return _get(port, path)[1].get("ETag")


ASSET = re.compile(rb'<(?:link rel="stylesheet"|script) (?:href|src)="(/[^"]+)"')


def page_weight(port: int, pages: dict[str, str]) -> dict[str, float]:
    """Return what each page costs a first visit: its HTML, stylesheets and scripts, gzipped, in kB."""
    weights = {}
    for name, path in pages.items():
        _, _, html = _get(port, path)
        parts = [html] + [_get(port, asset.decode())[2] for asset in ASSET.findall(html)]
        weights[name] = round(sum(len(gzip.compress(part, 6)) for part in parts) / 1000, 1)
    return weights


def free_port() -> int:
    """Return a local TCP port nothing listens on (the system picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def memory_mb(pid: int) -> dict[str, float]:
    """Return the memory of a process and all its descendants (gunicorn master and workers), in MB.

    ``rss`` counts a page once per process that maps it, so pages the workers share (the model loaded
    before fork, the memory-mapped index) are counted N times; ``pss`` divides each shared page among the
    processes sharing it, so it is what the tree really costs; ``private`` is the largest one process's
    memory of its own (USS).
    """
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:  # the server is gone: nothing of it is resident
        return {"rss": 0.0, "pss": 0.0, "private": 0.0}
    rss = pss = private = 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # a worker that ended since it was listed
            continue
        rss, pss, private = rss + info.rss, pss + info.pss, max(private, info.uss)
    return {name: round(value / 2**20, 1) for name, value in (("rss", rss), ("pss", pss), ("private", private))}


def run_http_bench(root: Path, n: int, seed_dir: Path, embedder: Embedder | None, *, workers: int, threads: int,
                   clients: int, seconds: float, env: dict[str, str],
                   progress: Progress | None = None) -> dict[str, Any]:
    """Serve an ``n``-article corpus with ``workers`` workers and measure each kind of page under load."""
    articles, index, slugs, queries = prepare(root, n, seed_dir, embedder, progress)
    port = free_port()
    instance = root / f"instance-{os.getpid()}"
    server_env = {**env, "KB_INSTANCE_DIR": str(instance), "KB_ARTICLES_DIR": str(articles),
                  "KB_INDEX_DIR": str(index), "KB_RATELIMIT_ENABLED": "false", "KB_WORKER_IN_SERVE": "false"}
    log = open(root / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-m", "kb_site.cli", "serve", "--no-index", "--port", str(port),
                               "--workers", str(workers), "--threads", str(threads)], env=server_env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the server did not become ready: see {root / 'serve.log'}")
            time.sleep(0.5)
        rng = random.Random(5)
        paths = {
            "article": [f"/articles/{s}" for s in rng.sample(slugs, min(len(slugs), 2000))],
            "search_api": [f"/api/search?q={quote(q)}" for q in rng.sample(queries, min(len(queries), 2000))],
            "search_page": [f"/search?q={quote(q)}" for q in rng.sample(queries, min(len(queries), 2000))],
        }
        figures: dict[str, Any] = {"articles": n, "workers": workers, "cpu": cpu_info(),
                                   "embedder": embedder.name if embedder is not None else None}
        paths["article_conditional"] = paths["article_repeat"] = paths["article"]
        for kind in KINDS:
            # Revalidations carry the tag each page had: asked after the plain run, which renders them itself.
            tags = {p: tag for p in paths[kind] if (tag := _etag(port, p))} if kind == "article_conditional" \
                else None
            drive(port, paths[kind][:50], 2, clients, tags)  # warm up
            figures[kind] = drive(port, paths[kind], seconds, clients, tags)
        figures["page_weight_kb"] = page_weight(port, {"home": "/", "article": paths["article"][0],
                                                       "search": paths["search_page"][0]})
        memory = memory_mb(server.pid)
        figures.update(server_rss_mb=memory["rss"], server_pss_mb=memory["pss"],
                       worker_private_mb=memory["private"])
        return figures
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
        log.close()


@click.command("bench")
@click.option("--articles", "n_articles", default=1000, show_default=True, type=click.IntRange(10),
              help="How many synthetic articles to generate.")
@click.option("--queries", default=300, show_default=True, type=click.IntRange(2),
              help="How many queries to time per mode.")
@click.option("--seed-articles", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Articles whose text the synthetic corpus imitates (default: KB_ARTICLES_DIR).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--http", "over_http", is_flag=True,
              help="Load a real multi-worker server on loopback instead (corpus and index kept in "
                   "<instance>/bench for later runs).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="--http: server workers.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="--http: threads a worker.")
@click.option("--clients", default=16, show_default=True, type=click.IntRange(2, 512),
              help="--http: concurrent client connections.")
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(1),
              help="--http: seconds of load a page kind.")
@with_appcontext
def bench_command(n_articles: int, queries: int, seed_articles: Path | None, as_json: bool, over_http: bool,
                  workers: int, threads: int, clients: int, seconds: float) -> None:
    """Measure index build, update and query latency on a synthetic corpus (or, with --http, the server)."""
    from .cli import Progress  # the command line's progress bar (the kb group imports this module)

    svc = service()
    progress = Progress()
    seeds = seed_articles or svc.articles_dir
    try:
        if over_http:
            figures = run_http_bench(Path(svc.config["INSTANCE_DIR"]) / "bench", n_articles, seeds, svc.embedder(),
                                     workers=workers, threads=threads, clients=clients, seconds=seconds,
                                     env=dict(os.environ), progress=progress)
        else:
            figures = run_bench(n_articles, queries, seeds, svc.embedder(), progress=progress)
    except (RuntimeError, ValueError) as exc:  # the server did not start; an empty or unusable seed corpus
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo(describe_cpu(figures["cpu"], figures["embedder"]))
    if over_http:
        click.echo(f"{figures['articles']} articles, {workers} worker{'s' * (workers != 1)} x {threads} threads, "
                   f"{clients} clients; server RSS {figures['server_rss_mb']} MB, PSS {figures['server_pss_mb']} MB "
                   f"(shared pages counted once), largest worker's own memory {figures['worker_private_mb']} MB")
        click.echo("  page weight (HTML + CSS + JS, gzipped): " + ", ".join(
            f"{name} {kb} kB" for name, kb in figures["page_weight_kb"].items()))
        for kind in KINDS:
            f = figures[kind]
            click.echo(f"  {kind:<19} {f['rps']:>8} req/s  p50 {f['p50']} ms  p95 {f['p95']} ms  "
                       f"p99 {f['p99']} ms  errors {f['errors']}")
        return
    click.echo(f"{figures['articles']} articles: cold build {figures['build_seconds']} s, update after one "
               f"change {figures['update_one_seconds']} s, no-op re-index {figures['noop_reindex_seconds']} s, "
               f"peak RSS {figures['peak_rss_mb']} MB")
    for mode, cut in figures["latency_ms"].items():
        click.echo(f"  {mode:<14} p50 {cut['p50']} ms  p95 {cut['p95']} ms  p99 {cut['p99']} ms")
