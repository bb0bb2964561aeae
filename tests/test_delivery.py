"""Ticket delivery through the outbox, against a real SMTP server and a real HTTP receiver."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace

import pytest
from sqlalchemy import select, update

from kb_site.db import database
from kb_site.models import DeliveryAttempt, Outbox, Ticket
from kb_site.tickets import NewTicket, create_ticket, idempotency_key
from kb_site.tickets.backends import Backends, SmtpBackend
from kb_site.tickets.worker import DeliveryPolicy, deliver_due
from tests.conftest import free_port
from tests.receivers import HttpReceiver, SmtpSink

TRAIL = [{"kind": "search", "at": "2026-11-24T10:00:00+00:00", "query": "refund late", "results": 4},
         {"kind": "view", "at": "2026-11-24T10:01:00+00:00", "article": "refund-timescales",
          "title": "When will I get my refund"}]


def add_ticket(app, backend: str, **overrides) -> Ticket:
    fields = {"name": "Sam Carter", "email": "sam@example.com", "subject": "Refund not arrived",
              "message": "I sent my boots back two weeks ago.", "topic": "returns", "order_number": "NW-482913",
              "source": "article:refund-timescales", **overrides}
    with app.app_context(), database().sessions() as s:
        return create_ticket(s, NewTicket(**fields), backend, visit="v1", trail=TRAIL)


def outbox(app) -> list[Outbox]:
    with app.app_context(), database().sessions() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def run_worker(app, backends: Backends | None = None, **policy) -> int:
    with app.app_context():
        return deliver_due(database().sessions, backends or Backends.from_config(app.config),
                           DeliveryPolicy(**{"backoff": 0.01, **policy}))


def make_due(app) -> None:
    """Skip the backoff wait: make every pending row due now."""
    with app.app_context(), database().sessions() as s, s.begin():
        s.execute(update(Outbox).where(Outbox.state == "pending")
                  .values(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))


@pytest.fixture
def smtp_site(any_db_site):
    with SmtpSink() as sink:
        any_db_site.config.update(TICKET_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port,
                                  SMTP_TO="support@helpdesk.example", SMTP_FROM="Help Centre <help@shop.example>")
        yield any_db_site, sink


def test_smtp_delivery_is_a_helpdesk_email(smtp_site):
    """One email to the inbound address: customer in Reply-To, reference in the subject, trail in the body."""
    app, sink = smtp_site
    ticket = add_ticket(app, "smtp")
    assert run_worker(app) == 1
    [mail] = sink.messages
    msg = mail.message
    assert mail.envelope_to == ["support@helpdesk.example"] and mail.envelope_from == "help@shop.example"
    assert msg["Reply-To"] == "Sam Carter <sam@example.com>"
    assert msg["Subject"] == f"[{ticket.reference}] Refund not arrived"
    assert msg["Message-ID"] == f"<{idempotency_key(ticket.reference)}@shop.example>"
    body = msg.get_content()
    assert "I sent my boots back" in body and "searched “refund late” (4 results)" in body
    assert "read “When will I get my refund”" in body and "Order: NW-482913" in body
    [row] = outbox(app)
    assert row.state == "delivered" and row.attempts == 1 and row.delivered_at is not None


def test_header_injection_reaches_only_the_helpdesk(smtp_site):
    """CR/LF with Bcc in name and subject: exactly one message, to the helpdesk only, headers intact."""
    app, sink = smtp_site
    add_ticket(app, "smtp", name="Sam\r\nBcc: victim@example.org", subject="Hi\r\nBcc: victim2@example.org\r\n\r\nX")
    run_worker(app)
    [mail] = sink.messages
    assert mail.envelope_to == ["support@helpdesk.example"]
    assert mail.message["Bcc"] is None and "victim" not in str(mail.message["To"])
    assert "\n" not in mail.message["Subject"] and "Bcc" in mail.message["Subject"]  # kept as harmless text
    assert mail.message["Reply-To"].addresses[0].addr_spec == "sam@example.com"


def test_smtp_permanent_refusal_is_a_dead_letter(smtp_site, runner):
    """A 5xx from the mail server is not retried; `kb tickets retry` sends it again once fixed."""
    app, sink = smtp_site
    ticket = add_ticket(app, "smtp")
    sink.reject_with = "550 mailbox unavailable"
    run_worker(app)
    [row] = outbox(app)
    assert row.state == "dead" and "550" in row.last_error
    sink.reject_with = None
    cli = app.test_cli_runner()
    result = cli.invoke(args=["tickets", "retry", ticket.reference.lower()])
    assert result.exit_code == 0, result.output
    run_worker(app)
    assert [r.state for r in outbox(app)] == ["delivered"] and len(sink.messages) == 1


@pytest.fixture
def webhook_site(any_db_site):
    any_db_site.config.update(TICKET_BACKEND="webhook", WEBHOOK_SECRET="s3cret", WEBHOOK_TIMEOUT=5)
    return any_db_site


def test_webhook_is_signed_json_with_idempotency_key(webhook_site):
    """The POST carries the ticket and trail as JSON, a timestamp, an HMAC-SHA256 signature and the key."""
    with HttpReceiver() as receiver:
        webhook_site.config["WEBHOOK_URL"] = receiver.url
        ticket = add_ticket(webhook_site, "webhook")
        run_worker(webhook_site)
    [request] = receiver.requests
    expected = hmac.new(b"s3cret", request.headers["x-kb-timestamp"].encode() + b"." + request.body,
                        hashlib.sha256).hexdigest()
    assert request.headers["x-kb-signature"] == f"sha256={expected}"
    assert abs(int(request.headers["x-kb-timestamp"]) - time.time()) < 60
    assert request.headers["idempotency-key"] == idempotency_key(ticket.reference)
    payload = request.json()
    assert payload["reference"] == ticket.reference and payload["customer"]["email"] == "sam@example.com"
    assert payload["trail"] == TRAIL and payload["idempotency_key"] == idempotency_key(ticket.reference)


def test_retry_after_the_receiver_was_down(webhook_site):
    """Nothing listening: the row waits with backoff; once the receiver is up, the next try delivers."""
    port = free_port()
    webhook_site.config["WEBHOOK_URL"] = f"http://127.0.0.1:{port}/tickets"
    add_ticket(webhook_site, "webhook")
    run_worker(webhook_site, backoff=60)
    [row] = outbox(webhook_site)
    assert row.state == "pending" and row.attempts == 1 and "cannot reach" in row.last_error
    assert row.next_attempt_at.replace(tzinfo=dt.UTC) > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=25)
    assert run_worker(webhook_site) == 0  # not due yet
    with HttpReceiver(port=port) as receiver:
        make_due(webhook_site)
        run_worker(webhook_site)
    assert [r.state for r in outbox(webhook_site)] == ["delivered"] and len(receiver.requests) == 1
    with webhook_site.app_context(), database().sessions() as s:
        outcomes = [a.outcome for a in s.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id))]
    assert outcomes == ["retry", "delivered"]


def test_400_is_a_dead_letter_but_429_and_5xx_retry(webhook_site):
    """4xx other than 408/429 is final; 429 and 503 are retried until the attempts run out."""
    with HttpReceiver(statuses=[400, 429, 503, 503]) as receiver:
        webhook_site.config["WEBHOOK_URL"] = receiver.url
        add_ticket(webhook_site, "webhook")
        run_worker(webhook_site)
        assert outbox(webhook_site)[0].state == "dead" and "HTTP 400" in outbox(webhook_site)[0].last_error
        add_ticket(webhook_site, "webhook")
        for _ in range(3):
            make_due(webhook_site)
            run_worker(webhook_site, max_attempts=3)
    second = outbox(webhook_site)[1]
    assert second.state == "dead" and second.attempts == 3 and "HTTP 503" in second.last_error


def test_two_workers_never_deliver_one_ticket_twice(webhook_site):
    """Two workers draining 40 tickets concurrently: every ticket delivered exactly once."""
    with HttpReceiver(delay=0.02) as receiver:
        webhook_site.config["WEBHOOK_URL"] = receiver.url
        references = [add_ticket(webhook_site, "webhook").reference for _ in range(40)]
        threads = [threading.Thread(target=run_worker, args=(webhook_site,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sorted(receiver.keys()) == sorted(idempotency_key(r) for r in references)
    assert {r.state for r in outbox(webhook_site)} == {"delivered"}
    with webhook_site.app_context(), database().sessions() as s:
        workers = {a.worker for a in s.scalars(select(DeliveryAttempt))}
    assert len(workers) == 2  # both took part


def test_backoff_grows_is_capped_and_jittered():
    """Each retry waits about twice as long as the last, never past the cap, randomised by up to half."""
    policy = DeliveryPolicy(backoff=10, backoff_max=100)
    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)]:
        waits = [policy.delay(attempt) for _ in range(200)]
        assert ceiling / 2 <= min(waits) and max(waits) <= ceiling and len(set(waits)) > 150
    assert policy.delay(1, retry_after=300) == 300


def test_killed_worker_mid_delivery_delivers_after_restart(tmp_path, corpus, fake_embedder):
    """SIGKILL while the helpdesk is answering: after the lease ends a new worker delivers it."""
    from tests.conftest import make_site

    database_url = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    app = make_site(tmp_path, corpus, fake_embedder, DATABASE_URL=database_url)
    with HttpReceiver(delay=30) as receiver:
        env = {**os.environ, "KB_INSTANCE_DIR": app.instance_path, "KB_ARTICLES_DIR": str(corpus),
               "KB_DATABASE_URL": database_url, "KB_TICKET_BACKEND": "webhook", "KB_WEBHOOK_URL": receiver.url,
               "KB_WEBHOOK_SECRET": "s3cret", "KB_DELIVERY_LEASE": "2", "KB_WORKER_POLL": "0.2",
               "KB_EMBEDDING_MODEL": "none", "KB_WEBHOOK_TIMEOUT": "60"}
        ticket = add_ticket(app, "webhook")
        worker = subprocess.Popen([sys.executable, "-m", "kb_site.cli", "worker"], env=env, cwd=tmp_path,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.requests, "the worker never called the helpdesk"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert outbox(app)[0].state == "sending"
        receiver.delay = 0
        again = subprocess.Popen([sys.executable, "-m", "kb_site.cli", "worker"], env=env, cwd=tmp_path,
                                 stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while outbox(app)[0].state != "delivered" and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            again.terminate()
            again.wait(10)
    assert outbox(app)[0].state == "delivered"
    assert receiver.keys() == [idempotency_key(ticket.reference)] * 2  # the receiver drops the repeat by key


def test_tickets_list_json(any_db_site):
    """`kb tickets list --json` prints the fields operators script against."""
    first = add_ticket(any_db_site, "local")
    add_ticket(any_db_site, "local", email="ana@example.com")
    result = any_db_site.test_cli_runner().invoke(args=["tickets", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["email"] for r in rows] == ["ana@example.com", "sam@example.com"]
    assert {"reference", "status", "delivery_state", "created_at", "email", "subject"} <= rows[1].keys()
    assert rows[1]["reference"] == first.reference and rows[1]["delivery_state"] == "delivered"
    assert rows[1]["status"] == "open"
    filtered = any_db_site.test_cli_runner().invoke(args=["tickets", "list", "--status", "solved", "--json"])
    assert json.loads(filtered.output) == []
    missing = any_db_site.test_cli_runner().invoke(args=["tickets", "retry", "KB-0000-00"])
    assert missing.exit_code == 1 and "no ticket has the reference" in missing.output


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_sigkill_of_the_server_loses_no_acknowledged_write(database, request):
    """200 tickets and 200 votes from 8 clients, every server process SIGKILLed at a random moment, then
    restarted: every acknowledged vote and ticket is stored, and every ticket delivered once (after dropping
    repeats by idempotency key)."""
    from tests.fault_tickets import run

    if database == "postgresql":
        request.getfixturevalue("postgres_server")  # skips (or fails in CI) without PostgreSQL
    figures = run(database, tickets=200, clients=8, votes=200)
    print(json.dumps(figures))
    assert figures["acknowledged"] == 200 and figures["killed_after_acknowledged"] < 400
    assert figures["votes_acknowledged"] == 200 and figures["votes_lost"] == 0
    assert figures["acknowledged_lost"] == 0 and figures["undelivered"] == 0 and figures["dead_letters"] == 0
    assert figures["duplicates_after_idempotency"] == 0


@pytest.mark.parametrize("subject", ["Refund\x85not arrived", "Refund\u2028not arrived", "Refund\u2029not arrived",
                                     "Refund\u200bnot\u202earrived\ufeff", "Refund\x1cnot arrived"])
def test_unicode_line_breaks_in_headers_are_neutralised(smtp_site, subject):
    """NEL, LS, PS and format characters in a stored subject and name still make one clean email."""
    app, sink = smtp_site
    ticket = add_ticket(app, "smtp", subject=subject, name="Sam\u2028Carter\x85")
    run_worker(app)
    [row] = outbox(app)
    assert row.state == "delivered", row.last_error
    [mail] = sink.messages
    assert mail.message["Subject"] == f"[{ticket.reference}] " + " ".join(
        "".join(c if c.isalnum() else " " for c in subject).split())
    assert mail.message["Reply-To"].addresses[0].display_name == "Sam Carter"


def test_non_ascii_email_is_delivered_without_reply_to(smtp_site):
    """An internationalised address (which the form accepts) cannot go in Reply-To: the email still goes."""
    app, sink = smtp_site
    add_ticket(app, "smtp", email="josé@example.com")
    run_worker(app)
    assert outbox(app)[0].state == "delivered", outbox(app)[0].last_error
    [mail] = sink.messages
    assert mail.message["Reply-To"] is None and "josé@example.com" in mail.message.get_content()


class BuggySmtpBackend(SmtpBackend):
    """An SMTP backend with a bug: it raises a ValueError, not a DeliveryError."""

    def deliver(self, ticket: Ticket, key: str) -> str:
        raise ValueError("invalid literal for int() with base 10: 'not-a-port'")  # what a bad port once raised


def test_any_backend_exception_is_a_failed_attempt_and_spares_the_batch(webhook_site):
    """An exception that is not a DeliveryError (here a bug in the SMTP backend; a bad KB_SMTP_PORT now stops the
    start) is recorded and retried, ends dead at the attempt limit, and the other rows claimed with it are still
    delivered."""
    with HttpReceiver() as receiver:
        webhook_site.config.update(WEBHOOK_URL=receiver.url, SMTP_TO="support@helpdesk.example")
        backends = Backends.from_config(webhook_site.config)
        backends = replace(backends, smtp=BuggySmtpBackend(**asdict(backends.smtp)))
        poison = add_ticket(webhook_site, "smtp")
        others = [add_ticket(webhook_site, "webhook").reference for _ in range(3)]
        assert run_worker(webhook_site, backends, max_attempts=2, backoff=60) == 4
        first, *rest = outbox(webhook_site)
        assert first.state == "pending" and first.attempts == 1
        assert first.last_error.startswith("ValueError: invalid literal for int()")
        assert [r.state for r in rest] == ["delivered"] * 3
        assert sorted(receiver.keys()) == sorted(idempotency_key(r) for r in others)
        make_due(webhook_site)
        assert run_worker(webhook_site, backends, max_attempts=2, backoff=60) == 1
        make_due(webhook_site)
        assert run_worker(webhook_site, backends, max_attempts=2, backoff=60) == 0  # dead: never claimed again
    [first] = [r for r in outbox(webhook_site) if r.ticket_id == poison.id]
    assert first.state == "dead" and first.attempts == 2 and "ValueError" in first.last_error
    with webhook_site.app_context(), database().sessions() as s:
        attempts = list(s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id == first.id)
                                  .order_by(DeliveryAttempt.number)))
    assert [(a.number, a.outcome) for a in attempts] == [(1, "retry"), (2, "dead")]
    assert all(a.finished_at and a.detail.startswith("ValueError: ") for a in attempts)


def test_a_worker_dying_at_the_last_attempt_leaves_a_dead_letter(any_db_site):
    """Claims whose worker dies (the lease runs out) count as attempts; at the limit the row is dead, not claimed
    for ever."""
    from kb_site.tickets.worker import claim

    add_ticket(any_db_site, "webhook")
    policy = DeliveryPolicy(max_attempts=3, lease=0.001)
    with any_db_site.app_context():
        sessions = database().sessions
        claimed = []
        for _ in range(6):
            claimed.append(len(claim(sessions, "doomed", policy)))
            time.sleep(0.01)  # the lease runs out: as if the worker had died mid-delivery
    assert claimed == [1, 1, 1, 0, 0, 0]
    [row] = outbox(any_db_site)
    assert row.state == "dead" and row.attempts == 3
    assert "died or hung mid-delivery" in row.last_error
    with any_db_site.app_context(), database().sessions() as s:
        attempts = list(s.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.number)))
    assert [(a.number, a.outcome) for a in attempts] == [(1, "retry"), (2, "retry"), (3, "dead")]
    assert all(a.finished_at is not None and "mid-delivery" in a.detail for a in attempts)
