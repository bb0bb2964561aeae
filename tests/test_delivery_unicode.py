"""Arbitrary Unicode in every ticket field, through the real SMTP and webhook backends and the real worker.

No ticket may poison delivery: each one ends delivered, or dead with its error recorded; none stays
`sending` or `pending` for ever, and none holds up the other tickets claimed with it.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kb_site.db import database
from kb_site.models import DeliveryAttempt, Outbox, Ticket
from kb_site.tickets import NewTicket, create_ticket
from kb_site.tickets.backends import Backends
from kb_site.tickets.worker import DeliveryPolicy, deliver_due
from tests.receivers import HttpReceiver, SmtpSink
from tests.test_delivery import make_due

# Every category (astral planes included; surrogates cannot be stored or sent), plus the characters that broke
# delivery before, often enough that most examples hold some.
NASTY = ["\x00", "\x85", "\u2028", "\u2029", "\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\u200b", "\u200e",
         "\u202e", "\ufeff", "\U0001f600", "\U000e0001", "\"", "<", ">", "@", ",", ";", "\\", "=?utf-8?q?x?="]
PIECES = st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(NASTY))


def text(max_size: int) -> st.SearchStrategy[str]:
    """Up to ``max_size`` characters (the column's length), any of them."""
    return st.lists(PIECES, max_size=max_size).map(lambda pieces: "".join(pieces)[:max_size])


def email() -> st.SearchStrategy[str]:
    """An address whose local part and display name are anything at all."""
    bare = st.builds(lambda local: f"{local}@example.com", text(60))
    shown = st.builds(lambda display, local: f"{display} <{local}@example.com>", text(40), text(40))
    return st.one_of(bare, shown, text(80))


STEP = st.fixed_dictionaries(
    {"kind": st.one_of(st.sampled_from(["search", "view", "click", "vote", "deflection"]), text(10)),
     "at": text(30)},
    optional={"query": text(60), "article": text(60), "title": text(60), "results": st.integers(0, 10 ** 6),
              "helpful": st.booleans(), "reason": text(30)})

TICKETS = st.builds(
    NewTicket, name=text(100), email=email(), subject=text(150), message=text(600), topic=text(64),
    order_number=st.none() | text(32), source=st.none() | text(500))


@pytest.fixture
def receivers(any_db_site):
    with SmtpSink() as sink, HttpReceiver() as receiver:
        any_db_site.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, SMTP_TO="support@helpdesk.example",
                                  SMTP_FROM="Help Centre <help@shop.example>", WEBHOOK_URL=receiver.url,
                                  WEBHOOK_SECRET="s3cret", WEBHOOK_TIMEOUT=5)
        yield any_db_site, sink, receiver


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(new=TICKETS, trail=st.lists(STEP, max_size=4), backends=st.lists(st.sampled_from(["smtp", "webhook"]),
                                                                        min_size=1, max_size=3))
def test_no_ticket_content_poisons_delivery(receivers, new, trail, backends):
    """Every field arbitrary: every ticket ends delivered (its content intact) or dead with an error."""
    app, sink, receiver = receivers
    policy = DeliveryPolicy(max_attempts=3, backoff=0.01, lease=60)
    with app.app_context():
        sessions = database().sessions
        with sessions() as s:
            ids = [create_ticket(s, new, backend, visit="v1", trail=trail).id for backend in backends]
        for _ in range(policy.max_attempts + 1):  # one batch at a time, as often as a row could be retried
            deliver_due(sessions, Backends.from_config(app.config), policy, worker="hypothesis")
            make_due(app)
        with sessions() as s:
            rows = list(s.scalars(select(Outbox).where(Outbox.ticket_id.in_(ids))))
            tickets = {t.id: t for t in s.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
            attempts = list(s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id.in_(
                [r.id for r in rows]))))
    assert len(rows) == len(backends)
    for row in rows:
        assert row.state in ("delivered", "dead"), (row.state, row.last_error)
        assert row.state == "delivered" or row.last_error
        assert row.lease_until is None
    assert all(a.finished_at is not None and a.outcome for a in attempts)
    # Content is no reason to give up: each backend carried the ticket.
    assert {r.state for r in rows} == {"delivered"}, [r.last_error for r in rows]
    for row in rows:
        ticket = tickets[row.ticket_id]
        if row.backend == "webhook":
            [body] = [r.json() for r in receiver.requests if r.headers["idempotency-key"] == row.idempotency_key]
            assert body["message"] == ticket.message and body["subject"] == ticket.subject
            assert body["customer"] == {"name": ticket.name, "email": ticket.email}
            assert body["trail"] == json.loads(ticket.trail)
        else:
            [mail] = [m for m in sink.messages if m.message["X-KB-Reference"] == ticket.reference]
            assert mail.envelope_to == ["support@helpdesk.example"]
            assert str(mail.message["Subject"]).startswith(f"[{ticket.reference}]")
            assert "\n" not in str(mail.message["Subject"]) and "\r" not in str(mail.message["Subject"])
            assert mail.message["Bcc"] is None and mail.message["Cc"] is None
