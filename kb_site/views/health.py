"""Health checks for load balancers: /healthz (the process answers), /readyz (it can serve)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from search import SearchError

from .. import db
from ..search_service import service

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Answer while the process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Answer 200 when the database answers, the index is open and search is ready (or says it falls back).

    Broken article files are listed under ``articles.errors`` but do not make the site unready: it serves
    the last good version of each, or leaves out files that never parsed.
    """
    checks: dict[str, str] = {}
    articles: dict[str, object] = {"errors": []}
    ready = True
    try:
        with db.database().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unreachable: {exc.__class__.__name__}"
        ready = False
    try:
        engine = service().engine()
        checks["index"] = f"{engine.generation} ({engine.articles} articles)"
        articles["errors"] = [e.record() for e in engine.library.errors]
        embedder = engine.embedder
        if embedder is None:
            checks["search"] = "lexical only (no embedding model configured)"
        elif engine.dense_error or embedder.error or engine.mismatch:
            checks["search"] = f"lexical fallback: {engine.dense_error or embedder.error or engine.mismatch}"
        elif embedder.loaded:
            checks["search"] = "hybrid"
        else:
            checks["search"] = "loading the embedding model"
            ready = False
    except SearchError as exc:  # no index yet, or one that cannot be read: say which, and not ready
        checks["index"] = f"unavailable: {exc}"
        ready = False
    response = jsonify({"status": "ready" if ready else "not ready", "checks": checks, "articles": articles})
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "5"
    return response
