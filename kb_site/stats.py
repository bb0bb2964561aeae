"""What visitors found helpful and what they read, for the home page and empty result pages."""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import Integer, cast, func, select
from sqlalchemy.exc import SQLAlchemyError

from search import Article, Library

from . import db
from .models import Event, Vote


@dataclass(frozen=True)
class VoteTally:
    """Votes on one article."""

    slug: str
    yes: int
    votes: int

    @property
    def percent(self) -> int:
        return round(100 * self.yes / self.votes) if self.votes else 0

    @property
    def lower_bound(self) -> float:
        """Wilson score lower bound (95 %): a few votes do not outrank many."""
        if not self.votes:
            return 0.0
        z, n, p = 1.96, self.votes, self.yes / self.votes
        return (p + z * z / (2 * n) - z * math.sqrt((p * (1 - p) + z * z / (4 * n)) / n)) / (1 + z * z / n)


def vote_tallies() -> dict[str, VoteTally]:
    """Return the "Yes" and total votes of every voted article."""
    query = select(Vote.slug, func.sum(cast(Vote.helpful, Integer)), func.count()).group_by(Vote.slug)
    with db.database().sessions() as s:
        return {slug: VoteTally(slug, int(yes or 0), int(n)) for slug, yes, n in s.execute(query)}


def views(days: int = 30) -> dict[str, int]:
    """Return article views in the last ``days`` days, by slug."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    query = (select(Event.slug, func.count()).where(Event.kind == "view", Event.created_at >= since)
             .group_by(Event.slug))
    with db.database().sessions() as s:
        return {slug: int(n) for slug, n in s.execute(query) if slug}


def _cached(key: str, compute: Any) -> Any:
    """Return a figure computed at most once every KB_PAGE_CACHE_SECONDS (a minute) a process: the home page
    is the busiest page, and public pages may be that old anyway.

    With the database unreachable the last figure (or nothing) is used: pages still render.
    """
    cache = current_app.extensions.setdefault("kb_stats", {})
    hit = cache.get(key)
    if hit is None or time.monotonic() - hit[0] > current_app.config["PAGE_CACHE_SECONDS"] or current_app.testing:
        try:
            hit = cache[key] = (time.monotonic(), compute())
        except SQLAlchemyError as exc:
            current_app.logger.warning("cannot read %s: %s", key, exc.__class__.__name__)
            return hit[1] if hit else {}
    return hit[1]


def most_helpful(known: set[str], limit: int = 6) -> list[str]:
    """Return the slugs of the most helpful articles (with at least one vote), best first."""
    scores = _cached("vote_tallies", vote_tallies)
    ranked = sorted((h for h in scores.values() if h.slug in known and h.yes),
                    key=lambda h: (-h.lower_bound, -h.votes, h.slug))
    return [h.slug for h in ranked[:limit]]


def tally(slug: str) -> VoteTally:
    """Return the votes on one article (as of the last minute: they are part of its public page)."""
    return _cached("vote_tallies", vote_tallies).get(slug) or VoteTally(slug, 0, 0)


def popular(known: set[str], limit: int = 6) -> list[str]:
    """Return the slugs of the most read articles of the last 30 days, most read first."""
    counts = _cached("views", views)
    return [slug for slug, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if slug in known][:limit]


def featured(lib: Library, limit: int = 6) -> list[Article]:
    """Return the articles to offer first: most helpful, then most read, then one a category."""
    known = set(lib.articles)
    slugs = most_helpful(known, limit)
    for slug in popular(known, limit) + [lib.in_category(c.slug)[0].slug for c in lib.categories
                                         if lib.in_category(c.slug)]:
        if len(slugs) >= limit:
            break
        if slug not in slugs:
            slugs.append(slug)
    return [lib.articles[s] for s in slugs]
