"""``kb worker`` and ``kb tickets``: deliver tickets to the helpdesk, list them, retry their delivery."""

from __future__ import annotations

import json
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from ..db import database
from ..models import aware
from . import worker
from .queries import DELIVERY_STATES, STATUSES, queue


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@with_appcontext
def worker_command(once: bool) -> None:
    """Deliver tickets to the helpdesk (kb serve runs one too unless KB_WORKER_IN_SERVE is false)."""
    import signal
    import threading

    config = current_app.config
    if once:
        settings = worker.WorkerSettings.from_config(config)
        handled = worker.deliver_due(database().sessions, settings.backends, settings.policy)
        click.echo(f"{handled} deliver{'y' if handled == 1 else 'ies'} handled")
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"Delivering tickets through the {config['TICKET_BACKEND']} backend; Ctrl-C stops.", err=True)
    worker.run(database().sessions, worker.WorkerSettings.from_config(config), stop)


@click.group("tickets")
def tickets_group() -> None:
    """List tickets and retry their delivery."""


@tickets_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only tickets with this status.")
@click.option("--delivery", type=click.Choice(DELIVERY_STATES), help="Only tickets in this delivery state.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def tickets_list_command(status: str | None, delivery: str | None, limit: int, as_json: bool) -> None:
    """List tickets, newest first, with their delivery state."""
    with database().sessions() as s:
        rows: list[dict[str, Any]] = [{
            "reference": t.reference, "status": t.status, "delivery_state": o.state, "backend": o.backend,
            "attempts": o.attempts, "last_error": o.last_error,
            "created_at": aware(t.created_at).isoformat(timespec="seconds"), "email": t.email,
            "name": t.name, "subject": t.subject, "topic": t.topic,
        } for t, o in queue(s, status=status, delivery=delivery, limit=limit).rows]
    if as_json:
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    for r in rows:
        error = f"  ({r['last_error'][:60]})" if r["last_error"] and r["delivery_state"] != "delivered" else ""
        click.echo(f"{r['reference']}  {r['created_at'][:16]}  {r['status']:<7} {r['delivery_state']:<9} "
                   f"{r['email']:<30} {r['subject'][:50]}{error}")
    click.echo(f"{len(rows)} ticket{'s' * (len(rows) != 1)}", err=True)


@tickets_group.command("retry")
@click.argument("reference")
@with_appcontext
def tickets_retry_command(reference: str) -> None:
    """Deliver a ticket again now (a dead letter gets a fresh set of attempts)."""
    if not worker.retry(database().sessions, reference.strip().upper()):
        raise click.ClickException(f"no ticket has the reference {reference}")
    click.echo(f"{reference.upper()} is queued for delivery; the worker sends it within seconds.")
