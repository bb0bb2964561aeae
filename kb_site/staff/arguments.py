"""The staff pages' query arguments, checked once: bounded integers, known choices, slugs, redirect targets."""

from __future__ import annotations

import posixpath
import re
import unicodedata
import urllib.parse

from flask import request
from werkzeug.urls import iri_to_uri

from ..errors import KBError

MAX_INT_ARG = 10_000  # no staff page has more pages, days or rows than this
_SLUG = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A plain local staff path: /staff, /staff/... or /staff?..., only URL characters, no backslash.
_STAFF_PATH = re.compile(r"/staff(?:[/?][A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?")


def int_arg(name: str, default: int, low: int = 1, high: int = MAX_INT_ARG,
            choices: tuple[int, ...] | None = None) -> int:
    """Return an integer query argument, or answer 400 saying what is allowed (never a number too big for SQL)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    # int() accepts "+5", " 5" and "\uff15" (a full-width 5); a page number is plain ASCII digits.
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None
    if choices is not None:
        if value not in choices:
            raise KBError(f"{name} must be one of {', '.join(map(str, choices))}.")
        return value  # type: ignore[return-value]
    if value is None or not low <= value <= high:
        raise KBError(f"{name} must be a whole number between {low} and {high:,}.")
    return value


def choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    """Return a query argument that must be one of ``choices`` (None when absent or empty), or answer 400."""
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        raise KBError(f"{name} must be one of {', '.join(choices)}.")
    return value


def slug_arg(name: str) -> str | None:
    """Return a query argument that names a category or other slug (letters, digits, dashes), or answer 400."""
    value = request.args.get(name) or None
    if value is not None and not _SLUG.fullmatch(value):
        raise KBError(f"{name} must be a name made of letters, digits and dashes.")
    return value


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a plain local /staff path to go to after signing in, else None.

    Refused: other hosts (//x, /\\x, schemes), control characters and Unicode line breaks (a Location
    header must never break), whitespace, and dot segments that would climb out of /staff.
    """
    if not target or len(target) > 2000:
        return None
    if any(unicodedata.category(c)[0] in "CZ" for c in target):  # controls, format, line/paragraph separators
        return None
    target = iri_to_uri(target)  # non-ASCII letters (a query in Polish) become %-escapes
    if not _STAFF_PATH.fullmatch(target):
        return None
    path = target.split("?", 1)[0]
    decoded = urllib.parse.unquote(path)
    if "//" in decoded or "\\" in decoded or posixpath.normpath(decoded) != decoded.rstrip("/") or \
            any(unicodedata.category(c)[0] in "CZ" for c in decoded):
        return None
    return target
