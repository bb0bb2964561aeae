"""'Still need help?': the contact form that suggests articles first and opens a ticket with the trail."""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from wtforms import EmailField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp, StopValidation

from search import SearchResults
from search.analysis import clean_query

from .. import db, visitors
from ..config import Support
from ..models import Ticket
from ..privacy import client_hash
from ..tickets import FormAlreadySent, NewTicket, create_ticket, find, same_request, ticket_for_form, trail_of
from ..tickets.allowance import Allowance, in_words
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


@dataclass(frozen=True)
class Rendered:
    """The signed ``rendered`` field: when the form was shown, and its single-use nonce."""

    shown: float
    nonce: str | None  # None for a form rendered before forms carried one

    @property
    def stale(self) -> bool:
        return time.time() - self.shown > 24 * 3600

    def sign(self) -> str:
        return _signer().dumps({"shown": self.shown, "nonce": self.nonce})

    @classmethod
    def new(cls) -> Rendered:
        return cls(time.time(), secrets.token_urlsafe(24))

    @classmethod
    def read(cls, value: str | None) -> Rendered | None:
        """Return the signed value's contents, or None if it is missing or forged."""
        try:
            payload = _signer().loads(value or "")
            if isinstance(payload, dict):
                nonce = payload.get("nonce")
                return cls(float(payload["shown"]), str(nonce) if nonce else None)
            return cls(float(payload), None)
        except (BadSignature, ValueError, TypeError, KeyError):
            return None


def topics() -> list[tuple[str, str]]:
    """Return the form's topics as (value, label): the categories in display order, then "Something else"."""
    return [(c.slug, c.title) for c in library().categories] + [("other", "Something else")]


def _form(formdata: Any = None) -> ContactForm:
    """Return the contact form with its choices, reading ``formdata`` (default: the request's form)."""
    form = ContactForm(formdata=formdata) if formdata is not None else ContactForm()
    form.topic.choices = [("", "Choose a topic"), *topics()]
    pattern = current_app.config["ORDER_NUMBER_PATTERN"]
    example = current_app.config["ORDER_NUMBER_EXAMPLE"]
    form.order_number.validators = [Optional(), _one_line, Length(max=32), Regexp(
        pattern, message=f"Order numbers look like {example}: you'll find yours in your confirmation email.")]
    form.order_number.description = f"For example {example}"
    return form


def _is_bot(form: ContactForm, rendered: Rendered | None) -> str | None:
    """Return why a submission looks automated (honeypot filled, timestamp missing or forged, too quick)."""
    if form.website.data:
        return "honeypot filled in"
    if rendered is None:
        return "form timestamp missing or forged"
    if time.time() - rendered.shown < current_app.config["CONTACT_MIN_SECONDS"]:
        return "sent faster than a person types"
    return None


def _suggestions(form: ContactForm, limit: int = 3) -> SearchResults | None:
    """Return up to three articles that may answer the message (what a customer would have found), with the
    answer when one answers it, or None."""
    query = clean_query(f"{form.subject.data or ''} {(form.message.data or '')[:300]}")
    if not query:
        return None
    try:
        return engine().search(query, limit=limit)
    except Exception:  # suggestions are a courtesy: never block a ticket on them
        current_app.logger.exception("contact form suggestions failed")
        return None


def _page(form: ContactForm, status: int = 200, **context: Any) -> tuple[str, int]:
    """Return the contact form page (with what was typed), the other ways to reach support, and its status."""
    context.setdefault("suggestions", [])
    context.setdefault("support", Support.from_config(current_app.config))
    return render_template("contact.html", form=form, canonical=None, **context), status


def _new_ticket(form: ContactForm) -> NewTicket:
    return NewTicket(name=form.name.data.strip(), email=form.email.data.strip(), subject=form.subject.data.strip(),
                     message=form.message.data.strip(), topic=form.topic.data,
                     order_number=(form.order_number.data or "").strip().upper() or None,
                     source=(form.source.data or None), channel="widget" if visitors.in_widget() else "site",
                     page=visitors.host_page() if visitors.in_widget() else None)


def _confirm(ticket: Ticket, repeat: bool = False) -> Response:
    """Send the visitor to the confirmation of this ticket (``repeat``: the form had opened it before)."""
    session["ticket"], session["ticket_repeat"] = ticket.reference, repeat
    response = redirect(url_for("contact.sent"), 303)
    response.headers["X-Ticket-Reference"] = ticket.reference  # the acknowledgement, for scripts
    return response  # type: ignore[return-value]


def _allowance(form: ContactForm) -> tuple[Allowance | None, dict[str, str | None]]:
    """Return the ticket limits (None when rate limiting is off) and this request's keys: the client hash the
    ticket stores, and the email hashed the same way."""
    limiter = current_app.extensions["kb_limiter"]
    config = current_app.config
    keys = {"address": client_hash(config["SECRET_KEY"], request.remote_addr),
            "email": client_hash(config["SECRET_KEY"], "email:" + form.email.data.strip().casefold())}
    if not limiter.enabled:
        return None, keys
    return Allowance.from_settings(limiter.limiter, address=config["RATELIMIT_TICKETS"],
                                   email=config["RATELIMIT_TICKETS_EMAIL"]), keys


def _limited(form: ContactForm, wait: float) -> Response:
    """Show the form again with everything typed, the real wait, and the other ways to reach support."""
    page, status = _page(form, 429, limited=in_words(wait))
    response = make_response(page, status)
    response.headers["Retry-After"] = str(math.ceil(wait))
    return response


@dataclass(frozen=True)
class Opened:
    """What sending a rendered form did: opened ``ticket``, or found it had (``repeat``), or found the limit
    reached (``wait`` seconds), or found the used form came back with other words (``conflict``: its ticket)."""

    ticket: Ticket | None = None
    repeat: bool = False
    wait: float = 0.0
    conflict: Ticket | None = None


def open_ticket(form: ContactForm, rendered: Rendered) -> Opened:
    """Open the ticket, once per rendered form, with the visit's trail, within the ticket limits."""
    new = _new_ticket(form)
    with db.database().sessions() as s:
        first = ticket_for_form(s, rendered.nonce) if rendered.nonce else None
        if first is None:
            allowance, keys = _allowance(form)
            wait = allowance.wait(keys) if allowance else 0.0
            if wait:
                return Opened(wait=wait)
            lib = library()
            visit = visitors.visit()
            trail = trail_of(visitors.trail(visit), {slug: a.title for slug, a in lib.articles.items()})
            try:
                ticket = create_ticket(s, new, current_app.config["TICKET_BACKEND"], visit=visit, trail=trail,
                                       client=keys["address"], form_nonce=rendered.nonce)
            except FormAlreadySent as already:  # the same form, sent at the same moment
                first = already.ticket
            else:
                if allowance:
                    allowance.spend(keys)
                return Opened(ticket)
    if same_request(first, new):
        return Opened(first, repeat=True)
    return Opened(conflict=first)


def _open_ticket(form: ContactForm, rendered: Rendered) -> Response | tuple[str, int]:
    """Open the ticket, once per rendered form: a repeat gets the first ticket's confirmation."""
    opened = open_ticket(form, rendered)
    if opened.wait:
        return _limited(form, opened.wait)
    if opened.ticket is not None:
        return _confirm(opened.ticket, repeat=opened.repeat)
    assert opened.conflict is not None
    # The used form came back with other words (Back, edit, send): a new request, never silently dropped.
    form.rendered.data = Rendered(rendered.shown, secrets.token_urlsafe(24)).sign()
    return _page(form, 409, notice=f"You already sent this form once (reference {opened.conflict.reference}). "
                 "To send what's below as a new request, check it and send it again.")


@bp.route("/contact", methods=["GET", "POST"])
def contact() -> Response | tuple[str, int]:
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
        form.rendered.data = Rendered.new().sign()
        return _page(form)
    if not form.validate():
        return _page(form, 400)
    rendered = Rendered.read(form.rendered.data)
    bot = _is_bot(form, rendered)
    if bot or rendered is None:
        current_app.logger.warning("contact form dropped (%s) from %s", bot, request.remote_addr)
        return render_template("contact_sent.html", reference=None, canonical=None), 200
    if rendered.stale:  # open for over a day: a person, not a bot; keep every word and ask again
        form.rendered.data = Rendered(time.time() - current_app.config["CONTACT_MIN_SECONDS"],
                                      rendered.nonce or secrets.token_urlsafe(24)).sign()
        return _page(form, notice="This form was open for more than a day, so we haven't sent it yet. "
                     "Check it below and send it again.")
    if not form.confirm.data:
        found = _suggestions(form)
        if found and found.hits:
            form.confirm.data = "1"
            return _page(form, suggestions=found.hits, answer=found.answer)
    return _open_ticket(form, rendered)


@bp.get("/contact/sent")
def sent() -> Response | str:
    """Confirm the ticket with its reference and the address we'll reply to, and say what happens next."""
    reference = session.get("ticket")
    if not reference:
        return redirect(url_for("contact.contact"))  # type: ignore[return-value]
    # The address is read from the ticket, not kept in the session: the cookie never carries it.
    with db.database().session() as s:
        found = find(s, reference)
        email = found[0].email if found else None
    return render_template("contact_sent.html", reference=reference, repeat=session.get("ticket_repeat", False),
                           email=email, canonical=None)


@bp.get("/contact/open/<slug>")
def open_suggestion(slug: str) -> Response:
    """Open an article suggested by the contact form, recording the deflection."""
    current = current_slug(slug)
    visitors.record_later("deflection", slug=current, query=clean_query(request.args.get("q", ""))[:500] or None)
    anchor = request.args.get("anchor", "")
    known = anchor and any(s.anchor == anchor for s in library().articles[current].sections)
    return redirect(url_for("help.article", slug=current) + (f"#{anchor}" if known else ""))  # type: ignore[return-value]
