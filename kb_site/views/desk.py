"""The staff desk under /staff/: sign-in, the dashboard of content gaps, the questions search learned, the
ticket queue and the link finder.

Its blueprint keeps the name ``staff`` so endpoints and URLs stay as they were; accounts live in ``kb_site.staff``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from search.analysis import clean_query
from search.learned import normalise

from .. import db, learning
from .. import tickets as ticketing
from ..dates import day_label
from ..models import Outbox, Ticket
from ..search_service import service
from ..staff import (
    ACCESS,
    MIN_PASSWORD,
    analytics,
    authenticate,
    change_password,
    current_staff,
    sign_in,
    sign_out,
    staff_required,
)
from ..staff.arguments import choice_arg, int_arg, safe_next, slug_arg
from ..staff.charts import bar_chart
from ..staff.downloads import attachment, csv_attachment
from ..tickets.sources import came_from
from . import absolute, engine, library

bp = Blueprint("staff", __name__, url_prefix="/staff")
PERIODS = (7, 30, 90)
PAGE = 50  # tickets a page of the queue
REFERENCE = re.compile(r"[A-Za-z0-9-]{1,16}")  # what a ticket reference can look like (KB-7Q4M-2K)
TABLES = {
    "top_queries": "Top queries",
    "zero_result_queries": "Zero-result queries",
    "no_click_queries": "Queries with no click",
    "helpfulness": "Articles by helpfulness",
    "revisions": "Did the last edit help?",
    "stale": "Not updated in 180 days, and not helping",
    "tickets_by_topic": "Tickets by topic",
    "channels": "Help centre and widget",
    "ticket_pages": "Shop pages where customers still opened a ticket",
    "searches_per_day": "Searches per day",
}
# How the dashboard heads and shows each column of its tables (the CSV downloads keep the plain names): a long
# text is clipped to a line with its whole text in a title, a number is right-aligned, a time is human.
COLUMNS = {
    "query": ("Query", "long"), "title": ("Article", "long"), "topic": ("Topic", "long"),
    "no_reasons": ("Why not", "long"), "comments": ("Comments", "long"), "verdict": ("Verdict", "text"),
    "searches": ("Searches", "num"), "searches_without_click": ("Searches", "num"),
    "avg_results": ("Results", "num"), "clicked_percent": ("Clicked %", "num"), "votes": ("Votes", "num"),
    "yes": ("Yes", "num"), "no": ("No", "num"), "helpful_percent": ("Helpful %", "num"),
    "before_votes": ("Votes before", "num"), "before_percent": ("Helpful % before", "num"),
    "after_votes": ("Votes after", "num"), "after_percent": ("Helpful % after", "num"),
    "change_points": ("Change (points)", "num"), "tickets": ("Tickets", "num"),
    "last_searched": ("Last searched", "time"), "updated": ("Updated", "time"),
    "channel": ("Channel", "text"), "visits": ("Visits", "num"), "visits_with_ticket": ("With a ticket", "num"),
    "self_service_percent": ("Self-service %", "num"), "deflections": ("Deflections", "num"),
    "page": ("Shop page", "long"), "widget_visits": ("Widget visits", "num"), "ticket_percent": ("Ticket %", "num"),
}


@bp.context_processor
def _staff() -> dict[str, Any]:
    return {"current_staff": current_staff}


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


class LoginForm(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect checks every POST

    email = EmailField("Email", validators=[DataRequired("Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class PasswordForm(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect checks every POST

    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    new_password = PasswordField("New password", validators=[
        DataRequired("Choose a new password."),
        Length(min=MIN_PASSWORD, message=f"The new password must have at least {MIN_PASSWORD} characters.")],
        description=f"At least {MIN_PASSWORD} characters. A few unrelated words are easy to type and hard to guess.")
    confirm = PasswordField("New password again", validators=[
        DataRequired("Type the new password again."), EqualTo("new_password", "The two new passwords don't match.")])


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """Sign in with email and password."""
    form = LoginForm()
    error = None
    target = safe_next(request.args.get("next"))
    if request.method == "POST" and form.validate():
        s = db.session()
        user = authenticate(s, form.email.data or "", form.password.data or "")
        if user is not None:
            sign_in(s, user)
            s.commit()
            return redirect(target or url_for("staff.home"))  # type: ignore[return-value]
        error = "That email and password don't match an account."
        current_app.logger.warning("failed staff sign-in for %r", (form.email.data or "")[:80])
    expired = request.args.get("expired") == "1"
    status = 401 if error or (request.method == "POST" and form.errors) else 200
    return render_template("staff/login.html", form=form, error=error, expired=expired,  # type: ignore
                           next=target), status


@bp.route("/password", methods=["GET", "POST"])
@staff_required("account")
def password() -> Response | str:
    """Change your own password: every session of the account ends, and you carry on in a fresh one."""
    form = PasswordForm()
    user = current_staff()
    assert user is not None
    if request.method == "POST" and form.validate():
        s = db.session()
        if authenticate(s, user.email, form.current_password.data or "") is None:
            form.current_password.errors = ["Your current password is not right."]
        else:
            change_password(s, user, form.new_password.data or "")
            sign_in(s, user)
            s.commit()
            flash("Your password is changed. Every other session of your account is signed out.", "staff")
            return redirect(url_for("staff.home"))  # type: ignore[return-value]
    status = 400 if request.method == "POST" else 200
    return render_template("staff/password.html", form=form), status  # type: ignore[return-value]


@bp.post("/logout")
def logout() -> Response:
    """Sign out."""
    sign_out()
    flash("You've signed out.", "staff")
    return redirect(url_for("staff.login"))  # type: ignore[return-value]


def _days() -> int:
    return int_arg("days", 30, choices=PERIODS)


def dashboard_tables(days: int) -> tuple[analytics.Overview, dict[str, list[analytics.Row]]]:
    """Compute every figure and table of the dashboard for the last ``days`` days."""
    with db.database().sessions() as s:
        return analytics.dashboard(s, library().articles, days, dt.datetime.now(dt.UTC).date())


@bp.get("/")
@staff_required("links")
def home() -> Response | str:
    """The dashboard (editors and admins); support agents go to the ticket queue."""
    user = current_staff()
    assert user is not None
    if user.role not in ACCESS["dashboard"]:
        return redirect(url_for("staff.tickets"))  # type: ignore[return-value]
    days = _days()
    overview, tables = dashboard_tables(days)
    chart = bar_chart(tables["searches_per_day"], "day", "searches", title=f"Searches per day, last {days} days",
                      label=day_label, tip=functools.partial(day_label, month=True))
    return render_template("staff/dashboard.html", days=days, periods=PERIODS, overview=overview, tables=tables,
                           titles=TABLES, columns=COLUMNS, chart=chart, article_errors=library().errors)


@bp.get("/dashboard.csv")
@staff_required("dashboard")
def dashboard_csv() -> Response:
    """Download one dashboard table as CSV."""
    name = request.args.get("table", "")
    if name not in TABLES:
        abort(404, f"There is no table called '{name}'.")
    days = _days()
    return csv_attachment(dashboard_tables(days)[1][name], f"{name}-{days}d.csv")


@bp.app_template_filter("yaml_string")
def _yaml_string(value: str) -> str:
    """Quote a string for YAML front matter: JSON's double-quoted form is YAML too."""
    return json.dumps(value, ensure_ascii=False)


@bp.get("/gaps/stub")
@staff_required("dashboard")
def stub() -> Response | str:
    """Offer a ready Markdown stub (a draft article) for a query that found nothing or was not clicked."""
    query = clean_query(request.args.get("q", ""))[:200].strip()
    if not query:
        abort(400, "Give the query in q.")
    lib = library()
    found = engine().search(query, limit=1)
    hits = found.hits or found.nearest
    category = hits[0].category if hits else (lib.categories[0].slug if lib.categories else "support")
    with db.database().sessions() as s:
        searches = analytics.times_searched(s, query)
    text = render_template("staff/stub.md", query=query, category=category, searches=searches,
                           today=dt.date.today())
    slug = "-".join("".join(c if c.isalnum() else " " for c in query.lower()).split())[:60] or "new-article"
    if request.args.get("download"):
        return attachment(text, f"{slug}.md", "text/markdown")
    return render_template("staff/stub.html", query=query, text=text, filename=f"articles/{category}/{slug}.md",
                           similar=hits)


def _own_questions() -> dict[str, set[str]]:
    """Return each published article's own questions and title, normalised (a learned copy of one is moot)."""
    return {slug: {normalise(q) for q in (*a.questions, a.title)} for slug, a in library().articles.items()}


@bp.get("/learned")
@staff_required("dashboard")
def learned() -> str:
    """List the questions search learned from customers, by article, with how many visitors agreed."""
    settings = learning.LearnSettings.from_config(current_app.config)
    lib = library()
    with db.database().sessions() as s:
        found = learning.learned(s, settings, _own_questions())
        gone = learning.removed(s, limit=50)
    articles = sorted(((lib.articles[slug], rows) for slug, rows in found.items()), key=lambda a: a[0].title.lower())
    return render_template("staff/learned.html", articles=articles, removed=gone, settings=settings,
                           titles={slug: a.title for slug, a in lib.articles.items()})


@bp.post("/learned/remove")
@staff_required("dashboard")
def remove_learned() -> Response:
    """Remove a learned question for good: it is never learned again, and search drops it at its next update."""
    number = request.form.get("id", "")
    if not (number.isascii() and number.isdigit() and len(number) <= 9):
        abort(400, "Say which learned question to remove (its id).")
    user = current_staff()
    assert user is not None
    s = db.session()
    question = learning.remove(s, int(number), user.email)
    if question is None:
        abort(404, "There is no such learned question.")
    s.commit()
    # The file the index is built with: the watcher of this machine rebuilds in seconds (others at their pass).
    learning.export(db.database().sessions, learning.LearnSettings.from_config(current_app.config),
                    service().learned_path, _own_questions())
    title = library().articles[question.slug].title if question.slug in library().articles else question.slug
    flash(f"“{question.query}” is no longer a question of “{title}”, and will not be learned again. "
          "Search drops it at its next index update.", "staff")
    return redirect(url_for("staff.learned"))  # type: ignore[return-value]


@bp.get("/tickets")
@staff_required("tickets")
def tickets() -> str:
    """The ticket queue, filtered by status, topic and delivery state."""
    status = choice_arg("status", ticketing.STATUSES)
    topic = slug_arg("topic")
    delivery = choice_arg("delivery", ticketing.DELIVERY_STATES)
    page = int_arg("page", 1)
    found = ticketing.queue(db.session(), status=status, topic=topic, delivery=delivery, limit=PAGE,
                            offset=(page - 1) * PAGE)
    return render_template("staff/tickets.html", rows=found.rows, total=found.total, page=page, status=status,
                           topic=topic, delivery=delivery, statuses=ticketing.STATUSES,
                           delivery_states=ticketing.DELIVERY_STATES, counts=found.counts,
                           categories=library().categories)


def _ticket(reference: str) -> tuple[Ticket, Outbox]:
    if not REFERENCE.fullmatch(reference):
        abort(404, "There is no ticket with that reference.")
    found = ticketing.find(db.session(), reference)
    if found is None:
        abort(404, f"There is no ticket {reference}.")
    return found


@bp.get("/tickets/<reference>")
@staff_required("tickets")
def ticket(reference: str) -> str:
    """One ticket: the message, the customer's trail, its history and its delivery attempts."""
    t, outbox = _ticket(reference)
    past = ticketing.history(db.session(), t, outbox)
    return render_template("staff/ticket.html", ticket=t, outbox=outbox, trail=json.loads(t.trail or "[]"),
                           came=came_from(t.source, library()), attempts=past.attempts, changes=past.changes,
                           statuses=ticketing.STATUSES)


@bp.post("/tickets/<reference>/status")
@staff_required("tickets")
def set_status(reference: str) -> Response:
    """Move a ticket between open, pending and solved."""
    status = request.form.get("status", "")
    if status not in ticketing.STATUSES:
        abort(400, f"Status must be one of {', '.join(ticketing.STATUSES)}.")
    t, _ = _ticket(reference)
    user = current_staff()
    assert user is not None
    s = db.session()
    if ticketing.set_status(s, t, status, user.email):
        s.commit()
        flash(f"{t.reference} is now {status}.", "staff")
    return redirect(url_for("staff.ticket", reference=t.reference))  # type: ignore[return-value]


@bp.post("/tickets/<reference>/retry")
@staff_required("tickets")
def retry(reference: str) -> Response:
    """Send a dead letter again."""
    t, outbox = _ticket(reference)
    if outbox.state != "dead":
        abort(409, f"{t.reference} is {outbox.state}, not a dead letter.")
    user = current_staff()
    assert user is not None
    ticketing.retry_delivery(db.database().sessions, t, user.email)
    flash(f"{t.reference} is queued for delivery again.", "staff")
    return redirect(url_for("staff.ticket", reference=t.reference))  # type: ignore[return-value]


@bp.get("/links")
@staff_required("links")
def links() -> str:
    """Find the article and section to paste into a reply, with its deep link and a reply snippet."""
    query = request.args.get("q", "")
    # An agent looks for the article to send even when none answers the query with confidence.
    searched = engine().search(query, limit=8) if clean_query(query) else None
    found = (searched.hits or searched.nearest) if searched else []
    results = []
    for hit in found:
        url = absolute(hit.url)
        results.append({"hit": hit, "url": url, "snippet": f"{hit.title}: {hit.summary}\n{url}".strip()})
    return render_template("staff/links.html", query=query, results=results)
