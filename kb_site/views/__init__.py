"""One blueprint a feature; views read the request, call a function, render."""

from __future__ import annotations

from flask import Flask, current_app, request, url_for

from search import Library, SearchEngine

from ..errors import NotFound
from ..search_service import service


def engine() -> SearchEngine:
    """Return the search engine over the published index (errors.SEARCH_ERRORS answers 503 while there is none)."""
    return service().engine()


def library() -> Library:
    """Return the published articles."""
    return engine().library


def current_slug(slug: str, missing: str = "", suggest: bool = False) -> str:
    """Return the current slug of an article, alias or renamed slug, or answer 404 (``suggest``: with the
    articles the slug probably meant, which depend on the address alone: the page is the same for everybody)."""
    lib = library()
    found = lib.resolve(slug)
    if found is None:
        extra = {"suggestions": [{"title": a.title, "url": url_for("help.article", slug=a.slug)}
                                 for a in lib.near(slug)]} if suggest else {}
        raise NotFound(f"There is no article called '{slug}'{missing}. It may have been removed or renamed.",
                       **extra)
    return found


def absolute(path: str) -> str:
    """Return the public absolute URL of a path (KB_BASE_URL, or this request's address)."""
    base = (current_app.config["BASE_URL"] or request.url_root).rstrip("/")
    return base + path


def register(app: Flask) -> None:
    """Register every blueprint."""
    from . import api, contact, desk, feedback, health, help, search

    for module in (help, search, feedback, api, contact, desk, health):
        app.register_blueprint(module.bp)
