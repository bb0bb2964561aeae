"""Delivery backends: an email to the helpdesk's inbound address, or a signed webhook."""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import requests
from email_validator import EmailNotValidError, validate_email

from ..models import Ticket, aware
from .text import one_line


class DeliveryError(Exception):
    """A failed delivery; ``retryable`` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def reply_to(name: str, address: str) -> Address | None:
    """Return the customer as a Reply-To address, or None when the address cannot go in a plain header.

    An internationalised local part (``josé@...``, which the form accepts) needs SMTPUTF8 end to end; such a
    ticket still goes, with the address in the body for the agent.
    """
    try:
        valid = validate_email(one_line(address), check_deliverability=False)
        if valid.ascii_email is None:
            return None
        return Address(display_name=one_line(name), addr_spec=valid.ascii_email)
    except (EmailNotValidError, ValueError):  # email's header defects are ValueErrors too
        return None


def ticket_payload(ticket: Ticket, key: str) -> dict[str, Any]:
    """Return the ticket as the JSON a helpdesk receives."""
    return {
        "reference": ticket.reference, "idempotency_key": key,
        "created_at": aware(ticket.created_at).isoformat(timespec="seconds"),
        "customer": {"name": ticket.name, "email": ticket.email},
        "subject": ticket.subject, "message": ticket.message, "topic": ticket.topic,
        "order_number": ticket.order_number, "source": ticket.source, "trail": json.loads(ticket.trail or "[]"),
        "channel": ticket.channel, "page": ticket.page,
    }


def trail_text(trail: list[dict[str, Any]]) -> str:
    """Return the trail as lines an agent reads at a glance."""
    lines: list[str] = []
    for step in trail:
        at = step.get("at", "")[11:16]
        where, before = (f" (widget on {step['page']})" if step.get("page") else ""), len(lines)
        if step["kind"] == "search":
            found = step.get("results")
            lines.append(f"{at}  searched “{step.get('query', '')}”" + (f" ({found} results)" if found is not None
                                                                          else ""))
        elif step["kind"] == "view":
            lines.append(f"{at}  read “{step.get('title')}” ({step.get('article')})")
        elif step["kind"] == "click":
            lines.append(f"{at}  opened “{step.get('title')}” from the search for “{step.get('query', '')}”")
        elif step["kind"] == "vote":
            verdict = "helpful" if step.get("helpful") else "not helpful" + (
                f" ({step['reason']})" if step.get("reason") else "")
            lines.append(f"{at}  voted “{step.get('title')}” {verdict}")
        elif step["kind"] == "deflection":
            lines.append(f"{at}  opened suggested article “{step.get('title')}” from the contact form")
        if where and len(lines) > before:
            lines[-1] += where
    return "\n".join(lines) or "(no searches or articles before contacting us)"


def ticket_text(ticket: Ticket) -> str:
    """Return the plain-text body of the ticket email."""
    trail = json.loads(ticket.trail or "[]")
    facts = [("Reference", ticket.reference), ("From", f"{ticket.name} <{ticket.email}>"), ("Topic", ticket.topic)]
    if ticket.order_number:
        facts.append(("Order", ticket.order_number))
    if ticket.source:
        facts.append(("Came from", ticket.source))
    if ticket.channel == "widget":
        facts.append(("Sent from", f"the help widget on {ticket.page or 'a shop page'}"))
    head = "\n".join(f"{k}: {v}" for k, v in facts)
    return f"{head}\n\n{ticket.message}\n\n-- What the customer tried first --\n{trail_text(trail)}\n"


@dataclass(frozen=True)
class SmtpBackend:
    """Send the ticket as an email to the helpdesk's inbound address (Zendesk, Freshdesk, Help Scout...)."""

    host: str
    port: int
    sender: str
    to: str
    tls: str = "none"  # none | starttls | ssl
    username: str = ""
    password: str = ""
    timeout: float = 30.0

    def message(self, ticket: Ticket, key: str) -> EmailMessage:
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = self.sender
        msg["To"] = self.to
        customer = reply_to(ticket.name, ticket.email)
        if customer is not None:
            msg["Reply-To"] = customer
        msg["Subject"] = f"[{ticket.reference}] {one_line(ticket.subject)}"
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or "kb.invalid"
        msg["Message-ID"] = f"<{key}@{domain}>"  # the same on every retry: helpdesks thread and dedupe by it
        msg["Date"] = format_datetime(aware(ticket.created_at))
        msg["X-KB-Reference"] = ticket.reference
        msg["Idempotency-Key"] = key
        msg.set_content(ticket_text(ticket))
        return msg

    def deliver(self, ticket: Ticket, key: str) -> str:
        msg = self.message(ticket, key)
        try:
            smtp_class = smtplib.SMTP_SSL if self.tls == "ssl" else smtplib.SMTP
            with smtp_class(self.host, self.port, timeout=self.timeout) as smtp:
                if self.tls == "starttls":
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password)
                # Envelope recipients are fixed: nothing in a header can add another.
                refused = smtp.send_message(msg, from_addr=parseaddr(self.sender)[1], to_addrs=[self.to])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"recipient refused: {exc.recipients}",
                                retryable=any(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                                retryable=not 500 <= exc.smtp_code < 600) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"cannot reach {self.host}:{self.port}: {exc}", retryable=True) from None
        if refused:
            raise DeliveryError(f"recipient refused: {refused}", retryable=True)
        return f"sent to {self.to} as {msg['Message-ID']}"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the webhook signature: HMAC-SHA256 of ``timestamp.body`` with the shared secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookBackend:
    """POST the ticket as signed JSON to the helpdesk's endpoint."""

    url: str
    secret: str
    timeout: float = 10.0

    def deliver(self, ticket: Ticket, key: str) -> str:
        body = json.dumps(ticket_payload(ticket, key), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json", "Idempotency-Key": key, "X-KB-Timestamp": timestamp,
            "X-KB-Signature": f"sha256={signature(self.secret, timestamp, body)}",
            "User-Agent": "kb-site ticket delivery",
        }
        try:
            response = requests.post(self.url, data=body, headers=headers, timeout=self.timeout,
                                     allow_redirects=False)
        except requests.RequestException as exc:
            raise DeliveryError(f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}", retryable=True) \
                from None
        if 200 <= response.status_code < 300:
            return f"HTTP {response.status_code} from {self.url}"
        retry_after = _retry_after(response.headers.get("Retry-After"))
        retryable = response.status_code in (408, 429) or response.status_code >= 500
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}", retryable=retryable,
                            retry_after=retry_after)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Backends:
    """The configured delivery backends; an outbox row names the one it goes through."""

    smtp: SmtpBackend
    webhook: WebhookBackend

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Backends:
        """Return the backends the ``KB_SMTP_*`` and ``KB_WEBHOOK_*`` settings describe (coerced already)."""
        return cls(SmtpBackend(host=config["SMTP_HOST"], port=config["SMTP_PORT"], sender=config["SMTP_FROM"],
                               to=config["SMTP_TO"], tls=config["SMTP_TLS"], username=config["SMTP_USERNAME"],
                               password=config["SMTP_PASSWORD"]),
                   WebhookBackend(url=config["WEBHOOK_URL"], secret=config["WEBHOOK_SECRET"],
                                  timeout=config["WEBHOOK_TIMEOUT"]))


def backend_for(backends: Backends, name: str) -> SmtpBackend | WebhookBackend:
    """Return the backend for an outbox row, once its settings are complete."""
    if name == "smtp":
        if not backends.smtp.to:
            raise DeliveryError("KB_SMTP_TO (the helpdesk's inbound address) is not set", retryable=True)
        return backends.smtp
    if name == "webhook":
        if not backends.webhook.url or not backends.webhook.secret:
            raise DeliveryError("KB_WEBHOOK_URL and KB_WEBHOOK_SECRET must both be set", retryable=True)
        return backends.webhook
    raise DeliveryError(f"no delivery backend called {name!r}", retryable=False)
