"""Article text as a reader sees it: Markdown rendered, then read back as units and sentences.

A snippet or an answer quotes what the page shows, so the text is taken from the rendered HTML (the
``markdown`` package, as the site renders it, read by the standard library's HTML parser), not from the
Markdown source: no table pipes, emphasis stars or link targets survive, and inline markup leaves no
stray spaces before punctuation. A *unit* is one block a reader takes in at once (a paragraph, a list
item, a table row, a line of a code block); ``sentences`` cuts a unit into whole sentences.
"""

from __future__ import annotations

import re
import threading
from html.parser import HTMLParser

import markdown

# As kb_site.content renders an article, less the table of contents (anchors are not text).
EXTENSIONS = ("tables", "fenced_code", "sane_lists", "def_list", "abbr")

# Tags that start or end a unit; text between them is one unit.
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "dd", "details", "div", "dl", "dt", "figcaption", "figure",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "section",
    "summary", "ul",
})
_HIDDEN = frozenset({"script", "style", "template"})  # their content is never shown

CELLS = " · "  # between the named cells of a table row, which is one sentence however it is punctuated

_local = threading.local()  # a Markdown converter keeps state while converting: one a thread


def section_units(source: str) -> list[str]:
    """Return a section's Markdown as the lines a reader sees: paragraphs, list items, table rows."""
    converter = getattr(_local, "converter", None)
    if converter is None:
        converter = _local.converter = markdown.Markdown(extensions=list(EXTENSIONS), output_format="html")
    reader = _UnitReader()
    reader.feed(converter.reset().convert(source))
    reader.close()
    return reader.units


def table_row(header: list[str], cells: list[str]) -> str:
    """Return a table row as a line of text.

    Two columns read as ``"PayPal: Within 24 hours"``; more as ``"XS — Chest (cm): 86 to 91 · Waist (cm): 71
    to 76"``, each further cell named by its column's header. The first cell names the row; a bare number
    there ("8" in a size chart) is named by its header too ("UK size 8").
    """
    label = cells[0].rstrip(":").strip() if cells else ""
    if label and header and header[0] and not any(c.isalpha() for c in label):
        label = f"{header[0]} {label}"
    if len(cells) <= 2:
        values = [cell for cell in cells[1:] if cell]
        return f"{label}: {values[0]}" if label and values else label or "".join(values)
    values = [_named(header[i] if i < len(header) else "", cell) for i, cell in enumerate(cells[1:], 1) if cell]
    if not values:
        return label
    return f"{label} — {CELLS.join(values)}" if label else CELLS.join(values)


def _named(name: str, value: str) -> str:
    """Return a cell named by its column: "Price: £4.50", "Can I turn it off? Yes"."""
    if not name:
        return value
    return f"{name} {value}" if name[-1] in ":?!" else f"{name}: {value}"


class _UnitReader(HTMLParser):
    """Collect the units of rendered HTML; a table's header row names the cells of the rows below it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.units: list[str] = []
        self._text: list[str] = []
        self._hidden = 0
        self._pre = 0
        self._header: list[str] = []
        self._head = False  # inside <thead>
        self._row: list[str] | None = None
        self._row_is_head = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif self._cell is not None:  # a cell is one piece of a row, whatever it holds
            if tag in _BLOCKS or tag == "br":
                self._cell.append(" ")
        elif tag in ("td", "th"):
            self._cell = []
            self._row_is_head = self._row_is_head and tag == "th"
        elif tag == "tr":
            self._flush()
            self._row, self._row_is_head = [], True
        elif tag == "table":
            self._flush()
            self._header = []
        elif tag == "thead":
            self._head = True
        elif tag == "pre":
            self._flush()
            self._pre += 1
        elif tag in _BLOCKS or tag == "br":
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in ("td", "th"):
            if self._cell is not None and self._row is not None:
                self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif self._cell is not None:
            return
        elif tag == "tr":
            row, self._row = self._row, None
            if row is None or not any(row):
                return
            if self._head or (self._row_is_head and not self._header):
                self._header = row
            else:
                self.units.append(table_row(self._header, row))
        elif tag == "thead":
            self._head = False
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            self._flush()
        elif tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif self._pre:  # each line of a code block is a line a reader sees
            lines = data.split("\n")
            self._text.append(lines[0])
            for line in lines[1:]:
                self._flush()
                self._text.append(line)
        else:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        self._text = []
        if text:
            self.units.append(text)


# A sentence ends at . ! ? or … (and any closing quotes or brackets) before a space and a character
# that can start a sentence: "e.g. the" or "3.5" never ends one.
_END_RE = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+(\S))")
# Words written with a full stop that a sentence does not end with.
_ABBREVIATIONS = frozenset({
    "e.g", "i.e", "eg", "ie", "approx", "cf", "dr", "incl", "excl", "mr", "mrs", "ms", "mt", "st", "vs", "viz", "ca",
})
# Abbreviations before a number: "No. 5", "p. 12", "Jan. 3".
_BEFORE_NUMBERS = frozenset({
    "no", "nos", "nr", "p", "pp", "fig", "vol", "art", "ref", "tel", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec",
})


def sentences(unit: str) -> list[str]:
    """Return a unit cut into whole sentences, careful with "e.g.", "No. 5", "3.5", URLs and codes.

    A table row of several named cells is one sentence: "Can I turn it off? Yes" is one statement.
    """
    if CELLS in unit:
        return [unit]
    out: list[str] = []
    start = 0
    for end in _END_RE.finditer(unit):
        following = end.group(1)
        if following.islower() or (end.group(0) == "." and _abbreviation(unit, start, end.start(), following)):
            continue
        out.append(unit[start:end.end()].strip())
        start = end.end()
    last = unit[start:].strip()
    if last:
        out.append(last)
    return out


def _abbreviation(unit: str, start: int, stop: int, following: str) -> bool:
    """Return whether the word before a full stop (at ``stop``) is an abbreviation or an initial."""
    word = unit[max(unit.rfind(" ", start, stop) + 1, start):stop].lstrip("([\"'“‘").lower()
    if len(word) == 1 and word.isalpha():
        return True  # an initial: "J. Smith"
    return word in _ABBREVIATIONS or (word in _BEFORE_NUMBERS and following.isdigit())
