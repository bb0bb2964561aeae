"""Staff accounts: hashed passwords, roles, sessions that expire, and the role check on every route."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import unicodedata
from collections.abc import Callable
from typing import Any

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .. import db
from ..db import delete_rows
from ..models import ROLES, StaffSession, StaffUser, aware, utcnow

# What each role may open. Admins may open everything.
ACCESS = {
    "dashboard": ("editor", "admin"),
    "tickets": ("support", "admin"),
    "links": ("editor", "support", "admin"),
    "account": ("editor", "support", "admin"),  # your own password
}
MIN_PASSWORD = 12
SEEN_EVERY = 30  # seconds between two writes of a session's seen_at
STAFF_BROWSER = "staff_browser"  # kept in the session after signing out


@functools.cache
def _dummy_hash() -> str:
    """A hash to check when the email is unknown (same time as a real check); made on first use, not at import."""
    return generate_password_hash("timing-equaliser")


class StaffError(ValueError):
    """A staff account that cannot be created or changed as asked."""


def hash_password(password: str) -> str:
    """Return a slow, salted hash (scrypt) of a password."""
    return generate_password_hash(password, method="scrypt")


def add_staff(s: Session, email: str, role: str, password: str) -> StaffUser:
    """Create a staff account; the email is its name."""
    email = email.strip().lower()
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}")
    if "@" not in email or len(email) > 254:
        raise StaffError(f"'{email}' is not an email address")
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password must have at least {MIN_PASSWORD} characters")
    if find_staff(s, email) is not None:
        raise StaffError(f"{email} already has an account")
    user = StaffUser(email=email, role=role, password_hash=hash_password(password))
    s.add(user)
    return user


def find_staff(s: Session, email: str) -> StaffUser | None:
    """Return the account with this email (in any case), or None."""
    return s.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))


def staff_accounts(s: Session) -> list[StaffUser]:
    """Return every staff account, by email."""
    return list(s.scalars(select(StaffUser).order_by(StaffUser.email)))


def remove_staff(s: Session, email: str) -> bool:
    """Delete the account with this email (its sessions go with it); return whether there was one."""
    return delete_rows(s, delete(StaffUser).where(StaffUser.email == email.strip().lower())) > 0


def generate_password() -> str:
    """Return a random password to print once."""
    return secrets.token_urlsafe(15)


def authenticate(s: Session, email: str, password: str) -> StaffUser | None:
    """Return the active account with this email and password, taking as long when there is none."""
    email = email.strip().lower()
    # No address holds a control character (and PostgreSQL refuses a NUL in a query): no such account.
    plain = len(email) <= 254 and not any(unicodedata.category(c)[0] == "C" for c in email)
    user = find_staff(s, email) if plain else None
    if user is None or not user.active:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def change_password(s: Session, user: StaffUser, password: str) -> int:
    """Give an account a new password and end every one of its sessions; return how many ended."""
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password must have at least {MIN_PASSWORD} characters")
    user.password_hash = hash_password(password)
    return end_sessions(s, user.id)


def end_sessions(s: Session, staff_id: int) -> int:
    """Delete every session of an account (each copy of each cookie stops working); return how many."""
    return delete_rows(s, delete(StaffSession).where(StaffSession.staff_id == staff_id))


def _digest(token: str) -> str:
    """The session's row id: the SHA-256 of the cookie's token, so a stolen database holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _stamp(user: StaffUser) -> str:
    """A fingerprint of the password hash: a hash changed by any route (even SQL by hand) ends the session too."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _limits() -> tuple[dt.timedelta, dt.timedelta]:
    config = current_app.config
    return (dt.timedelta(minutes=config["STAFF_IDLE_MINUTES"]),
            dt.timedelta(hours=config["STAFF_SESSION_HOURS"]))


def sign_in(s: Session, user: StaffUser) -> None:
    """Start a staff session: a new random token in the cookie, its hash in staff_sessions (no fixation)."""
    visitor = session.get("visitor")
    session.clear()
    if visitor:
        session["visitor"] = visitor
    # A staff member's browser never teaches search, signed in or out: its events are flagged (kb_site.visitors).
    session[STAFF_BROWSER] = True
    idle, longest = _limits()
    now = utcnow()
    # Sessions nobody came back to are removed here, so the table holds only live ones (and a few idle).
    s.execute(delete(StaffSession).where(or_(StaffSession.seen_at < now - idle,
                                             StaffSession.created_at < now - longest)))
    token = secrets.token_urlsafe(32)
    s.add(StaffSession(id=_digest(token), staff_id=user.id, created_at=now, seen_at=now))
    session["staff"] = {"token": token, "stamp": _stamp(user)}
    user.last_login_at = now


def sign_out() -> None:
    """End this session for every copy of its cookie (the row goes), and forget it in this browser."""
    data = session.pop("staff", None)
    token = data.get("token") if isinstance(data, dict) else None
    if isinstance(token, str):
        s = db.session()
        s.execute(delete(StaffSession).where(StaffSession.id == _digest(token)))
        s.commit()


def current_staff() -> StaffUser | None:
    """Return the signed-in staff member, checking the session's row: ended, idle, too old, or outdated."""
    if "staff_user" in g:
        return g.staff_user  # type: ignore[no-any-return]
    g.staff_user = None
    data = session.get("staff")
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str):  # no session, or one from before server-side sessions: signed out
        session.pop("staff", None)
        return None
    s = db.session()
    found = s.execute(select(StaffSession, StaffUser).join(StaffUser, StaffUser.id == StaffSession.staff_id)
                      .where(StaffSession.id == _digest(token))).first()
    if found is None:  # signed out elsewhere, password changed, account removed
        session.pop("staff", None)
        return None
    row, user = found
    assert isinstance(data, dict)
    now, (idle, longest) = utcnow(), _limits()
    if now - aware(row.seen_at) > idle or now - aware(row.created_at) > longest:
        sign_out()
        g.session_expired = True
        return None
    if not user.active or data.get("stamp") != _stamp(user):
        if user.active:
            s.delete(row)
        else:  # a disabled account keeps no session anywhere
            end_sessions(s, user.id)
        s.commit()
        session.pop("staff", None)
        return None
    # The idle clock needs to be right to about half a minute: write seen_at at most that often, not on
    # every request (one UPDATE, committed at once so the view's own writes start a new transaction).
    if (now - aware(row.seen_at)).total_seconds() > SEEN_EVERY:
        s.execute(update(StaffSession).where(StaffSession.id == row.id).values(seen_at=now))
        s.commit()
    g.staff_user = user
    return user


def init_app(app: Flask) -> None:
    """Register ``kb staff`` and ``kb link`` (the agent link finder) on the application's command line."""
    from .cli import link_command, staff_group  # the commands use this package's functions: imported once it is whole

    app.cli.add_command(staff_group)
    app.cli.add_command(link_command)


def staff_required(area: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let in staff whose role may open ``area``: others get the login page (anonymous) or 403."""
    roles = ACCESS[area]

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_staff()
            if user is None:
                expired = 1 if g.get("session_expired") else None  # None: left out of the URL
                return redirect(url_for("staff.login", next=request.full_path.rstrip("?"), expired=expired))
            if user.role not in roles:
                abort(403, f"Your role ({user.role}) cannot open this page.")
            return view(*args, **kwargs)

        wrapped.staff_area = area  # type: ignore[attr-defined]
        return wrapped

    return decorate
