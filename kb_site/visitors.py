"""Who is visiting: a random visitor id and visit id in the signed session, and their recorded events.

Every event carries a keyed hash of the client address and, from a browser that signed in to /staff/ (even
after signing out), the flag "staff"; a client that goes over a rate limit gets a "limited" event. Search
learns from neither (``kb_site.learning``).
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, request, session, url_for
from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError

from search import SearchResults

from . import db
from .models import Event, utcnow
from .privacy import client_hash

log = logging.getLogger(__name__)
# The first results page of the visit's last search, so that opening one of its results counts as a click.
LAST_SEARCH = "last_search"
LIMITED_EVERY = 60.0  # seconds: one "limited" event a client a minute, however fast it is refused


def visitor() -> str:
    """Return this browser's random visitor id (set on first use, kept for a year)."""
    if "visitor" not in session:
        session.permanent = True
        session["visitor"] = secrets.token_urlsafe(16)
    return str(session["visitor"])


def visit() -> str:
    """Return the current visit's id; a new visit starts after KB_VISIT_MINUTES of inactivity."""
    now = int(time.time())
    idle = now - int(session.get("seen", 0))
    if "visit" not in session or idle > 60 * current_app.config["VISIT_MINUTES"]:
        session["visit"] = secrets.token_urlsafe(12)
        session.pop(LAST_SEARCH, None)
    if idle > 30:  # refresh the timestamp, not the cookie on every request
        session["seen"] = now
    return str(session["visit"])


class EventBuffer:
    """Events waiting to be written together: one transaction every KB_EVENT_FLUSH_SECONDS, not one a page.

    A background thread (started in each process on first use, so after gunicorn forks) writes them;
    while the database is away they wait, up to MAX_WAITING, and are written when it is back.
    """

    MAX_WAITING = 20000

    def __init__(self, database: db.Database, interval: float):
        self.database = database
        self.interval = interval
        self.waiting: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.pid = 0
        atexit.register(self.flush)

    def add(self, row: dict[str, Any]) -> None:
        with self.lock:
            if self.pid != os.getpid():  # first use in this process: start its writer
                self.pid = os.getpid()
                threading.Thread(target=self._run, name="kb-events", daemon=True).start()
            self.waiting.append(row)
            if len(self.waiting) > self.MAX_WAITING:
                del self.waiting[: len(self.waiting) - self.MAX_WAITING]
                log.warning("the database has been away too long: dropping the oldest page-view events")

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()

    def flush(self) -> None:
        """Write every waiting event now (kept for the next try if the database is unreachable)."""
        with self.lock:
            rows, self.waiting = self.waiting, []
        if not rows:
            return
        try:
            with self.database.session() as s:
                s.execute(insert(Event), rows)
        except SQLAlchemyError as exc:
            log.warning("could not write %d events yet: %s", len(rows), exc.__class__.__name__)
            with self.lock:
                self.waiting[:0] = rows


def buffer() -> EventBuffer | None:
    """Return the application's event buffer (None when events are written at once)."""
    interval = current_app.config["EVENT_FLUSH_SECONDS"]
    if interval <= 0:
        return None
    found = current_app.extensions.get("kb_events")
    if found is None:
        found = current_app.extensions["kb_events"] = EventBuffer(db.database(), interval)
    return found  # type: ignore[no-any-return]


WIDGET_API = "/widget/api/"  # the widget's requests: its visitors' events are of the channel "widget"


def in_widget() -> bool:
    """Return whether this request comes from the widget on a shop's page (not the help centre's own pages)."""
    return request.path.startswith(WIDGET_API)


def host_page() -> str | None:
    """Return the shop page the widget runs on (its X-KB-Page header): origin and path only, since a query or
    fragment may carry personal data (an email on a checkout page); None when absent or not a web address."""
    parts = urlsplit(request.headers.get("X-KB-Page", "")[:2000])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"[:500]


def marks() -> dict[str, str | None]:
    """Return what every event of this request carries: the client's keyed hash, "staff" from a staff browser,
    and its channel with the widget's host page."""
    # "staff_browser": signed in to /staff/ once (kb_site.staff.sign_in), still flagged after signing out.
    widget = in_widget()
    return {"client": client_hash(current_app.config["SECRET_KEY"], request.remote_addr),
            "flag": "staff" if session.get("staff") or session.get("staff_browser") else None,
            "channel": "widget" if widget else "site", "page": host_page() if widget else None}


def record_later(kind: str, **fields: Any) -> None:
    """Record a page-view kind of event (view, click, deflection) in the next batch."""
    waiting = buffer()
    if waiting is None:
        record(kind, **fields)
        return
    waiting.add({"visit": visit(), "visitor": visitor(), "kind": kind, "created_at": utcnow(), "slug": None,
                 "query": None, "results": None, "position": None, "search_id": None, "detail": None,
                 **marks(), **fields})


def record(kind: str, **fields: Any) -> Event | None:
    """Store one event of the current visit and return it (committed).

    Events are analytics: if the database is unreachable the page is still served, the event is
    logged as lost, and None is returned.
    """
    event = Event(visit=visit(), visitor=visitor(), kind=kind, **{**marks(), **fields})
    try:
        with db.database().session() as s:
            s.add(event)
    except SQLAlchemyError as exc:
        log.warning("could not record a %s event: %s", kind, exc.__class__.__name__)
        return None
    return event


def record_limited() -> None:
    """Note that this client went over a rate limit (Flask-Limiter's ``on_breach``): it never teaches search.

    A refused client may send thousands of requests a minute, and may drop its cookie each time: one event
    a client address a minute is enough to know, and costs no database write per refusal.
    """
    key = client_hash(current_app.config["SECRET_KEY"], request.remote_addr) or visitor()
    noted: dict[str, float] = current_app.extensions.setdefault("kb_limited", {})
    now = time.monotonic()
    if now - noted.get(key, -LIMITED_EVERY) < LIMITED_EVERY:
        return
    if len(noted) > 10000:  # a flood of addresses: forget them rather than grow
        noted.clear()
    noted[key] = now
    record_later("limited", flag="limited")


def record_search(found: SearchResults, category: str | None) -> None:
    """Record a search (its first page) and remember its results: opening one of them is a click. With no
    confident result, the search is a gap (``results`` 0), and opening one of "These might help" is a click."""
    event = record("search", query=found.query[:500], results=found.total, detail=category)
    session[LAST_SEARCH] = {"id": event.id if event else None, "q": found.query[:200],
                            "slugs": [h.slug for h in found.hits or found.nearest], "offset": 0}


def record_view(slug: str, referrer: str | None, from_results: bool = False) -> None:
    """Record a view of an article, and a click when it was opened from the results of the last search (its
    referrer is our results page, or ``from_results``: the widget says so)."""
    visit()  # a new visit forgets the last search
    last = session.get(LAST_SEARCH)
    came_from = urlsplit(referrer or "")
    from_results = from_results or (came_from.path == url_for("search.results") and came_from.netloc == request.host)
    if last and slug in last.get("slugs", []) and from_results:
        record_later("click", slug=slug, query=last.get("q"), search_id=last.get("id"),
                     position=last["slugs"].index(slug) + 1 + int(last.get("offset", 0)))
    record_later("view", slug=slug, detail=came_from.path[:200] or None)


@dataclass(frozen=True)
class ShownVote:
    """The visitor's own answer on an article, as the feedback widget shows it."""

    helpful: bool
    reason: str | None = None
    comment: str | None = None


def remember_vote(slug: str, helpful: bool, reason: str | None, comment: str | None) -> None:
    """Keep the visitor's answer in their session, so pages show it without asking the database."""
    votes = dict(session.get("votes", {}))
    votes.pop(slug, None)
    votes[slug] = [helpful, bool(reason), bool(comment)]
    while len(votes) > 200:
        votes.pop(next(iter(votes)))
    session["votes"] = votes


def my_vote(slug: str) -> ShownVote | None:
    """Return the visitor's answer on an article, if they gave one."""
    found = session.get("votes", {}).get(slug)
    if found is None:
        return None
    helpful, has_reason, has_comment = found
    return ShownVote(bool(helpful), "given" if has_reason else None, "given" if has_comment else None)


def trail(visit_id: str, limit: int = 200) -> list[Event]:
    """Return a visit's events, oldest first: what the visitor searched, read and voted (not its rate limits)."""
    waiting = buffer()
    if waiting is not None:
        waiting.flush()
    with db.database().sessions() as s:
        rows = s.scalars(select(Event).where(Event.visit == visit_id, Event.kind != "limited")
                         .order_by(Event.created_at, Event.id).limit(limit))
        return list(rows)
