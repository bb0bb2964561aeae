"""Database tables: feedback votes and the event log of visits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
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


class Event(Base):
    """Something a visitor did: a search, a click on a result, an article view, a vote."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_kind_created", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit: Mapped[str] = mapped_column(String(32), index=True)
    visitor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # search | click | view | vote
    slug: Mapped[str | None] = mapped_column(String(200))
    query: Mapped[str | None] = mapped_column(Text)
    results: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int | None] = mapped_column(Integer)  # click: 1-based rank of the clicked result
    search_id: Mapped[int | None] = mapped_column(Integer, index=True)  # click: the search it came from
    detail: Mapped[str | None] = mapped_column(String(200))  # vote: yes | no | no:<reason>; view: referrer
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
