"""Privacy: client addresses only as keyed hashes, and old events removed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from .db import delete_rows
from .models import Event


def client_hash(secret: str, address: str | None) -> str | None:
    """Return a keyed hash of a client address: stable enough to spot abuse, useless to identify anyone."""
    if not address:
        return None
    return hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()[:32]


def purge(sessions: sessionmaker[Session], days: int, now: dt.datetime | None = None) -> int:
    """Delete events older than ``days`` days; return how many were removed."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    with sessions() as s, s.begin():
        return delete_rows(s, delete(Event).where(Event.created_at < cutoff))
