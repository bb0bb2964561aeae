"""`kb serve` on its own, without a reverse proxy: slow and idle clients, warm-up, the link command."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import pytest
import requests

from kb_site import create_app
from kb_site.db import database
from search import build_index
from tests.conftest import free_port, serving, serving_process, wait_for
from tests.fakes import HashingEmbedder


def tuple_of(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def _half_open(base: str, count: int) -> list[socket.socket]:
    """Open ``count`` connections that send a request line and one header, then never finish the request."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(tuple_of(base), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no final blank line: the headers never end
        sockets.append(sock)
    return sockets


def _timed_get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
        return response.status, time.monotonic() - started


def test_fifty_idle_half_open_connections_do_not_stall_the_site(served):
    """50 half-open sockets (headers never finished) and 50 silent ones: the site still answers within 1 s."""
    base, _folder = served
    idle = _half_open(base, 50)
    idle += [socket.create_connection(tuple_of(base), timeout=5) for _ in range(50)]  # connect, send nothing
    try:
        time.sleep(0.5)  # let the server take them all in
        for path in ("/healthz", "/articles/return-policy", "/healthz", "/search?q=refund"):
            status, seconds = _timed_get(base + path)
            assert status == 200
            assert seconds < 1.0, f"{path} took {seconds:.2f} s with 100 idle connections open"
    finally:
        for sock in idle:
            sock.close()


class SlowLoadingEmbedder(HashingEmbedder):
    """The fake embedder behind a model load that takes as long as the test says (like a cold start)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self.release.wait(30)
        self._loaded = True

    def encode(self, texts, *, progress=None):
        if not self._loaded:
            self.load()
        return super().encode(texts, progress=progress)


def test_search_answers_lexically_at_once_while_the_model_loads(tmp_path, corpus):
    """The first searches during warm-up answer from the lexical index, flagged; hybrid once the model is in."""
    embedder = SlowLoadingEmbedder()
    build_index(corpus, tmp_path / "instance" / "index", HashingEmbedder())
    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "ARTICLES_DIR": str(corpus),
                      "EMBEDDER": embedder, "TESTING": True, "RATELIMIT_ENABLED": False})
    with app.app_context():
        database().upgrade()
    client = app.test_client()
    started = time.monotonic()
    body = client.get("/api/search?q=refund").get_json()
    assert time.monotonic() - started < 2.0
    assert body["fallback"] is True and body["hits"]
    page = client.get("/search?q=refund").get_data(as_text=True)
    assert "match your words only" in page
    assert client.get("/readyz").status_code == 503  # not ready until the model is in: load balancers wait
    embedder.release.set()
    assert wait_for(lambda: not client.get("/api/search?q=refund+money").get_json()["fallback"], timeout=10)
    assert client.get("/readyz").get_json()["checks"]["search"] == "hybrid"


def test_kb_link_asks_the_running_site_and_says_which(served, app, fake_embedder):
    """`kb link --site URL` answers from the site's API and, with no KB_BASE_URL, prints the site's own URL."""
    base, _folder = served
    fake_embedder.encoded.clear()  # what building the site's index embedded
    result = app.test_cli_runner().invoke(args=["link", "--site", base, "--json", "print a returns label"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["url"] == f"{base}/articles/return-policy#print-a-returns-label"
    assert answer["source"] == base
    assert "KB_BASE_URL is not set" in result.stderr and base in result.stderr
    assert fake_embedder.encoded == []  # the site answered: nothing was embedded here
    app.config["BASE_URL"] = "https://help.shop.example"
    result = app.test_cli_runner().invoke(args=["link", "--site", base, "print a returns label"])
    assert result.stdout.strip() == "https://help.shop.example/articles/return-policy#print-a-returns-label"
    assert result.stderr == ""


def test_kb_link_without_a_site_searches_lexically_unless_asked(app, fake_embedder):
    """No site answering: the local index is searched by words (no model), or semantically with --semantic."""
    nobody = f"http://127.0.0.1:{free_port()}"
    fake_embedder.encoded.clear()  # what building the site's index embedded
    result = app.test_cli_runner().invoke(args=["link", "--site", nobody, "--json", "print a returns label"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["url"] == "/articles/return-policy#print-a-returns-label"
    assert answer["source"] == "local index (lexical)"
    assert "relative" in result.stderr and "KB_BASE_URL" in result.stderr
    assert fake_embedder.encoded == []  # no model was asked for
    result = app.test_cli_runner().invoke(args=["link", "--site", nobody, "--semantic", "--json",
                                                 "print a returns label"])
    assert json.loads(result.stdout)["source"] == "local index (semantic)"
    assert fake_embedder.encoded  # --semantic used the embedder
    result = app.test_cli_runner().invoke(args=["link", "--site", nobody, "zzzqqq xxyyvv"])
    assert result.exit_code == 1 and "no article matches" in result.stderr


def test_unfinished_headers_get_408_and_are_closed_after_the_deadline(tmp_path, corpus):
    """A connection that never finishes its headers is answered 408 and closed after KB_HEADER_TIMEOUT."""
    with serving(tmp_path, corpus, KB_HEADER_TIMEOUT="1") as base:
        [slow] = _half_open(base, 1)
        with slow, socket.create_connection(tuple_of(base), timeout=5) as silent:
            started = time.monotonic()
            answer = slow.recv(200)
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert silent.recv(200).startswith(b"HTTP/1.1 408")
            assert time.monotonic() - started < 4
            assert slow.recv(200) == b""  # closed
        status, _ = _timed_get(base + "/healthz")  # a prompt client is served as before
        assert status == 200


def test_connections_beyond_the_limit_get_503_at_once(tmp_path, corpus):
    """A worker holds at most KB_MAX_CONNECTIONS; the next ones are told to come back, not left hanging."""
    with serving(tmp_path, corpus, KB_MAX_CONNECTIONS="5") as base:
        held = [socket.create_connection(tuple_of(base), timeout=5) for _ in range(5)]
        time.sleep(0.3)
        try:
            with socket.create_connection(tuple_of(base), timeout=5) as extra:
                assert extra.recv(200).startswith(b"HTTP/1.1 503")
        finally:
            for sock in held:
                sock.close()
        assert wait_for(lambda: _timed_get(base + "/healthz")[0] == 200, timeout=5)


def test_every_visitor_gets_a_session_and_can_send_a_form(served):
    """Each request has its own context under the server: fresh visitors get their own session, token and vote."""
    base, _folder = served
    tokens = set()
    for _ in range(3):
        with requests.Session() as visitor:
            state = visitor.get(f"{base}/visitor.json?article=return-policy", timeout=10)
            assert "session" in visitor.cookies, state.headers
            token = state.json()["csrf_token"]
            vote = visitor.post(f"{base}/articles/return-policy/feedback", data={"helpful": "yes"}, timeout=10,
                                headers={"X-CSRFToken": token, "Accept": "application/json"})
            assert vote.status_code == 200, vote.text
            tokens.add(token)
    assert len(tokens) == 3


def test_the_server_answers_fresh_public_pages_from_its_cache(tmp_path, corpus):
    """Under `kb serve` a page it rendered is answered again without Flask, byte for byte with every header,
    304 to a current copy; a vote shows once the cached copy is older than KB_PAGE_CACHE_SECONDS."""
    with serving(tmp_path, corpus, KB_PAGE_CACHE_SECONDS="1") as base:
        first = requests.get(f"{base}/articles/return-policy", timeout=10)
        again = requests.get(f"{base}/articles/return-policy", timeout=10)
        assert again.content == first.content and again.headers["ETag"] == first.headers["ETag"]
        for name in ("Content-Security-Policy", "X-Content-Type-Options", "Cache-Control", "Last-Modified"):
            assert again.headers[name] == first.headers[name]
        tag = first.headers["ETag"]
        for condition in (tag, f'W/{tag}', f'"other", {tag}'):
            fresh = requests.get(f"{base}/articles/return-policy", headers={"If-None-Match": condition}, timeout=10)
            assert fresh.status_code == 304 and fresh.content == b"" and fresh.headers["ETag"] == tag
        assert requests.get(f"{base}/articles/return-policy", headers={"If-None-Match": '"other"'},
                            timeout=10).status_code == 200
        with requests.Session() as visitor:
            token = visitor.get(f"{base}/visitor.json", timeout=10).json()["csrf_token"]
            visitor.post(f"{base}/articles/return-policy/feedback", data={"helpful": "yes"}, timeout=10,
                         headers={"X-CSRFToken": token, "Accept": "application/json"}).raise_for_status()
        counted = wait_for(lambda: "1 of 1 found this helpful" in requests.get(
            f"{base}/articles/return-policy", timeout=10).text, timeout=15)
        assert counted
        changed = requests.get(f"{base}/articles/return-policy", headers={"If-None-Match": tag}, timeout=10)
        assert changed.status_code == 200 and changed.headers["ETag"] != tag


@pytest.mark.model
def test_workers_serve_hybrid_search_without_torch(tmp_path, corpus):
    """With the default int8 model, kb serve's workers answer hybrid searches and never load torch; the
    index they search was opened in the arbiter before the fork."""
    import psutil

    with serving_process(tmp_path, corpus, KB_EMBEDDING_MODEL="") as (base, process):
        assert wait_for(lambda: requests.get(base + "/readyz", timeout=5).json()["checks"]["search"] == "hybrid",
                        timeout=60)
        assert requests.get(base + "/api/search?q=where+is+my+parcel", timeout=5).json()["fallback"] is False
        workers = psutil.Process(process.pid).children(recursive=True)
        assert workers
        for worker in workers:
            mapped = {m.path for m in worker.memory_maps()}
            assert not [p for p in mapped if "/torch/" in p], f"worker {worker.pid} loaded torch"
        assert any("onnxruntime" in p for w in workers for p in {m.path for m in w.memory_maps()})
        # The arbiter opened the index before forking (the workers share its pages), but no model.
        arbiter = {m.path for m in psutil.Process(process.pid).memory_maps()}
        assert any(p.endswith("/articles.npy") for p in arbiter), "the index was not opened before the fork"
        assert not [p for p in arbiter if "onnxruntime" in p or "/torch/" in p]


def test_stopping_kb_serve_leaves_no_traceback(tmp_path, corpus):
    """SIGTERM stops the arbiter, its workers, the watcher and the delivery worker, with no traceback logged."""
    with serving(tmp_path, corpus) as base:
        assert requests.get(base + "/healthz", timeout=5).status_code == 200
    log = (tmp_path / "serve.log").read_text()
    assert "Shutting down: Master" in log
    assert "Traceback" not in log and "Exception ignored" not in log, log
