"""`kb serve` on its own, without a reverse proxy: slow and idle clients, warm-up, the link command."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

from kb_site import create_app
from kb_site.db import database
from search import build_index
from tests.conftest import wait_for
from tests.fakes import HashingEmbedder


def _half_open(base: str, count: int) -> list[socket.socket]:
    """Open ``count`` connections that send a request line and one header, then never finish the request."""
    host, port = base.removeprefix("http://").split(":")
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=5)
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
    host, port = base.removeprefix("http://").split(":")
    idle += [socket.create_connection((host, int(port)), timeout=5) for _ in range(50)]  # connect, send nothing
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
