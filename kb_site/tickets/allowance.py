"""How many tickets one client address and one email address may open: only accepted tickets count.

The contact form checks the allowance before opening a ticket and spends it only once the ticket is stored, so
a form with errors, a deflection step, a bot drop or a repeat of a sent form costs nothing. Counters live in
Flask-Limiter's storage (memory, or Redis shared by every process).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.strategies import RateLimiter

log = logging.getLogger(__name__)
NAMESPACE = "kb-tickets"


@dataclass(frozen=True)
class Allowance:
    """The contact form's limits, each counting one thing: a client address, an email address."""

    strategy: RateLimiter
    limits: tuple[tuple[str, RateLimitItem], ...]  # (what is counted, its limit)

    @classmethod
    def from_settings(cls, strategy: RateLimiter, **settings: str) -> Allowance:
        """Return the allowance for limit strings such as ``address="5 per hour", email="5 per hour"``."""
        return cls(strategy, tuple((scope, item) for scope, text in settings.items() if text
                                   for item in parse_many(text)))

    def wait(self, keys: dict[str, str | None]) -> float:
        """Return the seconds before another ticket is accepted for these keys; 0 means now.

        An unreachable limit store never costs a ticket: the limit fails open, and the log says why.
        """
        longest = 0.0
        try:
            for scope, item in self.limits:
                if key := keys.get(scope):
                    reset, remaining = self.strategy.get_window_stats(item, NAMESPACE, scope, key)
                    if remaining <= 0:
                        longest = max(longest, reset - time.time(), 1.0)
        except Exception:  # the store's errors differ by backend (redis, memcached...): all of them mean "open"
            log.exception("ticket rate limit unavailable: accepting the ticket unchecked")
            return 0.0
        return longest

    def spend(self, keys: dict[str, str | None]) -> None:
        """Count one accepted ticket against each key."""
        try:
            for scope, item in self.limits:
                if key := keys.get(scope):
                    self.strategy.hit(item, NAMESPACE, scope, key)
        except Exception:
            log.exception("ticket rate limit unavailable: this ticket was not counted")


def in_words(seconds: float) -> str:
    """Return a wait the way a person says it: "less than a minute", "about 40 minutes", "about 3 hours"."""
    if seconds < 60:
        return "less than a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return "about a minute" if minutes == 1 else f"about {minutes} minutes"
    if seconds < 90 * 60:
        return "about an hour"
    if seconds < 36 * 3600:
        return f"about {round(seconds / 3600)} hours"
    days = round(seconds / 86400)
    return "about a day" if days == 1 else f"about {days} days"
