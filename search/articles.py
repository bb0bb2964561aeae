"""Load help articles: Markdown files with YAML front-matter, validated and split into sections."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from frontmatter.default_handlers import YAMLHandler
from markdown.extensions.toc import slugify_unicode

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster


class _YAML(YAMLHandler):
    """Front-matter handler that always uses a safe loader (the C one when present)."""

    def load(self, fm: str, **kwargs: object) -> Any:
        return yaml.load(fm, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader


class ArticleError(Exception):
    """A problem in one article file, located by file, line and field."""

    def __init__(self, path: Path | str, message: str, *, line: int = 1, field: str | None = None):
        self.path = Path(path)
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.path}:{self.line}: {where}{self.message}"


SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")

# Front-matter keys this project understands, with their expected shape.
_STR_FIELDS = ("title", "summary", "category", "slug")
_LIST_FIELDS = ("tags", "questions", "aliases", "related")


@dataclass(frozen=True)
class Section:
    """A part of an article under one heading; the intro before any heading has anchor ''."""

    anchor: str
    heading: str
    level: int
    text: str
    line: int


@dataclass(frozen=True)
class Article:
    """One validated help article."""

    slug: str
    title: str
    body: str
    path: Path
    summary: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    updated: dt.date | None = None
    draft: bool = False
    sections: tuple[Section, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    body_line: int = 1

    @property
    def content_hash(self) -> str:
        """Return a hash of everything that search indexes, to detect changed articles."""
        parts = [self.slug, self.title, self.summary, self.category, *self.tags, "\x1f",
                 *self.questions, "\x1f", self.body]
        return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:32]

    def url(self, anchor: str = "") -> str:
        """Return the article's stable URL path, optionally deep-linked to a section."""
        return f"/articles/{self.slug}" + (f"#{anchor}" if anchor else "")

    def section(self, anchor: str) -> Section | None:
        """Return the section with this anchor, if any."""
        return next((s for s in self.sections if s.anchor == anchor), None)

    def record(self, root: Path | None = None) -> dict[str, Any]:
        """Return the article as JSON-ready data, from which ``from_record`` rebuilds it."""
        path = self.path.relative_to(root) if root is not None and self.path.is_relative_to(root) else self.path
        return {
            "slug": self.slug, "title": self.title, "summary": self.summary, "category": self.category,
            "tags": list(self.tags), "questions": list(self.questions), "aliases": list(self.aliases),
            "related": list(self.related), "updated": self.updated.isoformat() if self.updated else None,
            "draft": self.draft, "path": str(path), "body": self.body, "body_line": self.body_line,
            "extra": _plain(self.extra),
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Article:
        """Rebuild an article from ``record`` data."""
        return cls(
            slug=data["slug"], title=data["title"], body=data["body"], path=Path(data["path"]),
            summary=data["summary"], category=data["category"], tags=tuple(data["tags"]),
            questions=tuple(data["questions"]), aliases=tuple(data["aliases"]), related=tuple(data["related"]),
            updated=dt.date.fromisoformat(data["updated"]) if data["updated"] else None, draft=data["draft"],
            sections=split_sections(data["body"], data["body_line"]), extra=data["extra"],
            body_line=data["body_line"],
        )


def _plain(value: Any) -> Any:
    """Return front-matter data with dates as ISO strings, so it can be stored as JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def heading_anchor(text: str, used: set[str]) -> str:
    """Return the id Markdown's toc extension (with ``slugify_unicode``) gives this heading, unique in ``used``."""
    plain = re.sub(r"`([^`]*)`", r"\1", text)
    plain = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", plain)
    plain = re.sub(r"<[^>]+>", "", plain)
    plain = re.sub(r"(\*\*|\*|~~)(?=\S)(.+?)(?<=\S)\1", r"\2", plain)
    plain = re.sub(r"(?<!\w)(__|_)(?=\S)(.+?)(?<=\S)\1(?!\w)", r"\2", plain)
    base = slugify_unicode(html.unescape(plain), "-") or "section"
    anchor, n = base, 0
    while anchor in used:  # same scheme as markdown.extensions.toc.unique
        n += 1
        anchor = f"{base}_{n}"
    used.add(anchor)
    return anchor


def split_sections(body: str, first_line: int = 1) -> tuple[Section, ...]:
    """Split Markdown into sections at its headings, ignoring lines inside code fences."""
    sections: list[Section] = []
    used: set[str] = set()
    anchor, heading, level, start = "", "", 0, first_line
    lines: list[str] = []
    fence: str | None = None

    def close() -> None:
        text = "\n".join(lines).strip()
        if text or heading:
            sections.append(Section(anchor, heading, level, text, start))

    for offset, line in enumerate(body.splitlines()):
        fence_match = _FENCE_RE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
        heading_match = _HEADING_RE.match(line) if fence is None else None
        if heading_match:
            close()
            level = len(heading_match.group(1))
            heading = heading_match.group(2).strip()
            anchor = heading_anchor(heading, used)
            start, lines = first_line + offset, []
        else:
            lines.append(line)
    close()
    return tuple(sections)


def _field_line(raw: str, key: str) -> int:
    """Return the 1-based line of ``key:`` in the front-matter, or 1 when absent."""
    match = re.search(rf"^{re.escape(key)}\s*:", raw, re.MULTILINE)
    return raw.count("\n", 0, match.start()) + 1 if match else 1


def _check_str(path: Path, raw: str, meta: dict[str, Any], key: str) -> str:
    value = meta.get(key, "")
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ArticleError(path, f"must be text, not {_kind(value)}", line=_field_line(raw, key), field=key)
    return str(value).strip()


def _check_list(path: Path, raw: str, meta: dict[str, Any], key: str) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ArticleError(path, f"must be a list, not {_kind(value)}", line=_field_line(raw, key), field=key)
    items = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ArticleError(path, f"items must be text, found {_kind(item)}",
                               line=_field_line(raw, key), field=key)
        if str(item).strip():
            items.append(str(item).strip())
    return tuple(items)


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false", type(None): "empty"}.get(
        type(value), type(value).__name__)


def parse_article(text: str, path: Path, *, category: str = "") -> Article:
    """Parse one article's text; raise ArticleError naming file, line and field on bad input."""
    try:
        post = frontmatter.loads(text, handler=_YAML())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        # The front-matter handed to YAML starts with the newline after the opening '---'.
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ArticleError(path, f"invalid YAML front-matter: {problem}", line=line) from None
    except ValueError as exc:  # YAML read a date that does not exist, like 2026-02-30
        key, line = _bad_date(text)
        raise ArticleError(path, f"not a real date ({exc})", line=line, field=key) from None
    meta: dict[str, Any] = dict(post.metadata)
    if not isinstance(post.metadata, dict):
        raise ArticleError(path, "front-matter must be a mapping of keys to values")
    raw = text
    title = _check_str(path, raw, meta, "title")
    if not title:
        raise ArticleError(path, "is required", line=_field_line(raw, "title") if "title" in meta else 1,
                           field="title")
    slug = _check_str(path, raw, meta, "slug") or path.stem
    if not SLUG_RE.match(slug):
        raise ArticleError(path, f"'{slug}' must be lowercase letters, digits and hyphens",
                           line=_field_line(raw, "slug"), field="slug")
    updated = meta.get("updated")
    if isinstance(updated, dt.datetime):
        updated = updated.date()
    elif isinstance(updated, str):
        try:
            updated = dt.date.fromisoformat(updated.strip())
        except ValueError:
            raise ArticleError(path, f"'{updated}' is not a date (use YYYY-MM-DD)",
                               line=_field_line(raw, "updated"), field="updated") from None
    elif updated is not None and not isinstance(updated, dt.date):
        raise ArticleError(path, f"must be a date (YYYY-MM-DD), not {_kind(updated)}",
                           line=_field_line(raw, "updated"), field="updated")
    draft = meta.get("draft", False)
    if not isinstance(draft, bool):
        raise ArticleError(path, f"must be true or false, not {_kind(draft)}",
                           line=_field_line(raw, "draft"), field="draft")
    lists = {key: _check_list(path, raw, meta, key) for key in _LIST_FIELDS}
    for key in ("aliases", "related"):
        for item in lists[key]:
            if not SLUG_RE.match(item):
                raise ArticleError(path, f"'{item}' is not a valid slug", line=_field_line(raw, key), field=key)
    body_line = _body_line(text)
    known = set(_STR_FIELDS) | set(_LIST_FIELDS) | {"updated", "draft"}
    return Article(
        slug=slug,
        title=title,
        body=post.content,
        path=path,
        summary=_check_str(path, raw, meta, "summary"),
        category=_check_str(path, raw, meta, "category") or category,
        tags=lists["tags"],
        questions=lists["questions"],
        aliases=lists["aliases"],
        related=lists["related"],
        updated=updated,
        draft=draft,
        sections=split_sections(post.content, body_line),
        extra={k: v for k, v in meta.items() if k not in known},
        body_line=body_line,
    )


def _bad_date(text: str) -> tuple[str | None, int]:
    """Return the key and line of the first front-matter date that is not a real date."""
    for number, line in enumerate(text.splitlines()[1:], 2):
        if line.strip() in ("---", "..."):
            break
        match = re.match(r"^([\w-]+)\s*:\s*['\"]?(\d{4}-\d{1,2}-\d{1,2})\b", line)
        if match:
            try:
                dt.date(*map(int, match.group(2).split("-")))
            except ValueError:
                return match.group(1), number
    return None, 1


def _body_line(text: str) -> int:
    """Return the 1-based line where the Markdown body starts (after the front-matter)."""
    match = re.match(r"\A(?:\ufeff)?---[^\n]*\n.*?^(?:---|\.\.\.)[ \t]*$\n?", text, re.DOTALL | re.MULTILINE)
    end = match.end() if match else 0
    blank = re.match(r"(?:[ \t]*\n)*", text[end:])  # leading blank lines are not part of the body
    end += blank.end() if blank else 0
    return text.count("\n", 0, end) + 1


def load_article(path: Path, root: Path | None = None) -> Article:
    """Read and parse one article file; its category defaults to its folder's name."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArticleError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ArticleError(path, f"cannot be read: {exc.strerror}") from None
    category = ""
    if root is not None and path.parent != root:
        category = path.parent.relative_to(root).parts[0]
    return parse_article(text, path, category=category)


def article_paths(root: Path) -> Iterator[Path]:
    """Yield every article file under ``root`` in a stable order, skipping hidden and ``_`` files."""
    for path in sorted(root.rglob("*.md")):
        rel = path.relative_to(root).parts
        if any(part.startswith((".", "_")) for part in rel) or path.name.lower() == "readme.md":
            continue
        yield path


@dataclass(frozen=True)
class Corpus:
    """All articles of a folder that loaded, and the errors of those that did not."""

    articles: tuple[Article, ...]
    errors: tuple[ArticleError, ...]

    def published(self) -> list[Article]:
        """Return the articles that are not drafts."""
        return [a for a in self.articles if not a.draft]


def load_corpus(root: Path | str, paths: Iterable[Path] | None = None) -> Corpus:
    """Load every article under ``root``, collecting errors instead of stopping at the first."""
    root = Path(root)
    if not root.is_dir():
        raise ArticleError(root, "is not a folder of articles")
    articles, errors = [], []
    for path in paths if paths is not None else article_paths(root):
        try:
            articles.append(load_article(path, root))
        except ArticleError as exc:
            errors.append(exc)
    return Corpus(tuple(articles), tuple(errors))


@dataclass(frozen=True)
class Category:
    """A folder of articles with its display title, description and order."""

    slug: str
    title: str
    description: str = ""
    order: int = 1000


def load_categories(root: Path | str) -> dict[str, Category]:
    """Read ``<category>/_category.yml`` files; folders without one get a title from their name."""
    root = Path(root)
    categories = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        meta: dict[str, Any] = {}
        meta_path = folder / "_category.yml"
        if meta_path.exists():
            try:
                loaded = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
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
        categories[folder.name] = Category(
            slug=folder.name,
            title=str(meta.get("title") or folder.name.replace("-", " ").capitalize()),
            description=str(meta.get("description") or ""),
            order=order,
        )
    return categories
