"""Snippets: the whole sentences of a section that hold most of the query, matched words marked.

A section's text is its units one a line (``text.section_units``). Its sentences are split once (and
remembered for the sections that recur), the beginnings of the query's terms are found in it, and only
the words there are looked up (each word's index terms are cached): a snippet never re-analyses a whole
section through a highlighter.
"""

from __future__ import annotations

import bisect
import html
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache

from .analysis import FUNCTION_WORDS, SPLIT_RE, TOKEN_PATTERN, stems
from .text import sentences

SNIPPET_CHARS = 240
_SEPARATORS = "'’-_./"  # what joins the parts of a word like TH-45-GRN or don't (analysis.TOKEN_RE)
GAP = " … "  # between sentences that are not next to each other
_ENDS = ".!?…:;"  # a unit ending so (before any closing quote or bracket) reads on into the next after a space


@dataclass(frozen=True)
class _Sentence:
    unit: int
    text: str
    marks: tuple[tuple[int, int], ...]  # (start, end) of each matched word
    terms: frozenset[str]


def snippet(text: str, weights: Mapping[str, float], chars: int = SNIPPET_CHARS) -> str:
    """Return HTML-escaped whole sentences of ``text``, up to about ``chars`` characters, matched words in <mark>.

    The sentence holding the most weight of distinct query terms comes first (one holding a code such as
    TH-45-GRN before any other), then sentences adding terms it lacks, then its neighbours while they fit.
    A single sentence too long to show is cut at a word boundary, with "…".
    """
    found = _sentences(text, weights)
    if not found:
        return ""
    holding = [i for i, sentence in enumerate(found) if sentence.terms]
    best = max(holding, key=lambda i: (*_gain(found[i].terms, set(), weights), -i), default=0)
    if len(found[best].text) > chars:
        return _cut(found[best], chars)
    chosen = {best}
    covered = set(found[best].terms)
    used = len(found[best].text)
    while True:  # sentences that add terms the chosen ones lack, most weight first
        fits = [i for i in holding if not found[i].terms <= covered
                and used + len(GAP) + len(found[i].text) <= chars]
        if not fits:
            break
        pick = max(fits, key=lambda i: (*_gain(found[i].terms, covered, weights), -abs(i - best)))
        chosen.add(pick)
        covered |= found[pick].terms
        used += len(GAP) + len(found[pick].text)
    for step in (1, -1):  # then the best one's neighbours, the following ones first
        at = best
        while 0 <= at + step < len(found) and (at + step in chosen
                                               or used + len(GAP) + len(found[at + step].text) <= chars):
            at += step
            if at not in chosen:
                chosen.add(at)
                used += len(GAP) + len(found[at].text)
    return _join([found[i] for i in sorted(chosen)], sorted(chosen))


def _sentences(text: str, weights: Mapping[str, float]) -> list[_Sentence]:
    """Return the sentences of a text, each with the query terms of its words and where they are."""
    split = _split(text)
    found: list[tuple[list[tuple[int, int]], set[str]]] = [([], set()) for _ in split]
    starts = [start for _unit, start, _end in split]
    for begin, end in _candidates(text, frozenset(weights)):
        lower = text[begin:end].lower().replace("’", "'")
        if lower in FUNCTION_WORDS:
            continue
        whole, parts = _terms(lower)
        matched = [t for t in whole if t in weights]
        if parts and (matched or not any(c.isdigit() for c in lower)):  # a code matches whole, not by a part
            matched += [t for t in parts if t in weights]
        if matched:
            number = bisect.bisect_right(starts, begin) - 1
            found[number][0].append((begin - starts[number], end - starts[number]))
            found[number][1].update(matched)
    return [_Sentence(unit, text[start:end], tuple(marks), frozenset(terms))
            for (unit, start, end), (marks, terms) in zip(split, found, strict=True)]


@lru_cache(maxsize=4096)
def _split(text: str) -> tuple[tuple[int, int, int], ...]:
    """Return (unit number, start, end) of each sentence of a text: the sections of popular articles recur."""
    out = []
    offset = 0
    for number, unit in enumerate(text.split("\n")):
        at = 0
        for sentence in sentences(unit):
            at = unit.index(sentence, at)
            out.append((number, offset + at, offset + at + len(sentence)))
            at += len(sentence)
        offset += len(unit) + 1
    return tuple(out)


def _candidates(text: str, terms: frozenset[str]) -> list[tuple[int, int]]:
    """Return the spans of the words (as ``TOKEN_RE`` has them) of a text that may hold one of the terms.

    Such a word has a part that begins with the term less its last letter: a Porter stem so begins every
    word it came from ("dai" is "day", "deliveri" is "delivery"). Finding those beginnings with
    ``str.find`` costs a few microseconds a section, where reading every word costs a hundred.
    """
    lower = text.lower()
    if len(lower) != len(text):  # a letter whose lowercase is longer ("İ"): offsets differ, read every word
        return [m.span() for m in TOKEN_PATTERN.finditer(text)]
    found = set()
    for start in {t[:-1] if len(t) >= 3 else t for t in terms if t}:
        at = lower.find(start)
        while at >= 0:
            if at == 0 or not _is_word(lower[at - 1]):  # the start of a word, or of a part of one
                found.add(_word_start(lower, at))
            at = lower.find(start, at + 1)
    spans = []
    for at in sorted(found):
        word = TOKEN_PATTERN.match(text, at)
        if word is not None:
            spans.append(word.span())
    return spans


def _word_start(text: str, at: int) -> int:
    """Return where the word holding the part at ``at`` starts: "45" is a part of "TH-45-GRN"."""
    while at >= 2 and text[at - 1] in _SEPARATORS and _is_word(text[at - 2]):
        at -= 1
        while at and _is_word(text[at - 1]):
            at -= 1
    return at


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"  # what \w matches


@lru_cache(maxsize=100_000)
def _terms(word: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the index terms of one word, whole and of its parts ("TH-45-GRN": th45grn; th, 45, grn).

    Words repeat from section to section, so each is analysed once.
    """
    parts = [p for p in SPLIT_RE.split(word) if p]
    if len(parts) < 2:
        return tuple(stems(word)), ()
    return tuple(stems("".join(parts))), tuple(t for p in parts for t in stems(p))


def _gain(terms: frozenset[str], covered: AbstractSet[str], weights: Mapping[str, float]) -> tuple[int, float]:
    """Return what a sentence adds: the codes (terms with digits, like th45grn) and the weight of its new terms."""
    new = terms - covered
    return sum(1 for t in new if len(t) >= 4 and any(c.isdigit() for c in t)), sum(weights[t] for t in new)


def _join(shown: list[_Sentence], numbers: list[int]) -> str:
    parts = [_marked(shown[0].text, shown[0].marks)]
    for previous, sentence, before, number in zip(shown, shown[1:], numbers, numbers[1:], strict=False):
        if number != before + 1:
            parts.append(GAP)
        elif sentence.unit == previous.unit or previous.text.rstrip("\"'”’)]")[-1:] in _ENDS:
            parts.append(" ")
        else:  # the next table row or list item, with no full stop of its own
            parts.append(" · ")
        parts.append(_marked(sentence.text, sentence.marks))
    return "".join(parts)


def _cut(sentence: _Sentence, chars: int) -> str:
    """Return the part of a long sentence around its first matches, cut at spaces, "…" where it is cut."""
    text, marks = sentence.text, sentence.marks
    start = 0
    if marks and marks[0][0] > chars // 2:  # the matches start late: begin shortly before them
        start = text.rfind(" ", 0, marks[0][0] - chars // 4) + 1
    room = chars - (2 if start else 1)  # for the "…" at either end
    end = len(text) if len(text) - start <= room + 1 else text.rfind(" ", start, start + room)
    end = end if end > start else start + room
    inside = tuple((max(a, start) - start, min(b, end) - start) for a, b in marks if a < end and b > start)
    piece = text[start:end] if end == len(text) else text[start:end].rstrip(" ,;:·—") + "…"
    return ("…" if start else "") + _marked(piece, inside)


def _marked(text: str, marks: tuple[tuple[int, int], ...]) -> str:
    out, at = [], 0
    for start, end in marks:
        if start >= len(text):
            break
        out.append(html.escape(text[at:start], quote=False))
        out.append(f"<mark>{html.escape(text[start:min(end, len(text))], quote=False)}</mark>")
        at = min(end, len(text))
    out.append(html.escape(text[at:], quote=False))
    return "".join(out)
