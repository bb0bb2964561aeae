"""Real receivers for ticket delivery: an SMTP server (aiosmtpd) and an HTTP endpoint, in-process."""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.conftest import free_port


@dataclass
class Received:
    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage


class SmtpSink:
    """An SMTP server on a free local port that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.reject_with: str | None = None  # e.g. "550 no such mailbox"
        self.port = free_port()  # aiosmtpd checks its own port after starting: it cannot be 0
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.reject_with:
            return self.reject_with
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A webhook endpoint: answers each POST with the next scripted status (then 200), keeps the requests."""

    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0  # seconds to stall before answering (a hung helpdesk)
    port: int = 0
    requests: list[Request] = field(default_factory=list)

    def keys(self) -> list[str]:
        """Return the idempotency keys received, one per request."""
        return [r.headers["idempotency-key"] for r in self.requests]

    def __enter__(self) -> HttpReceiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Request({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status < 300 else b'{"error": "scripted"}')

            def log_message(self, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client killed mid-request (the SIGKILL tests) is expected, not news

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tickets"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
