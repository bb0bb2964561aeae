"""The browser tests' own server: a response the client abandons is still closed."""

from __future__ import annotations

from pathlib import Path

from werkzeug.wsgi import FileWrapper

from tests.browser.conftest import closing


def test_an_abandoned_response_closes_its_file(tmp_path: Path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 100_000)
    opened = path.open("rb")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return FileWrapper(opened, 8192)

    body = closing(app)({}, lambda status, headers: None)
    assert next(iter(body)) == b"x" * 8192
    del body  # what werkzeug does when the connection drops: no close(), only the last reference gone
    assert opened.closed
