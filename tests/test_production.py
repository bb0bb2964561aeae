"""Production: health checks, the production mode's refusals, many processes sharing PostgreSQL, Redis and
one read-only index, and faults (a database outage, a corrupted or half-built index)."""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from kb_site import create_app
from kb_site.security import ConfigError
from tests.conftest import REDIS_URL, csrf_token, free_port, make_site, need_service
from tests.tcp_proxy import TcpProxy
from tests.test_live import wait_for


def test_healthz_and_readyz(app):
    """/healthz answers while the process is up; /readyz names the database, the index and the search mode."""
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.get_json()["checks"]
    assert checks["database"] == "ok" and checks["index"].startswith("gen-") and checks["search"] == "hybrid"


def test_readyz_says_what_is_missing(tmp_path, corpus, fake_embedder):
    """No index, or no database: 503 with the reason and a retry hint."""
    from kb_site.db import EXTENSION, Database

    app = create_app({"INSTANCE_DIR": str(tmp_path / "i"), "ARTICLES_DIR": str(corpus), "EMBEDDER": fake_embedder})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json()["checks"]["index"].startswith("unavailable")
    site = make_site(tmp_path, corpus, fake_embedder)
    site.extensions[EXTENSION] = Database("postgresql+psycopg://postgres@127.0.0.1:1/none")
    down = site.test_client().get("/readyz")
    assert down.status_code == 503 and down.get_json()["checks"]["database"].startswith("unreachable")


def test_lexical_fallback_is_ready_and_announced(tmp_path, corpus):
    """Without a model the site is ready and says search is lexical."""
    site = make_site(tmp_path, corpus, None, EMBEDDING_MODEL="none")
    body = site.test_client().get("/readyz").get_json()
    assert body["status"] == "ready" and body["checks"]["search"].startswith("lexical only")


@pytest.mark.parametrize("key, problem", [(None, "needs KB_SECRET_KEY"), ("changeme", "too weak"),
                                          ("a" * 40, "too weak")])
def test_production_refuses_missing_or_weak_keys(tmp_path, key, problem):
    """KB_ENV=production will not start without a strong secret key."""
    config = {"INSTANCE_DIR": str(tmp_path), "ENV": "production"}
    if key:
        config["SECRET_KEY"] = key
    with pytest.raises(ConfigError, match=problem):
        create_app(config)


def test_production_refuses_debug_and_secures_cookies(tmp_path):
    """Debug mode is refused; with a good key cookies are Secure."""
    key = uuid.uuid4().hex + uuid.uuid4().hex
    with pytest.raises(ConfigError, match="debug"):
        create_app({"INSTANCE_DIR": str(tmp_path), "ENV": "production", "SECRET_KEY": key, "DEBUG": True})
    app = create_app({"INSTANCE_DIR": str(tmp_path), "ENV": "production", "SECRET_KEY": key})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert not (tmp_path / "secret_key").exists()  # production never invents a key of its own


def test_kb_serve_refuses_to_start_in_production_without_a_key(tmp_path):
    """The command exits with the reason, not a traceback."""
    env = {**os.environ, "KB_ENV": "production", "KB_INSTANCE_DIR": str(tmp_path)}
    env.pop("KB_SECRET_KEY", None)
    result = subprocess.run([sys.executable, "-m", "kb_site.cli", "serve"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "needs KB_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_stops_kb_with_its_name_and_no_traceback(tmp_path):
    """A value that does not fit its setting's type: one line naming it, exit 1, for kb serve and kb --help."""
    env = {**os.environ, "KB_INSTANCE_DIR": str(tmp_path), "KB_WORKER_IN_SERVE": "maybe"}
    for args in (["serve"], ["--help"]):
        result = subprocess.run([sys.executable, "-m", "kb_site.cli", *args], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert "Error: KB_WORKER_IN_SERVE must be true or false" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert result.returncode == (1 if args == ["serve"] else 0)


def _start(env: dict[str, str], port: int, cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(cwd / f"serve-{port}.log", "wb") as log:  # the child keeps its own copy of the file
        return subprocess.Popen([sys.executable, "-m", "kb_site.cli", "serve", "--port", str(port), *args],
                                env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _up(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except (urllib.error.URLError, OSError):
        return False


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_two_servers_share_postgresql_redis_and_one_read_only_index(tmp_path, corpus, postgres_server):
    """Two `kb serve --no-index` processes: one database, one rate limit across both, one read-only index."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        need_service("Redis", str(exc))
    index = tmp_path / "shared-index"
    env = {**os.environ, "KB_ARTICLES_DIR": str(corpus), "KB_EMBEDDING_MODEL": "none",
           "KB_DATABASE_URL": postgres_server, "KB_RATELIMIT_STORAGE_URI": REDIS_URL,
           "KB_RATELIMIT_SEARCH": "6 per minute", "KB_INDEX_DIR": str(index),
           "KB_SECRET_KEY": uuid.uuid4().hex * 2, "KB_WORKER_IN_SERVE": "false"}
    built = subprocess.run([sys.executable, "-m", "kb_site.cli", "index", "--output", str(index)],
                           env={**env, "KB_INSTANCE_DIR": str(tmp_path / "builder")}, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    for path in [index, *index.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    ports = [free_port(), free_port()]
    prefix = f"kb-test-{uuid.uuid4().hex}"  # this test's own counters in the shared Redis
    servers = [_start({**env, "KB_INSTANCE_DIR": str(tmp_path / f"machine-{n}"), "KB_RATELIMIT_KEY_PREFIX": prefix},
                      port, tmp_path, "--no-index", "--workers", "2") for n, port in enumerate(ports)]
    try:
        for port in ports:
            assert wait_for(lambda p=port: _up(f"http://127.0.0.1:{p}/readyz"), timeout=60), \
                (tmp_path / f"serve-{port}.log").read_text()
        statuses = [_status(f"http://127.0.0.1:{ports[i % 2]}/api/search?q=refund") for i in range(8)]
        assert statuses[:6] == [200] * 6 and statuses[6:] == [429, 429]  # 6 per minute in all, not per process
        engine = sa.create_engine(postgres_server)

        def views() -> int:
            with engine.connect() as c:
                return int(c.execute(sa.text("SELECT count(*) FROM events WHERE kind = 'view'")).scalar() or 0)

        try:
            before = views()  # the session's database: earlier tests' events may be there
            article = urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/articles/return-policy").read().decode()
            assert "Return policy" in article
            # The page is everybody's; its script reports the view (written in batches, to the shared database).
            urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/visitor.json?article=return-policy").read()
            assert wait_for(lambda: views() == before + 1, timeout=10)
        finally:
            engine.dispose()
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        for path in [index, *index.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_database_outage_answers_503_and_recovers_without_restart(tmp_path, corpus, fake_embedder,
                                                                  postgres_server):
    """The database unreachable (every connection cut, new ones refused) under concurrent traffic: votes get 503
    with Retry-After, pages still render; when it is back, the same process serves everything again."""
    url = sa.engine.make_url(postgres_server)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    app = make_site(tmp_path, corpus, fake_embedder,
                    DATABASE_URL=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    client = app.test_client()
    headers = {"X-CSRFToken": csrf_token(client), "Accept": "application/json"}

    def vote() -> int:
        return client.post("/articles/return-policy/feedback", data={"helpful": "yes"}, headers=headers).status_code

    assert vote() == 200

    def traffic(n: int) -> list[tuple[str, int, str | None]]:
        """Votes and page views from one more visitor, as during real traffic."""
        other = app.test_client()
        hdrs = {"X-CSRFToken": csrf_token(other, "/articles/return-policy"), "Accept": "application/json"}
        seen = []
        for _ in range(n):
            r = other.post("/articles/return-policy/feedback", data={"helpful": "no"}, headers=hdrs)
            seen.append(("vote", r.status_code, r.headers.get("Retry-After")))
            seen.append(("page", other.get("/articles/refund-timescales").status_code, None))
        return seen

    proxy.stop()
    with ThreadPoolExecutor(4) as pool:
        during = [x for batch in pool.map(traffic, [5] * 4) for x in batch]
    assert {status for kind, status, _ in during if kind == "page"} == {200}  # reading never needs the database
    assert {(status, retry) for kind, status, retry in during if kind == "vote"} == {(503, "5")}
    assert client.get("/readyz").status_code == 503
    proxy.start()
    assert wait_for(lambda: vote() == 200, timeout=15)
    with ThreadPoolExecutor(4) as pool:
        after = [x for batch in pool.map(traffic, [3] * 4) for x in batch]
    assert {status for _, status, _ in after} == {200}
    assert client.get("/readyz").status_code == 200
    app.extensions["kb_db"].engine.dispose()
    proxy.stop()
    gc.collect()  # connections cut mid-outage are closed now, not in another test


def test_corrupted_index_is_rebuilt_at_start(tmp_path, corpus):
    """A truncated index file is detected when kb serve starts; it rebuilds instead of crashing."""
    instance = tmp_path / "instance"
    env = {**os.environ, "KB_INSTANCE_DIR": str(instance), "KB_ARTICLES_DIR": str(corpus),
           "KB_EMBEDDING_MODEL": "none", "KB_RELOAD_INTERVAL": "0", "KB_WORKER_IN_SERVE": "false"}
    subprocess.run([sys.executable, "-m", "kb_site.cli", "index"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    generation = instance / "index" / (instance / "index" / "CURRENT").read_text().strip()
    next(generation.rglob("docs.json")).write_text("[{\"trunc")  # a block's (see search.generation)
    port = free_port()
    server = _start(env, port, tmp_path)
    try:
        assert wait_for(lambda: _up(f"http://127.0.0.1:{port}/readyz"), timeout=60), \
            (tmp_path / f"serve-{port}.log").read_text()
        assert "Return policy" in urllib.request.urlopen(f"http://127.0.0.1:{port}/articles/return-policy").read(
            ).decode()
        assert "rebuilding the index from scratch" in (tmp_path / f"serve-{port}.log").read_text()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def test_killed_kb_index_leaves_the_site_serving(tmp_path, corpus, app, fake_embedder):
    """SIGKILL during `kb index --force`: the site keeps serving the previous index; the next run completes."""
    index = Path(app.instance_path) / "index"
    before = (index / "CURRENT").read_text()
    for n in range(400):  # enough work that the kill lands mid-build
        (corpus / "orders" / f"bulk-{n}.md").write_text(f"---\ntitle: Bulk {n}\n---\n\n" + "words here " * 300)
    env = {**os.environ, "KB_INSTANCE_DIR": app.instance_path, "KB_ARTICLES_DIR": str(corpus),
           "KB_EMBEDDING_MODEL": "none"}
    process = subprocess.Popen([sys.executable, "-m", "kb_site.cli", "index", "--force"], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: any(index.glob(".tmp-gen-*")), timeout=30, step=0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert (index / "CURRENT").read_text() == before
    client = app.test_client()
    assert client.get("/articles/return-policy").status_code == 200
    assert client.get("/api/search?q=refund").status_code == 200
    done = subprocess.run([sys.executable, "-m", "kb_site.cli", "index"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert client.get("/articles/bulk-7").status_code == 200
    assert not list(index.glob(".tmp-gen-*"))
    assert json.loads((index / (index / "CURRENT").read_text().strip() / "manifest.json").read_text())[
        "articles"] == 412


def test_postgresql_restart_under_load(tmp_path, corpus, fake_embedder, postgres_server):
    """PostgreSQL restarted while 4 visitors vote and read: failures are clean 503s with a retry hint, every
    acknowledged vote is stored, and the site serves again without being restarted."""
    import threading

    from sqlalchemy import select

    from kb_site.db import database
    from kb_site.models import Vote

    control = shutil.which("pg_ctlcluster")
    if control is None:
        need_service("PostgreSQL restart (pg_ctlcluster)", "not installed")
    app = make_site(tmp_path, corpus, fake_embedder, DATABASE_URL=postgres_server)
    stop = threading.Event()
    seen: list[tuple[str, int, str | None]] = []
    acknowledged: list[int] = []
    lock = threading.Lock()

    def visitor() -> None:
        while not stop.is_set():
            client = app.test_client()  # a new visitor each round: a new vote row each time
            headers = {"X-CSRFToken": csrf_token(client, "/articles/return-policy"), "Accept": "application/json"}
            r = client.post("/articles/return-policy/feedback", data={"helpful": "yes"}, headers=headers)
            page = client.get("/articles/refund-timescales").status_code
            with lock:
                seen.append(("vote", r.status_code, r.headers.get("Retry-After")))
                seen.append(("page", page, None))
                if r.status_code == 200:
                    acknowledged.append(r.get_json()["vote"]["id"])

    threads = [threading.Thread(target=visitor) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        restarted = subprocess.run([control, "15", "main", "restart"], capture_output=True, text=True, timeout=60)
        assert restarted.returncode == 0, restarted.stderr
        time.sleep(2)
        with lock:
            before = len(seen)
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert {status for kind, status, _ in seen if kind == "page"} == {200}
    assert {(status, retry) for kind, status, retry in seen if kind == "vote"} <= {(200, None), (503, "5")}
    refused = {(status, retry) for kind, status, retry in seen if kind == "vote"}
    assert (503, "5") in refused, "no request met the outage"
    assert {status for kind, status, _ in seen[before:] if kind == "vote"} == {200}  # recovered, same process
    with app.app_context(), database().sessions() as s:
        stored = set(s.scalars(select(Vote.id)))
    assert set(acknowledged) <= stored
    app.extensions["kb_db"].engine.dispose()
