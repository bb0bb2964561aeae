"""'Still need help?': the contact form that suggests articles first and opens a ticket with the trail."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from wtforms import EmailField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp, StopValidation

from search.analysis import clean_query

from .. import db, visitors
from ..privacy import client_hash
from ..tickets import NewTicket, create_ticket, trail_of
from ..tickets.text import one_line_problem
from . import current_slug, engine, library

bp = Blueprint("contact", __name__)


def _one_line(_form: FlaskForm, field: StringField) -> None:
    """Refuse line breaks, controls and format characters (NEL, U+2028, zero-width, bidi...) in a one-line field."""
    problem = one_line_problem(field.data or "")
    if problem:
        raise StopValidation(problem)  # the only message: the field's other checks would only confuse


class ContactForm(FlaskForm):
    """The ticket form; CSRF is checked by CSRFProtect for every POST."""

    class Meta:
        csrf = False

    name = StringField("Your name", validators=[DataRequired("Please tell us your name."), _one_line, Length(max=100)])
    email = EmailField("Email address", validators=[
        DataRequired("We need your email address to reply."), _one_line,
        Email("That doesn't look like an email address: check for typos.", check_deliverability=False),
        Length(max=254)])
    topic = SelectField("Topic", validators=[DataRequired("Choose the topic closest to your question.")])
    order_number = StringField("Order number (optional)", validators=[Optional(), Length(max=32)])
    subject = StringField("Subject", validators=[
        DataRequired("Give your message a subject."), _one_line,
        Length(min=3, max=150, message="Keep the subject between 3 and 150 characters.")])
    message = TextAreaField("How can we help?", validators=[
        DataRequired("Tell us what you need help with."),
        Length(min=10, max=5000, message="Write between 10 and 5,000 characters.")])
    source = HiddenField()
    website = StringField("Leave this empty")  # the honeypot: people never see it, bots fill it in
    rendered = HiddenField()  # a signed timestamp of when the form was shown
    confirm = HiddenField()  # "None of these help — send my request"


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="kb-contact-form")


def _form() -> ContactForm:
    form = ContactForm()
    lib = library()
    form.topic.choices = [("", "Choose a topic")] + [(c.slug, c.title) for c in lib.categories] + [
        ("other", "Something else")]
    pattern = current_app.config["ORDER_NUMBER_PATTERN"]
    example = current_app.config["ORDER_NUMBER_EXAMPLE"]
    form.order_number.validators = [Optional(), _one_line, Length(max=32), Regexp(
        pattern, message=f"Order numbers look like {example}: you'll find yours in your confirmation email.")]
    form.order_number.description = f"For example {example}"
    return form


def _is_bot(form: ContactForm) -> str | None:
    """Return why a submission looks automated (honeypot filled, timestamp missing, forged or too quick)."""
    if form.website.data:
        return "honeypot filled in"
    try:
        shown = float(_signer().loads(form.rendered.data or "", max_age=24 * 3600))
    except (BadSignature, ValueError, TypeError):
        return "form timestamp missing, forged or older than a day"
    if time.time() - shown < float(current_app.config["CONTACT_MIN_SECONDS"]):
        return "sent faster than a person types"
    return None


def _suggestions(form: ContactForm, limit: int = 3) -> list:
    """Return up to three articles that may answer the message (what a customer would have found)."""
    query = clean_query(f"{form.subject.data or ''} {(form.message.data or '')[:300]}")
    if not query:
        return []
    try:
        return list(engine().search(query, limit=limit).hits)
    except Exception:  # suggestions are a courtesy: never block a ticket on them
        current_app.logger.exception("contact form suggestions failed")
        return []


@bp.route("/contact", methods=["GET", "POST"])
def contact() -> Response | str:
    """Show the form; on send, suggest articles once, then open a ticket with the visitor's trail."""
    form = _form()
    if request.method == "GET":
        origin = request.args.get("from", "")[:200]
        query = clean_query(request.args.get("q", ""))[:200]
        lib = library()
        article = lib.articles.get(lib.resolve(origin) or "") if origin else None
        if article is not None:
            form.topic.data = form.topic.data or article.category
            form.source.data = f"article:{article.slug}"
        elif query:
            form.source.data = f"search:{query}"
            form.subject.data = form.subject.data or query[:150]
        elif request.referrer:
            form.source.data = f"page:{request.referrer[:400]}"
        form.rendered.data = _signer().dumps(str(time.time()))
        return render_template("contact.html", form=form, suggestions=[], canonical=None)
    if not form.validate():
        return render_template("contact.html", form=form, suggestions=[], canonical=None), 400  # type: ignore
    bot = _is_bot(form)
    if bot:
        current_app.logger.warning("contact form dropped (%s) from %s", bot, request.remote_addr)
        return render_template("contact_sent.html", reference=None, canonical=None)
    if not form.confirm.data:
        found = _suggestions(form)
        if found:
            form.confirm.data = "1"
            return render_template("contact.html", form=form, suggestions=found, canonical=None)
    lib = library()
    visit = visitors.visit()
    trail = trail_of(visitors.trail(visit), {slug: a.title for slug, a in lib.articles.items()})
    new = NewTicket(name=form.name.data.strip(), email=form.email.data.strip(), subject=form.subject.data.strip(),
                    message=form.message.data.strip(), topic=form.topic.data,
                    order_number=(form.order_number.data or "").strip().upper() or None,
                    source=(form.source.data or None))
    with db.database().sessions() as s:
        ticket = create_ticket(s, new, current_app.config["TICKET_BACKEND"], visit=visit, trail=trail,
                               client=client_hash(current_app.config["SECRET_KEY"], request.remote_addr))
    session["ticket"] = ticket.reference
    response = redirect(url_for("contact.sent"), 303)
    response.headers["X-Ticket-Reference"] = ticket.reference  # the acknowledgement, for scripts
    return response  # type: ignore[return-value]


@bp.get("/contact/sent")
def sent() -> Response | str:
    """Confirm the ticket with its reference and say what happens next."""
    reference = session.get("ticket")
    if not reference:
        return redirect(url_for("contact.contact"))  # type: ignore[return-value]
    return render_template("contact_sent.html", reference=reference, canonical=None)


@bp.get("/contact/open/<slug>")
def open_suggestion(slug: str) -> Response:
    """Open an article suggested by the contact form, recording the deflection."""
    current = current_slug(slug)
    visitors.record_later("deflection", slug=current, query=clean_query(request.args.get("q", ""))[:500] or None)
    return redirect(url_for("help.article", slug=current))  # type: ignore[return-value]
