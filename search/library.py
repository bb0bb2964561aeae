"""The published articles of one index generation, as the site shows them."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any

from .articles import Article
from .broken import BrokenFile
from .folder import Category
from .near import NearNames


def display_order(article: Article) -> tuple[bool, int, str]:
    """Return an article's sort key in its category: by ``order`` (lower first), then unordered ones, by title."""
    return article.order is None, article.order or 0, article.title.lower()


@dataclass(frozen=True)
class Library:
    """Articles by slug, categories in display order, and where old slugs now live."""

    articles: dict[str, Article]
    categories: tuple[Category, ...]
    redirects: dict[str, str]  # alias or renamed slug -> current slug
    by_title: list[Article]  # every article by title, sorted once at load
    by_category: dict[str, list[Article]]  # each category's articles in display order (``display_order``)
    errors: tuple[BrokenFile, ...] = ()  # files of the folder this generation could not take as they are

    @classmethod
    def from_data(cls, records: dict[str, dict[str, Any]], site: dict[str, Any],
                  errors: tuple[BrokenFile, ...] = ()) -> Library:
        """Return the library of a generation's article records, categories and redirects, and errors."""
        articles = {slug: Article.from_record(r) for slug, r in records.items()}
        redirects = dict(site["redirects"])
        for article in articles.values():  # an alias an editor wrote wins over a detected rename
            for alias in article.aliases:
                if alias not in articles:
                    redirects[alias] = article.slug
            stem = article.path.stem  # links to the file (`other.md`) land on its page
            if stem != article.slug and stem not in articles:
                redirects.setdefault(stem, article.slug)
        known = {c["slug"]: Category(**c) for c in site["categories"]}
        for article in articles.values():  # a category named in front-matter with no folder of its own
            if article.category and article.category not in known:
                known[article.category] = Category(article.category, article.category.replace("-", " ").capitalize())
        categories = tuple(sorted(known.values(), key=lambda c: (c.order, c.title.lower())))
        by_title = sorted(articles.values(), key=lambda a: a.title.lower())
        by_category: dict[str, list[Article]] = {}
        for article in sorted(by_title, key=display_order):
            by_category.setdefault(article.category, []).append(article)
        return cls(articles, categories, redirects, by_title, by_category, errors)

    def category(self, slug: str) -> Category | None:
        """Return the category with this slug, if any."""
        return next((c for c in self.categories if c.slug == slug), None)

    def in_category(self, slug: str) -> list[Article]:
        """Return a category's articles in display order: those with an ``order`` first, then the rest by title."""
        return self.by_category.get(slug, [])

    def counts(self) -> dict[str, int]:
        """Return how many articles each category has."""
        return {slug: len(found) for slug, found in self.by_category.items()}

    def resolve(self, slug: str) -> str | None:
        """Return the current slug for a slug, alias or renamed slug; None if no article answers to it."""
        if slug in self.articles:
            return slug
        target = self.redirects.get(slug)
        return target if target in self.articles else None

    @cached_property
    def _names(self) -> NearNames:
        return NearNames((a.slug, (a.slug, a.title, *a.aliases)) for a in self.articles.values())

    def near(self, slug: str, limit: int = 3) -> list[Article]:
        """Return up to ``limit`` articles a slug that names none probably meant (mistyped, or with words
        added), best first; none when no article's slug, title or alias is close."""
        return [self.articles[found] for found in self._names.nearest(slug, limit)]

    @cached_property
    def _with_rules(self) -> list[Article]:
        """The articles that name shop pages (``show_on``): a few of thousands, looked at on every widget open."""
        return [a for a in self.by_title if a.show_on]

    def for_page(self, path: str, limit: int = 5) -> list[Article]:
        """Return the articles whose ``show_on`` patterns match a shop page's path, the most specific match
        first (the pattern with the most literal characters: ``/checkout/payment`` before ``/checkout*``), then
        in display order."""
        found: list[tuple[int, Article]] = []
        for article in self._with_rules:
            scores = [specificity(p) for p in article.show_on if fnmatchcase(path, p)]
            if scores:
                found.append((max(scores), article))
        found.sort(key=lambda pair: (-pair[0], display_order(pair[1])))
        return [article for _score, article in found[:limit]]


def specificity(pattern: str) -> int:
    """Return how specific a page pattern is: its number of literal characters."""
    return sum(1 for c in pattern if c not in "*?[]")
