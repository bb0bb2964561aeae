"""``kb serve``: the whole site on gunicorn, with the index built first and kept up to date.

The serving process never loads the embedding model before forking its workers: the first build
and the article watcher run in their own processes, and each worker loads the model for itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import logging
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from gunicorn.app.base import BaseApplication
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi
from sqlalchemy.exc import SQLAlchemyError

from search import SearchError, build_index
from search.tuning import TUNING_FILE

from .db import database
from .search_service import service

log = logging.getLogger(__name__)


def snapshot(articles_dir: Path) -> dict[str, tuple[int, int]]:
    """Return the modification time and size of every article and category file, and of ``_search.yml``."""
    found = {}
    for pattern in ("*.md", "_category.yml", TUNING_FILE):
        for path in articles_dir.rglob(pattern):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found[str(path)] = (stat.st_mtime_ns, stat.st_size)
    return found


def watch(app: Flask, stop: threading.Event | None = None) -> None:
    """Re-index the articles folder whenever a file in it or the learned questions change, until ``stop`` is set.

    Every KB_LEARN_INTERVAL minutes it first runs a learning pass (``kb_site.learning``), which rewrites the
    learned-questions file when they changed: the build that follows re-embeds only the articles concerned.
    """
    from .learning import run_pass
    from .search_service import service

    interval = app.config["RELOAD_INTERVAL"]
    learn_every = 60 * app.config["LEARN_INTERVAL"]
    learned_at: float | None = None
    with app.app_context():
        svc = service()
        seen: dict[str, tuple[int, int]] | None = None
        while stop is None or not stop.is_set():
            if learn_every and (learned_at is None or time.monotonic() - learned_at >= learn_every):
                learned_at = time.monotonic()
                try:
                    learning = run_pass(app)
                    if learning.written:
                        log.warning("learned questions changed: %d now", learning.learned)
                except (SQLAlchemyError, SearchError, OSError) as exc:  # the database is away: the next pass
                    log.error("cannot learn from the searches: %s", exc)
            try:
                now = snapshot(svc.articles_dir)
                with contextlib.suppress(FileNotFoundError):
                    stat = svc.learned_path.stat()
                    now[str(svc.learned_path)] = (stat.st_mtime_ns, stat.st_size)
                if now != seen:
                    report = build_index(svc.articles_dir, svc.index_dir, svc.embedder(), learned=svc.learned_path)
                    for error in report.errors:
                        log.warning("%s", error)  # says what is served instead
                    if not report.unchanged:
                        log.warning("published index %s: %d added, %d changed, %d removed", report.generation,
                                    report.added, report.changed, report.removed)
                    seen = now
            except (SearchError, OSError) as exc:  # the folder went away, or the index cannot be written
                log.error("cannot re-index the articles: %s", exc)
            if stop is not None:
                stop.wait(interval)
            else:
                time.sleep(interval)


def child_app(instance: str) -> Flask:
    """Create the application again in a spawned process (its settings come from the same environment)."""
    from . import create_app

    os.environ["KB_INSTANCE_DIR"] = instance
    return create_app()


def spawn(app: Flask, target: Any, name: str, *, daemon: bool = True) -> multiprocessing.process.BaseProcess:
    """Start ``target(instance_path)`` in a spawned process: nothing of this one (no model) is inherited."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=(app.instance_path,), name=name,
                                                           daemon=daemon)
    process.start()
    return process


def _watch_process(instance: str) -> None:
    logging.basicConfig(level=logging.WARNING, format="watcher: %(levelname)s: %(message)s")
    watch(child_app(instance))


def start_watcher(app: Flask) -> multiprocessing.process.BaseProcess | None:
    """Start the article watcher in a process of its own (spawned: no model in the server)."""
    if app.config["RELOAD_INTERVAL"] <= 0:
        return None
    return spawn(app, _watch_process, "kb-watcher")


def _worker_process(instance: str) -> None:
    import signal

    from .db import database
    from .tickets import worker

    logging.basicConfig(level=logging.INFO, format="delivery: %(levelname)s: %(message)s")
    app = child_app(instance)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with app.app_context():
        worker.run(database().sessions, worker.WorkerSettings.from_config(app.config), stop)


def start_worker(app: Flask) -> multiprocessing.process.BaseProcess:
    """Start the ticket delivery worker in a process of its own."""
    return spawn(app, _worker_process, "kb-delivery")


class HeaderDeadlineProtocol(ASGIProtocol):  # type: ignore[misc]
    """gunicorn's asyncio HTTP protocol, with a deadline for a connection's first request headers.

    gunicorn closes a kept-alive connection whose next request does not arrive within ``keepalive``, but
    gives the first request of a connection all the time in the world: a client that connects and never
    finishes its headers (slowloris) keeps its place. After KB_HEADER_TIMEOUT it gets 408 and is closed.
    Connections beyond KB_MAX_CONNECTIONS a worker are answered 503 at once.
    """

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.worker.nr_conns > self.worker.worker_connections:  # gunicorn counts them but sets no limit
            transport.write(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"
                            b"Content-Length: 0\r\n\r\n")
            self._close_transport()
            self._header_deadline = None
            return
        timeout = self.worker.app.application.config["HEADER_TIMEOUT"]
        self._header_deadline = self.worker.loop.call_later(timeout, self._headers_too_slow) if timeout > 0 \
            else None

    def _on_headers_complete(self) -> Any:
        self._cancel_header_deadline()
        return super()._on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _cancel_header_deadline(self) -> None:
        handle = getattr(self, "_header_deadline", None)
        if handle is not None:
            handle.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        self._close_transport()
        if self._request_ready is not None:
            self._request_ready.set()  # wake the connection's task so it sees the close and ends


class Worker(gasgi.ASGIWorker):  # type: ignore[misc]
    """gunicorn's asyncio worker with the header deadline (the worker builds ``gasgi.ASGIProtocol``)."""

    def init_process(self) -> None:
        gasgi.ASGIProtocol = HeaderDeadlineProtocol
        # The worker was forked inside `kb serve`'s application context (a click command's). Its event loop
        # runs in this thread, and every request's context is a copy of this one: left as it is, all requests
        # would share that one app context and its `g` (one CSRF token for everybody, no session cookie).
        contextvars.Context().run(super().init_process)


class Server(BaseApplication):  # type: ignore[misc]
    """gunicorn's asyncio worker serving the Flask application through a2wsgi's thread pool.

    The event loop reads every request whole before a thread sees it, so slow or idle clients (a
    request's headers never finished, a kept-alive socket left open) cost a file descriptor, not a thread:
    gunicorn's sync and gthread workers read headers in the serving thread, and four such sockets stall it.
    """

    def __init__(self, app: Flask, options: dict[str, Any]):
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer gunicorns added are skipped on older ones
                self.cfg.set(key, value)

    def load(self) -> Any:
        from a2wsgi import WSGIMiddleware

        from .caching import FastPages

        # a2wsgi types the WSGI environ as a TypedDict, Flask as a plain dict: the same object at run time.
        threads = WSGIMiddleware(self.application,  # type: ignore[arg-type]
                                 workers=int(self.application.config["SERVE_THREADS"]))
        # Fresh public pages this worker already rendered are answered in the event loop (kb_site.caching).
        return FastPages(threads, self.application)


def post_fork(_server: Any, worker: Any) -> None:
    """In each new worker: fresh database connections, and the model loading in the background."""
    from .db import EXTENSION as DB
    from .search_service import service

    app: Flask = worker.app.application
    app.extensions[DB].engine.dispose(close=False)
    # The watcher and delivery processes are the arbiter's children, not this worker's: forgotten here,
    # or multiprocessing's exit handler tries to join them when the worker stops, and fails with a traceback.
    multiprocessing.process._children.clear()  # type: ignore[attr-defined]

    def warm() -> None:
        with app.app_context():
            embedder = service().embedder()
            if embedder is not None:
                try:
                    embedder.load()
                except Exception as exc:  # the engine logs and falls back to lexical search on first use
                    log.warning("embedding model not loaded: %s", exc)

    threading.Thread(target=warm, name="kb-warm", daemon=True).start()


def preload() -> None:
    """Open the published index in the arbiter, before the workers are forked, so they share its pages.

    The arrays (term weights, article vectors) and the objects (docs, article records) are read once
    here; each worker sees them copy-on-write, and ``gc.freeze`` keeps the collector from writing to
    every object's header (which would copy every page). The model is not loaded here: ONNX Runtime's
    threads do not survive a fork, so each worker loads it after. A newer generation is opened by each
    worker on its own, as before.
    """
    try:
        service().engine()
    except SearchError as exc:  # no index yet, or a broken one: each worker opens (and reports) it itself
        log.info("index not opened before the workers start: %s", exc)
        return
    gc.collect()
    gc.freeze()


def serve(app: Flask, host: str, port: int, workers: int, threads: int) -> None:
    """Run the site on gunicorn until interrupted."""
    from .db import database

    app.config["SERVE_WORKERS"] = workers
    app.config["SERVE_THREADS"] = threads
    if not app.config["EMBEDDING_THREADS"]:
        # Each worker gets its share of the cores: N workers each using every core just thrash.
        app.config["EMBEDDING_THREADS"] = max(1, (os.cpu_count() or 1) // workers)

    with app.app_context():
        database().engine.dispose()  # no connection crosses the fork
        preload()
    options = {
        "bind": f"{host}:{port}", "workers": workers,
        "worker_class": "kb_site.serve.Worker", "asgi_lifespan": "off", "keepalive": 5, "timeout": 60,
        "worker_connections": app.config["MAX_CONNECTIONS"],
        "graceful_timeout": 20,
        "accesslog": "-", "errorlog": "-", "loglevel": "info", "post_fork": post_fork,
        "forwarded_allow_ips": "*" if app.config["PROXY_COUNT"] else "127.0.0.1",
        # One shared ~/.gunicorn/gunicorn.ctl would clash between several kb serve on one machine.
        "control_socket_disable": True,
    }
    Server(app, options).run()


def _index_in_child(instance: str) -> None:
    """Build or update the index in a spawned process, so the server never loads the model itself."""
    from .cli import build  # the command line's progress bar; imported in the child, where nothing else has

    app = child_app(instance)
    with app.app_context():
        svc = service()
        report = build(svc.articles_dir, svc.index_dir, learned=svc.learned_path)
        if not report.unchanged:
            click.echo(f"Published index {report.generation}: {report.articles} articles.", err=True)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads a worker.")
@click.option("--no-index", is_flag=True,
              help="Serve the index as it is (built elsewhere by 'kb index --output'); do not build or watch.")
@with_appcontext
def serve_command(host: str, port: int, workers: int, threads: int, no_index: bool) -> None:
    """Run the whole site on gunicorn: migrate the database, index the articles, serve, watch for edits."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    database().upgrade()
    watcher = None
    if not no_index:
        child = spawn(app, _index_in_child, "kb-index", daemon=False)
        child.join()
        if child.exitcode:
            raise click.ClickException("could not build the search index (see above); fix the articles and try again")
        watcher = start_watcher(app)
    delivery = start_worker(app) if app.config["WORKER_IN_SERVE"] else None
    click.echo(f"Serving {app.config['SITE_NAME']} on http://{host}:{port}/ "
               f"({workers} worker{'s' * (workers != 1)} x {threads} threads)", err=True)
    try:
        serve(app, host, port, workers, threads)
    finally:
        for process in (watcher, delivery):
            if process is not None:
                process.terminate()
