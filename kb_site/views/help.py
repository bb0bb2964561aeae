"""Help pages: home, categories, articles, article media, sitemap and robots.txt."""

from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from .. import stats
from ..caching import public_page
from ..content import media_file, page, related
from ..errors import NotFound
from ..models import REASONS
from . import absolute, current_slug, engine, library

bp = Blueprint("help", __name__)


@bp.get("/")
def home() -> Response:
    """Show the search box, the categories with their article counts, and the most helpful articles."""
    lib = library()
    counts = lib.counts()
    categories = [(c, counts.get(c.slug, 0)) for c in lib.categories if counts.get(c.slug)]
    featured = stats.featured(lib)
    return public_page(lambda: render_template("home.html", categories=categories, featured=featured,
                                               canonical=absolute("/")), [a.slug for a in featured])


@bp.get("/categories/<slug>")
def category(slug: str) -> Response:
    """List a category's articles, in the editors' order."""
    lib = library()
    found = lib.category(slug)
    articles = lib.in_category(slug)
    if found is None or not articles:
        raise NotFound(f"There is no help category called '{slug}'.")
    return public_page(lambda: render_template("category.html", category=found, articles=articles,
                                               canonical=absolute(url_for("help.category", slug=slug))))


@bp.get("/articles/<slug>")
def article(slug: str) -> Response | str:
    """Show an article with its contents, feedback widget and related articles; old slugs redirect."""
    lib = library()
    current = current_slug(slug, suggest=True)
    if current != slug:
        target = url_for("help.article", slug=current)
        return redirect(target + (f"?{request.query_string.decode()}" if request.query_string else ""),  # type: ignore[return-value]
                        301)
    # The same page for every visitor: their vote, token and view come from /visitor.json.
    tally = stats.tally(slug)

    def render() -> str:
        shown = page(lib.articles[slug])
        return render_template("article.html", page=shown, article=shown.article, category=lib.category(
            shown.article.category), related=related(engine(), shown.article), tally=tally, reasons=REASONS,
            canonical=absolute(url_for("help.article", slug=slug)))

    return public_page(render, [tally.yes, tally.votes])


@bp.get("/media/<path:filename>")
def media(filename: str) -> Response:
    """Serve an image that sits next to the articles (never one a symlink leads outside the folder)."""
    found = media_file(current_app.config["ARTICLES_DIR"], filename)
    if found is None:
        abort(404)
    response = send_file(found, max_age=3600)
    if found.suffix.lower() == ".svg":  # an SVG opened directly must not run scripts
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return response


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    """List every page a search engine should index."""
    lib = library()
    urls: list[tuple[str, dt.date | None]] = [(absolute("/"), None)]
    urls += [(absolute(url_for("help.category", slug=c.slug)), None) for c in lib.categories
             if lib.in_category(c.slug)]
    urls += [(absolute(url_for("help.article", slug=a.slug)), a.updated) for a in
             sorted(lib.articles.values(), key=lambda a: a.slug)]
    return public_page(lambda: render_template("sitemap.xml", urls=urls), mimetype="application/xml")


@bp.get("/robots.txt")
def robots() -> Response:
    """Let crawlers read the articles, not search results or the API."""
    text = "\n".join(["User-agent: *", "Disallow: /search", "Disallow: /api/", "Disallow: /staff/",
                      f"Sitemap: {absolute('/sitemap.xml')}", ""])
    return Response(text, mimetype="text/plain")
