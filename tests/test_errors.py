"""The search library's one error vocabulary: every exception it defines is a SearchError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import search
from search import SearchError


def library_exceptions() -> list[type[BaseException]]:
    """Return every exception class defined in a module of the search package."""
    found = []
    for info in pkgutil.iter_modules(search.__path__, "search."):
        module = importlib.import_module(info.name)
        found += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                  if issubclass(obj, BaseException) and obj.__module__ == module.__name__]
    return found


def test_the_walk_finds_the_library_exceptions():
    """The walk over the modules sees the exceptions of several modules (so the next test means something)."""
    names = {cls.__name__ for cls in library_exceptions()}
    assert {"SearchError", "ArticleError", "IndexCorrupt", "EmbedderUnavailable", "QueryFileError"} <= names


@pytest.mark.parametrize("cls", library_exceptions(), ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_library_exception_is_a_search_error(cls):
    """Catching SearchError catches whatever the library raises on purpose."""
    assert issubclass(cls, SearchError)


def test_exported_from_the_package():
    """SearchError and every exception the package exports are importable from ``search``."""
    exported = [getattr(search, name) for name in search.__all__]
    assert SearchError in exported
    assert all(issubclass(obj, SearchError) for obj in exported if inspect.isclass(obj)
               and issubclass(obj, BaseException))


def test_builtin_bases_are_kept_for_callers_that_catch_them():
    """Callers that caught the builtin still catch the library's error."""
    assert issubclass(search.IndexMissing, FileNotFoundError)
    assert issubclass(search.IndexCorrupt, RuntimeError)
    assert issubclass(search.QueryError, ValueError)
    assert issubclass(search.EmbedderUnavailable, RuntimeError)
    assert issubclass(search.InvalidArgument, ValueError)
