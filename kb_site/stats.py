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

from . import db
from .models import Event, Vote

CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Helpfulness:
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


def helpfulness() -> dict[str, Helpfulness]:
    """Return the votes of every voted article."""
    query = select(Vote.slug, func.sum(cast(Vote.helpful, Integer)), func.count()).group_by(Vote.slug)
    with db.database().sessions() as s:
        return {slug: Helpfulness(slug, int(yes or 0), int(n)) for slug, yes, n in s.execute(query)}


def views(days: int = 30) -> dict[str, int]:
    """Return article views in the last ``days`` days, by slug."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    query = (select(Event.slug, func.count()).where(Event.kind == "view", Event.created_at >= since)
             .group_by(Event.slug))
    with db.database().sessions() as s:
        return {slug: int(n) for slug, n in s.execute(query) if slug}


def _cached(key: str, compute: Any) -> Any:
    """Return a figure computed at most once a minute a process: the home page is the busiest page.

    With the database unreachable the last figure (or nothing) is used: pages still render.
    """
    cache = current_app.extensions.setdefault("kb_stats", {})
    hit = cache.get(key)
    if hit is None or time.monotonic() - hit[0] > CACHE_SECONDS or current_app.testing:
        try:
            hit = cache[key] = (time.monotonic(), compute())
        except SQLAlchemyError as exc:
            current_app.logger.warning("cannot read %s: %s", key, exc.__class__.__name__)
            return hit[1] if hit else {}
    return hit[1]


def most_helpful(known: set[str], limit: int = 6) -> list[str]:
    """Return the slugs of the most helpful articles (with at least one vote), best first."""
    scores = _cached("helpfulness", helpfulness)
    ranked = sorted((h for h in scores.values() if h.slug in known and h.yes),
                    key=lambda h: (-h.lower_bound, -h.votes, h.slug))
    return [h.slug for h in ranked[:limit]]


def popular(known: set[str], limit: int = 6) -> list[str]:
    """Return the slugs of the most read articles of the last 30 days, most read first."""
    counts = _cached("views", views)
    return [slug for slug, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if slug in known][:limit]
