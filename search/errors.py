"""The library's one exception root: every error ``search`` raises on purpose is a ``SearchError``.

Each module defines its own subclasses first, after its imports; where callers already caught a builtin
(``ValueError``, ``FileNotFoundError``, ``RuntimeError``) it stays a second base. Mapping errors to HTTP
statuses or exit codes is the application's business, not the library's.
"""

from __future__ import annotations


class SearchError(Exception):
    """Base of every error the search library raises on purpose."""


class InvalidArgument(SearchError, ValueError):
    """A value given to the library is outside what it accepts (a precision, a weight, seed texts)."""
