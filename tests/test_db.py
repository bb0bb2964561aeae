"""Database migrations: Alembic's schema is the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from kb_site import db as kb_db
from kb_site.db import Database
from kb_site.models import Base


def head() -> str:
    return ScriptDirectory.from_config(Database("sqlite://").alembic_config()).get_current_head()


def test_migrations_create_exactly_the_models(database_url):
    """After `upgrade head` there is nothing left for autogenerate to add or change."""
    db = Database(database_url)
    db.upgrade()
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    db.engine.dispose()
    assert diff == []
    db = Database(database_url)
    db.upgrade()  # idempotent
    assert db.current() == head()
    db.engine.dispose()


def test_kb_db_upgrade_command(runner, bare_app):
    """kb db upgrade migrates the configured database and names the revision."""
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"Database at revision {head()}" in result.output
    assert runner.invoke(args=["db", "current"]).output.strip() == head()


def test_database_url_defaults_and_normalises():
    """SQLite in the instance folder by default; postgres:// URLs use psycopg 3."""
    assert kb_db.database_url("", Path("/srv/kb")) == "sqlite:////srv/kb/kb.sqlite3"
    assert kb_db.database_url("postgres://u@h/db", Path(".")) == "postgresql+psycopg://u@h/db"
    assert kb_db.database_url("postgresql://u@h/db", Path(".")) == "postgresql+psycopg://u@h/db"
