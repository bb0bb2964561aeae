"""Who is visiting: a random visitor id and visit id in the signed session, and their recorded events."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from flask import current_app, session
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from . import db
from .models import Event

log = logging.getLogger(__name__)


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
    if "visit" not in session or idle > 60 * int(current_app.config["VISIT_MINUTES"]):
        session["visit"] = secrets.token_urlsafe(12)
        session.pop("last_search", None)
    if idle > 30:  # refresh the timestamp, not the cookie on every request
        session["seen"] = now
    return str(session["visit"])


def record(kind: str, **fields: Any) -> Event | None:
    """Store one event of the current visit and return it (committed).

    Events are analytics: if the database is unreachable the page is still served, the event is
    logged as lost, and None is returned.
    """
    event = Event(visit=visit(), visitor=visitor(), kind=kind, **fields)
    try:
        with db.database().session() as s:
            s.add(event)
    except SQLAlchemyError as exc:
        log.warning("could not record a %s event: %s", kind, exc.__class__.__name__)
        return None
    return event


def trail(visit_id: str, limit: int = 200) -> list[Event]:
    """Return a visit's events, oldest first: what the visitor searched, read and voted."""
    with db.database().sessions() as s:
        rows = s.scalars(select(Event).where(Event.visit == visit_id).order_by(Event.id).limit(limit))
        return list(rows)
