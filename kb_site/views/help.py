"""Help pages: home, categories, articles, article media, sitemap and robots.txt."""

from __future__ import annotations

from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from search import Article, Library

from .. import stats, visitors
from ..content import media_file, page
from ..errors import NotFound
from ..models import REASONS
from . import absolute, current_slug, engine, library

bp = Blueprint("help", __name__)


def featured(lib: Library, limit: int = 6) -> list[Article]:
    """Return the articles to offer first: most helpful, then most read, then one a category."""
    known = set(lib.articles)
    slugs = stats.most_helpful(known, limit)
    for slug in stats.popular(known, limit) + [lib.in_category(c.slug)[0].slug for c in lib.categories
                                               if lib.in_category(c.slug)]:
        if len(slugs) >= limit:
            break
        if slug not in slugs:
            slugs.append(slug)
    return [lib.articles[s] for s in slugs]


@bp.get("/")
def home() -> str:
    """Show the search box, the categories with their article counts, and the most helpful articles."""
    lib = library()
    counts = lib.counts()
    categories = [(c, counts.get(c.slug, 0)) for c in lib.categories if counts.get(c.slug)]
    return render_template("home.html", categories=categories, featured=featured(lib),
                           canonical=absolute("/"))


@bp.get("/categories/<slug>")
def category(slug: str) -> str:
    """List a category's articles."""
    lib = library()
    found = lib.category(slug)
    articles = lib.in_category(slug)
    if found is None or not articles:
        raise NotFound(f"There is no help category called '{slug}'.")
    return render_template("category.html", category=found, articles=articles,
                           canonical=absolute(url_for("help.category", slug=slug)))


def _referred_by_search() -> bool:
    referrer = urlsplit(request.referrer or "")
    return referrer.path == url_for("search.results") and referrer.netloc == request.host


@bp.get("/articles/<slug>")
def article(slug: str) -> Response | str:
    """Show an article with its contents, feedback widget and related articles; old slugs redirect."""
    lib = library()
    current = current_slug(slug)
    if current != slug:
        target = url_for("help.article", slug=current)
        return redirect(target + (f"?{request.query_string.decode()}" if request.query_string else ""), 301)
    shown = page(lib.articles[slug])
    visit = visitors.visit()
    last = session.get("last_search")
    if last and slug in last.get("slugs", []) and _referred_by_search():
        visitors.record_later("click", slug=slug, query=last.get("q"), search_id=last.get("id"),
                              position=last["slugs"].index(slug) + 1 + int(last.get("offset", 0)))
    visitors.record_later("view", slug=slug, detail=urlsplit(request.referrer or "").path[:200] or None)
    vote = visitors.my_vote(slug)
    related = [lib.articles[s] for s in shown.article.related if s in lib.articles]
    for near in engine().related(slug, limit=8):
        if len(related) >= 5:
            break
        if near in lib.articles and near not in {r.slug for r in related} and near != slug:
            related.append(lib.articles[near])
    return render_template("article.html", page=shown, article=shown.article, category=lib.category(
        shown.article.category), related=related, vote=vote, reasons=REASONS, visit=visit,
        canonical=absolute(url_for("help.article", slug=slug)))


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
    entries = [(absolute("/"), None)]
    entries += [(absolute(url_for("help.category", slug=c.slug)), None) for c in lib.categories
                if lib.in_category(c.slug)]
    entries += [(absolute(url_for("help.article", slug=a.slug)), a.updated) for a in
                sorted(lib.articles.values(), key=lambda a: a.slug)]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
    for loc, updated in entries:
        lastmod = f"<lastmod>{updated.isoformat()}</lastmod>" if updated else ""
        lines.append(f"  <url><loc>{escape(loc)}</loc>{lastmod}</url>")
    lines.append("</urlset>")
    return Response("\n".join(lines) + "\n", mimetype="application/xml")


@bp.get("/robots.txt")
def robots() -> Response:
    """Let crawlers read the articles, not search results or the API."""
    text = "\n".join(["User-agent: *", "Disallow: /search", "Disallow: /api/", "Disallow: /staff/",
                      f"Sitemap: {absolute('/sitemap.xml')}", ""])
    return Response(text, mimetype="text/plain")
