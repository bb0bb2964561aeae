"""The JSON API: search, articles, categories. Errors are JSON with their status, never HTML."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request, url_for

from search import Article
from search.engine import hit_dict

from ..content import page
from ..errors import KBError
from . import absolute, current_slug, engine, library

bp = Blueprint("api", __name__, url_prefix="/api")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    value = request.args.get(name, type=int) if raw else default
    if value is None:
        raise KBError(f"'{name}' must be a whole number, not {raw[:40]!r}.")
    if not low <= value <= high:
        raise KBError(f"'{name}' must be between {low} and {high}.")
    return value


def _summary(article: Article) -> dict[str, Any]:
    return {
        "slug": article.slug, "title": article.title, "summary": article.summary, "category": article.category,
        "tags": list(article.tags), "updated": article.updated.isoformat() if article.updated else None,
        "url": absolute(url_for("help.article", slug=article.slug)),
    }


@bp.get("/search")
def search() -> Response:
    """Return ranked hits for ``q`` (optionally in ``category``), ``limit`` at a time from ``offset``."""
    query = request.args.get("q")
    if query is None:
        raise KBError("Give a query in the 'q' parameter, like /api/search?q=refund.")
    limit = _int_arg("limit", 10, 1, 50)
    offset = _int_arg("offset", 0, 0, 10000)
    mode = request.args.get("mode", "hybrid")
    found = engine().search(query, limit=limit, offset=offset, category=request.args.get("category") or None,
                            mode=mode, correct=request.args.get("spell") != "0")
    return jsonify({
        "query": found.query, "total": found.total, "offset": offset, "suggestion": found.suggestion,
        "fallback": found.fallback, "took_ms": round(found.took_ms, 2), "categories": found.categories,
        "answer": found.answer.record() if found.answer else None,
        "hits": [hit_dict(h) for h in found.hits], "nearest": [hit_dict(h) for h in found.nearest],
    })


@bp.get("/articles")
def articles() -> Response:
    """List published articles by title, optionally of one ``category``."""
    lib = library()
    category = request.args.get("category")
    chosen = lib.in_category(category) if category else lib.by_title
    limit = _int_arg("limit", 100, 1, 1000)
    offset = _int_arg("offset", 0, 0, 1_000_000)
    return jsonify({"total": len(chosen), "offset": offset,
                    "articles": [_summary(a) for a in chosen[offset:offset + limit]]})


@bp.get("/articles/<slug>")
def article(slug: str) -> Response:
    """Return one article: metadata, sanitised HTML and sections. An old slug redirects (301)."""
    lib = library()
    current = current_slug(slug)
    if current != slug:
        return redirect(url_for("api.article", slug=current), 301)  # type: ignore[return-value]
    shown = page(lib.articles[slug])
    a = shown.article
    url = absolute(url_for("help.article", slug=slug))
    return jsonify({
        **_summary(a), "questions": list(a.questions), "aliases": list(a.aliases), "related": list(a.related),
        "revision": a.content_hash, "html": shown.html,
        "sections": [{"anchor": s.anchor, "heading": s.heading, "level": s.level, "url": f"{url}#{s.anchor}"}
                     for s in a.sections if s.anchor],
    })


@bp.get("/openapi.json")
def openapi() -> Response:
    """Describe this API (OpenAPI 3.1)."""
    from importlib.metadata import PackageNotFoundError, version

    from ..openapi import spec

    try:
        release = version("kb-site")
    except PackageNotFoundError:
        release = "0"
    return jsonify(spec(release))


@bp.get("/categories")
def categories() -> Response:
    """List the categories in display order with their article counts."""
    lib = library()
    counts = lib.counts()
    return jsonify({"categories": [
        {"slug": c.slug, "title": c.title, "description": c.description, "articles": counts.get(c.slug, 0),
         "url": absolute(url_for("help.category", slug=c.slug))}
        for c in lib.categories if counts.get(c.slug)]})
