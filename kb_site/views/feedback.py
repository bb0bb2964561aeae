"""The "Was this helpful?" widget: one vote a visitor an article, changeable, with a reason for "No"."""

from __future__ import annotations

from flask import Blueprint, Response, flash, jsonify, redirect, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import StringField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length, Optional

from .. import db, visitors
from ..errors import KBError, wants_json
from ..models import COMMENT_LIMIT, REASONS, Vote, utcnow
from . import current_slug, library

bp = Blueprint("feedback", __name__)


class FeedbackForm(FlaskForm):
    """A vote; "no" may carry a reason and a comment. CSRF is checked for every POST by CSRFProtect."""

    class Meta:
        csrf = False

    helpful = StringField(validators=[InputRequired("Say whether the article helped."),
                                      AnyOf(["yes", "no"], "Answer yes or no.")])
    reason = StringField(validators=[Optional(), AnyOf(list(REASONS), "Choose one of the reasons offered.")])
    comment = TextAreaField(validators=[Optional(), Length(max=COMMENT_LIMIT, message=(
        f"Please keep your comment to {COMMENT_LIMIT:,} characters or fewer."))])


def save_vote(visitor: str, slug: str, helpful: bool, reason: str | None, comment: str | None,
              revision: str) -> Vote:
    """Insert or change the visitor's vote on an article; a repeated "No" keeps the reason given before."""
    for attempt in range(2):
        try:
            with db.database().session() as s:
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
        except IntegrityError:  # two first votes raced: the other one won, so change it
            if attempt:
                raise
    raise AssertionError("unreachable")


@bp.post("/articles/<slug>/feedback")
def vote(slug: str) -> Response:
    """Store the visitor's vote; answer JSON to scripts, or go back to the article."""
    lib = library()
    current = current_slug(slug, " to give feedback on")
    form = FeedbackForm(request.form)
    if not form.validate():
        problems = [message for errors in form.errors.values() for message in errors]
        raise KBError(" ".join(str(p) for p in problems))
    helpful = form.helpful.data == "yes"
    reason = form.reason.data or None
    comment = (form.comment.data or "").strip() or None
    article = lib.articles[current]
    saved = save_vote(visitors.visitor(), current, helpful, reason, comment, article.content_hash)
    visitors.remember_vote(current, saved.helpful, saved.reason, saved.comment)
    visitors.record("vote", slug=current, detail="yes" if helpful else f"no:{reason}" if reason else "no")
    message = "Thanks for letting us know." if helpful or reason or comment else \
        "Sorry it didn't help. What was wrong?"
    if wants_json() or request.headers.get("X-Requested-With") == "fetch":
        return jsonify({"saved": True, "message": message, "vote": {
            "id": saved.id, "slug": current, "helpful": saved.helpful, "reason": saved.reason, "comment": saved.comment,
            "revision": saved.revision}})
    flash(message, "feedback")
    return redirect(url_for("help.article", slug=current) + "#feedback", 303)  # type: ignore[return-value]
