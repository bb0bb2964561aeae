"""Database tables: votes, the event log of visits, tickets with their delivery outbox, staff accounts and sessions,
and the questions search learned from its visitors."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

REASONS = {
    "not-answered": "It didn't answer my question",
    "unclear": "It was hard to understand",
    "outdated": "It's out of date or wrong",
    "missing-steps": "Steps or details are missing",
    "other": "Something else",
}
COMMENT_LIMIT = 1000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: DateTime(timezone=True)}


class Vote(Base):
    """A visitor's answer to "Was this helpful?" on one article: one a visitor, changeable."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("visitor", "slug", name="uq_votes_visitor_slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visitor: Mapped[str] = mapped_column(String(64))
    slug: Mapped[str] = mapped_column(String(200), index=True)
    helpful: Mapped[bool]
    reason: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[str] = mapped_column(String(64))  # the article's content hash when voted
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class AnswerVote(Base):
    """A visitor's answer to "Was this answer helpful?" on one section's answer: one a visitor a section's
    revision, changeable. The revision says which text was judged, so an edited section starts afresh."""

    __tablename__ = "answer_votes"
    __table_args__ = (UniqueConstraint("visitor", "slug", "anchor", "revision", name="uq_answer_votes_visitor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visitor: Mapped[str] = mapped_column(String(64))
    slug: Mapped[str] = mapped_column(String(200), index=True)
    anchor: Mapped[str] = mapped_column(String(200))
    revision: Mapped[str] = mapped_column(String(16))  # search.answers.revision of the section shown
    query: Mapped[str] = mapped_column(String(500))  # the search the answer was shown for
    helpful: Mapped[bool]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class Event(Base):
    """Something a visitor did: a search, a click on a result, an article view, a vote."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_kind_created", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit: Mapped[str] = mapped_column(String(32), index=True)
    visitor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # search | click | view | vote | answer_vote | ...
    slug: Mapped[str | None] = mapped_column(String(200))
    query: Mapped[str | None] = mapped_column(Text)
    results: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int | None] = mapped_column(Integer)  # click: 1-based rank of the clicked result
    search_id: Mapped[int | None] = mapped_column(Integer, index=True)  # click: the search it came from
    detail: Mapped[str | None] = mapped_column(String(200))  # vote: yes | no | no:<reason>; view: referrer
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    client: Mapped[str | None] = mapped_column(String(32))  # keyed hash of the client address, never the address
    # Why this browser and address must never teach search (kb_site.learning): "staff" (signed in to /staff/)
    # or "limited" (a "limited" event: the client went over a rate limit). NULL for nearly every event.
    flag: Mapped[str | None] = mapped_column(String(16), index=True)
    # Where it happened: "site" (the help centre's own pages) or "widget" (the widget on a shop's page), and
    # for the widget the host page's address (origin and path: never its query, which may hold personal data).
    channel: Mapped[str] = mapped_column(String(8), default="site", server_default="site")
    page: Mapped[str | None] = mapped_column(String(500))


class Ticket(Base):
    """A customer's request for help, with what they tried first (their trail)."""

    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("form_nonce", name="uq_tickets_form_nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(150))
    message: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    order_number: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(500))  # the page, article or query they came from
    visit: Mapped[str | None] = mapped_column(String(32), index=True)
    client: Mapped[str | None] = mapped_column(String(32))  # keyed hash of the client address, never the address
    trail: Mapped[str] = mapped_column(Text, default="[]")  # JSON: the visit's searches, views and votes
    channel: Mapped[str] = mapped_column(String(8), default="site", server_default="site")  # site | widget
    page: Mapped[str | None] = mapped_column(String(500))  # widget: the shop page it was sent from
    # The rendered contact form's single-use nonce: the same form sent twice finds this ticket, not a new one.
    form_nonce: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | pending | solved
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Outbox(Base):
    """A ticket waiting to be delivered to the helpdesk, written in the ticket's own transaction."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    backend: Mapped[str] = mapped_column(String(16))  # local | smtp | webhook
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[dt.datetime | None]  # a worker's claim; an expired one (a dead worker) is taken over
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeliveryAttempt(Base):
    """One try at delivering a ticket, for the operators' record."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # delivered | retry | dead
    detail: Mapped[str | None] = mapped_column(Text)


def aware(moment: dt.datetime) -> dt.datetime:
    """Return a stored time as UTC-aware (SQLite hands back naive times; all are stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


ROLES = ("editor", "support", "admin")


class StaffUser(Base):
    """Someone who signs in to /staff/: an editor, a support agent or an admin."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # werkzeug scrypt: slow on purpose
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]


class TicketChange(Base):
    """A change to a ticket by staff (its status), for the ticket's history."""

    __tablename__ = "ticket_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    staff: Mapped[str] = mapped_column(String(254))
    change: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StaffSession(Base):
    """A signed-in staff session, checked on every staff request: deleting the row revokes every copy."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token in the cookie
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LearnedQuestion(Base):
    """A query that found an article, counted once a distinct visitor; learned once enough agree.

    The row stays when staff remove the question (``removed_at``), so that it is never learned again.
    """

    __tablename__ = "learned_questions"
    __table_args__ = (UniqueConstraint("slug", "query", name="uq_learned_questions_slug_query"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), index=True)
    query: Mapped[str] = mapped_column(String(200))  # normalised (search.learned.normalise)
    visitors: Mapped[int] = mapped_column(Integer, default=0)  # distinct visitors (and addresses) who agreed
    first_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[dt.datetime | None]
    removed_by: Mapped[str | None] = mapped_column(String(254))


class LearnedWitness(Base):
    """One visitor whose search found the article: counted once, however often they come back."""

    __tablename__ = "learned_witnesses"
    __table_args__ = (UniqueConstraint("question_id", "visitor", name="uq_learned_witnesses_question_visitor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("learned_questions.id", ondelete="CASCADE"))
    visitor: Mapped[str] = mapped_column(String(32))  # keyed hash of the visitor id
    client: Mapped[str | None] = mapped_column(String(32))  # keyed hash of the client address
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class JobMark(Base):
    """How far a periodic job has read the event log (the learning pass, ``kb_site.learning.learn``)."""

    __tablename__ = "job_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer)  # the next pass reads the events after this one
    read_id: Mapped[int] = mapped_column(Integer)  # the last event the last pass read
    until: Mapped[dt.datetime]  # the visits quiet since then were over at the last pass, and read
