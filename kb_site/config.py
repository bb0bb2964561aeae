"""Every setting once: its name, default, type and help. Read from ``KB_*`` environment variables."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from search import fusion
from search.embeddings import PRECISIONS
from search.engine import SearchConfig


class ConfigError(RuntimeError):
    """A setting that is malformed or makes it unsafe to start."""


@dataclass(frozen=True)
class Setting:
    """One configuration key; the environment variable is ``KB_`` + name."""

    name: str
    default: Any
    help: str
    type: type[str | int | float | bool] | None = None  # None: the type of the default
    choices: tuple[str, ...] = ()  # the only values a text setting may take, when it is a choice
    minimum: float | None = None  # the least value a number setting may take

    @property
    def env(self) -> str:
        return f"KB_{self.name}"

    def coerce(self, value: Any) -> Any:
        """Return the value as this setting's type, or raise ConfigError saying what was expected."""
        convert, expected = COERCIONS[self.type or type(self.default)]
        try:
            converted = convert(value)
        except (TypeError, ValueError):
            # Objects from a config file are named by type: their repr may be long, or hold a secret key.
            shown = repr(value) if isinstance(value, str | int | float) else f"a {type(value).__name__}"
            raise ConfigError(f"{self.env} must be {expected}, not {shown}") from None
        if self.choices and converted not in self.choices:
            raise ConfigError(f"{self.env} must be one of {', '.join(self.choices)}, not {converted!r}")
        if self.minimum is not None and converted < self.minimum:
            raise ConfigError(f"{self.env} must be at least {self.minimum:g}, not {converted!r}")
        return converted


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()  # SECRET_KEY = b"..." in the instance config, as Flask's docs write it
    if isinstance(value, os.PathLike):
        return os.fspath(value)  # type: ignore[return-value]
    # from_prefixed_env decoded it as JSON (a numeric password, "true"): give back the text it was.
    return json.dumps(value)


def _whole(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)  # True is an int to Python, not to a person setting a count
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):  # JSON decodes NaN and Infinity: no setting means either
        raise ValueError(value)
    return number


TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()  # 1 and 0 arrive as ints, "TRUE" and "yes" as text
    if word in TRUE | FALSE:
        return word in TRUE
    raise ValueError(value)


COERCIONS: dict[type, tuple[Callable[[Any], Any], str]] = {
    str: (_text, "text"),
    int: (_whole, "a whole number"),
    float: (_number, "a number"),
    bool: (_flag, "true or false (or yes/no, on/off, 1/0)"),
}


SETTINGS: tuple[Setting, ...] = (
    Setting("ENV", "development",
            "`production` refuses to start without a strong `KB_SECRET_KEY` or with debug on, and marks cookies "
            "Secure (https only)."),
    Setting("INSTANCE_DIR", "./instance",
            "Folder for the site's own data: search index, embedding cache, database, secret key."),
    Setting("SITE_NAME", "Northwind Outfitters Help Centre", "Name shown in page titles and the header."),
    Setting("SHOP_NAME", "Northwind Outfitters",
            "The shop's name, for the header's \"Back to <shop>\" link and the footer."),
    Setting("SHOP_URL", "",
            "Address of the shop (`https://shop.example.com`): the header links back to it. Empty: no link."),
    Setting("LOGO", "",
            "Logo image shown in the header (SVG, PNG, WebP or JPEG), a path relative to the instance folder "
            "or the articles folder; empty means `logo.svg` or `logo.png` in either, if there is one (the "
            "bundled articles carry the sample shop's)."),
    Setting("BRAND_COLOR", "#1f5f4a",
            "The brand colour of the header, buttons and links (`#rrggbb`); it must keep white text readable "
            "(contrast 4.5:1): too light a colour is refused at start with a darker one suggested. The dark "
            "scheme derives its own shade."),
    Setting("FOOTER_LINKS", "",
            "Links in the footer as JSON, label to address: "
            "`{\"Privacy\": \"https://shop.example.com/privacy\", \"Terms\": \"/terms\"}`."),
    Setting("PAGE_CACHE_SECONDS", 60,
            "How long browsers and CDNs may keep a public page (home, topics, articles) before asking again; "
            "they may show it that long again while they revalidate.", minimum=0),
    Setting("PAGE_CACHE_MB", 64.0,
            "Memory each process keeps for rendered public pages (by page and ETag).", minimum=0),
    Setting("BASE_URL", "",
            "Public address of the site (`https://help.example.com`) for canonical links and the sitemap; "
            "empty means the address of each request."),
    Setting("DATABASE_URL", "",
            "SQLAlchemy database URL; empty means SQLite in `<instance>/kb.sqlite3`. PostgreSQL: "
            "`postgresql://user@host/dbname` (driven by psycopg 3)."),
    Setting("SECRET_KEY", "",
            "Key that signs sessions and CSRF tokens; empty means one generated once into "
            "`<instance>/secret_key`."),
    Setting("RELOAD_INTERVAL", 2.0,
            "Seconds between checks of the articles folder by `kb serve`; changed articles are re-indexed "
            "and shown without a restart. 0 turns watching off (an index built elsewhere is still picked up)."),
    Setting("HEADER_TIMEOUT", 10.0,
            "Seconds `kb serve` gives a new connection to send its request headers; slower clients get 408 "
            "and are closed (kept-alive connections close after 5 s idle). 0: no deadline."),
    Setting("MAX_CONNECTIONS", 1000,
            "Open connections each `kb serve` worker holds at most; more are answered 503 with `Retry-After`."),
    Setting("INDEX_CHECK_SECONDS", 0.5,
            "How often each process looks for a newer published index (a newly built one is served this soon)."),
    Setting("PAGE_SIZE", 10, "Search results a page."),
    Setting("EVENT_FLUSH_SECONDS", 0.5,
            "Page views, result clicks and deflections are written in one batch this often (0: each at once). "
            "Votes, searches and tickets are always written before the answer."),
    Setting("RATELIMIT_STORAGE_URI", "memory://",
            "Where rate-limit counters live: `memory://` (each process its own) or `redis://host:6379` "
            "(shared by every process and machine)."),
    Setting("RATELIMIT_SEARCH", "120 per minute", "Searches (page and API) a client may make."),
    Setting("RATELIMIT_VOTES", "30 per minute", "Feedback votes a client may send."),
    Setting("MAX_CONTENT_LENGTH", 65536, "Largest request body accepted, in bytes; larger ones get 413."),
    Setting("PROXY_COUNT", 0,
            "Reverse proxies in front of the site whose `X-Forwarded-*` headers are trusted (for client "
            "addresses in rate limits, and https links)."),
    Setting("VISIT_MINUTES", 30, "Minutes of inactivity after which a visitor's next request starts a new visit."),
    Setting("TICKET_BACKEND", "local",
            "Where tickets go: `local` (kept in the database for the staff queue), `smtp` (an email to the "
            "helpdesk's inbound address) or `webhook` (a signed JSON POST).", choices=("local", "smtp", "webhook")),
    Setting("SMTP_HOST", "localhost", "SMTP server for the `smtp` backend."),
    Setting("SMTP_PORT", 25, "Its port."),
    Setting("SMTP_TLS", "none", "`none`, `starttls` or `ssl`.", choices=("none", "starttls", "ssl")),
    Setting("SMTP_USERNAME", "", "SMTP login, if the server needs one."),
    Setting("SMTP_PASSWORD", "", "SMTP password."),
    Setting("SMTP_FROM", "help-centre@localhost", "Sender of ticket emails; its domain also names the Message-ID."),
    Setting("SMTP_TO", "", "The helpdesk's inbound address (for example `support@yourshop.zendesk.com`)."),
    Setting("WEBHOOK_URL", "", "Endpoint of the `webhook` backend."),
    Setting("WEBHOOK_SECRET", "", "Shared secret of the webhook's HMAC-SHA256 signature."),
    Setting("WEBHOOK_TIMEOUT", 10.0, "Seconds to wait for the webhook to answer."),
    Setting("DELIVERY_MAX_ATTEMPTS", 8, "Tries before a ticket's delivery becomes a dead letter."),
    Setting("DELIVERY_BACKOFF", 30.0,
            "Seconds before the first retry; doubled each time, with jitter (a random half to all of it)."),
    Setting("DELIVERY_BACKOFF_MAX", 3600.0, "Longest wait between two tries."),
    Setting("DELIVERY_LEASE", 120.0,
            "Seconds a worker's claim on a delivery lasts; a worker that died is taken over after it."),
    Setting("WORKER_POLL", 1.0, "Seconds between the delivery worker's looks for due tickets."),
    Setting("WORKER_IN_SERVE", True, "Run the delivery worker inside `kb serve` (false: run `kb worker` apart)."),
    Setting("CONTACT_MIN_SECONDS", 3.0,
            "A contact form sent sooner than this after it was shown is taken for a bot and dropped silently."),
    Setting("ORDER_NUMBER_PATTERN", r"^NW-\d{6}$", "Regular expression an order number must match."),
    Setting("ORDER_NUMBER_EXAMPLE", "NW-123456", "An order number as customers see it, shown in the form."),
    Setting("RATELIMIT_TICKETS", "5 per hour",
            "Tickets accepted from one client address (forms with errors, suggestion steps and repeats don't "
            "count). Offices and mobile networks share addresses: raise it if many customers do."),
    Setting("RATELIMIT_TICKETS_EMAIL", "5 per hour",
            "Tickets accepted for one email address, whatever the client address."),
    Setting("WIDGET_ORIGINS", "",
            "The shop sites allowed to embed the help widget (`/widget.js`), as origins separated by spaces or "
            "commas (`https://shop.example, https://www.shop.example`); the widget's API answers no other origin. "
            "Empty: only the help centre's own pages."),
    Setting("WIDGET_IDENTITY_SECRET", "",
            "Shared secret for `KB('identify', {name, email, signature})`: the shop signs the customer's email "
            "(hex HMAC-SHA256 of the email with this secret) so the widget's contact form is prefilled; empty: "
            "identities are ignored."),
    Setting("SUPPORT_EMAIL", "",
            "Support's email address, shown under \"Other ways to reach us\" on the contact page and offered when "
            "the contact form's limit is reached; it must look like an address (`help@shop.example`)."),
    Setting("SUPPORT_PHONE", "",
            "Support's phone number, shown likewise as written and dialled as its digits (a leading + kept); 6 to "
            "15 digits, written with digits, spaces and + - ( ) . only."),
    Setting("SUPPORT_HOURS", "", "When support answers (for example `Monday to Friday, 9am to 5pm UK time`)."),
    Setting("SUPPORT_CHAT_URL", "", "Address of a live chat (http or https), shown likewise."),
    Setting("RETENTION_DAYS", 365,
            "Events (searches, views, clicks, votes' history) older than this are deleted by `kb purge` and "
            "daily by the delivery worker. Votes and tickets are kept."),
    Setting("STAFF_IDLE_MINUTES", 60, "A staff session ends after this long without a request.", type=float),
    Setting("STAFF_SESSION_HOURS", 12, "A staff session ends this long after signing in, whatever happens.",
            type=float),
    Setting("RATELIMIT_LOGIN", "10 per 15 minutes",
            "Staff sign-in attempts per client address; the same again for Change password attempts."),
    Setting("REPLY_PROMISE", "We reply within one working day, by email.",
            "What the confirmation page says happens next."),
    Setting("LEARN_MIN_VISITORS", 3,
            "Distinct visitors, each from its own client address, whose searches must succeed with the same query "
            "and article before it becomes a learned question of the article. At least 2: one visitor never "
            "teaches alone.", minimum=2),
    Setting("LEARN_MAX_PER_ARTICLE", 50,
            "Learned questions an article is indexed with at most (those most visitors agreed on).", minimum=0),
    Setting("LEARN_MAX_WORDS", 16, "Longer queries are never learned (pasted messages carry personal details).",
            minimum=1),
    Setting("LEARN_INTERVAL", 10.0,
            "Minutes between two learning passes of `kb serve`'s index watcher (which then re-indexes the articles "
            "whose learned questions changed). 0: only `kb learn` learns.", minimum=0),
    Setting("ARTICLES_DIR", "./articles", "Folder of Markdown articles to publish and index."),
    Setting("INDEX_DIR", "", "Folder of the search index; empty means `<instance>/index`."),
    Setting("EMBEDDING_MODEL", "",
            "sentence-transformers model folder (run on torch); empty means the packaged all-MiniLM-L6-v2, "
            "`none` turns semantic search off (lexical only)."),
    Setting("EMBEDDING_PRECISION", "auto",
            "`int8` (the packaged model quantised, on ONNX Runtime: no torch), `float32` or `bfloat16` (torch), "
            "or `auto`: int8 for the packaged model, else bfloat16 where the CPU has native support, else "
            "float32. A change re-embeds the articles at the next build: vectors of two runtimes never mix.",
            choices=PRECISIONS),
    Setting("EMBEDDING_THREADS", 0, "Threads a process encodes with (ONNX Runtime or torch); 0 lets the runtime "
            "decide (one a core)."),
    Setting("LEXICAL_WEIGHT", fusion.DEFAULT_LEXICAL_WEIGHT,
            "Share of the normalised BM25F score in the hybrid score (the rest is semantic)."),
    Setting("TITLE_WEIGHT", SearchConfig.title_weight,
            "Share of the best title/question match in an article's semantic score (the rest is its "
            "best section)."),
    Setting("FUSION_POOL", fusion.DEFAULT_POOL,
            "How many top scores of each retriever set the range of min-max normalisation."),
    Setting("DENSE_SPREAD", fusion.DEFAULT_DENSE_SPREAD,
            "Least range of semantic scores stretched to the full scale, so flat scores stay flat."),
    Setting("MIN_DENSE_SCORE", SearchConfig.min_dense_score,
            "Least cosine similarity for an article with no matching word to be a candidate."),
    Setting("CONFIDENCE", SearchConfig.confidence,
            "Results are confident when the best article's cosine plus its lead over the mean of the next nine "
            "reaches this (higher: fewer results, more 'No article answers this yet')."),
    Setting("CONFIDENCE_MARGIN", SearchConfig.confidence_margin,
            "Articles within this cosine of the best confident one are results too."),
    Setting("ANSWER_CONFIDENCE", SearchConfig.answer_confidence,
            "Least cosine of the best result for its section to be shown as the answer on top."),
    Setting("ANSWER_LEAD", SearchConfig.answer_lead,
            "Least lead of the best result's hybrid score over every other candidate's for the answer on top."),
)


def defaults() -> dict[str, Any]:
    """Return every setting's default, keyed by config name."""
    return {s.name: s.default for s in SETTINGS}


def coerce(config: MutableMapping[str, Any]) -> None:
    """Convert every setting in the config to its type, once, after all sources are loaded."""
    for setting in SETTINGS:
        config[setting.name] = setting.coerce(config[setting.name])


def search_config(config: Mapping[str, Any]) -> SearchConfig:
    """Return the search engine settings from a Flask config."""
    return SearchConfig(
        lexical_weight=config["LEXICAL_WEIGHT"],
        title_weight=config["TITLE_WEIGHT"],
        pool=config["FUSION_POOL"],
        dense_spread=config["DENSE_SPREAD"],
        min_dense_score=config["MIN_DENSE_SCORE"],
        confidence=config["CONFIDENCE"],
        confidence_margin=config["CONFIDENCE_MARGIN"],
        answer_confidence=config["ANSWER_CONFIDENCE"],
        answer_lead=config["ANSWER_LEAD"],
    )


# The bundled sample shop's other ways to reach support, so its contact page shows them out of the box. All
# fictional: a reserved domain (.example) and a London number from Ofcom's range for drama (020 7946 0000-0999).
SAMPLE_SUPPORT = {
    "SUPPORT_EMAIL": "help@northwind.example",
    "SUPPORT_PHONE": "+44 20 7946 0000",
    "SUPPORT_HOURS": "Monday to Friday, 9am to 5pm UK time",
    "SUPPORT_CHAT_URL": "https://chat.northwind.example/",
}
BUNDLED_ARTICLES = Path(__file__).resolve().parent.parent / "articles"
PHONE_CHARACTERS = re.compile(r"[0-9 +\-().]+")
TRUNK_PREFIX = re.compile(r"\(\s*0\s*\)")  # "+44 (0)20 ...": the 0 is dialled only from inside the country


def dialled(phone: str) -> str:
    """Return a phone number as a ``tel:`` link dials it: its digits, after a + when it is written with one
    (``+44 (0)20 7946 0000`` → ``+442079460000``)."""
    written = phone.strip()
    international = written.startswith("+")
    if international:
        written = TRUNK_PREFIX.sub("", written)
    digits = "".join(c for c in written if c in "0123456789")
    return f"+{digits}" if international and digits else digits


def is_bundled_sample(config: Mapping[str, Any]) -> bool:
    """Return whether the site shows the bundled sample shop: the packaged articles under the sample's name.

    The folder alone is not enough: a shop may replace the articles of a checkout in place, and it then names
    itself (``KB_SHOP_NAME``); it must never be given the sample's phone number.
    """
    folder = Path(config["ARTICLES_DIR"]).resolve()  # as the search service reads it: relative to the start folder
    return folder == BUNDLED_ARTICLES and config["SHOP_NAME"].strip() == defaults()["SHOP_NAME"]


def _check_phone(phone: str) -> None:
    if not PHONE_CHARACTERS.fullmatch(phone):
        raise ConfigError(f"KB_SUPPORT_PHONE may hold only digits, spaces and + - ( ) . (as in +44 20 7946 0000), "
                          f"not {phone!r}")
    if "+" in phone[1:]:
        raise ConfigError(f"KB_SUPPORT_PHONE may have a + only at its start (before the country code), not {phone!r}")
    digits = len(dialled(phone).lstrip("+"))
    if not 6 <= digits <= 15:
        raise ConfigError(f"KB_SUPPORT_PHONE must have 6 to 15 digits (an international number has at most 15), "
                          f"not {digits} in {phone!r}")


def _check_chat_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # an unclosed [IPv6] address, a port that is not a number
        host = None
    else:
        if parts.scheme not in ("http", "https"):
            host = None
    if not host or any(c.isspace() or not c.isprintable() for c in url):
        raise ConfigError(f"KB_SUPPORT_CHAT_URL must be an http or https address with a host, like "
                          f"https://chat.shop.example, not {url!r}")


def _check_email(email: str) -> None:
    try:
        validate_email(email, check_deliverability=False)  # start-up never waits on DNS
    except EmailNotValidError as exc:
        raise ConfigError(f"KB_SUPPORT_EMAIL must be an email address like help@shop.example, not {email!r} "
                          f"({exc})") from None


def widget_origins(value: str) -> tuple[str, ...]:
    """Return the allowed widget host origins (``scheme://host[:port]``, lower-case), or raise ConfigError."""
    origins = []
    for item in re.split(r"[\s,]+", value.strip()):
        if not item:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or \
                parts.query or parts.fragment or parts.username:
            raise ConfigError(f"KB_WIDGET_ORIGINS must list origins like https://shop.example (scheme, host and "
                              f"an optional port, no path), not {item!r}")
        origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return tuple(origins)


def support_settings(config: MutableMapping[str, Any]) -> None:
    """Give the bundled sample shop its sample ways to reach support (only when none is set), then check each
    one that is set: a malformed one stops the start with what it should look like."""
    for name in SAMPLE_SUPPORT:
        config[name] = config[name].strip()
    if is_bundled_sample(config) and not any(config[name] for name in SAMPLE_SUPPORT):
        config.update(SAMPLE_SUPPORT)
    checks = {"SUPPORT_EMAIL": _check_email, "SUPPORT_PHONE": _check_phone, "SUPPORT_CHAT_URL": _check_chat_url}
    for name, check in checks.items():
        if config[name]:
            check(config[name])


@dataclass(frozen=True)
class Support:
    """The other ways to reach support that are set (empty text: not set), for the contact pages."""

    email: str = ""
    phone: str = ""
    hours: str = ""
    chat_url: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Support:
        return cls(email=config["SUPPORT_EMAIL"].strip(), phone=config["SUPPORT_PHONE"].strip(),
                   hours=config["SUPPORT_HOURS"].strip(), chat_url=config["SUPPORT_CHAT_URL"].strip())

    @property
    def tel(self) -> str:
        """The number as a ``tel:`` link dials it."""
        return dialled(self.phone)

    @property
    def reachable(self) -> bool:
        """Whether there is a way to reach support besides the form (hours alone are none)."""
        return bool(self.email or self.phone or self.chat_url)

    def __bool__(self) -> bool:
        return self.reachable or bool(self.hours)
