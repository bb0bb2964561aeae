"""Learned questions: customers' own words for an article, taken from searches that found it.

The site decides which searches succeeded and how many visitors must agree (``kb_site.learning``); this
module holds what the index and the evaluation need of it, with no database and no Flask:

- ``normalise`` a query into the one form counted, stored and indexed;
- ``refusal``: why a query must never be learned (too long, an email address, a phone, order or card
  number, a web address), or None;
- the learned-questions file the site writes into its instance folder and ``build_index`` reads
  (``read_learned``, ``write_learned``): ``{"format": 1, "questions": {slug: [question, ...]}}``;
- ``learned_hash``: an article's content hash with its learned questions, so that a change re-embeds
  that article alone;
- ``pairs_of`` and ``select``: learned questions from a labelled query file (``kb eval --learn-from``),
  under the same rules and cap as the site's; ``part_of`` splits a query file into stable parts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .analysis import clean_query
from .errors import SearchError
from .evaluate import load_queries


class LearnedFileError(SearchError, ValueError):
    """A learned-questions or query file that is not in its format; the message names the file and field."""


FORMAT = 1
MAX_CHARS = 200  # a longer "query" is pasted text (a message, an address), whatever its words
DEFAULT_MAX_WORDS = 16
DEFAULT_MAX_PER_ARTICLE = 50

_EMAIL_RE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# A run of digits with the separators phone, card and account numbers are written with.
_NUMBER_RE = re.compile(r"\+?\(?\d[\d\s().\-/]*\d")
MOST_DIGITS = 6  # 7 digits and more, however spaced: a phone, card or account number
_LONG_NUMBER_RE = re.compile(r"\d{5,}")  # 5 digits in a row: an order, account or postal code; years stay
_EDGE_PUNCTUATION = "?!.,;:¿¡\"'“”‘’«»()[]{}…"


def normalise(query: str) -> str:
    """Return the form a query is counted, stored and indexed in: NFKC, lowercased, single spaces, no
    punctuation at either end ("Where's my ORDER??" and "where's my order" are one question)."""
    text = clean_query(query).casefold()
    words = [w.strip(_EDGE_PUNCTUATION) for w in text.split()]
    return " ".join(w for w in words if w)


def refusal(query: str, *, max_words: int = DEFAULT_MAX_WORDS, order_pattern: str | None = None) -> str | None:
    """Return why a (normalised) query must never be learned, or None when it may be.

    Searches are typed by customers, and some paste what identifies them: a learned question is shown to
    staff and indexed for everybody, so anything that looks like personal data is refused outright, as is
    text too long to be a question (a pasted message). ``order_pattern`` is the shop's order number
    (``KB_ORDER_NUMBER_PATTERN``), matched against each word.
    """
    words = query.split()
    if not words:
        return "empty"
    if len(words) > max_words or len(query) > MAX_CHARS:
        return "too long"
    if _EMAIL_RE.search(query):
        return "an email address"
    if _URL_RE.search(query):
        return "a web address"
    if _LONG_NUMBER_RE.search(query) or any(sum(c.isdigit() for c in m.group()) > MOST_DIGITS
                                             for m in _NUMBER_RE.finditer(query)):
        return "a phone, card, account or order number"
    if order_pattern:
        try:
            order = re.compile(order_pattern, re.IGNORECASE)
        except re.error:
            order = None
        if order is not None and any(order.fullmatch(w.strip(_EDGE_PUNCTUATION)) for w in query.split()):
            return "an order number"
    return None


def learned_hash(content_hash: str, learned: Sequence[str]) -> str:
    """Return the hash an article is indexed under: its own content hash, changed by its learned questions.

    Without learned questions it is the content hash itself, so an index built before learning (or a site
    that learns nothing) is carried over as it is.
    """
    if not learned:
        return content_hash
    return hashlib.sha256("\x1e".join([content_hash, "\x1d", *learned]).encode()).hexdigest()[:32]


def to_index(learned: Iterable[str], questions: Sequence[str], title: str = "") -> tuple[str, ...]:
    """Return the learned questions worth indexing: normalised, each once, none already the editor's."""
    taken = {normalise(q) for q in (*questions, title)}
    out: list[str] = []
    for question in learned:
        text = normalise(question)
        if text and text not in taken:
            taken.add(text)
            out.append(text)
    return tuple(out)


# --------------------------------------------------------------------------- the file


def read_learned(path: Path | str) -> dict[str, tuple[str, ...]]:
    """Read a learned-questions file: slug -> questions. A missing file is no learned questions."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise LearnedFileError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("questions"), dict):
        raise LearnedFileError(f'{path}: expected {{"format": {FORMAT}, "questions": {{"slug": ["...", ...]}}}}')
    return as_mapping(data["questions"], str(path))


def as_mapping(learned: Mapping[str, Sequence[str]], where: str = "learned") -> dict[str, tuple[str, ...]]:
    """Return learned questions as slug -> tuple, checking their shape (errors name the slug)."""
    out = {}
    for slug, questions in learned.items():
        if not isinstance(slug, str) or isinstance(questions, str) or not isinstance(questions, Sequence) or \
                not all(isinstance(q, str) for q in questions):
            raise LearnedFileError(f"{where}: questions.{slug}: expected a list of strings")
        if questions:
            out[slug] = tuple(questions)
    return out


def write_learned(path: Path | str, learned: Mapping[str, Sequence[str]]) -> bool:
    """Write the learned-questions file atomically when its content changes; return whether it changed.

    An unchanged file is left alone (not even touched): the index watcher rebuilds when the file changes.
    """
    path = Path(path)
    text = json.dumps({"format": FORMAT, "questions": {s: list(q) for s, q in sorted(learned.items()) if q}},
                      ensure_ascii=False, indent=1) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".learned-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)  # readers see the old file or the new one, never half of one
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


# --------------------------------------------------------------------------- from labelled queries


def pairs_of(path: Path | str) -> list[tuple[str, str]]:
    """Read a JSON-lines query file as (query, clicked article) pairs: the first relevant slug is the click."""
    return [(query.query, query.first) for query in load_queries(path)]


def part_of(query: str, parts: int) -> int:
    """Return which of ``parts`` stable parts (1-based) a query falls in, by a hash of its normalised text.

    The same query is in the same part in every file and every run, so a query asked twice never ends up
    both learned from and evaluated.
    """
    digest = hashlib.sha256(normalise(query).encode()).digest()
    return int.from_bytes(digest[:8], "big") % parts + 1


def select(pairs: Iterable[tuple[str, str]], *, max_per_article: int = DEFAULT_MAX_PER_ARTICLE,
           max_words: int = DEFAULT_MAX_WORDS, order_pattern: str | None = None) -> dict[str, tuple[str, ...]]:
    """Return the learned questions of (query, article) pairs taken as agreed: normalised, refused ones left
    out, each once an article, at most ``max_per_article`` an article (the first ones given)."""
    out: dict[str, list[str]] = {}
    for query, slug in pairs:
        text = normalise(query)
        if refusal(text, max_words=max_words, order_pattern=order_pattern) is not None:
            continue
        taken = out.setdefault(slug, [])
        if text not in taken and len(taken) < max_per_article:
            taken.append(text)
    return {slug: tuple(questions) for slug, questions in out.items() if questions}
