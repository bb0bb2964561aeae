"""Articles as pages: Markdown rendered to sanitised HTML, with section anchors matching the index, and the
articles shown beside them."""

from __future__ import annotations

import functools
import posixpath
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import markdown
import nh3
from markdown.extensions.toc import TocExtension, slugify_unicode
from werkzeug.security import safe_join

from search import Article, SearchEngine
from search.folder import MEDIA_TYPES, real_path_inside

# What an article may contain once rendered: no scripts, styles, frames, forms or event handlers.
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "dl", "dt", "em",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
    "ol", "p", "pre", "s", "samp", "small", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "img": {"src", "alt", "title", "width", "height"},
    "code": {"class"},
    "td": {"align"}, "th": {"align"},
    "ol": {"start"},
    **{f"h{n}": {"id"} for n in range(1, 7)},
}
URL_SCHEMES = {"http", "https", "mailto", "tel"}


@dataclass(frozen=True)
class Page:
    """An article rendered for display."""

    article: Article
    html: str
    toc: tuple[tuple[str, str, int], ...]  # (anchor, heading, level) of h2 and h3 sections

    @property
    def reading_minutes(self) -> int:
        """Minutes an article takes to read, at 200 words a minute (at least one)."""
        return max(1, round(len(self.article.body.split()) / 200))


_converters = threading.local()


def _converter() -> markdown.Markdown:
    """Return this thread's Markdown converter, reset (building one costs as much as converting a page)."""
    made = getattr(_converters, "md", None)
    if made is None:
        made = _converters.md = _new_converter()
    return made.reset()


def _new_converter() -> markdown.Markdown:
    return markdown.Markdown(extensions=[
        "tables", "fenced_code", "sane_lists", "def_list", "abbr",
        TocExtension(slugify=slugify_unicode, permalink="#", permalink_class="anchor",
                     permalink_title="Link to this section"),
    ], extension_configs={"tables": {"use_align_attribute": True}}, output_format="html")


def _attribute_filter(folder: str):
    """Return an nh3 attribute filter that points relative image paths at the article's media folder."""

    def rewrite(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            parts = urlsplit(value)
            if not parts.scheme and not value.startswith(("/", "//")):
                path = posixpath.normpath(posixpath.join(folder, parts.path))
                if path.startswith("..") or posixpath.splitext(path)[1].lower() not in MEDIA_TYPES:
                    return None
                return f"/media/{path}"
        if tag == "a" and attribute == "href":
            parts = urlsplit(value)
            if not parts.scheme and not parts.netloc and parts.path.endswith(".md"):
                # A link to another article's file (what `kb check` verifies) becomes its page.
                stem = posixpath.splitext(posixpath.basename(parts.path))[0]
                return f"/articles/{stem}" + (f"#{parts.fragment}" if parts.fragment else "")
        if tag == "code" and attribute == "class":
            return value if value.startswith("language-") else None
        if tag == "a" and attribute == "class":
            return value if value == "anchor" else None
        return value

    return rewrite


def render_markdown(text: str, folder: str = "") -> str:
    """Render Markdown to HTML safe to show: nh3 removes scripts, handlers and unsafe URLs."""
    html = _converter().convert(text)
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer", attribute_filter=_attribute_filter(folder),
                     strip_comments=True)


@functools.lru_cache(maxsize=2048)
def _render(text: str, folder: str) -> str:
    return render_markdown(text, folder)


def page(article: Article) -> Page:
    """Return the article rendered (cached by its text: an edit renders again)."""
    folder = posixpath.dirname(article.path.as_posix()) if not article.path.is_absolute() else ""
    toc = tuple((s.anchor, s.heading, s.level) for s in article.sections if s.anchor and s.level in (2, 3))
    return Page(article, _render(article.body, folder), toc)


def related(engine: SearchEngine, article: Article, limit: int = 5) -> list[Article]:
    """Return the articles to offer next: every hand-picked one, then the nearest in meaning up to ``limit``."""
    articles = engine.library.articles
    chosen = [articles[s] for s in article.related if s in articles]
    for near in engine.related(article.slug, limit=8):
        if len(chosen) >= limit:
            break
        if near in articles and near not in {a.slug for a in chosen} and near != article.slug:
            chosen.append(articles[near])
    return chosen


def media_file(root: Path | str, filename: str) -> Path | None:
    """Return the image ``filename`` names under the articles folder, or None: never a file outside it.

    Symlinks are followed only while they stay inside the folder's real path: a link to /etc/passwd, or a
    linked folder pointing elsewhere, is not served.
    """
    if Path(filename).suffix.lower() not in MEDIA_TYPES:
        return None
    joined = safe_join(str(root), filename)  # no '..', no absolute paths
    real = real_path_inside(joined, root) if joined is not None else None
    if real is None or not real.is_file() or real.suffix.lower() not in MEDIA_TYPES:  # a link is what it points to
        return None
    return real
