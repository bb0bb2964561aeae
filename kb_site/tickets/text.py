"""What a ticket's text may hold: one-line fields without hidden line breaks, and text every database can store."""

from __future__ import annotations

import unicodedata

# Controls (C0, C1 with NEL), format characters (zero-width, bidi overrides, BOM, tags), line and paragraph
# separators, and lone surrogates: Python's email module and most viewers treat some of them as line breaks,
# and the rest hide or reorder what a one-line value says.
HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# The subset that splits a line (str.splitlines' breaks): refused with the plainer "keep this to one line".
BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def is_hidden(char: str) -> bool:
    """Return whether a character is a line break, control or format character."""
    return unicodedata.category(char) in HIDDEN


def hidden_characters(text: str) -> list[str]:
    """Return the line breaks, control and format characters in text, in order."""
    return [c for c in text if is_hidden(c)]


def one_line_problem(text: str) -> str | None:
    """Return why text is not fit for a one-line field, in words for the person who typed it, or None."""
    hidden = hidden_characters(text)
    if not hidden:
        return None
    if any(c in BREAKS for c in hidden):
        return "Please keep this to one line."
    char = hidden[0]
    if unicodedata.category(char) == "Cc":  # a tab, NUL or other control: no name worth showing
        return f"Please remove the control character U+{ord(char):04X} (a tab or similar) from this."
    return (f"Please remove the invisible character U+{ord(char):04X} ({unicodedata.name(char, 'unnamed').lower()}),"
            " for example by retyping this: it can hide or reorder what the text says.")


def one_line(text: str) -> str:
    """Return text fit for a mail header: each run of hidden characters and spaces becomes one space."""
    return " ".join("".join(" " if is_hidden(c) else c for c in text).split())


def storable(text: str) -> str:
    """Return text every supported database stores as given: PostgreSQL refuses NUL and lone surrogates."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
