"""Lint a folder of articles (and its ``_search.yml``) before it ships: every problem as ``file:line: message``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .articles import Article, ArticleError, InvalidArticle, field_line
from .folder import Corpus, IconProblem, load_categories, load_corpus, real_path_inside
from .tuning import TUNING_FILE, load_tuning

_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_LINK_RE = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
_IMAGE_RE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")


@dataclass(frozen=True)
class Problem:
    """One finding; errors fail the check, warnings do not."""

    path: Path
    line: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}: {prefix}{self.message}"


def _from_error(exc: ArticleError) -> Problem:
    severity = "warning" if isinstance(exc, IconProblem) and exc.warning else "error"
    return Problem(exc.path, exc.line, f"{exc.field}: {exc.message}" if exc.field else exc.message, severity)


def _field_line(article: Article, key: str) -> int:
    try:
        return field_line(article.path.read_text(encoding="utf-8-sig"), key)
    except OSError:
        return 1


def check_articles(root: Path | str) -> list[Problem]:
    """Return every problem found in the articles under ``root``, in file and line order."""
    root = Path(root)
    if not root.is_dir():
        return [Problem(root, 1, "is not a folder of articles")]
    problems: list[Problem] = []
    icons: list[ArticleError] = []
    try:
        categories = load_categories(root, problems=icons)
    except ArticleError as exc:
        problems.append(_from_error(exc))
        categories = {}
    problems += [_from_error(e) for e in icons]
    corpus = load_corpus(root)
    problems += [_from_error(e) for e in corpus.errors]
    # An article that only failed to parse is reported once, in its own file: links to it, by slug, alias or
    # file, are not broken links as well.
    unparsed = _Unparsed(
        {name for exc in corpus.failed if isinstance(exc, InvalidArticle) for name in (exc.slug, *exc.aliases)},
        {exc.path.resolve() for exc in corpus.failed if isinstance(exc, InvalidArticle)})
    by_slug: dict[str, Article] = {}
    by_alias: dict[str, Article] = {}
    for article in corpus.articles:
        if article.slug in by_slug:
            problems.append(Problem(article.path, _field_line(article, "slug"),
                                    f"slug '{article.slug}' is already used by {by_slug[article.slug].path}"))
        else:
            by_slug[article.slug] = article
    for article in corpus.articles:
        for alias in article.aliases:
            line = _field_line(article, "aliases")
            if alias in by_slug:
                problems.append(Problem(article.path, line, f"aliases: '{alias}' is the slug of "
                                                            f"{by_slug[alias].path}"))
            elif alias in by_alias and by_alias[alias] is not article:
                problems.append(Problem(article.path, line, f"aliases: '{alias}' is already an alias of "
                                                            f"{by_alias[alias].path}"))
            else:
                by_alias[alias] = article
    for article in (*corpus.articles, *corpus.translations):  # a translation's links and images too
        problems += _check_one(article, root, by_slug, by_alias, set(categories), unparsed)
    problems += _check_translations(corpus, by_slug, by_alias, unparsed)
    problems += _check_tuning(root, corpus, unparsed)
    return sorted(problems, key=lambda p: (str(p.path), p.line))


def _check_translations(corpus: Corpus, by_slug: dict[str, Article], by_alias: dict[str, Article],
                        unparsed: _Unparsed) -> list[Problem]:
    """A translation needs its source, must be newer than the source's last change (its ``source_revision`` is
    the source's current revision), and its slug must name nothing else, in its language or the source's."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str], Article] = {}
    for t in sorted(corpus.translations, key=lambda a: str(a.path)):
        source = by_slug.get(t.translation_of)
        if source is None:
            if t.translation_of in unparsed.slugs:
                continue  # its source has errors of its own, reported in its file
            moved = by_alias.get(t.translation_of)
            hint = f" (it is now '{moved.slug}': rename the file and set translation_of)" if moved else ""
            problems.append(Problem(t.path, _field_line(t, "translation_of"),
                                    f"translation_of: there is no article '{t.translation_of}' to translate{hint}"))
            continue
        if t.source_revision and t.source_revision != source.revision:
            problems.append(Problem(t.path, _field_line(t, "source_revision"),
                                    f"source_revision: {source.path.name} changed since this translation was made "
                                    f"(from {t.source_revision}, now {source.revision}): bring the translation up "
                                    f"to date, then set source_revision: {source.revision}", "warning"))
        if t.slug != source.slug and t.slug in by_slug:
            problems.append(Problem(t.path, _field_line(t, "slug"), f"slug '{t.slug}' is the slug of another "
                                                                    f"article, {by_slug[t.slug].path}"))
        key = (t.lang, t.slug)
        if key in seen:
            problems.append(Problem(t.path, _field_line(t, "slug"), f"slug '{t.slug}' is already used in "
                                                                    f"'{t.lang}' by {seen[key].path}"))
        else:
            seen[key] = t
        if t.category and t.category != source.category:
            problems.append(Problem(t.path, 1, f"is in the folder '{t.category}' but its source "
                                               f"{source.path.name} is in '{source.category}': keep them together"))
    return problems


def _check_tuning(root: Path, corpus: Corpus, unparsed: _Unparsed) -> list[Problem]:
    """Return the problems of ``_search.yml``: its own, and pins naming no published article."""
    tuning, found = load_tuning(root)
    published = {a.slug for a in corpus.articles if not a.draft}
    aliases = {alias: a.slug for a in corpus.articles if not a.draft for alias in a.aliases}
    drafts = {a.slug for a in corpus.articles if a.draft} - published
    _resolved, unknown = tuning.resolve(root / TUNING_FILE, published, lambda: aliases, drafts=drafts,
                                        unparsed=unparsed.slugs)
    return [Problem(p.path, p.line, f"{p.field}: {p.message}" if p.field else p.message,
                    "warning" if p.warning else "error") for p in (*found, *unknown)]


@dataclass(frozen=True)
class _Unparsed:
    """The slugs, aliases and files of articles that failed to parse."""

    slugs: set[str]
    files: set[Path]


def _check_one(article: Article, root: Path, by_slug: dict[str, Article], by_alias: dict[str, Article],
               categories: set[str], unparsed: _Unparsed) -> list[Problem]:
    problems = []
    if not article.body.strip():
        last = article.path.read_text(encoding="utf-8-sig").count("\n") if article.path.exists() else 1
        problems.append(Problem(article.path, min(article.body_line, max(last, 1)), "the article has no body text"))
    for slug in article.related:
        line = _field_line(article, "related")
        if slug == article.slug:
            problems.append(Problem(article.path, line, "related: an article cannot be related to itself",
                                    "warning"))
        elif slug in by_alias:
            problems.append(Problem(article.path, line, f"related: '{slug}' is an old alias; use "
                                                        f"'{by_alias[slug].slug}'", "warning"))
        elif slug not in by_slug and slug not in unparsed.slugs:
            problems.append(Problem(article.path, line, f"related: no article is named '{slug}'"))
    if categories and article.category and article.category not in categories:
        problems.append(Problem(article.path, _field_line(article, "category"),
                                f"category: '{article.category}' has no folder", "warning"))
    if not article.summary:
        problems.append(Problem(article.path, 1, "summary: missing; search results and link previews show it",
                                "warning"))
    fence = None
    for number, text in enumerate(article.body.splitlines()):
        marker = _FENCE_RE.match(text)
        if marker:  # links shown inside code blocks are examples, not links
            fence = None if fence and marker.group(1).startswith(fence) else fence or marker.group(1)
        if fence:
            continue
        for match in _LINK_RE.finditer(text):
            message = _check_link(article, match.group(1), by_slug, by_alias, unparsed)
            if message:
                problems.append(Problem(article.path, article.body_line + number, message))
        for match in _IMAGE_RE.finditer(text):
            target = urlsplit(match.group(1))
            if not target.scheme and not target.netloc and not target.path.startswith("/"):
                message = _check_image(article.path.parent / unquote(target.path), match.group(1), root)
                if message:
                    problems.append(Problem(article.path, article.body_line + number, message))
    return problems


def _check_image(image: Path, written: str, root: Path) -> str | None:
    """Return what is wrong with an image an article shows, or None."""
    if real_path_inside(image, root) is None:
        if Path(os.path.abspath(image)).is_relative_to(os.path.abspath(root)):  # a symlink on the way leads out
            return f"image points outside the articles folder: {written} (to {os.path.realpath(image)})"
        return f"image not found in the articles folder: {written}"
    if not image.is_file():
        return f"image not found in the articles folder: {written}"
    return None


def _check_link(article: Article, target: str, by_slug: dict[str, Article], by_alias: dict[str, Article],
                unparsed: _Unparsed) -> str | None:
    """Return what is wrong with a link to another article or section, or None."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None  # external links are not ours to check
    anchor = unquote(parts.fragment)
    path = unquote(parts.path)
    linked: Article | None = article
    if path.startswith("/articles/"):
        slug = path.removeprefix("/articles/").strip("/")
        linked = by_slug.get(slug) or by_alias.get(slug)
        if linked is None:
            return None if slug in unparsed.slugs else f"link to a missing article: {target}"
    elif path.endswith(".md"):
        file = (article.path.parent / path).resolve()
        linked = next((a for a in by_slug.values() if a.path.resolve() == file), None)
        if linked is None:
            return None if file in unparsed.files else f"link to a missing article file: {target}"
    elif path:
        return None  # another page of the site, or a file: not an article link
    if anchor and linked is not None and linked.section(anchor) is None:
        return f"link to a missing section: {target} ('{linked.slug}' has no heading with id '{anchor}')"
    return None
