"""The search engine as a Flask extension: one engine a process, opened on first use."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flask import Flask, current_app

from search import Embedder, SearchEngine, choose_embedder

from .config import search_config

EXTENSION = "kb_search"


class SearchService:
    """Holds the embedder and the engine of one application."""

    def __init__(self, app: Flask):
        self.config = app.config
        self._engine: SearchEngine | None = None
        self._embedder: Embedder | None = None
        self._embedder_made = False
        self._lock = threading.Lock()
        self._embedder_lock = threading.Lock()
        self._checked = 0.0

    @property
    def articles_dir(self) -> Path:
        return Path(self.config["ARTICLES_DIR"]).resolve()

    @property
    def index_dir(self) -> Path:
        return Path(self.config["INDEX_DIR"] or Path(self.config["INSTANCE_DIR"]) / "index")

    @property
    def learned_path(self) -> Path:
        """The learned-questions file the learning pass writes and index builds read (``kb_site.learning``)."""
        return Path(self.config["INSTANCE_DIR"]) / "learned.json"

    def embedder(self) -> Embedder | None:
        """Return the configured embedder (created once, model loaded on first encode), or None."""
        with self._embedder_lock:  # one embedder a process, however many threads ask first
            if not self._embedder_made:
                injected = self.config.get("EMBEDDER")  # tests pass a fake embedder in the config
                self._embedder = injected if injected is not None else make_embedder(
                    self.config["EMBEDDING_MODEL"], self.config["EMBEDDING_PRECISION"],
                    self.config["EMBEDDING_THREADS"])
                self._embedder_made = True
        return self._embedder

    def engine(self) -> SearchEngine:
        """Return the engine over the published index, switching to a newer one when it appears.

        The index folder is looked at no more than every KB_INDEX_CHECK_SECONDS: at a thousand requests a
        second, reading CURRENT each time is work for nothing.
        """
        with self._lock:
            if self._engine is None:
                self._engine = SearchEngine(self.index_dir, self.embedder(), search_config(self.config),
                                            pages=True, wait_for_model=False)
                self._checked = time.monotonic()
            elif time.monotonic() - self._checked >= self.config["INDEX_CHECK_SECONDS"]:
                self._engine.refresh()
                self._checked = time.monotonic()
            return self._engine


def make_embedder(model: str, precision: str = "auto", threads: int = 0) -> Embedder | None:
    """Return the embedder for KB_EMBEDDING_MODEL (empty: the packaged model, ``none``: no embedder)."""
    if model.lower() == "none":
        return None
    return choose_embedder(model, precision, threads or None)


def init_app(app: Flask) -> None:
    """Register the search service on the application."""
    app.extensions[EXTENSION] = SearchService(app)


def service() -> SearchService:
    """Return the current application's search service."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]
