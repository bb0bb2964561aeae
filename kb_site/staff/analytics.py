"""What self-service achieves and where it fails: the dashboard's figures, as plain queries.

Every function takes a session and the start of the period (whole UTC days, ``period_start``) and returns
rows (dicts with a fixed column order) that the dashboard shows and downloads as CSV.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, cast, distinct, func, select, union
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from search import Article

from ..models import REASONS, Event, Ticket, Vote, aware

Row = dict[str, Any]


@dataclass(frozen=True)
class Overview:
    visits: int
    visits_with_ticket: int
    tickets: int
    deflections: int
    searches: int
    zero_result_searches: int

    @property
    def self_service(self) -> float | None:
        """Share of visits that did not open a ticket (None without visits)."""
        return (self.visits - self.visits_with_ticket) / self.visits if self.visits else None


def period_start(days: int, today: dt.date) -> dt.datetime:
    """Return when a period of ``days`` days ending ``today`` starts: midnight UTC of its first day.

    A period is whole days, so that its chart has one bar a day and its figures count the same events.
    """
    return dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time(), dt.UTC)


def _visits(start: dt.datetime) -> Subquery:
    """The period's visits with their channel: each visit with an event or a ticket in it. A refusal by a rate
    limit ("limited", kb_site.visitors) is not a visit."""
    return union(select(Event.visit, Event.channel).where(Event.created_at >= start, Event.kind != "limited"),
                 select(Ticket.visit, Ticket.channel).where(Ticket.created_at >= start,
                                                            Ticket.visit.is_not(None))).subquery()


def overview(s: Session, start: dt.datetime) -> Overview:
    """Visits (with any event or ticket), those that opened a ticket, tickets, deflections, searches."""
    visits = _visits(start)
    n_visits = s.scalar(select(func.count(distinct(visits.c.visit)))) or 0
    with_ticket = s.scalar(select(func.count(distinct(Ticket.visit)))
                           .where(Ticket.created_at >= start, Ticket.visit.is_not(None))) or 0
    tickets = s.scalar(select(func.count()).select_from(Ticket).where(Ticket.created_at >= start)) or 0
    counts = dict(s.execute(select(Event.kind, func.count()).where(Event.created_at >= start)
                            .group_by(Event.kind)).all())
    zero = s.scalar(select(func.count()).select_from(Event).where(
        Event.kind == "search", Event.results == 0, Event.created_at >= start)) or 0
    return Overview(int(n_visits), int(with_ticket), int(tickets), int(counts.get("deflection", 0)),
                    int(counts.get("search", 0)), int(zero))


def searches_per_day(s: Session, today: dt.date, days: int) -> list[Row]:
    """Searches on each of the ``days`` days (UTC) that end with ``today``: one row a day, 0 for a day without."""
    start = period_start(days, today)
    day = func.date(Event.created_at)  # a UTC day: SQLite stores UTC, PostgreSQL sessions run in UTC (kb_site.db)
    counts = {str(d): int(n) for d, n in s.execute(
        select(day, func.count()).where(Event.kind == "search", Event.created_at >= start).group_by(day))}
    dates = [start.date() + dt.timedelta(days=i) for i in range(days)]
    return [{"day": d.isoformat(), "searches": counts.get(d.isoformat(), 0)} for d in dates]


def _clicked() -> Any:
    """Search event ids that were followed by a click on a result."""
    return select(Event.search_id).where(Event.kind == "click", Event.search_id.is_not(None)).distinct()


def top_queries(s: Session, start: dt.datetime, limit: int = 20) -> list[Row]:
    """The most frequent queries with their average result count and click-through."""
    query = func.lower(Event.query)
    clicked = _clicked().scalar_subquery()
    rows = s.execute(
        select(query, func.count(), func.avg(Event.results),
               func.sum(cast(Event.id.in_(clicked), Integer)))
        .where(Event.kind == "search", Event.created_at >= start, Event.query.is_not(None))
        .group_by(query).order_by(func.count().desc(), query).limit(limit))
    return [{"query": q, "searches": int(n), "avg_results": round(float(r), 1) if r is not None else None,
             "clicked_percent": round(100 * int(c or 0) / int(n))} for q, n, r, c in rows]


def zero_result_queries(s: Session, start: dt.datetime, limit: int = 50) -> list[Row]:
    """Queries that found nothing: the content gaps."""
    query = func.lower(Event.query)
    rows = s.execute(
        select(query, func.count(), func.max(Event.created_at))
        .where(Event.kind == "search", Event.results == 0, Event.created_at >= start)
        .group_by(query).order_by(func.count().desc(), query).limit(limit))
    return [{"query": q, "searches": int(n), "last_searched": aware(last).isoformat(timespec="minutes")}
            for q, n, last in rows]


def no_click_queries(s: Session, start: dt.datetime, limit: int = 50) -> list[Row]:
    """Queries with results that nobody opened: results that did not look like answers."""
    query = func.lower(Event.query)
    clicked = _clicked().scalar_subquery()
    rows = s.execute(
        select(query, func.count(), func.avg(Event.results))
        .where(Event.kind == "search", Event.results > 0, Event.created_at >= start, Event.id.not_in(clicked))
        .group_by(query).order_by(func.count().desc(), query).limit(limit))
    return [{"query": q, "searches_without_click": int(n), "avg_results": round(float(r), 1)} for q, n, r in rows]


def helpfulness_ranking(s: Session, start: dt.datetime, titles: dict[str, str]) -> list[Row]:
    """Articles by share of "Yes" votes (most votes first among equals), with "No" reasons and comments."""
    votes = s.execute(select(Vote.slug, Vote.helpful, Vote.reason, Vote.comment)
                      .where(Vote.updated_at >= start).order_by(Vote.updated_at.desc())).all()
    by_slug: dict[str, dict[str, Any]] = defaultdict(lambda: {"yes": 0, "no": 0, "reasons": defaultdict(int),
                                                              "comments": []})
    for slug, helpful, reason, comment in votes:
        entry = by_slug[slug]
        entry["yes" if helpful else "no"] += 1
        if not helpful and reason:
            entry["reasons"][reason] += 1
        if comment and len(entry["comments"]) < 5:
            entry["comments"].append(comment)
    rows = []
    for slug, e in by_slug.items():
        total = e["yes"] + e["no"]
        rows.append({"article": slug, "title": titles.get(slug, slug), "votes": total, "yes": e["yes"],
                     "no": e["no"], "helpful_percent": round(100 * e["yes"] / total),
                     "no_reasons": "; ".join(f"{REASONS.get(r, r)} ({n})" for r, n in
                                             sorted(e["reasons"].items(), key=lambda kv: -kv[1])),
                     "comments": " | ".join(e["comments"])})
    return sorted(rows, key=lambda r: (-r["helpful_percent"], -r["votes"], r["article"]))


def revisions(s: Session, current: dict[str, str], titles: dict[str, str]) -> list[Row]:
    """Helpfulness of each article's current revision against the one before: did the last edit help?"""
    rows = s.execute(select(Vote.slug, Vote.revision, func.count(), func.sum(cast(Vote.helpful, Integer)),
                            func.min(Vote.created_at))
                     .group_by(Vote.slug, Vote.revision)).all()
    history: dict[str, list[tuple[Any, str, int, int]]] = defaultdict(list)
    for slug, revision, n, yes, first in rows:
        history[slug].append((aware(first), revision, int(n), int(yes or 0)))
    out = []
    for slug, revs in history.items():
        revs.sort()
        now_rev = current.get(slug)
        latest = next((r for r in revs if r[1] == now_rev), None)
        older = [r for r in revs if r[1] != now_rev]
        if latest is None or not older:
            continue  # no votes on the current text, or it was never edited while votes came in
        before = older[-1]
        pct_now, pct_before = 100 * latest[3] / latest[2], 100 * before[3] / before[2]
        out.append({"article": slug, "title": titles.get(slug, slug),
                    "before_votes": before[2], "before_percent": round(pct_before),
                    "after_votes": latest[2], "after_percent": round(pct_now),
                    "change_points": round(pct_now - pct_before),
                    "verdict": "better" if pct_now > pct_before else "worse" if pct_now < pct_before else "same"})
    return sorted(out, key=lambda r: (r["change_points"], r["article"]))


def stale(helpful: list[Row], updated: dict[str, dt.date | None], today: dt.date, *, days: int = 180,
          below: int = 60, min_votes: int = 3) -> list[Row]:
    """Articles not updated in ``days`` days whose helpful share is under ``below`` %."""
    out = []
    for row in helpful:
        when = updated.get(row["article"])
        if row["votes"] >= min_votes and row["helpful_percent"] < below and (when is None or
                                                                            (today - when).days > days):
            out.append({"article": row["article"], "title": row["title"],
                        "updated": when.isoformat() if when else "never", "votes": row["votes"],
                        "helpful_percent": row["helpful_percent"]})
    return sorted(out, key=lambda r: (r["helpful_percent"], r["article"]))


def times_searched(s: Session, query: str) -> int:
    """How often ``query`` was searched for (in any letter case), in all the recorded history."""
    return int(s.scalar(select(func.count()).select_from(Event).where(
        Event.kind == "search", func.lower(Event.query) == query.lower())) or 0)


def tickets_by_topic(s: Session, start: dt.datetime) -> list[Row]:
    """Tickets opened in the period by topic."""
    rows = s.execute(select(Ticket.topic, func.count()).where(Ticket.created_at >= start)
                     .group_by(Ticket.topic).order_by(func.count().desc(), Ticket.topic))
    return [{"topic": topic, "tickets": int(n)} for topic, n in rows]


CHANNELS = ("site", "widget")


def by_channel(s: Session, start: dt.datetime) -> list[Row]:
    """Self-service on the help centre's pages and in the widget on the shop's pages: visits, those that still
    opened a ticket, the self-service score, deflections and tickets of each channel."""
    visits = _visits(start)
    n_visits: dict[str, int] = dict(s.execute(select(visits.c.channel, func.count(distinct(visits.c.visit)))
                              .group_by(visits.c.channel)).all())
    with_ticket = dict(s.execute(select(Ticket.channel, func.count(distinct(Ticket.visit))).where(
        Ticket.created_at >= start, Ticket.visit.is_not(None)).group_by(Ticket.channel)).all())
    tickets = dict(s.execute(select(Ticket.channel, func.count()).where(Ticket.created_at >= start)
                             .group_by(Ticket.channel)).all())
    deflections = dict(s.execute(select(Event.channel, func.count()).where(
        Event.created_at >= start, Event.kind == "deflection").group_by(Event.channel)).all())
    rows = []
    for channel in CHANNELS:
        visited, ticketed = int(n_visits.get(channel, 0)), int(with_ticket.get(channel, 0))
        rows.append({"channel": channel, "visits": visited, "visits_with_ticket": ticketed,
                     "self_service_percent": round(100 * (visited - ticketed) / visited, 1) if visited else None,
                     "deflections": int(deflections.get(channel, 0)), "tickets": int(tickets.get(channel, 0))})
    return rows


def ticket_pages(s: Session, start: dt.datetime, limit: int = 20) -> list[Row]:
    """The shop pages where widget visitors most often still opened a ticket: tickets sent from each page, its
    widget visits, and the share of those visits that ended in a ticket."""
    tickets = s.execute(select(Ticket.page, func.count(), func.count(distinct(Ticket.visit))).where(
        Ticket.created_at >= start, Ticket.channel == "widget", Ticket.page.is_not(None))
        .group_by(Ticket.page).order_by(func.count().desc(), Ticket.page).limit(limit)).all()
    pages = [page for page, _n, _v in tickets]
    visits = dict(s.execute(select(Event.page, func.count(distinct(Event.visit))).where(
        Event.created_at >= start, Event.channel == "widget", Event.page.in_(pages)).group_by(Event.page)).all())
    rows = []
    for page, n, ticket_visits in tickets:
        seen = max(int(visits.get(page, 0)), int(ticket_visits))
        rows.append({"page": page, "widget_visits": seen, "tickets": int(n),
                     "ticket_percent": round(100 * int(ticket_visits) / seen, 1) if seen else None})
    return rows


def dashboard(s: Session, articles: Mapping[str, Article], days: int,
              today: dt.date) -> tuple[Overview, dict[str, list[Row]]]:
    """Every figure and table of the dashboard for the ``days`` days (UTC) ending ``today``, by table name."""
    titles = {slug: a.title for slug, a in articles.items()}
    start = period_start(days, today)
    helpful = helpfulness_ranking(s, start, titles)
    tables = {
        "top_queries": top_queries(s, start),
        "zero_result_queries": zero_result_queries(s, start),
        "no_click_queries": no_click_queries(s, start),
        "helpfulness": helpful,
        "revisions": revisions(s, {slug: a.content_hash for slug, a in articles.items()}, titles),
        "stale": stale(helpful, {slug: a.updated for slug, a in articles.items()}, today),
        "tickets_by_topic": tickets_by_topic(s, start),
        "channels": by_channel(s, start),
        "ticket_pages": ticket_pages(s, start),
        "searches_per_day": searches_per_day(s, today, days),
    }
    return overview(s, start), tables
