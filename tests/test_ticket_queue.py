"""The ticket queue functions the staff views and kb tickets share."""

from __future__ import annotations

from kb_site import tickets
from kb_site.db import database
from kb_site.tickets import NewTicket, create_ticket


def _open(s, topic: str = "returns", backend: str = "local"):
    new = NewTicket(name="Sam Carter", email="sam@example.com", subject="Refund not arrived",
                    message="I sent my boots back.", topic=topic)
    return create_ticket(s, new, backend, visit=None, trail=[])


def test_queue_filters_counts_and_pages(app):
    """queue() returns the newest first, the total matching, counts by status, and one page of them."""
    with app.app_context(), database().sessions() as s:
        first, second, third = _open(s), _open(s, topic="orders"), _open(s, backend="webhook")
        with s.begin():
            assert tickets.set_status(s, first, "solved", "ana@shop.example")
        everything = tickets.queue(s)
        assert [t.reference for t, _ in everything.rows] == [third.reference, second.reference, first.reference]
        assert everything.total == 3 and everything.counts == {"open": 2, "solved": 1}
        assert [t.reference for t, _ in tickets.queue(s, topic="orders").rows] == [second.reference]
        assert [t.reference for t, _ in tickets.queue(s, delivery="pending").rows] == [third.reference]
        assert [t.reference for t, _ in tickets.queue(s, status="solved").rows] == [first.reference]
        page = tickets.queue(s, limit=1, offset=1)
        assert [t.reference for t, _ in page.rows] == [second.reference] and page.total == 3


def test_find_history_status_and_retry(app):
    """find() ignores case; set_status and retry_delivery leave who did what in the history."""
    with app.app_context():
        sessions = database().sessions
        with sessions() as s:
            ticket = _open(s, backend="webhook")
            assert tickets.find(s, "KB-0000-00") is None
            found, outbox = tickets.find(s, f" {ticket.reference.lower()} ")
            assert found.id == ticket.id and outbox.ticket_id == ticket.id
            assert tickets.set_status(s, found, "pending", "ana@shop.example")
            assert not tickets.set_status(s, found, "pending", "ana@shop.example")  # no change, no entry
            s.commit()
            tickets.retry_delivery(sessions, found, "bo@shop.example")
            past = tickets.history(s, found, outbox)
        assert [(c.staff, c.change) for c in past.changes] == [("ana@shop.example", "status open → pending"),
                                                               ("bo@shop.example", "delivery retried")]
        assert past.attempts == ()
