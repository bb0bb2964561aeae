"""The delivery worker: claims due outbox rows, sends them, retries with backoff, gives up into dead letters.

Rows are claimed with one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``: on
PostgreSQL concurrent workers skip each other's rows; SQLite runs the statement under its write lock.
A claim is a lease: if the worker dies mid-delivery, another takes the row over when the lease ends.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..models import DeliveryAttempt, Outbox, Ticket, utcnow
from ..privacy import purge
from .backends import Backends, DeliveryError, backend_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try: attempts before the dead letter, backoff, and how long a claim lasts."""

    max_attempts: int = 8
    backoff: float = 30.0
    backoff_max: float = 3600.0
    lease: float = 120.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeliveryPolicy:
        """Return the policy the ``KB_DELIVERY_*`` settings describe (coerced already)."""
        return cls(config["DELIVERY_MAX_ATTEMPTS"], config["DELIVERY_BACKOFF"], config["DELIVERY_BACKOFF_MAX"],
                   config["DELIVERY_LEASE"])

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Return the wait before the next try: exponential, capped, with jitter (half to all of it)."""
        ceiling = min(self.backoff_max, self.backoff * 2 ** max(0, attempt - 1))
        return max(random.uniform(ceiling / 2, ceiling), retry_after or 0.0)


@dataclass(frozen=True)
class WorkerSettings:
    """What the delivery worker takes from the configuration, read once when it starts."""

    backends: Backends
    policy: DeliveryPolicy
    poll: float  # seconds between looks for due rows
    retention_days: int
    ticket_backend: str  # where new tickets go: only named in the log

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WorkerSettings:
        """Return the worker's settings from a (coerced) Flask config."""
        return cls(Backends.from_config(config), DeliveryPolicy.from_config(config), config["WORKER_POLL"],
                   config["RETENTION_DAYS"], config["TICKET_BACKEND"])


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"


ABANDONED = "the lease ran out before the worker finished: it died or hung mid-delivery"


def claim(sessions: sessionmaker[Session], worker: str, policy: DeliveryPolicy, limit: int = 5) -> list[int]:
    """Claim up to ``limit`` due rows (new, retry time reached, or a dead worker's) and return their ids.

    A dead worker's row whose attempts already reached the limit becomes a dead letter instead: a ticket that
    kills or hangs every worker that tries it must not be tried for ever.
    """
    now = utcnow()
    abandoned = and_(Outbox.state == "sending", Outbox.lease_until < now)
    with sessions() as s, s.begin():
        last = (select(Outbox.id).where(abandoned, Outbox.attempts >= policy.max_attempts)
                .with_for_update(skip_locked=True))
        # The lease is kept: should the hung worker still answer, its outcome is recorded over this one.
        buried = list(s.scalars(update(Outbox).where(Outbox.id.in_(last)).values(
            state="dead", last_error=f"gave up after {policy.max_attempts} attempts; the last one: {ABANDONED}")
            .returning(Outbox.id)))
        _close_abandoned(s, buried, "dead", now)
        due = (select(Outbox.id)
               .where(or_(and_(Outbox.state == "pending", Outbox.next_attempt_at <= now),
                          and_(abandoned, Outbox.attempts < policy.max_attempts)))
               .order_by(Outbox.next_attempt_at, Outbox.id).limit(limit)
               .with_for_update(skip_locked=True))
        ids = list(s.scalars(update(Outbox).where(Outbox.id.in_(due))
                             .values(state="sending", lease_until=now + dt.timedelta(seconds=policy.lease),
                                     attempts=Outbox.attempts + 1)
                             .returning(Outbox.id)))
        _close_abandoned(s, ids, "retry", now)
        for outbox_id, attempts in s.execute(select(Outbox.id, Outbox.attempts).where(Outbox.id.in_(ids))):
            s.add(DeliveryAttempt(outbox_id=outbox_id, number=attempts, worker=worker))
    if buried:
        log.warning("gave up on %d deliveries whose workers died or hung at the last attempt", len(buried))
    return sorted(ids)


def _close_abandoned(s: Session, outbox_ids: list[int], outcome: str, now: dt.datetime) -> None:
    """Record the unfinished attempts of these rows as ended by a lease that ran out."""
    if outbox_ids:
        s.execute(update(DeliveryAttempt).where(DeliveryAttempt.outbox_id.in_(outbox_ids),
                                                DeliveryAttempt.finished_at.is_(None))
                  .values(finished_at=now, outcome=outcome, detail=ABANDONED))


def deliver_one(sessions: sessionmaker[Session], backends: Backends, outbox_id: int, worker: str,
                policy: DeliveryPolicy) -> str:
    """Deliver one claimed row and record the outcome: delivered, retry later, or dead.

    Any exception from a backend is a failed attempt, recorded and retried like a helpdesk that is down: a bug
    or a bad setting must neither lose the ticket nor hold up the rows claimed with it.
    """
    with sessions() as s:
        row = s.get(Outbox, outbox_id)
        ticket = s.get(Ticket, row.ticket_id) if row is not None else None
        s.expunge_all()
    if row is None or ticket is None:
        return "gone"  # deleted since the claim
    lease = row.lease_until
    retryable, retry_after = True, None
    try:
        detail = backend_for(backends, row.backend).deliver(ticket, row.idempotency_key)
    except DeliveryError as exc:
        detail, retryable, retry_after = str(exc), exc.retryable, exc.retry_after
        outcome = "failed"
    except Exception as exc:
        log.exception("ticket %s: the %s backend raised", ticket.reference, row.backend)
        detail, outcome = f"{exc.__class__.__name__}: {exc}", "failed"
    else:
        outcome = "delivered"
    values: dict[str, Any] = {"state": "delivered", "delivered_at": utcnow(), "last_error": None}
    if outcome == "failed":
        if retryable and row.attempts < policy.max_attempts:
            outcome = "retry"
            values = {"state": "pending", "last_error": detail,
                      "next_attempt_at": utcnow() + dt.timedelta(seconds=policy.delay(row.attempts, retry_after))}
        else:
            outcome, values = "dead", {"state": "dead", "last_error": detail}
    with sessions() as s, s.begin():
        # Only the holder of the current claim records it: a worker that outlived its lease stays quiet.
        s.execute(update(Outbox).where(Outbox.id == outbox_id, Outbox.lease_until == lease)
                  .values(lease_until=None, **values))
        attempt = s.scalar(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id == outbox_id,
                                                         DeliveryAttempt.number == row.attempts,
                                                         DeliveryAttempt.worker == worker))
        if attempt is not None:
            attempt.finished_at, attempt.outcome, attempt.detail = utcnow(), outcome, detail[:2000]
    level = logging.WARNING if outcome != "delivered" else logging.INFO
    log.log(level, "ticket %s: %s (attempt %d): %s", ticket.reference, outcome, row.attempts, detail)
    return outcome


def deliver_due(sessions: sessionmaker[Session], backends: Backends, policy: DeliveryPolicy,
                worker: str | None = None) -> int:
    """Claim and deliver what is due now; return how many rows were handled."""
    worker = worker or worker_name()
    handled = 0
    while ids := claim(sessions, worker, policy):
        for outbox_id in ids:
            deliver_one(sessions, backends, outbox_id, worker, policy)
            handled += 1
    return handled


def run(sessions: sessionmaker[Session], settings: WorkerSettings, stop: threading.Event) -> None:
    """Deliver until ``stop`` is set, looking for due rows every ``settings.poll`` seconds."""
    worker = worker_name()
    poll = settings.poll
    log.info("delivery worker %s started (%s backend)", worker, settings.ticket_backend)
    purged_at = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() - purged_at > 24 * 3600 or not purged_at:
                removed = purge(sessions, settings.retention_days)
                purged_at = time.monotonic()
                if removed:
                    log.info("removed %d events older than %s days", removed, settings.retention_days)
            deliver_due(sessions, settings.backends, settings.policy, worker)
        except Exception:  # a database outage must not end the worker: log it and try again
            log.exception("delivery pass failed; retrying in %.0f s", max(poll, 5.0))
            stop.wait(max(poll, 5.0))
            continue
        stop.wait(poll)


def retry(sessions: sessionmaker[Session], reference: str) -> bool:
    """Make a ticket's delivery due now again (a dead letter gets a fresh set of attempts)."""
    with sessions() as s, s.begin():
        ticket = s.scalar(select(Ticket).where(Ticket.reference == reference))
        if ticket is None:
            return False
        s.execute(update(Outbox).where(Outbox.ticket_id == ticket.id, Outbox.state.in_(("dead", "pending")))
                  .values(state="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None))
    return True
