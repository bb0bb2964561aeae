"""One blueprint a feature; views read the request, call a function, render."""

from __future__ import annotations

from flask import Flask, current_app, request

from search import IndexCorrupt, IndexMissing, Library, SearchEngine

from ..errors import NotFound, Unavailable
from ..search_service import service


def engine() -> SearchEngine:
    """Return the search engine over the published index, or answer 503 while there is none."""
    try:
        return service().engine()
    except IndexMissing:
        raise Unavailable("The help centre is being set up: its articles are still being indexed. "
                          "Please try again in a minute.") from None
    except IndexCorrupt as exc:
        current_app.logger.error("cannot open the search index: %s", exc)
        raise Unavailable("The help centre is being updated. Please try again in a minute.") from None


def library() -> Library:
    """Return the published articles."""
    return engine().library


def current_slug(slug: str, missing: str = "") -> str:
    """Return the current slug of an article, alias or renamed slug, or answer 404."""
    found = library().resolve(slug)
    if found is None:
        raise NotFound(f"There is no article called '{slug}'{missing}. It may have been removed or renamed.")
    return found


def absolute(path: str) -> str:
    """Return the public absolute URL of a path (KB_BASE_URL, or this request's address)."""
    base = str(current_app.config["BASE_URL"] or request.url_root).rstrip("/")
    return base + path


def register(app: Flask) -> None:
    """Register every blueprint."""
    from . import api, contact, feedback, health, help, search, staff

    for module in (help, search, feedback, api, contact, staff, health):
        app.register_blueprint(module.bp)
