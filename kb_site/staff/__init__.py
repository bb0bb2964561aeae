"""Staff accounts: hashed passwords, roles, sessions that expire, and the role check on every route."""

from __future__ import annotations

import functools
import hashlib
import posixpath
import re
import secrets
import time
import unicodedata
import urllib.parse
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, g, redirect, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.urls import iri_to_uri

from .. import db
from ..errors import KBError
from ..models import ROLES, StaffUser, utcnow

# What each role may open. Admins may open everything.
ACCESS = {
    "dashboard": ("editor", "admin"),
    "tickets": ("support", "admin"),
    "links": ("editor", "support", "admin"),
}
MIN_PASSWORD = 12
MAX_INT_ARG = 10_000  # no staff page has more pages, days or rows than this
# A plain local staff path: /staff, /staff/... or /staff?..., only URL characters, no backslash.
_STAFF_PATH = re.compile(r"/staff(?:[/?][A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?")
_DUMMY_HASH = generate_password_hash("timing-equaliser")  # checked when the email is unknown


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
    if s.scalar(select(StaffUser).where(StaffUser.email == email)) is not None:
        raise StaffError(f"{email} already has an account")
    user = StaffUser(email=email, role=role, password_hash=hash_password(password))
    s.add(user)
    return user


def generate_password() -> str:
    """Return a random password to print once."""
    return secrets.token_urlsafe(15)


def authenticate(s: Session, email: str, password: str) -> StaffUser | None:
    """Return the active account with this email and password, taking as long when there is none."""
    user = s.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if user is None or not user.active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def _stamp(user: StaffUser) -> str:
    """A fingerprint of the password hash: changing the password ends every session."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def sign_in(user: StaffUser) -> None:
    """Start a staff session (a fresh session: no fixation)."""
    visitor = session.get("visitor")
    session.clear()
    if visitor:
        session["visitor"] = visitor
    now = int(time.time())
    session["staff"] = {"id": user.id, "stamp": _stamp(user), "since": now, "seen": now}
    user.last_login_at = utcnow()


def sign_out() -> None:
    session.pop("staff", None)


def current_staff() -> StaffUser | None:
    """Return the signed-in staff member, ending sessions that are idle, too old or outdated."""
    if "staff_user" in g:
        return g.staff_user  # type: ignore[no-any-return]
    g.staff_user = None
    data = session.get("staff")
    if not data:
        return None
    now = int(time.time())
    config = current_app.config
    if now - data["seen"] > 60 * int(config["STAFF_IDLE_MINUTES"]) or \
            now - data["since"] > 3600 * int(config["STAFF_SESSION_HOURS"]):
        sign_out()
        g.session_expired = True
        return None
    user = db.session().get(StaffUser, data["id"])
    if user is None or not user.active or _stamp(user) != data["stamp"]:
        sign_out()
        return None
    if now - data["seen"] > 30:
        session["staff"] = {**data, "seen": now}
    g.staff_user = user
    return user


def int_arg(name: str, default: int, low: int = 1, high: int = MAX_INT_ARG,
            choices: tuple[int, ...] | None = None) -> int:
    """Return an integer query argument, or answer 400 saying what is allowed (never a number too big for SQL)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    # int() accepts "+5", " 5" and "\uff15" (a full-width 5); a page number is plain ASCII digits.
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None
    if choices is not None:
        if value not in choices:
            raise KBError(f"{name} must be one of {', '.join(map(str, choices))}.")
        return value  # type: ignore[return-value]
    if value is None or not low <= value <= high:
        raise KBError(f"{name} must be a whole number between {low} and {high:,}.")
    return value


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a plain local /staff path to go to after signing in, else None.

    Refused: other hosts (//x, /\\x, schemes), control characters and Unicode line breaks (a Location
    header must never break), whitespace, and dot segments that would climb out of /staff.
    """
    if not target or len(target) > 2000:
        return None
    if any(unicodedata.category(c)[0] in "CZ" for c in target):  # controls, format, line/paragraph separators
        return None
    target = iri_to_uri(target)  # non-ASCII letters (a query in Polish) become %-escapes
    if not _STAFF_PATH.fullmatch(target):
        return None
    path = target.split("?", 1)[0]
    decoded = urllib.parse.unquote(path)
    if "//" in decoded or "\\" in decoded or posixpath.normpath(decoded) != decoded.rstrip("/") or \
            any(unicodedata.category(c)[0] in "CZ" for c in decoded):
        return None
    return target


def staff_required(area: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let in staff whose role may open ``area``: others get the login page (anonymous) or 403."""
    roles = ACCESS[area]

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_staff()
            if user is None:
                expired = {"expired": 1} if g.get("session_expired") else {}
                return redirect(url_for("staff.login", next=request.full_path.rstrip("?"), **expired))
            if user.role not in roles:
                abort(403, f"Your role ({user.role}) cannot open this page.")
            return view(*args, **kwargs)

        wrapped.staff_area = area  # type: ignore[attr-defined]
        return wrapped

    return decorate
