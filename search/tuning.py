"""Editors' search tuning, kept in git next to the articles: synonym groups and pinned queries.

``articles/_search.yml``::

    synonyms:
      - [parcel, package, delivery]     # a query using one of them also searches the others
      - [refund, money back]            # an entry of several words matches a query holding all of them
    pins:
      "where is my parcel": track-your-order
      "black friday":
        article: black-friday-deals
        until: 2026-12-31               # the last day the pin applies

Pure functions over the file's text, the published slugs and a parsed query: ``load_tuning`` reads and
validates the file (each problem with its line, as ``kb check`` and the build report it), ``Tuning.resolve``
checks the pins against the articles, ``Tuning.expand`` adds synonyms to a parsed query, ``Tuning.pin`` and
``pinned_first`` put a pinned article first. A build stores the tuning in its generation (``tuning.json``),
so an engine applies a new one when it opens a new generation, without a restart.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from .analysis import SPLIT_RE, TOKEN_PATTERN, stems
from .articles import SLUG_RE, ArticleError
from .folder import OutsideFolder, real_path_inside
from .lexical import Alternatives, ParsedQuery


class TuningError(ArticleError):
    """A problem in ``_search.yml``, with its line and key; a warning does not stop the file being used."""

    def __init__(self, path: Path | str, message: str, *, line: int = 1, field: str | None = None,
                 warning: bool = False):
        self.warning = warning
        super().__init__(path, message, line=line, field=field)


TUNING_FILE = "_search.yml"  # at the top of the articles folder
# What a synonym's term counts in BM25F against 1.0 for a word typed (0.8 for a typo's correction): below
# the words typed, so an article using the customer's own word still ranks first. Chosen on the dev queries
# of ../shared/eval with synonym groups written for each set: lexical nDCG@10 was best at 0.35-0.4 on all
# three, and fell below no synonyms at all at 1.0 on two (README "How search works").
SYNONYM_WEIGHT = 0.4
MAX_SYNONYM_TERMS = 16  # terms a query gains from synonyms at most
_KEYS = ("synonyms", "pins")
_PIN_KEYS = ("article", "until")
_NULL = "tag:yaml.org,2002:null"
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_APOSTROPHE_RE = re.compile(r"['’`]")
_NOT_WORD_RE = re.compile(r"[\W_]+")


def normalise(query: str) -> str:
    """Return a query as pins compare it: case-folded, apostrophes dropped, other punctuation a space.

    "Where's my parcel?!" and "wheres  my PARCEL" are the same query; "parcel" and "parcels" are not.
    """
    text = unicodedata.normalize("NFKC", query).casefold()
    return " ".join(_NOT_WORD_RE.sub(" ", _APOSTROPHE_RE.sub("", text)).split())


def entry_terms(entry: str) -> tuple[str, ...]:
    """Return the index terms a synonym entry stands for: one a word, as ``LexicalIndex.parse`` makes them.

    Stop words have none; a code like TH-45-GRN is one term, its parts joined, as a query counts it most.
    """
    terms: list[str] = []
    for token in TOKEN_PATTERN.finditer(entry.lower()):
        found = stems("".join(p for p in SPLIT_RE.split(token.group(0)) if p))
        if found and found[-1] not in terms:
            terms.append(found[-1])
    return tuple(terms)


class _Entry(NamedTuple):
    text: str  # as written, lowercased, spaces collapsed
    terms: tuple[str, ...]
    words: tuple[str, ...]  # the word each term comes from, for choosing the section to link to


class Pinned(NamedTuple):
    """The article pinned to a query: its row in the generation and its slug."""

    row: int
    slug: str


@dataclass(frozen=True)
class Pin:
    """A query that editors answer with one article, first, through ``until`` (inclusive) if it is given."""

    query: str  # normalised (see ``normalise``)
    slug: str
    until: dt.date | None = None
    line: int = field(default=1, compare=False)  # in _search.yml, for kb check

    def applies(self, today: dt.date | None = None) -> bool:
        """Return whether the pin is in force on ``today`` (the server's date by default)."""
        return self.until is None or (today or dt.date.today()) <= self.until

    def record(self) -> dict[str, Any]:
        return {"query": self.query, "article": self.slug, "until": self.until.isoformat() if self.until else None}


@dataclass(frozen=True)
class Tuning:
    """Synonym groups (each entry lowercased, its spaces collapsed) and pins; empty: search as it is."""

    synonyms: tuple[tuple[str, ...], ...] = ()
    pins: tuple[Pin, ...] = ()

    def record(self) -> dict[str, Any]:
        """Return the tuning as JSON-ready data (``{}`` when there is none, like a generation without the file)."""
        if not self.synonyms and not self.pins:
            return {}
        return {"synonyms": [list(group) for group in self.synonyms], "pins": [p.record() for p in self.pins]}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Tuning:
        """Rebuild a tuning from ``record`` data."""
        return cls(tuple(tuple(group) for group in data.get("synonyms", ())), tuple(
            Pin(p["query"], p["article"], dt.date.fromisoformat(p["until"]) if p["until"] else None)
            for p in data.get("pins", ())))

    # ----------------------------------------------------------------------- synonyms

    @cached_property
    def _groups(self) -> list[list[_Entry]]:
        groups = []
        for group in self.synonyms:
            entries = []
            for text in group:
                terms: list[str] = []
                words: list[str] = []
                for token in TOKEN_PATTERN.finditer(text):
                    for term in entry_terms(token.group(0)):
                        if term not in terms:
                            terms.append(term)
                            words.append(token.group(0))
                if terms:
                    entries.append(_Entry(text, tuple(terms), tuple(words)))
            groups.append(entries)
        return groups

    def expand(self, parsed: ParsedQuery, known: Callable[[str], bool]) -> ParsedQuery:
        """Return the query with the other entries of each synonym group it uses, at ``SYNONYM_WEIGHT``.

        An entry is used when the query has every one of its terms: typed (1.0, whether or not an article has
        the word: "rucksack" finds articles that only say "backpack") or corrected (0.8). Each term of another
        entry of its group is added at SYNONYM_WEIGHT × the weight of the used entry's weakest term, shared
        among the other entry's words (``money back`` counts as one synonym, not two), if some article has it
        (``known``). A term the query has anyway keeps its weight. An article holding any entry of a group the
        query uses holds the query's words of it (``ParsedQuery.either``, for ``LexicalIndex.holds_all``).
        """
        if not self.synonyms or parsed.either:  # none, or already applied
            return parsed
        have = {t: w for t, w in parsed.terms.items() if t not in parsed.synonyms}
        for token in TOKEN_PATTERN.finditer(parsed.text):
            for term in entry_terms(token.group(0)):
                have.setdefault(term, 1.0)
        terms, words, added = dict(parsed.terms), dict(parsed.words), dict(parsed.synonyms)
        either: list[Alternatives] = []
        for group in self._groups:
            used = [(min(have[t] for t in e.terms), e) for e in group if all(t in have for t in e.terms)]
            if not used:
                continue
            weight, source = max(used, key=lambda u: u[0])
            held = tuple(e.terms for e in group if all(known(t) for t in e.terms))
            if held:
                either.append(Alternatives(tuple(dict.fromkeys(t for _w, e in used for t in e.terms)), held))
            for entry in group:
                share = SYNONYM_WEIGHT * weight / len(entry.terms)
                for term, word in zip(entry.terms, entry.words, strict=True):
                    if term in parsed.terms or share <= terms.get(term, 0.0) or not known(term):
                        continue
                    if term not in added and len(added) >= MAX_SYNONYM_TERMS:
                        continue
                    terms[term] = share
                    words.setdefault(term, word)
                    added[term] = source.text
        if not either:
            return parsed
        return replace(parsed, terms=terms, words=words, synonyms=added, either=tuple(either))

    # ----------------------------------------------------------------------- pins

    @cached_property
    def _pins(self) -> dict[str, Pin]:
        return {p.query: p for p in self.pins}

    def pin_for(self, query: str) -> Pin | None:
        """Return the pin of a query (compared normalised), whether or not it is still in force."""
        return self._pins.get(normalise(query)) if self.pins else None

    def pin(self, query: str, rows: Mapping[str, int], matched: np.ndarray, today: dt.date | None = None
            ) -> tuple[np.ndarray, Pinned | None]:
        """Return the matches with the article pinned to this query among them, and that article (or None).

        A pin past its ``until`` date, or to an article the generation does not hold, does nothing.
        """
        pin = self.pin_for(query)
        row = rows.get(pin.slug) if pin is not None and pin.applies(today) else None
        if pin is None or row is None:
            return matched, None
        matched = matched.copy()
        matched[row] = True
        return matched, Pinned(row, pin.slug)

    # ----------------------------------------------------------------------- against the articles

    def resolve(self, path: Path, slugs: Collection[str], aliases: Callable[[], Mapping[str, str]], *,
                drafts: Collection[str] = (), unparsed: Collection[str] = ()) -> tuple[Tuning, list[TuningError]]:
        """Return the tuning with each pin naming a published slug, and the problems of the pins that do not.

        A pin to an old alias is a warning and pins the article that has it; to no published article, or to
        a draft, an error (to an article in ``unparsed``, which only failed to parse, neither: it is reported
        in its own file). ``aliases`` (alias → slug) is called only when a pin needs it.
        """
        problems: list[TuningError] = []
        pins: list[Pin] = []
        known: Mapping[str, str] | None = None
        for pin in self.pins:
            if pin.slug in slugs:
                pins.append(pin)
                continue
            if known is None:
                known = aliases()
            if pin.slug in known:
                problems.append(TuningError(path, f"'{pin.slug}' is an old alias; use '{known[pin.slug]}'",
                                            line=pin.line, field="pins", warning=True))
                pins.append(replace(pin, slug=known[pin.slug]))
            elif pin.slug in drafts:
                problems.append(TuningError(path, f"'{pin.slug}' is a draft: only published articles can be "
                                                  "pinned", line=pin.line, field="pins"))
            elif pin.slug not in unparsed:
                problems.append(TuningError(path, f"no article is named '{pin.slug}'", line=pin.line,
                                            field="pins"))
        return replace(self, pins=tuple(pins)), problems


def pinned_first(ranked: np.ndarray, pinned: Pinned | None, matched: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Return the ranking with the pinned article first, and its slug; as it is, and None, when the category
    filter left it out. The ranking keeps its length: the pinned article was counted among the matches."""
    if pinned is None or not matched[pinned.row]:
        return ranked, None
    rest = ranked[ranked != pinned.row]
    return np.concatenate([np.array([pinned.row], dtype=ranked.dtype), rest])[:len(ranked)], pinned.slug


class TermNote(NamedTuple):
    """Where one term of a parsed query comes from, for ``kb search --explain``."""

    term: str  # the index term (stemmed)
    weight: float
    kind: str  # "typed", "corrected" or "synonym"
    source: str  # the word typed; the misspelt word corrected; the entry of the query's synonym group
    word: str  # the word the term stands for


def explain_terms(parsed: ParsedQuery) -> list[TermNote]:
    """Return each term of a parsed query with its weight and where it comes from, in the query's order."""
    typed: dict[str, str] = {}
    for token in TOKEN_PATTERN.finditer(parsed.text):
        word = token.group(0).lower()
        parts = [p for p in SPLIT_RE.split(word) if p]
        for piece in ("".join(parts), *(parts if len(parts) > 1 else ())):
            for term in stems(piece)[-1:]:
                typed.setdefault(term, word)
    fixed = {term: typo for typo, fix in parsed.corrections.items() for term in stems(fix)[-1:]}
    notes = []
    for term, weight in parsed.terms.items():
        word = parsed.words.get(term, term)
        if term in parsed.synonyms:
            notes.append(TermNote(term, weight, "synonym", parsed.synonyms[term], word))
        elif term in typed:
            notes.append(TermNote(term, weight, "typed", typed[term], word))
        else:
            notes.append(TermNote(term, weight, "corrected", fixed.get(term, word), word))
    return notes


# --------------------------------------------------------------------------- reading _search.yml


def load_tuning(root: Path | str, today: dt.date | None = None) -> tuple[Tuning, list[TuningError]]:
    """Read ``root/_search.yml``: its tuning and every problem found (none and no tuning without the file).

    A file or link whose real path is outside the articles folder is refused, never read.
    """
    path = Path(root) / TUNING_FILE
    if not path.exists() and not path.is_symlink():
        return Tuning(), []
    if real_path_inside(path, root) is None:
        outside = OutsideFolder(path, Path(path).resolve())
        return Tuning(), [TuningError(path, outside.message)]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return Tuning(), [TuningError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    except OSError as exc:
        return Tuning(), [TuningError(path, f"cannot be read: {exc.strerror}")]
    return parse_tuning(text, path, today)


def parse_tuning(text: str, path: Path, today: dt.date | None = None) -> tuple[Tuning, list[TuningError]]:
    """Parse the text of ``_search.yml``: its tuning, and each problem with its line (warnings too)."""
    try:
        root = yaml.compose(text, Loader=_SafeLoader)  # nodes, not values: every problem gets its line
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start is not None and start.line + 1 != line:
            problem += f" ({context} that starts on line {start.line + 1})"
        return Tuning(), [TuningError(path, f"invalid YAML: {problem}", line=line)]
    if root is None or root.tag == _NULL:
        return Tuning(), []
    reader = _Reader(path)
    if not isinstance(root, yaml.MappingNode):
        reader.fail(root, "must be a mapping with the keys synonyms and pins")
        return Tuning(), reader.problems
    sections: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in root.value:
        name = _text(key)
        if name not in _KEYS:
            reader.fail(key, f"unknown key '{name}': the keys are synonyms and pins")
        elif name in sections:
            reader.fail(key, f"given twice (first on line {_line(sections[name][0])})", name)
        else:
            sections[name] = (key, value)
    synonyms = reader.synonyms(sections["synonyms"][1]) if "synonyms" in sections else ()
    pins = reader.pins(sections["pins"][1], today or dt.date.today()) if "pins" in sections else ()
    return Tuning(synonyms, pins), sorted(reader.problems, key=lambda p: p.line)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _text(node: yaml.Node) -> str | None:
    """Return a scalar's text as written (``yes`` stays "yes"), or None for anything else or an empty value."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
        return None
    return " ".join(str(node.value).split())


def _empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


@dataclass
class _Reader:
    """The nodes of one ``_search.yml`` being read, and every problem found so far."""

    path: Path
    problems: list[TuningError] = field(default_factory=list)

    def fail(self, node: yaml.Node, message: str, key: str | None = None, *, warning: bool = False) -> None:
        self.problems.append(TuningError(self.path, message, line=_line(node), field=key, warning=warning))

    def synonyms(self, node: yaml.Node) -> tuple[tuple[str, ...], ...]:
        if _empty(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, "must be a list of groups, like - [parcel, package, delivery]", "synonyms")
            return ()
        groups: list[tuple[str, ...]] = []
        owner: dict[tuple[str, ...], tuple[str, int]] = {}  # an entry's terms -> (entry, line of its group)
        for group in node.value:
            if not isinstance(group, yaml.SequenceNode):
                self.fail(group, "each group is a list of two or more words, like [parcel, package]", "synonyms")
                continue
            entries: list[str] = []
            mine: dict[tuple[str, ...], str] = {}
            errors = sum(not p.warning for p in self.problems)
            for item in group.value:
                text = _text(item)
                terms = entry_terms(text) if text else ()
                if text is None:
                    self.fail(item, "each entry is a word or words, not a list, mapping or nothing", "synonyms")
                elif not terms:
                    self.fail(item, f"'{text}' has no word that search uses (only stop words)", "synonyms")
                elif terms in mine:
                    same = "is listed twice" if mine[terms] == text.lower() else f"is the same to search as " \
                                                                                   f"'{mine[terms]}'"
                    self.fail(item, f"'{text}' {same} in this group", "synonyms", warning=True)
                elif terms in owner:
                    first, line = owner[terms]
                    same = "" if first == text.lower() else f" (as '{first}')"
                    self.fail(item, f"'{text}' is already in the group on line {line}{same}: a word belongs to "
                                    "one group", "synonyms")
                else:
                    mine[terms] = text.lower()
                    entries.append(text.lower())
            if len(entries) >= 2:
                groups.append(tuple(entries))
                for terms, text in mine.items():
                    owner.setdefault(terms, (text, _line(group)))
            elif errors == sum(not p.warning for p in self.problems):  # else the error said why it is short
                alone = f": '{entries[0]}' is alone" if entries else ""
                self.fail(group, f"a group needs two or more different words{alone}", "synonyms")
        return tuple(groups)

    def pins(self, node: yaml.Node, today: dt.date) -> tuple[Pin, ...]:
        if _empty(node):
            return ()
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, 'must be a mapping of queries to articles, like "where is my parcel": '
                            "track-your-order", "pins")
            return ()
        pins: list[Pin] = []
        lines: dict[str, int] = {}
        for key, value in node.value:
            written = _text(key)
            query = normalise(written or "")
            if not query:
                self.fail(key, "a pinned query needs words", "pins")
                continue
            if query in lines:
                self.fail(key, f'"{written}" is already pinned on line {lines[query]} (queries are compared '
                               "lowercased, without punctuation)", "pins")
                continue
            lines[query] = _line(key)
            pin = self.pin(query, written or "", value, today)
            if pin is not None:
                pins.append(pin)
        return tuple(pins)

    def pin(self, query: str, written: str, node: yaml.Node, today: dt.date) -> Pin | None:
        """Return one pin, or None (with its problems noted) when it cannot be read."""
        until: dt.date | None = None
        article: yaml.Node | None = node
        if isinstance(node, yaml.MappingNode):
            article = None
            for key, value in node.value:
                name = _text(key)
                if name == "article":
                    article = value
                elif name == "until":
                    until = self.date(value, written, today)
                    if until is None:
                        return None
                else:
                    self.fail(key, f"unknown key '{name}' in the pin of \"{written}\": the keys are article and "
                                   "until", "pins")
                    return None
            if article is None:
                self.fail(node, f'the pin of "{written}" names no article (article: <slug>)', "pins")
                return None
        slug = _text(article)
        if slug is None or not SLUG_RE.match(slug):
            self.fail(article, f'the pin of "{written}" must name an article by its slug, like track-your-order'
                      + (f", not '{slug}'" if slug else ""), "pins")
            return None
        return Pin(query, slug, until, _line(article))

    def date(self, node: yaml.Node, written: str, today: dt.date) -> dt.date | None:
        text = _text(node)
        try:
            until = dt.date.fromisoformat(text or "")
        except ValueError:
            self.fail(node, f"until: '{text or ''}' is not a date (use YYYY-MM-DD)", "pins")
            return None
        if until < today:
            self.fail(node, f'the pin of "{written}" ended on {until.isoformat()}: it no longer applies', "pins",
                      warning=True)
        return until
