"""The articles folder: its files found by real path (never outside it), loaded together, and its categories."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import icons
from .articles import Article, ArticleError, load_article


class OutsideFolder(ArticleError):
    """A file or folder in the articles folder whose real path is outside it: refused, never read or served."""

    def __init__(self, path: Path | str, target: Path | str):
        self.target = Path(target)
        super().__init__(path, f"points outside the articles folder, to {target}")


class IconProblem(ArticleError):
    """A category icon that cannot be shown as declared; the category still loads, with what could be kept
    (the file's safe parts, or the default icon). A warning does not fail ``kb check``."""

    def __init__(self, path: Path | str, message: str, *, line: int = 1, field: str | None = None,
                 warning: bool = False):
        self.warning = warning
        super().__init__(path, message, line=line, field=field)


# Files next to the articles that the site serves under /media/.
MEDIA_TYPES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".avif"})


def real_path_inside(path: Path | str, root: Path | str) -> Path | None:
    """Return the real path of ``path`` (every symlink followed) if it is inside ``root``'s real path, else None."""
    real = Path(os.path.realpath(path))
    return real if real.is_relative_to(os.path.realpath(root)) else None


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _is_article(name: str) -> bool:
    return name.endswith(".md") and not _hidden(name) and name.lower() != "readme.md"


@dataclass(frozen=True)
class Walk:
    """What an articles folder holds: its article files in a stable order, and what was refused."""

    articles: tuple[Path, ...]
    refused: tuple[OutsideFolder, ...]


def walk(root: Path | str) -> Walk:
    """Find the article files under ``root``; refuse every file or folder whose real path is outside it.

    Hidden and ``_`` files and folders and README files are not articles (a link may still publish a file
    kept under ``_shared/``). An article, image, category file or folder that is a symlink resolving outside
    the real path of ``root`` is refused: never read, never walked. A link to a folder that is walked under
    its own name anyway is not walked twice.
    """
    root = Path(root)
    real_root = Path(os.path.realpath(root))
    articles: list[Path] = []
    refused: list[OutsideFolder] = []
    walked: set[Path] = set()

    def visit(folder: Path, real: Path) -> None:
        walked.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            path = folder / entry.name
            if entry.is_symlink():
                target = Path(os.path.realpath(path))
                if not target.is_relative_to(real_root):
                    if entry.name == "_category.yml" or not _hidden(entry.name) and (
                            entry.is_dir() or _is_article(entry.name) or path.suffix.lower() in MEDIA_TYPES):
                        refused.append(OutsideFolder(path, target))
                    continue
                if entry.is_dir() and (target in walked or not any(
                        _hidden(part) for part in target.relative_to(real_root).parts)):
                    continue  # its real folder is walked (or was): once is enough
            if _hidden(entry.name):
                continue
            if entry.is_dir():
                visit(path, Path(os.path.realpath(path)))
            elif _is_article(entry.name):
                articles.append(path)

    if root.is_dir():
        visit(root, real_root)
    return Walk(tuple(sorted(articles)), tuple(refused))


@dataclass(frozen=True)
class Corpus:
    """All articles of a folder that loaded, and the errors of those that did not."""

    articles: tuple[Article, ...]
    errors: tuple[ArticleError, ...]  # every problem, one by one
    failed: tuple[ArticleError, ...] = ()  # one error a file that did not load (InvalidArticle or OutsideFolder)
    translations: tuple[Article, ...] = ()  # ``<slug>.<lang>.md`` files: never indexed with the sources

    def published(self) -> list[Article]:
        """Return the articles that are not drafts."""
        return [a for a in self.articles if not a.draft]


def load_corpus(root: Path | str, paths: Iterable[Path] | None = None) -> Corpus:
    """Load every article under ``root``, collecting errors instead of stopping at the first."""
    root = Path(root)
    if not root.is_dir():
        raise ArticleError(root, "is not a folder of articles")
    articles: list[Article] = []
    failed: list[ArticleError] = []
    if paths is None:
        found = walk(root)
        paths, failed = found.articles, list(found.refused)
    translations: list[Article] = []
    for path in paths:
        try:
            article = load_article(path, root)
        except ArticleError as exc:
            failed.append(exc)
        else:
            (translations if article.lang else articles).append(article)
    return Corpus(tuple(articles), tuple(p for exc in failed for p in exc.problems), tuple(failed),
                  tuple(translations))


@dataclass(frozen=True)
class Category:
    """A folder of articles with its display title, description, order and icon."""

    slug: str
    title: str
    description: str = ""
    order: int = 1000
    icon: str = ""  # a built-in icon's name (``search.icons``), or the category's own SVG file; "": the default
    icon_svg: str = ""  # that file's sanitised markup, kept with the index like the rest of the category


def _key_line(text: str, key: str) -> int:
    """Return the 1-based line of a top-level ``key:`` in a YAML file's text, or 1 when absent."""
    match = re.search(rf"^{re.escape(key)}[ \t]*:", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def _icon(value: object, meta_path: Path, root: Path, line: int, problems: list[ArticleError]) -> tuple[str, str]:
    """Return a category's (icon, icon_svg) from its ``icon:`` value: a built-in name or an ``.svg`` file in its
    folder. What cannot be shown as written is added to ``problems`` and leaves the default icon (or the file's
    safe parts)."""
    def fail(message: str, path: Path = meta_path, at: int = line, *, warning: bool = False) -> tuple[str, str]:
        field = "icon" if path == meta_path else None
        problems.append(IconProblem(path, message, line=at, field=field, warning=warning))
        return "", ""

    if value is None or value == "":
        return "", ""
    if not isinstance(value, str):
        return fail(f"must be the name of a built-in icon or of an .svg file beside _category.yml, not "
                    f"{type(value).__name__}")
    written = value.strip()
    if not written.lower().endswith(".svg"):
        if written in icons.builtin_names():
            return written, ""
        return fail(f"no built-in icon is called '{written}'; name an .svg file beside _category.yml, or one of: "
                    f"{', '.join(icons.builtin_names())}")
    folder = meta_path.parent
    path = folder / written
    if Path(written).is_absolute() or not Path(os.path.normpath(path)).is_relative_to(os.path.normpath(folder)):
        return fail(f"'{written}' must be an .svg file in the category's own folder")
    real = real_path_inside(path, root)
    if real is None:
        return fail(f"'{written}' points outside the articles folder, to {os.path.realpath(path)}")
    try:
        clean = icons.read_svg(real)
    except FileNotFoundError:
        return fail(f"no file '{written}' beside _category.yml")
    except OSError as exc:
        return fail(f"'{written}' cannot be read: {exc.strerror}")
    except icons.InvalidSvg as exc:
        return fail(f"not used as the category's icon (the default is shown): it {exc.message}", path, exc.line)
    if clean.dropped:
        fail(f"left out of the inline icon, as unsafe or not needed: {', '.join(clean.dropped)}", path, 1,
             warning=True)
    return written, clean.svg


def load_categories(root: Path | str, *, problems: list[ArticleError] | None = None) -> dict[str, Category]:
    """Read ``<category>/_category.yml`` files; folders without one get a title from their name.

    A folder or category file resolving outside the articles folder is not read (``walk`` reports it). An icon
    that cannot be shown as declared is an ``IconProblem`` added to ``problems``, not a reason to fail.
    """
    icon_problems: list[ArticleError] = [] if problems is None else problems
    root = Path(root)
    categories = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(p.name)
                         and real_path_inside(p, root)):
        meta: dict[str, Any] = {}
        text = ""
        meta_path = folder / "_category.yml"
        if meta_path.exists() and real_path_inside(meta_path, root):
            text = meta_path.read_text(encoding="utf-8")
            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                raise ArticleError(meta_path, f"invalid YAML: {getattr(exc, 'problem', exc)}",
                                   line=mark.line + 1 if mark else 1) from None
            if not isinstance(loaded, dict):
                raise ArticleError(meta_path, "must be a mapping with title, description and order")
            meta = loaded
        order = meta.get("order", 1000)
        if isinstance(order, bool) or not isinstance(order, int):
            raise ArticleError(meta_path, "must be a whole number", field="order")
        icon, icon_svg = _icon(meta.get("icon"), meta_path, root, _key_line(text, "icon"), icon_problems)
        categories[folder.name] = Category(
            slug=folder.name,
            title=str(meta.get("title") or folder.name.replace("-", " ").capitalize()),
            description=str(meta.get("description") or ""),
            order=order,
            icon=icon,
            icon_svg=icon_svg,
        )
    return categories
