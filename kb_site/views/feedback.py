"""The "Was this helpful?" widget: one vote a visitor an article, changeable, with a reason for "No"."""

from __future__ import annotations

from typing import TypeVar

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from wtforms import StringField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length, Optional, Regexp

from search.analysis import clean_query

from .. import visitors, votes
from ..errors import KBError, from_script
from ..models import COMMENT_LIMIT, REASONS
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


F = TypeVar("F", bound=FlaskForm)


def _valid(form: F) -> F:
    """Return the form when it validates; else refuse the request with every problem, in one message."""
    if not form.validate():
        raise KBError(" ".join(str(m) for errors in form.errors.values() for m in errors))
    return form


def saved_vote(current: str, form: FeedbackForm) -> dict[str, object]:
    """Store the visitor's valid vote on an article (its current slug); return the answer scripts get."""
    helpful = form.helpful.data == "yes"
    reason = form.reason.data or None
    comment = (form.comment.data or "").strip() or None
    article = library().articles[current]
    saved = votes.save(visitors.visitor(), current, helpful, reason, comment, article.content_hash)
    visitors.remember_vote(current, saved.helpful, saved.reason, saved.comment)
    visitors.record("vote", slug=current, detail="yes" if helpful else f"no:{reason}" if reason else "no")
    message = "Thanks for letting us know." if helpful or reason or comment else \
        "Sorry it didn't help. What was wrong?"
    return {"saved": True, "message": message, "vote": {
        "id": saved.id, "slug": current, "helpful": saved.helpful, "reason": saved.reason, "comment": saved.comment,
        "revision": saved.revision}}


@bp.post("/articles/<slug>/feedback")
def vote(slug: str) -> Response:
    """Store the visitor's vote; answer JSON to scripts, or go back to the article."""
    current = current_slug(slug, " to give feedback on")
    saved = saved_vote(current, _valid(FeedbackForm(request.form)))
    if from_script():
        return jsonify(saved)
    flash(str(saved["message"]), "feedback")
    return redirect(url_for("feedback.page", slug=current), 303)  # type: ignore[return-value]


@bp.get("/articles/<slug>/feedback")
def page(slug: str) -> str:
    """The feedback form with its token, for browsers without JavaScript (the article page is the same for
    everyone, so it carries no token): ``?helpful=yes`` asks to confirm, ``?helpful=no`` asks why."""
    current = current_slug(slug, " to give feedback on")
    asked = request.args.get("helpful")
    return render_template("feedback.html", article=library().articles[current], vote=visitors.my_vote(current),
                           asked=asked if asked in ("yes", "no") else None, reasons=REASONS)


GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
       b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")  # 1x1, transparent


def _seen(referrer: str | None) -> dict[str, object] | None:
    """Record the view of ``?article=`` and return the visitor's vote on it (None: no vote, or no article)."""
    slug = request.args.get("article", "")
    found = library().resolve(slug) if slug else None
    if found is None:
        return None
    visitors.record_view(found, referrer)
    shown = visitors.my_vote(found)
    return {"article": found, "vote": {"helpful": shown.helpful, "reason": bool(shown.reason),
                                       "comment": bool(shown.comment)} if shown else None}


@bp.get("/visitor.json")
def visitor_json() -> Response:
    """What a public page shows of the visitor: their CSRF token and their vote on ``article``.

    Asked by the site's script from every article page, it also records the view, with the page's own
    referrer (``referrer``), so a view opened from the search results counts as a click on them.
    """
    seen = _seen(request.args.get("referrer")) or {"article": None, "vote": None}
    return jsonify({"csrf_token": generate_csrf(), **seen})


@bp.get("/visitor.gif")
def visitor_gif() -> Response:
    """The view of an article read without JavaScript (a ``<noscript>`` image)."""
    _seen(None)
    return Response(GIF, mimetype="image/gif")


class AnswerFeedbackForm(FlaskForm):
    """A vote on the answer shown above the results: which section's text, for which search."""

    class Meta:
        csrf = False  # CSRFProtect checks every POST

    helpful = StringField(validators=[InputRequired("Say whether the answer helped."),
                                      AnyOf(["yes", "no"], "Answer yes or no.")])
    slug = StringField(validators=[InputRequired("Say which article the answer came from.")])
    anchor = StringField(validators=[Length(max=200)])
    revision = StringField(validators=[InputRequired("Say which version of the answer you saw."),
                                       Regexp(r"^[0-9a-f]{16}$", message="That is not an answer's revision.")])
    q = StringField(validators=[InputRequired("Say what you searched for."), Length(max=500)])


@bp.post("/answers/feedback")
def answer() -> Response:
    """Store "Was this answer helpful?" with the section's revision; JSON to scripts, else back to the search."""
    form = _valid(AnswerFeedbackForm(request.form))
    article = library().articles.get(form.slug.data or "")
    anchor = form.anchor.data or ""
    if article is None or all(s.anchor != anchor for s in article.sections):
        raise KBError("That answer's article or section is not published.")
    helpful = form.helpful.data == "yes"
    query = clean_query(form.q.data or "")[:500]
    votes.save_answer(visitors.visitor(), article.slug, anchor, str(form.revision.data), query, helpful)
    visitors.record("answer_vote", slug=article.slug, query=query,
                    detail=f"{'yes' if helpful else 'no'}#{anchor}"[:200])
    message = "Thanks for letting us know." if helpful else \
        "Thanks. Sorry it didn't answer your question: the results below may, or contact us."
    if from_script():
        return jsonify({"saved": True, "message": message})
    flash(message, "answer")
    return redirect(url_for("search.results", q=query) + "#answer", 303)  # type: ignore[return-value]
