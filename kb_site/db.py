"""The database: one SQLAlchemy engine an application, a session a request, Alembic migrations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
from flask import Flask, current_app, g
from flask.cli import with_appcontext
from sqlalchemy import CursorResult, Delete, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

EXTENSION = "kb_db"
MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(url: str, instance: Path) -> str:
    """Return the configured database URL, SQLite in the instance folder by default, PostgreSQL via psycopg 3."""
    if not url:
        return f"sqlite:///{instance / 'kb.sqlite3'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    """Create an engine: SQLite in WAL mode with a busy timeout, PostgreSQL with pre-ping."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            # WAL: readers never wait for the writer; NORMAL sync survives a killed process.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # Dates are grouped by day in UTC, whatever the server's own time zone.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10,
                         connect_args={"options": "-c timezone=UTC"})



def delete_rows(s: Session, statement: Delete) -> int:
    """Run a DELETE and return how many rows it removed."""
    return cast("CursorResult[Any]", s.execute(statement)).rowcount or 0

class Database:
    """The engine and session factory of one application."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def alembic_config(self) -> Config:
        from alembic.config import Config  # imported when needed: the CLI's quick commands never migrate

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def upgrade(self, revision: str = "head") -> None:
        """Apply the migrations up to ``revision``."""
        from alembic import command

        with self.engine.begin() as connection:
            config = self.alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def current(self) -> str | None:
        """Return the database's migration revision (None before the first upgrade)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Migration to upgrade to.")
@with_appcontext
def db_upgrade_command(revision: str) -> None:
    """Apply the database migrations (kb serve does this at start too)."""
    db = database()
    db.upgrade(revision)
    click.echo(f"Database at revision {db.current()}: {db.engine.url.render_as_string(hide_password=True)}")


@db_group.command("current")
@with_appcontext
def db_current_command() -> None:
    """Print the database's migration revision."""
    click.echo(database().current() or "(empty: run 'kb db upgrade')")


def init_app(app: Flask) -> None:
    """Create the application's engine, close the request's session at teardown, and add ``kb db``."""
    app.extensions[EXTENSION] = Database(database_url(app.config["DATABASE_URL"], Path(app.config["INSTANCE_DIR"])))
    app.cli.add_command(db_group)

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def database() -> Database:
    """Return the current application's database."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def session() -> Session:
    """Return the current request's session (created on first use, closed at teardown)."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    return g.db_session  # type: ignore[no-any-return]
