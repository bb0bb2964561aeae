"""Every file the site hands out for download: CSV cells made safe for spreadsheets, and safe file names."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from flask import Response

# OWASP "CSV Injection": a spreadsheet runs a cell that starts with one of these as a formula
# (=HYPERLINK(...), +cmd|..., -2+3, @SUM(...)); a tab or CR in front hides the formula from the eye.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_cell(value: Any) -> Any:
    """Return a CSV cell that no spreadsheet runs: a string starting like a formula gets a leading quote.

    Numbers stay numbers: -3 is data that we wrote (a count or a difference), never text from a visitor,
    and OWASP's rule is about strings. Everything that came from outside (queries, comments, titles) is a
    string, so a typed "-3" or "+1" is quoted like any other formula-like text.
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    if value is None or isinstance(value, int | float | Decimal | str):
        return value
    return safe_cell(str(value))


def csv_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """Return rows (dicts with the same keys) as CSV text, every cell passed through ``safe_cell``."""
    out = io.StringIO()
    writer: csv.DictWriter[str] | None = None
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=[safe_cell(k) for k in row])
            writer.writeheader()
        writer.writerow({safe_cell(k): safe_cell(v) for k, v in row.items()})
    return out.getvalue()


def _ascii(text: str) -> str:
    """Return text as plain ASCII letters, digits, dots and dashes (accents dropped: "ę" becomes "e")."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _UNSAFE_NAME.sub("-", plain).strip("-.")


def content_disposition(filename: str) -> str:
    """Return an attachment header for any file name: an ASCII fallback, and RFC 5987 ``filename*`` when needed."""
    # Control characters (and line breaks) never reach a header; path separators never reach a file name.
    name = "".join(c for c in filename if unicodedata.category(c)[0] != "C" and c not in "/\\").strip(" .")
    name = name or "download"
    base, dot, ext = name.rpartition(".")
    if not dot:
        base, ext = name, ""
    fallback = (_ascii(base) or "download") + (f".{_ascii(ext)}" if _ascii(ext) else "")
    header = f'attachment; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


def attachment(body: str, filename: str, mimetype: str) -> Response:
    """Return ``body`` as a download called ``filename`` (UTF-8 text)."""
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = content_disposition(filename)
    return response


def csv_attachment(rows: Iterable[Mapping[str, Any]], filename: str) -> Response:
    """Return rows as a CSV download that is safe to open in a spreadsheet."""
    return attachment(csv_text(rows), filename, "text/csv")
