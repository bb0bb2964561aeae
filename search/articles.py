"""Load help articles: Markdown files with YAML front-matter, validated and split into sections."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler
from markdown.extensions.toc import slugify_unicode

from .errors import SearchError


class ArticleError(SearchError):
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

    @property
    def problems(self) -> tuple[ArticleError, ...]:
        """Return each problem this error stands for: itself, or every one an invalid article gathered."""
        return (self,)


class InvalidArticle(ArticleError):
    """Every problem found in one article file; it reads as its first one, and ``problems`` lists them all.

    ``slug`` and ``aliases`` are what the file names itself as far as they could be read (the front-matter
    slug if recoverable, else the file name), so that ``kb check`` reports no follow-on errors for links to it.
    """

    def __init__(self, problems: Sequence[ArticleError], slug: str, aliases: Sequence[str] = ()):
        first = problems[0]
        self.all = tuple(problems)
        self.slug = slug
        self.aliases = tuple(aliases)
        super().__init__(first.path, first.message, line=first.line, field=first.field)

    def __str__(self) -> str:
        return "\n".join(ArticleError.__str__(p) for p in self.all)

    @property
    def problems(self) -> tuple[ArticleError, ...]:
        return self.all


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster


class _NotADate(str):
    """A date-shaped front-matter value that is not a real date (2026-02-30), kept to be reported."""

    reason: str


def _timestamp(loader: Any, node: yaml.Node) -> Any:
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError as exc:  # YAML read a date that does not exist: one error, not the end of the file
        value = _NotADate(loader.construct_scalar(node))
        value.reason = str(exc)
        return value


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """The safe loader, reading an impossible date as a value to report instead of failing the whole file."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


class _YAML(YAMLHandler):
    """Front-matter handler that always uses a safe loader (the C one when present)."""

    def load(self, fm: str, **kwargs: object) -> Any:
        return yaml.load(fm, Loader=_Loader)  # noqa: S506 - a SafeLoader


SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# A translation sits beside its source as ``<slug>.<lang>.md``: a language tag, lower-case (``de``, ``pt-br``).
TRANSLATION_RE = re.compile(r"^(?P<stem>.+)\.(?P<lang>[a-z]{2}(?:-[a-z]{2})?)$")
REVISION_LENGTH = 12  # ``source_revision`` is this many hex digits of the source's content hash
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
    order: int | None = None  # where editors place it in its category (lower first); None: after those, by title
    show_on: tuple[str, ...] = ()  # the shop pages (path patterns, * any characters) where the widget offers it
    lang: str = ""  # a translation's language ("de"); "" for an article in the site's own language
    translation_of: str = ""  # a translation: its source article's slug
    source_revision: str = ""  # a translation: its source's ``revision`` when it was translated
    sections: tuple[Section, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    body_line: int = 1
    # Customers' words for it, learned from successful searches (``search.learned``): indexed like
    # ``questions`` but never part of the file, the record, the content hash or the page. Only a build sets them.
    learned: tuple[str, ...] = ()

    @property
    def content_hash(self) -> str:
        """Return a hash of everything of the file that search indexes, to detect changed articles (and name
        the revision a vote was given on). An index row's hash adds the learned questions (``search.build``)."""
        parts = [self.slug, self.title, self.summary, self.category, *self.tags, "\x1f",
                 *self.questions, "\x1f", self.body]
        return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:32]

    @property
    def revision(self) -> str:
        """Return the short content hash a translation names as its ``source_revision``."""
        return self.content_hash[:REVISION_LENGTH]

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
            "draft": self.draft, "order": self.order, "show_on": list(self.show_on), "lang": self.lang,
            "translation_of": self.translation_of, "source_revision": self.source_revision, "path": str(path),
            "body": self.body, "body_line": self.body_line,
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
            order=data.get("order"),  # records written before ``order`` existed have none
            show_on=tuple(data.get("show_on", ())), lang=data.get("lang", ""),
            translation_of=data.get("translation_of", ""), source_revision=data.get("source_revision", ""),
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


_FRONT_RE = re.compile(r"\A(?:\ufeff)?---[^\n]*\n.*?^(?:---|\.\.\.)[ \t]*$\n?", re.DOTALL | re.MULTILINE)
_SLUG_LINE_RE = re.compile(r"""^slug[ \t]*:[ \t]*["']?([a-z0-9][a-z0-9_-]*)["']?[ \t]*$""", re.MULTILINE)


def field_line(text: str, key: str) -> int:
    """Return the 1-based line of ``key:`` in an article file's front-matter, or 1 when absent."""
    found = _FRONT_RE.match(text)
    front = found.group(0) if found else ""
    match = re.search(rf"^{re.escape(key)}\s*:", front, re.MULTILINE)
    return front.count("\n", 0, match.start()) + 1 if match else 1


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false", type(None): "empty"}.get(
        type(value), type(value).__name__)


def _not_dates(value: Any) -> Iterator[_NotADate]:
    """Yield the impossible dates anywhere in a front-matter value."""
    if isinstance(value, _NotADate):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _not_dates(item)
    elif isinstance(value, list):
        for item in value:
            yield from _not_dates(item)


@dataclass
class _Checks:
    """One file's front-matter being validated, and every problem found so far (not only the first)."""

    path: Path
    source: str  # the whole file, whose front-matter tells a key's line
    meta: dict[str, Any]
    problems: list[ArticleError] = field(default_factory=list)

    def fail(self, key: str, message: str) -> None:
        line = field_line(self.source, key) if key in self.meta else 1
        self.problems.append(ArticleError(self.path, message, line=line, field=key))

    def text(self, key: str) -> str:
        value = self.meta.get(key, "")
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(key, f"must be text, not {_kind(value)}")
            return ""
        return str(value).strip()

    def items(self, key: str, *, slugs: bool = False) -> tuple[str, ...]:
        value = self.meta.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(key, f"must be a list, not {_kind(value)}")
            return ()
        items = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                self.fail(key, f"items must be text, found {_kind(item)}")
            elif slugs and str(item).strip() and not SLUG_RE.match(str(item).strip()):
                self.fail(key, f"'{str(item).strip()}' is not a valid slug")
            elif str(item).strip():
                items.append(str(item).strip())
        return tuple(items)

    def date(self, key: str) -> dt.date | None:
        value = self.meta.get(key)
        if isinstance(value, _NotADate):
            return None  # already reported as not a real date
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                self.fail(key, f"'{value}' is not a date (use YYYY-MM-DD)")
                return None
        if value is not None and not isinstance(value, dt.date):
            self.fail(key, f"must be a date (YYYY-MM-DD), not {_kind(value)}")
            return None
        return value

    def pages(self, key: str) -> tuple[str, ...]:
        """Shop page patterns: paths from the site's root (``/checkout*``, ``/products/*-tent``)."""
        patterns = []
        for pattern in self.items(key):
            if not pattern.startswith("/"):
                full = ", not a full address" if "://" in pattern else ""
                self.fail(key, f"'{pattern[:60]}' must be a path on the shop's site starting with / (like "
                               f"/checkout* or /products/*-tent){full}")
            elif any(c.isspace() for c in pattern) or len(pattern) > 200:
                self.fail(key, f"'{pattern[:60]}' must be one path of at most 200 characters, without spaces")
            else:
                patterns.append(pattern)
        return tuple(patterns)

    def order(self, key: str) -> int | None:
        if key not in self.meta:
            return None
        value = self.meta[key]
        # A bool is an int to Python, and 1.5 or "2" would sort by accident: only whole numbers are orders.
        if isinstance(value, bool) or not isinstance(value, int):
            shown = f"'{value}'" if isinstance(value, str) else value if isinstance(value, float) else _kind(value)
            self.fail(key, f"must be a whole number (lower comes first), not {shown}")
            return None
        if value < 0:  # -1 reads as "last" to some; an order only counts up from the top
            self.fail(key, f"must be 0 or more (lower comes first), not {value}")
            return None
        return value


def _slug_of(front: str, path: Path) -> str:
    """Return the slug an unparsable file names itself: its front-matter slug if readable, else its file name."""
    match = _SLUG_LINE_RE.search(front)
    return match.group(1) if match else path.stem


def parse_article(text: str, path: Path, *, category: str = "", lang: str = "") -> Article:
    """Parse one article's text; raise InvalidArticle naming file, line and field of each of its problems.

    ``lang``: the file is a translation into that language (``<slug>.<lang>.md``): it names its source with
    ``translation_of`` (default: the file's stem) and the source's revision it was made from with
    ``source_revision``; its slug is its source's unless it sets its own."""
    found = _FRONT_RE.match(text)
    front = found.group(0) if found else ""
    handler = _YAML()
    stripped = text.strip()  # as python-frontmatter reads a post
    try:
        fm, content = handler.split(stripped)
    except ValueError:  # no front-matter at all
        fm, content = None, stripped
    loaded: Any = None
    if fm is not None:
        try:
            loaded = handler.load(fm)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            # The front-matter handed to YAML starts with the newline after the opening '---'.
            line = mark.line + 1 if mark is not None else 1
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
            if context and start is not None and start.line + 1 != line:  # where the unclosed thing began
                problem += f" ({context} that starts on line {start.line + 1})"
            raise InvalidArticle([ArticleError(path, f"invalid YAML front-matter: {problem}", line=line)],
                                 _slug_of(front, path)) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise InvalidArticle([ArticleError(path, f"front-matter must be a mapping of keys to values, not "
                                                 f"{_kind(loaded)}", line=2)], path.stem)
    meta: dict[str, Any] = dict(loaded or {})
    checks = _Checks(path, text, meta)
    for key, value in meta.items():
        bad = next(_not_dates(value), None)
        if bad is not None:
            checks.fail(str(key), f"not a real date ({bad.reason})")
    title = checks.text("title")
    if not title and "title" not in {p.field for p in checks.problems}:
        checks.fail("title", "is required")
    named = TRANSLATION_RE.match(path.stem) if lang else None
    stem = named.group("stem") if named else path.stem
    translation_of = source_revision = ""
    if lang:
        translation_of = checks.text("translation_of") or stem
        if not SLUG_RE.match(translation_of):
            checks.fail("translation_of", f"'{translation_of}' is not a valid slug")
        source_revision = checks.text("source_revision")
        if "source_revision" in meta and not isinstance(meta["source_revision"], str):
            # Digits alone read as a number to YAML (a leading 0 even as octal): take the value as written.
            written = re.search(r"^source_revision:[ \t]*([0-9A-Za-z]+)[ \t]*$", front, re.MULTILINE)
            source_revision = written.group(1) if written else source_revision
        if not source_revision:
            checks.fail("source_revision", f"is required in a translation: the {REVISION_LENGTH}-hex-digit revision "
                                           "of the source it was translated from (kb check names the source's "
                                           "current one once this is set)")
        elif not re.fullmatch(f"[0-9a-f]{{{REVISION_LENGTH}}}", source_revision):
            checks.fail("source_revision", f"'{source_revision[:40]}' must be {REVISION_LENGTH} hex digits")
    else:
        for key in ("translation_of", "source_revision"):
            if key in meta:
                checks.fail(key, f"belongs in a translation (a file named <slug>.<lang>.md), not in {path.name}")
    slug = checks.text("slug") or translation_of or stem
    if not SLUG_RE.match(slug):
        checks.fail("slug", f"'{slug}' must be lowercase letters, digits and hyphens")
        slug = stem
    updated = checks.date("updated")
    draft = meta.get("draft", False)
    if not isinstance(draft, bool):
        checks.fail("draft", f"must be true or false, not {_kind(draft)}")
    order = checks.order("order")
    show_on = checks.pages("show_on")
    summary = checks.text("summary")
    own_category = checks.text("category")
    lists = {key: checks.items(key, slugs=key in ("aliases", "related")) for key in _LIST_FIELDS}
    if checks.problems:
        raise InvalidArticle(sorted(checks.problems, key=lambda p: p.line), slug, lists["aliases"])
    body = content.strip()
    body_line = _body_line(text)
    known = set(_STR_FIELDS) | set(_LIST_FIELDS) | {"updated", "draft", "order", "show_on", "translation_of",
                                                      "source_revision"}
    return Article(
        slug=slug,
        title=title,
        body=body,
        path=path,
        summary=summary,
        category=own_category or category,
        tags=lists["tags"],
        questions=lists["questions"],
        aliases=lists["aliases"],
        related=lists["related"],
        updated=updated,
        draft=draft,
        order=order,
        show_on=show_on,
        lang=lang,
        translation_of=translation_of,
        source_revision=source_revision,
        sections=split_sections(body, body_line),
        extra={k: v for k, v in meta.items() if k not in known},
        body_line=body_line,
    )


def _body_line(text: str) -> int:
    """Return the 1-based line where the Markdown body starts (after the front-matter)."""
    match = _FRONT_RE.match(text)
    end = match.end() if match else 0
    blank = re.match(r"(?:[ \t]*\n)*", text[end:])  # leading blank lines are not part of the body
    end += blank.end() if blank else 0
    return text.count("\n", 0, end) + 1


def load_article(path: Path, root: Path | None = None) -> Article:
    """Read and parse one article file; its category defaults to its folder's name."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArticle([ArticleError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})")],
                             path.stem) from None
    except OSError as exc:
        raise InvalidArticle([ArticleError(path, f"cannot be read: {exc.strerror}")], path.stem) from None
    category = ""
    if root is not None and path.parent != root:
        category = path.parent.relative_to(root).parts[0]
    return parse_article(text, path, category=category, lang=translation_lang(path))


def translation_lang(path: Path) -> str:
    """Return the language of a translation file (``track-your-order.de.md``: "de"), or "" for a source."""
    found = TRANSLATION_RE.match(path.stem) if path.suffix.lower() == ".md" else None
    return found.group("lang") if found else ""
