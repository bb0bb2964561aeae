"""Shared fixtures: a fixture corpus, the real model (once a session), a fake embedder, the app."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from kb_site import create_app
from kb_site.cli import kb
from kb_site.http_bench import free_port
from search import Embedder, SearchEngine, build_index, choose_embedder
from tests.fakes import HashingEmbedder

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus"


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    """The packaged all-MiniLM-L6-v2 as the site runs it (int8 on ONNX Runtime), loaded once a session."""
    embedder = choose_embedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder) -> Path:
    """An index over the fixture corpus built with the real model, shared by read-only tests."""
    index = tmp_path_factory.mktemp("real-index")
    build_index(CORPUS, index, real_embedder)
    return index


@pytest.fixture(scope="session")
def real_engine(real_index: Path, real_embedder: Embedder) -> SearchEngine:
    return SearchEngine(real_index, real_embedder)


@pytest.fixture(scope="session")
def bundled_engine(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder) -> SearchEngine:
    """The bundled sample articles indexed with the real model, shared by read-only tests."""
    index = tmp_path_factory.mktemp("bundled-index")
    build_index(Path(__file__).parent.parent / "articles", index, real_embedder)
    return SearchEngine(index, real_embedder, pages=True)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private, writable copy of the fixture corpus."""
    target = tmp_path / "articles"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder()


class KbCliRunner(FlaskCliRunner):
    """Run ``kb`` as a user does (its own commands, then the application's) against the test application."""

    def invoke(self, cli=None, args=None, **kwargs):
        return super().invoke(cli or kb, args, **kwargs)


def with_kb(app: Flask) -> Flask:
    """Make the application's ``test_cli_runner()`` run the ``kb`` command."""
    app.test_cli_runner_class = KbCliRunner
    return app


@pytest.fixture
def bare_app(tmp_path: Path, corpus: Path, fake_embedder: HashingEmbedder):
    """The application on a temporary instance folder, the corpus copy and the fake embedder: no database
    tables, no index (for the commands that make them)."""
    return with_kb(create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "ARTICLES_DIR": str(corpus),
                               "EMBEDDER": fake_embedder, "TESTING": True}))


@pytest.fixture
def runner(bare_app):
    return bare_app.test_cli_runner()


POSTGRES_URL = os.environ.get("KB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def need_service(name: str, problem: str) -> None:
    """Skip a test whose service is absent, except in CI (KB_REQUIRE_SERVICES=1), where it fails."""
    message = f"{name} is not reachable ({problem})"
    if os.environ.get("KB_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}; KB_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A throw-away PostgreSQL database for this test session, dropped at the end."""
    # No pooled connection: a test restarts PostgreSQL, and the drop at the end must still work.
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"kb_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        need_service("PostgreSQL", str(exc.orig).strip().splitlines()[0])
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    """A fresh, empty database: SQLite in the test's folder, or the session's PostgreSQL emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    url = request.getfixturevalue("postgres_server")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def make_site(tmp_path: Path, corpus: Path, embedder, **config):
    """An application with its database migrated and its index built: ready to serve."""
    from kb_site.db import database

    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "ARTICLES_DIR": str(corpus),
                      "EMBEDDER": embedder, "TESTING": True, "RATELIMIT_ENABLED": False, "INDEX_CHECK_SECONDS": 0,
                      "EVENT_FLUSH_SECONDS": 0,
                      **config})
    with app.app_context():
        database().upgrade()
    build_index(corpus, Path(app.instance_path) / "index", embedder)
    return with_kb(app)


@pytest.fixture
def app(tmp_path: Path, corpus: Path, fake_embedder: HashingEmbedder):
    """The site on SQLite with the fixture corpus indexed by the fake embedder: migrated, built, ready."""
    built = make_site(tmp_path, corpus, fake_embedder)
    yield built
    built.extensions["kb_db"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def any_db_site(tmp_path: Path, corpus: Path, fake_embedder: HashingEmbedder, database_url: str):
    """The site on each database: SQLite, and PostgreSQL."""
    app = make_site(tmp_path, corpus, fake_embedder, DATABASE_URL=database_url)
    yield app
    app.extensions["kb_db"].engine.dispose()


def csrf_token(client, path: str = "/") -> str:
    """Return the CSRF token a page hands to its visitor: in the page (private pages), or through the script's
    /visitor.json (public pages are the same for everybody and carry none)."""
    import re

    html = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    if found:
        return found.group(1)
    assert "/static/js/site." in html, f"{path} has no token and no script to ask for one"
    return client.get("/visitor.json").get_json()["csrf_token"]


def read_article(client, slug: str, referrer: str | None = None, **kwargs):
    """Open an article as a browser does: the page (the same for everybody), then the call its script makes,
    which records the view (and the click, from a results page) and hands over the visitor's token and vote.
    Return the page response; ``kwargs`` go to both requests (``environ_base=``, say)."""
    headers = {"Referer": referrer} if referrer else {}
    page = client.get(f"/articles/{slug}", headers=headers, **kwargs)
    assert page.status_code == 200, page.status_code
    query = {"article": slug, **({"referrer": referrer} if referrer else {})}
    client.get("/visitor.json", query_string=query, **kwargs)
    return page


def wait_for(check, timeout: float = 10.0, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


@contextlib.contextmanager
def serving(tmp_path: Path, corpus: Path, **env: str):
    """Run `kb serve` as a user starts it, lexical-only (no model in the child), on a free port; yield its URL."""
    with serving_process(tmp_path, corpus, **env) as (base, _process):
        yield base


@contextlib.contextmanager
def serving_process(tmp_path: Path, corpus: Path, **env: str):
    """Run `kb serve` as `serving` does; yield its URL and its process (the gunicorn arbiter)."""
    port = free_port()
    env = {**os.environ, "KB_INSTANCE_DIR": str(tmp_path / "instance"), "KB_ARTICLES_DIR": str(corpus),
           "KB_EMBEDDING_MODEL": "none", "KB_RELOAD_INTERVAL": "0.5", **env}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "kb_site.cli", "serve", "--port", str(port), "--threads", "2"],
                               cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return urllib.request.urlopen(base + "/", timeout=2).status == 200
        except (urllib.error.URLError, OSError):
            return process.poll() is not None

    wait_for(up, timeout=60)
    try:
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        yield base, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
        log.close()


@pytest.fixture
def served(tmp_path, corpus):
    """`kb serve` on the corpus copy: yields its URL and the test's folder."""
    with serving(tmp_path, corpus) as base:
        yield base, tmp_path
