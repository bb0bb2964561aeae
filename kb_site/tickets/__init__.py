"""Tickets: created with the visitor's trail, delivered to the helpdesk through a transactional outbox."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import Event, Outbox, Ticket, aware
from .cli import tickets_group, worker_command
from .queries import DELIVERY_STATES, STATUSES, History, Queue, find, history, queue, retry_delivery, set_status
from .text import storable

__all__ = [
    "ALPHABET", "BACKENDS", "DELIVERY_STATES", "STATUSES", "FormAlreadySent", "History", "NewTicket", "Queue",
    "create_ticket", "find", "history", "idempotency_key", "init_app", "new_reference", "queue", "retry_delivery",
    "same_request", "set_status", "ticket_for_form", "trail_of",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32: no I, L, O or U to misread
BACKENDS = ("local", "smtp", "webhook")


class FormAlreadySent(Exception):
    """The rendered contact form was sent before: ``ticket`` is the one it opened."""

    def __init__(self, ticket: Ticket):
        super().__init__(f"this form already opened ticket {ticket.reference}")
        self.ticket = ticket


def new_reference() -> str:
    """Return a short reference like ``KB-7Q4M-2K`` (30 random bits), easy to read out on the phone."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(6))
    return f"KB-{chars[:4]}-{chars[4:]}"


def idempotency_key(reference: str) -> str:
    """Return the key every delivery of this ticket carries, so a receiver can drop duplicates."""
    return f"kb-ticket-{reference.lower()}"


@dataclass(frozen=True)
class NewTicket:
    """What the contact form collected."""

    name: str
    email: str
    subject: str
    message: str
    topic: str
    order_number: str | None = None
    source: str | None = None
    channel: str = "site"  # "widget": sent from the widget on a shop's page
    page: str | None = None  # the widget's host page (origin and path)


def trail_of(events: list[Event], titles: dict[str, str]) -> list[dict[str, Any]]:
    """Return a visit's events as the ticket's trail: searches, articles read, votes, suggestions opened."""
    steps = []
    for e in events:
        step: dict[str, Any] = {"kind": e.kind, "at": aware(e.created_at).isoformat(timespec="seconds")}
        if e.channel == "widget":
            step["channel"] = "widget"
            if e.page:
                step["page"] = e.page
        if e.slug:
            step["article"] = e.slug
            step["title"] = titles.get(e.slug, e.slug)
        if e.query:
            step["query"] = e.query
        if e.kind == "search":
            step["results"] = e.results
        if e.kind == "vote" and e.detail:
            helpful, _, reason = e.detail.partition(":")
            step["helpful"] = helpful == "yes"
            if reason:
                step["reason"] = reason
        steps.append(step)
    return steps


def _storable(text: str | None) -> str | None:
    return None if text is None else storable(text)


def ticket_for_form(session: Session, form_nonce: str) -> Ticket | None:
    """Return the ticket a rendered form (by its nonce) already opened, if any."""
    with session.begin():
        return session.scalar(select(Ticket).where(Ticket.form_nonce == form_nonce))


def same_request(ticket: Ticket, new: NewTicket) -> bool:
    """Return whether the ticket holds what was sent now (a repeat), not a different request on a used form."""
    return (ticket.name, ticket.email, ticket.subject, ticket.message, ticket.topic, ticket.order_number) == (
        storable(new.name), storable(new.email), storable(new.subject), storable(new.message), storable(new.topic),
        _storable(new.order_number))


def create_ticket(session: Session, new: NewTicket, backend: str, *, visit: str | None,
                  trail: list[dict[str, Any]], client: str | None = None, form_nonce: str | None = None) -> Ticket:
    """Store the ticket and its outbox row in one transaction and return the ticket.

    A ``local`` ticket needs no delivery: it waits in the staff queue, so its row is already delivered.
    ``form_nonce`` makes a rendered form single-use: sent again, even at the same moment, it raises
    ``FormAlreadySent`` with the ticket it opened (the unique constraint decides).
    """
    if backend not in BACKENDS:
        raise ValueError(f"KB_TICKET_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}")
    for _attempt in range(5):
        reference = new_reference()
        try:
            with session.begin():
                ticket = Ticket(reference=reference, name=storable(new.name), email=storable(new.email),
                                subject=storable(new.subject), message=storable(new.message),
                                topic=storable(new.topic), order_number=_storable(new.order_number),
                                source=_storable(new.source), visit=visit, client=client, trail=json.dumps(trail),
                                form_nonce=form_nonce, status="open", channel=new.channel,
                                page=_storable(new.page))
                session.add(ticket)
                session.flush()
                outbox = Outbox(ticket_id=ticket.id, backend=backend, idempotency_key=idempotency_key(reference),
                                state="pending")
                if backend == "local":
                    outbox.state = "delivered"
                    outbox.delivered_at = ticket.created_at
                session.add(outbox)
            return ticket
        except IntegrityError:
            # A clash on the nonce is the same form sent twice, not a reference drawn twice: never a second ticket.
            if form_nonce is not None and (first := ticket_for_form(session, form_nonce)) is not None:
                raise FormAlreadySent(first) from None
            continue  # a reference drawn twice (one in a billion): draw another
    raise RuntimeError("could not draw a unique ticket reference")


def init_app(app: Flask) -> None:
    """Register ``kb worker`` and ``kb tickets`` on the application's command line."""
    app.cli.add_command(worker_command)
    app.cli.add_command(tickets_group)
