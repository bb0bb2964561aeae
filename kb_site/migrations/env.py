"""Alembic environment: runs on the connection kb_site hands over (``kb db upgrade``, ``kb serve``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from kb_site.models import Base

LOCK_ID = 0x6B62  # "kb": one migrator at a time on a shared PostgreSQL


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:  # the alembic command line, for writing new migrations: alembic -x url=... revision --autogenerate
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("Give the database: alembic -x url=postgresql+psycopg://... (or sqlite:///path)")
    with create_engine(url).connect() as own:
        run(own)
        own.commit()
