"""The ``kb`` command: thin wrappers over the search library, on Flask's CLI group."""

from __future__ import annotations

import html
import json
import logging
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from search import ArticleError, BuildReport, IndexCorrupt, IndexMissing, QueryError, build_index
from search.bench import run_bench
from search.check import check_articles
from search.engine import MODES, SearchEngine, hit_dict
from search.evaluate import METRICS, QueryFileError, evaluate, load_queries

from .config import search_config
from .search_service import service

_MARK_RE = re.compile(r"</?mark>")


class Progress:
    """A click progress bar a stage, on standard error, for the library's progress callbacks."""

    LABELS = {"read": "Reading articles", "analyse": "Indexing words", "embed": "Embedding passages"}

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: Any = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total <= 0:
            return
        if stage != self.stage:
            self.close()
            self.stage, self.done = stage, 0
            self.bar = click.progressbar(length=total, label=self.LABELS.get(stage, stage), file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _build(articles_dir: Path, index_dir: Path, **options: Any) -> BuildReport:
    """Build an index with a progress bar, naming every broken file and what is served instead."""
    progress = Progress()
    try:
        report = build_index(articles_dir, index_dir, service().embedder(), progress=progress, **options)
    except ArticleError as exc:
        _fail(str(exc))
    finally:
        progress.close()
    for error in report.errors:  # each says what is served instead: the last good version, or nothing
        click.echo(str(error), err=True)
    return report




@click.command("index")
@click.option("--articles", "articles_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of articles (default: KB_ARTICLES_DIR).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="Index folder to write (default: KB_INDEX_DIR, or <instance>/index).")
@click.option("--force", is_flag=True, help="Rebuild everything instead of updating what changed.")
@with_appcontext
def index_command(articles_dir: Path | None, output: Path | None, force: bool) -> None:
    """Build or update the search index from the articles folder."""
    svc = service()
    report = _build(articles_dir or svc.articles_dir, output or svc.index_dir, force=force)
    if report.unchanged:
        click.echo(f"Index {report.generation} is up to date: {report.articles} articles, nothing to do "
                   f"({report.seconds:.2f} s).")
    else:
        click.echo(f"Published index {report.generation}: {report.articles} articles ({report.added} added, "
                   f"{report.changed} changed, {report.removed} removed), {report.embedded} passages "
                   f"embedded, in {report.seconds:.1f} s.")
    if not report.dense:
        click.echo("Semantic search is off for this index (no embedding model): lexical search only.", err=True)


@click.command("search")
@click.argument("query")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--category", help="Only articles of this category.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def search_command(query: str, limit: int, category: str | None, mode: str, as_json: bool) -> None:
    """Search the index and print the ranked articles."""
    try:
        results = service().engine().search(query, limit=limit, category=category, mode=mode)
    except (IndexMissing, IndexCorrupt, QueryError) as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps({
            "query": results.query, "mode": results.mode, "total": results.total,
            "suggestion": results.suggestion, "fallback": results.fallback,
            "hits": [hit_dict(h) for h in results.hits],
        }, indent=1))
        return
    if results.fallback:
        click.echo("Semantic search is unavailable; these are lexical results only.", err=True)
    if results.suggestion:
        click.echo(f"Did you mean: {results.suggestion}")
    click.echo(f"{results.total} matching articles ({results.took_ms:.1f} ms)")
    for rank, hit in enumerate(results.hits, 1):
        dense = f"{hit.dense_score:.3f}" if hit.dense_score is not None else "-"
        click.echo(f"\n{rank:2}. {click.style(hit.title, bold=True)}  {hit.url}")
        click.echo(f"    score {hit.score:.3f}  (bm25f {hit.lexical_score:.3f}, semantic {dense})"
                   + (f"  § {hit.section}" if hit.section else ""))
        snippet = html.unescape(_MARK_RE.sub(lambda m: "]" if m.group(0) == "</mark>" else "[", hit.snippet))
        click.echo(f"    {snippet}")


@click.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def check_command(directory: Path | None) -> None:
    """Lint articles: front-matter, slugs, aliases, related articles, links and anchors."""
    root = directory or service().articles_dir
    problems = check_articles(root)
    for problem in problems:
        click.echo(str(problem))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    click.echo(f"{root}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}",
               err=True)
    if errors:
        sys.exit(1)


@click.command("eval")
@click.option("--articles", "articles_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of articles (default: KB_ARTICLES_DIR).")
@click.option("--queries", "queries_file", required=True, type=click.Path(dir_okay=False, exists=True,
              path_type=Path), help='JSON lines: {"query": "...", "relevant": ["slug", ...]}.')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--min-ndcg", type=click.FloatRange(0, 1), help="Fail when hybrid nDCG@10 is below this.")
@with_appcontext
def eval_command(articles_dir: Path | None, queries_file: Path, as_json: bool, min_ndcg: float | None) -> None:
    """Measure lexical, dense and hybrid ranking quality on labelled queries."""
    svc = service()
    try:
        queries = load_queries(queries_file)
    except QueryFileError as exc:
        _fail(str(exc))
    with tempfile.TemporaryDirectory(prefix="kb-eval-") as tmp:
        report = _build(articles_dir or svc.articles_dir, Path(tmp), cache_path=svc.index_dir / "embeddings.sqlite")
        engine = SearchEngine(tmp, svc.embedder(), search_config(svc.config))
        known = set(engine.slugs())
        for query in queries:
            for slug in sorted(query.relevant - known):
                click.echo(f"warning: query {query.query!r} names no article '{slug}'", err=True)
        modes = [m for m in ("lexical", "dense", "hybrid") if m == "lexical" or report.dense]
        scores = {mode: evaluate(lambda q, m=mode: [h.slug for h in engine.search(q, limit=10, mode=m).hits],
                                 queries) for mode in modes}
    if as_json:
        click.echo(json.dumps({"articles": report.articles, "queries": len(queries), "modes": scores}))
    else:
        click.echo(f"{report.articles} articles, {len(queries)} queries\n")
        click.echo("mode     " + "".join(f"{m:>11}" for m in METRICS))
        for mode, values in scores.items():
            click.echo(f"{mode:<9}" + "".join(f"{values[m]:>11.4f}" for m in METRICS))
    if min_ndcg is not None:
        hybrid = scores.get("hybrid", scores["lexical"])["ndcg@10"]
        if hybrid < min_ndcg:
            click.echo(f"hybrid nDCG@10 {hybrid:.4f} is below --min-ndcg {min_ndcg}", err=True)
            sys.exit(1)


@click.command("bench")
@click.option("--articles", "n_articles", default=1000, show_default=True, type=click.IntRange(10),
              help="How many synthetic articles to generate.")
@click.option("--queries", default=300, show_default=True, type=click.IntRange(2),
              help="How many queries to time per mode.")
@click.option("--seed-articles", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Articles whose text the synthetic corpus imitates (default: KB_ARTICLES_DIR).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--http", "over_http", is_flag=True,
              help="Load a real multi-worker server on loopback instead (corpus and index kept in "
                   "<instance>/bench for later runs).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="--http: server workers.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="--http: threads a worker.")
@click.option("--clients", default=16, show_default=True, type=click.IntRange(2, 512),
              help="--http: concurrent client connections.")
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(1),
              help="--http: seconds of load a page kind.")
@with_appcontext
def bench_command(n_articles: int, queries: int, seed_articles: Path | None, as_json: bool, over_http: bool,
                  workers: int, threads: int, clients: int, seconds: float) -> None:
    """Measure index build, update and query latency on a synthetic corpus (or, with --http, the server)."""
    import os

    from .http_bench import KINDS, run_http_bench

    svc = service()
    progress = Progress()
    seeds = seed_articles or svc.articles_dir
    try:
        if over_http:
            figures = run_http_bench(Path(svc.config["INSTANCE_DIR"]) / "bench", n_articles, seeds, svc.embedder(),
                                     workers=workers, threads=threads, clients=clients, seconds=seconds,
                                     env=dict(os.environ), progress=progress)
        else:
            figures = run_bench(n_articles, queries, seeds, svc.embedder(), progress=progress)
    except (ArticleError, RuntimeError, ValueError) as exc:
        _fail(str(exc))
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(figures))
        return
    if over_http:
        click.echo(f"{figures['articles']} articles, {workers} worker{'s' * (workers != 1)} x {threads} threads, "
                   f"{clients} clients; server RSS {figures['server_rss_mb']} MB")
        for kind in KINDS:
            f = figures[kind]
            click.echo(f"  {kind:<12} {f['rps']:>8} req/s  p50 {f['p50']} ms  p95 {f['p95']} ms  "
                       f"p99 {f['p99']} ms  errors {f['errors']}")
        return
    click.echo(f"{figures['articles']} articles: cold build {figures['build_seconds']} s, update after one "
               f"change {figures['update_one_seconds']} s, no-op re-index {figures['noop_reindex_seconds']} s, "
               f"peak RSS {figures['peak_rss_mb']} MB")
    for mode, cut in figures["latency_ms"].items():
        click.echo(f"  {mode:<8} p50 {cut['p50']} ms  p95 {cut['p95']} ms  p99 {cut['p99']} ms")


def _index_in_child(instance: str) -> None:
    """Build or update the index in a spawned process, so the server never loads the model itself."""
    from .serve import child_app

    app = child_app(instance)
    with app.app_context():
        svc = service()
        report = _build(svc.articles_dir, svc.index_dir)
        if not report.unchanged:
            click.echo(f"Published index {report.generation}: {report.articles} articles.", err=True)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads a worker.")
@click.option("--no-index", is_flag=True,
              help="Serve the index as it is (built elsewhere by 'kb index --output'); do not build or watch.")
@with_appcontext
def serve_command(host: str, port: int, workers: int, threads: int, no_index: bool) -> None:
    """Run the whole site on gunicorn: migrate the database, index the articles, serve, watch for edits."""
    from flask import current_app

    from .db import database
    from .serve import serve, spawn, start_watcher, start_worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    database().upgrade()
    watcher = None
    if not no_index:
        child = spawn(app, _index_in_child, "kb-index", daemon=False)
        child.join()
        if child.exitcode:
            _fail("could not build the search index (see above); fix the articles and try again")
        watcher = start_watcher(app)
    delivery = start_worker(app) if app.config["WORKER_IN_SERVE"] else None
    click.echo(f"Serving {app.config['SITE_NAME']} on http://{host}:{port}/ "
               f"({workers} worker{'s' * (workers != 1)} x {threads} threads)", err=True)
    try:
        serve(app, host, port, workers, threads)
    finally:
        for process in (watcher, delivery):
            if process is not None:
                process.terminate()


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Migration to upgrade to.")
@with_appcontext
def db_upgrade_command(revision: str) -> None:
    """Apply the database migrations (kb serve does this at start too)."""
    from .db import database

    db = database()
    db.upgrade(revision)
    click.echo(f"Database at revision {db.current()}: {db.engine.url.render_as_string(hide_password=True)}")


@db_group.command("current")
@with_appcontext
def db_current_command() -> None:
    """Print the database's migration revision."""
    from .db import database

    click.echo(database().current() or "(empty: run 'kb db upgrade')")


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@with_appcontext
def worker_command(once: bool) -> None:
    """Deliver tickets to the helpdesk (kb serve runs one too unless KB_WORKER_IN_SERVE is false)."""
    import signal
    import threading

    from flask import current_app

    from .db import database
    from .tickets import worker

    config = current_app.config
    if once:
        handled = worker.deliver_due(database().sessions, config)
        click.echo(f"{handled} deliver{'y' if handled == 1 else 'ies'} handled")
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"Delivering tickets through the {config['TICKET_BACKEND']} backend; Ctrl-C stops.", err=True)
    worker.run(database().sessions, config, stop, float(config["WORKER_POLL"]))


@click.group("tickets")
def tickets_group() -> None:
    """List tickets and retry their delivery."""


@tickets_group.command("list")
@click.option("--status", type=click.Choice(["open", "pending", "solved"]), help="Only tickets with this status.")
@click.option("--delivery", type=click.Choice(["pending", "sending", "delivered", "dead"]),
              help="Only tickets in this delivery state.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def tickets_list_command(status: str | None, delivery: str | None, limit: int, as_json: bool) -> None:
    """List tickets, newest first, with their delivery state."""
    from sqlalchemy import select

    from .db import database
    from .models import Outbox, Ticket, aware

    query = select(Ticket, Outbox).join(Outbox, Outbox.ticket_id == Ticket.id).order_by(Ticket.id.desc()).limit(limit)
    if status:
        query = query.where(Ticket.status == status)
    if delivery:
        query = query.where(Outbox.state == delivery)
    with database().sessions() as s:
        rows = [{
            "reference": t.reference, "status": t.status, "delivery_state": o.state, "backend": o.backend,
            "attempts": o.attempts, "last_error": o.last_error,
            "created_at": aware(t.created_at).isoformat(timespec="seconds"), "email": t.email,
            "name": t.name, "subject": t.subject, "topic": t.topic,
        } for t, o in s.execute(query)]
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
    from .db import database
    from .tickets import worker

    if not worker.retry(database().sessions, reference.strip().upper()):
        _fail(f"no ticket has the reference {reference}")
    click.echo(f"{reference.upper()} is queued for delivery; the worker sends it within seconds.")


@click.group("staff")
def staff_group() -> None:
    """Manage staff accounts."""


def _staff_password(from_stdin: bool, generate: bool, prompt: str) -> tuple[str, bool]:
    """Return a password read from standard input, generated (no terminal: nobody to prompt) or prompted for,
    and whether it was generated (then it is printed once)."""
    from .staff import generate_password

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if generate or not sys.stdin.isatty():
        return generate_password(), True
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True), False


@staff_group.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["editor", "support", "admin"]),
              help="editor: dashboard and link finder; support: tickets and link finder; admin: everything.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
@with_appcontext
def staff_add_command(email: str, role: str, password_stdin: bool, generate: bool) -> None:
    """Create a staff account (the password is prompted for unless read or generated)."""
    from .db import database
    from .staff import StaffError, add_staff

    password, generated = _staff_password(password_stdin, generate, "Password")
    try:
        with database().session() as s:
            add_staff(s, email, role, password)
    except StaffError as exc:
        _fail(str(exc))
    click.echo(f"Added {email.lower()} as {role}.")
    if generated:
        click.echo(f"Password (shown once): {password}")


@staff_group.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.option("--generate", is_flag=True, help="Generate a new password and print it once.")
@with_appcontext
def staff_password_command(email: str, password_stdin: bool, generate: bool) -> None:
    """Set a staff account's password; every session of the account ends at once."""
    from sqlalchemy import select

    from .db import database
    from .models import StaffUser
    from .staff import StaffError, change_password

    email = email.strip().lower()
    password, generated = _staff_password(password_stdin, generate, "New password")
    try:
        with database().session() as s:
            user = s.scalar(select(StaffUser).where(StaffUser.email == email))
            if user is None:
                _fail(f"no staff account for {email}")
            ended = change_password(s, user, password)
    except StaffError as exc:
        _fail(str(exc))
    click.echo(f"Changed the password of {email}; {ended} session{'s' * (ended != 1)} ended.")
    if generated:
        click.echo(f"Password (shown once): {password}")


@staff_group.command("list")
@with_appcontext
def staff_list_command() -> None:
    """List staff accounts."""
    from sqlalchemy import select

    from .db import database
    from .models import StaffUser, aware

    with database().sessions() as s:
        for user in s.scalars(select(StaffUser).order_by(StaffUser.email)):
            last = aware(user.last_login_at).strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
            click.echo(f"{user.email:<40} {user.role:<8} {'active' if user.active else 'disabled':<9} "
                       f"last sign-in {last}")


@staff_group.command("remove")
@click.argument("email")
@with_appcontext
def staff_remove_command(email: str) -> None:
    """Delete a staff account; its sessions end at once."""
    from sqlalchemy import delete

    from .db import database
    from .models import StaffUser

    with database().session() as s:
        removed = s.execute(delete(StaffUser).where(StaffUser.email == email.strip().lower())).rowcount
    if not removed:
        _fail(f"no staff account for {email}")
    click.echo(f"Removed {email.lower()}.")


LOCAL_SITE = "http://127.0.0.1:8000"  # where `kb serve` listens by default


def _ask_site(site: str, query: str) -> dict[str, Any] | None:
    """Return the best hit from a running site's search API, or None when no site answers in time."""
    import requests

    try:
        response = requests.get(f"{site.rstrip('/')}/api/search", params={"q": query, "limit": 1},
                                timeout=(0.5, 1.5), headers={"Accept": "application/json"})
        response.raise_for_status()
        found = response.json()
    except (requests.RequestException, ValueError):
        return None
    hits = found.get("hits") if isinstance(found, dict) else None
    return {"hit": hits[0] if hits else None}


@click.command("link")
@click.argument("query")
@click.option("--site", default=LOCAL_SITE, show_default=True,
              help="A running site to ask (its search API answers in milliseconds); the local index is searched "
                   "when it does not answer.")
@click.option("--semantic", is_flag=True,
              help="Without a running site, search semantically too (loads the embedding model: seconds).")
@click.option("--json", "as_json", is_flag=True, help="Print {url, title, section, source} as JSON.")
@with_appcontext
def link_command(query: str, site: str, semantic: bool, as_json: bool) -> None:
    """Print the deep link of the best article for a query (for scripts and reply macros)."""
    svc = service()
    base = str(svc.config["BASE_URL"] or "").rstrip("/")
    answer = _ask_site(site, query) if site else None
    if answer is not None:
        source, hit = site, answer["hit"]
    else:
        source = "local index" + (" (semantic)" if semantic else " (lexical)")
        try:
            engine = svc.engine() if semantic else SearchEngine(svc.index_dir, None, search_config(svc.config))
            found = engine.search(query, limit=1, mode="hybrid" if semantic else "lexical").hits
        except (IndexMissing, IndexCorrupt, QueryError) as exc:
            _fail(str(exc))
        hit = hit_dict(found[0]) if found else None
    if hit is None:
        click.echo(f"no article matches {query!r} (asked {source})", err=True)
        sys.exit(1)
    path = str(hit["url"])
    if path.startswith(("http://", "https://")):
        url = path
    elif base:
        url = base + path
    elif answer is not None:
        url = site.rstrip("/") + path
        click.echo(f"KB_BASE_URL is not set: this link points at {site}, the site asked. Set KB_BASE_URL to "
                   "the public address (https://help.example.com) for links customers can open.", err=True)
    else:
        url = path
        click.echo("KB_BASE_URL is not set and no site answered, so this link is relative: set KB_BASE_URL to "
                   "the public address (https://help.example.com).", err=True)
    if as_json:
        click.echo(json.dumps({"url": url, "title": hit["title"], "section": hit.get("section"),
                               "source": source}))
    else:
        click.echo(url)


@click.command("purge")
@click.option("--days", type=click.IntRange(1), help="Keep this many days (default: KB_RETENTION_DAYS).")
@with_appcontext
def purge_command(days: int | None) -> None:
    """Delete events older than the retention period (the delivery worker does this daily)."""
    from .db import database
    from .privacy import purge

    keep = days or int(service().config["RETENTION_DAYS"])
    removed = purge(database().sessions, keep)
    click.echo(f"Removed {removed} event{'s' * (removed != 1)} older than {keep} days.")


COMMANDS = (index_command, search_command, check_command, eval_command, bench_command, serve_command, db_group,
            worker_command, tickets_group, staff_group, link_command, purge_command)


def init_app(app: Flask) -> None:
    """Register the kb commands on the application's CLI group."""
    for command in COMMANDS:
        app.cli.add_command(command)


def main() -> None:
    """Run the kb command."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    from . import create_app
    from .security import ConfigError

    def make_app() -> Flask:
        try:
            return create_app()
        except ConfigError as exc:  # an unsafe configuration is a one-line refusal, not a traceback
            raise click.ClickException(str(exc)) from None

    FlaskGroup(name="kb", create_app=make_app, add_version_option=False,
               help="Run and manage the knowledge base: serve the site, index articles, search, check, "
                    "evaluate, benchmark, migrate the database.").main(prog_name="kb")


if __name__ == "__main__":
    main()
