"""Votes on articles: one a visitor an article, changeable; a "No" may carry a reason and a comment."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import db
from .models import AnswerVote, Vote, utcnow

T = TypeVar("T")


def _upsert(change: Callable[[Session], T]) -> T:
    """Run ``change`` in a transaction of its own; when two first votes raced and the other one was stored
    first, run it again: it then finds that vote and changes it."""
    try:
        with db.database().session() as s:
            return change(s)
    except IntegrityError:
        with db.database().session() as s:
            return change(s)


def save(visitor: str, slug: str, helpful: bool, reason: str | None, comment: str | None, revision: str) -> Vote:
    """Insert or change the visitor's vote on an article; a repeated "No" keeps the reason given before."""

    def change(s: Session) -> Vote:
        vote = s.scalar(select(Vote).where(Vote.visitor == visitor, Vote.slug == slug).with_for_update())
        if vote is None:
            vote = Vote(visitor=visitor, slug=slug, helpful=helpful)
            s.add(vote)
        elif vote.helpful != helpful or helpful:
            vote.reason = vote.comment = None
        vote.helpful = helpful
        if not helpful and reason:
            vote.reason = reason
        if not helpful and comment:
            vote.comment = comment
        vote.revision = revision
        vote.updated_at = utcnow()
        return vote

    return _upsert(change)


def save_answer(visitor: str, slug: str, anchor: str, revision: str, query: str, helpful: bool) -> AnswerVote:
    """Insert or change the visitor's vote on one revision of a section shown as an answer."""

    def change(s: Session) -> AnswerVote:
        vote = s.scalar(select(AnswerVote).where(
            AnswerVote.visitor == visitor, AnswerVote.slug == slug, AnswerVote.anchor == anchor,
            AnswerVote.revision == revision).with_for_update())
        if vote is None:
            vote = AnswerVote(visitor=visitor, slug=slug, anchor=anchor, revision=revision, query=query,
                              helpful=helpful)
            s.add(vote)
        vote.helpful, vote.query, vote.updated_at = helpful, query, utcnow()
        return vote

    return _upsert(change)
