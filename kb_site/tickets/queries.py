"""The ticket queue as staff and ``kb tickets`` see it: filtered lists, one ticket, its history, status changes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from ..models import DeliveryAttempt, Outbox, Ticket, TicketChange, utcnow
from . import worker

STATUSES = ("open", "pending", "solved")
DELIVERY_STATES = ("pending", "sending", "delivered", "dead")


@dataclass(frozen=True)
class Queue:
    """One page of tickets, newest first, with how many match and how many have each status."""

    rows: tuple[tuple[Ticket, Outbox], ...]
    total: int
    counts: dict[str, int]


@dataclass(frozen=True)
class History:
    """What happened to a ticket: its delivery attempts and the staff's changes, oldest first."""

    attempts: tuple[DeliveryAttempt, ...]
    changes: tuple[TicketChange, ...]


def _with_outbox() -> Select[Ticket, Outbox]:
    return select(Ticket, Outbox).join(Outbox, Outbox.ticket_id == Ticket.id)


def queue(s: Session, *, status: str | None = None, topic: str | None = None, delivery: str | None = None,
          limit: int = 50, offset: int = 0) -> Queue:
    """Return the tickets matching every filter given, newest first, ``limit`` of them from ``offset``."""
    query = _with_outbox()
    if status:
        query = query.where(Ticket.status == status)
    if topic:
        query = query.where(Ticket.topic == topic)
    if delivery:
        query = query.where(Outbox.state == delivery)
    total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = tuple((t, o) for t, o in s.execute(query.order_by(Ticket.id.desc()).limit(limit).offset(offset)))
    counts = {name: int(n) for name, n in s.execute(select(Ticket.status, func.count()).group_by(Ticket.status))}
    return Queue(rows=rows, total=int(total), counts=counts)


def find(s: Session, reference: str) -> tuple[Ticket, Outbox] | None:
    """Return the ticket with this reference (in any case) and its outbox row, or None."""
    row = s.execute(_with_outbox().where(Ticket.reference == reference.strip().upper())).first()
    return None if row is None else (row[0], row[1])


def history(s: Session, ticket: Ticket, outbox: Outbox) -> History:
    """Return the ticket's delivery attempts and status changes."""
    attempts = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id == outbox.id)
                         .order_by(DeliveryAttempt.id)).all()
    changes = s.scalars(select(TicketChange).where(TicketChange.ticket_id == ticket.id)
                        .order_by(TicketChange.id)).all()
    return History(attempts=tuple(attempts), changes=tuple(changes))


def set_status(s: Session, ticket: Ticket, status: str, staff_email: str) -> bool:
    """Move a ticket to ``status``, noting who did it; return whether it changed (the caller commits)."""
    if status not in STATUSES:
        raise ValueError(f"Status must be one of {', '.join(STATUSES)}.")
    if ticket.status == status:
        return False
    s.add(TicketChange(ticket_id=ticket.id, staff=staff_email, change=f"status {ticket.status} → {status}"))
    ticket.status, ticket.updated_at = status, utcnow()
    return True


def retry_delivery(sessions: sessionmaker[Session], ticket: Ticket, staff_email: str) -> None:
    """Make a ticket's delivery due now again, noting in its history who asked."""
    worker.retry(sessions, ticket.reference)
    with sessions() as s, s.begin():
        s.add(TicketChange(ticket_id=ticket.id, staff=staff_email, change="delivery retried"))
