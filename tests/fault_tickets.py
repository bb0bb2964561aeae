"""Fault figure: votes and tickets survive a SIGKILL of the whole server.

Starts `kb serve` (2 web workers and its delivery worker, SMTP backend to an in-process aiosmtpd),
submits tickets and votes from concurrent clients, SIGKILLs every server process at a random moment,
restarts it, lets clients finish, waits for delivery, and counts what was acknowledged, stored,
delivered, and duplicated.

    python -m tests.fault_tickets [--database sqlite|postgresql] [--tickets 200] [--votes 200] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests
import sqlalchemy as sa

from tests.conftest import free_port
from tests.receivers import SmtpSink

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "fixtures" / "corpus"


class Server:
    """`kb serve` in its own process group, so one SIGKILL takes every process it started."""

    def __init__(self, env: dict[str, str], port: int, cwd: Path):
        self.env, self.port, self.cwd = env, port, cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.log = open(cwd / "serve.log", "ab")  # noqa: SIM115 - closed in stop()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kb_site.cli", "serve", "--port", str(self.port), "--workers", "2",
             "--threads", "4"], env=self.env, cwd=self.cwd, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/contact", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"kb serve did not start: see {self.cwd / 'serve.log'}")

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        self.log.close()


def submit(base: str, n: int) -> str | None:
    """Send one ticket as a browser does; return its reference if the server acknowledged it."""
    client = requests.Session()
    page = client.get(f"{base}/contact", timeout=10).text
    fields = dict(re.findall(r'<input[^>]*?id="(source|rendered|confirm)"[^>]*?value="([^"]*)"', page))
    fields["csrf_token"] = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    data = {**fields, "confirm": "1", "name": f"Customer {n}", "email": f"customer{n}@example.com",
            "topic": "returns", "subject": f"Fault test ticket {n}", "message": "Where is my refund? " * 3}
    response = client.post(f"{base}/contact", data=data, allow_redirects=False, timeout=10)
    if response.status_code == 303:
        return response.headers["X-Ticket-Reference"]
    raise RuntimeError(f"ticket {n} answered {response.status_code}")


def vote(base: str, n: int) -> int:
    """Vote on an article as a new visitor; return the vote's id once the server acknowledged it."""
    client = requests.Session()
    client.get(f"{base}/articles/return-policy", timeout=10).raise_for_status()
    # The article page is the same for everybody; its script asks for the visitor's token, as here.
    token = client.get(f"{base}/visitor.json", params={"article": "return-policy"}, timeout=10).json()["csrf_token"]
    response = client.post(f"{base}/articles/return-policy/feedback", timeout=10,
                           data={"helpful": "no" if n % 3 else "yes", "reason": "unclear" if n % 3 else ""},
                           headers={"X-CSRFToken": token, "Accept": "application/json"})
    if response.status_code == 200:
        return int(response.json()["vote"]["id"])
    raise RuntimeError(f"vote {n} answered {response.status_code}")


def run(database: str, tickets: int, clients: int, votes: int = 0) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="kb-fault-"))
    shutil.copytree(CORPUS, work / "articles")
    admin = None
    if database == "postgresql":
        admin = sa.create_engine(os.environ.get("KB_TEST_POSTGRES_URL",
                                                "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
                                 isolation_level="AUTOCOMMIT")
        name = f"kb_fault_{os.getpid()}"
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{work / 'kb.sqlite3'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    voted: list[int] = []
    lock = threading.Lock()
    next_number = iter(range(10**9))
    with SmtpSink() as sink:
        env = {**os.environ, "KB_INSTANCE_DIR": str(work / "instance"), "KB_ARTICLES_DIR": str(work / "articles"),
               "KB_DATABASE_URL": url, "KB_EMBEDDING_MODEL": "none", "KB_TICKET_BACKEND": "smtp",
               "KB_SMTP_HOST": "127.0.0.1", "KB_SMTP_PORT": str(sink.port), "KB_SMTP_TO": "desk@helpdesk.example",
               "KB_CONTACT_MIN_SECONDS": "0", "KB_RATELIMIT_ENABLED": "false", "KB_DELIVERY_LEASE": "5",
               "KB_WORKER_POLL": "0.2", "KB_DELIVERY_BACKOFF": "0.5", "KB_RELOAD_INTERVAL": "0",
               "PYTHONPATH": str(ROOT)}
        server = Server(env, port, work)
        server.start()
        failures = Counter[str]()

        in_flight = [0, 0]

        stop_by = time.monotonic() + 600  # a bounded run, whatever goes wrong

        def client() -> None:
            while time.monotonic() < stop_by:
                with lock:
                    want_ticket = len(acknowledged) + in_flight[0] < tickets
                    want_vote = len(voted) + in_flight[1] < votes
                    if not want_ticket and not want_vote:
                        if not any(in_flight):
                            return
                        kind = None
                    else:
                        kind = 0 if want_ticket and (not want_vote or random.random() < 0.5) else 1
                        in_flight[kind] += 1
                if kind is None:
                    time.sleep(0.05)
                    continue
                try:
                    done = submit(base, next(next_number)) if kind == 0 else vote(base, next(next_number))
                except Exception as exc:  # noqa: BLE001 - any failure is counted; a dead thread would hang the run
                    failures[exc.__class__.__name__] += 1
                    done = None
                with lock:
                    in_flight[kind] -= 1
                    if done is not None:
                        (acknowledged if kind == 0 else voted).append(done)  # type: ignore[attr-defined]
                if done is None:
                    time.sleep(0.2)  # the server is down: a customer tries again

        threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        kill_at = random.uniform(0.2, 0.7) * (tickets + votes)
        give_up = time.monotonic() + 300
        while len(acknowledged) + len(voted) < kill_at:
            if time.monotonic() > give_up:
                server.stop()
                raise RuntimeError(f"only {len(acknowledged) + len(voted)} writes acknowledged in 300 s: {failures}")
            time.sleep(0.01)
        server.kill()
        killed_after = len(acknowledged) + len(voted)
        server.start()
        for t in threads:
            t.join(max(0.0, stop_by - time.monotonic()))
        if any(t.is_alive() for t in threads):
            server.stop()
            raise RuntimeError(f"clients still busy after 600 s: {failures}")
        engine = sa.create_engine(url)
        deadline = time.monotonic() + 120
        with engine.connect() as c:
            while time.monotonic() < deadline:
                pending = c.execute(sa.text("SELECT count(*) FROM outbox WHERE state != 'delivered'")).scalar()
                c.commit()
                if not pending:
                    break
                time.sleep(0.5)
            stored = {r for (r,) in c.execute(sa.text("SELECT reference FROM tickets"))}
            vote_ids = {v for (v,) in c.execute(sa.text("SELECT id FROM votes"))}
            dead = c.execute(sa.text("SELECT count(*) FROM outbox WHERE state = 'dead'")).scalar()
        engine.dispose()
        server.stop()
        seconds = time.monotonic() - started
        keys = Counter(m.message["X-KB-Reference"] for m in sink.messages)
    if admin is not None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    shutil.rmtree(work, ignore_errors=True)
    acked = set(acknowledged)
    return {
        "database": database, "votes_acknowledged": len(set(voted)), "votes_lost": len(set(voted) - vote_ids),
        "acknowledged": len(acked), "killed_after_acknowledged": killed_after,
        "stored": len(stored), "acknowledged_lost": len(acked - stored), "delivered": len(set(keys)),
        "undelivered": len(stored - set(keys)), "dead_letters": dead,
        "messages": sum(keys.values()), "duplicates_before_idempotency": sum(keys.values()) - len(keys),
        # After dropping repeats by key, does the helpdesk hold any ticket twice (or one we never stored)?
        "duplicates_after_idempotency": len(keys) - len(set(keys) & stored),
        "client_errors_while_down": sum(failures.values()), "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--votes", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.database, args.tickets, args.clients, args.votes)
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
