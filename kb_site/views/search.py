"""The search results page, and the record of a suggestion picked while typing."""

from __future__ import annotations

import math

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from search.analysis import clean_query

from .. import stats, visitors
from ..errors import KBError
from . import absolute, engine, library

bp = Blueprint("search", __name__)


def _page_number() -> int:
    number = request.args.get("page", type=int) if "page" in request.args else 1
    if number is None:
        raise KBError("The page number must be a whole number.")
    if not 1 <= number <= 1000:
        raise KBError("The page number must be between 1 and 1000.")
    return number


@bp.get("/search")
def results() -> str:
    """Show ranked articles for a query, with a category filter, pages and "did you mean"."""
    query = request.args.get("q", "")
    category = request.args.get("category") or None
    number = _page_number()
    lib = library()
    if not clean_query(query):
        return render_template("search.html", query="", results=None, categories=lib.categories,
                               featured=stats.featured(lib), canonical=absolute("/search"))
    size: int = current_app.config["PAGE_SIZE"]
    spell = request.args.get("spell") != "0"  # "Search instead for ...": the words as typed
    found = engine().search(query, limit=size, offset=(number - 1) * size, category=category, correct=spell)
    pages = max(1, math.ceil(found.total / size))
    if number == 1:
        visitors.record_search(found, category)
    facets = [(c, found.categories[c.slug]) for c in lib.categories if found.categories.get(c.slug)]
    return render_template("search.html", query=found.query, results=found, category=category, page=number,
                           spell=spell,
                           pages=pages, facets=facets, categories=lib.categories,
                           featured=stats.featured(lib) if not found.total else [], canonical=absolute("/search"))


@bp.post("/search/picked")
def picked() -> Response:
    """Record a suggestion picked from the search box: a search, and a click on its result."""
    query = clean_query(request.form.get("q", ""))[:500]
    slug = request.form.get("slug", "")
    if not query or slug not in library().articles:
        raise KBError("Give the query typed (q) and the article picked (slug).")
    position = max(1, min(100, request.form.get("position", 1, type=int)))
    search = visitors.record("search", query=query, results=None, detail="suggestion")
    visitors.record("click", slug=slug, query=query, search_id=search.id if search else None, position=position)
    return jsonify({"recorded": True})
