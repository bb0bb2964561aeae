"""Security by default: a secret key, CSRF on every form, strict headers, rate limits, proxies."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import ConfigError

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def secret_key(instance: Path) -> str:
    """Return the instance folder's secret key, generating it once (safely when processes race)."""
    path = instance / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    temporary = path.with_name(f".secret_key.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    try:
        os.link(temporary, path)  # fails if another process got there first: use theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text().strip()


WEAK_KEYS = {"secret", "changeme", "change-me", "dev", "development", "test", "password", "kb", "key"}


def check_production(app: Flask) -> None:
    """In production, refuse a missing or weak secret key and debug mode; make cookies https-only."""
    key = app.config["SECRET_KEY"]
    if not key:
        raise ConfigError("KB_ENV=production needs KB_SECRET_KEY: the same long random value on every machine "
                          "(python -c 'import secrets; print(secrets.token_hex(32))')")
    if len(key) < 32 or key.lower() in WEAK_KEYS or len(set(key)) < 10:
        raise ConfigError("KB_SECRET_KEY is too weak for production: use at least 32 random characters "
                          "(python -c 'import secrets; print(secrets.token_hex(32))')")
    if app.debug or app.config.get("DEBUG"):
        raise ConfigError("debug mode is on: never run KB_ENV=production with FLASK_DEBUG or KB_DEBUG")
    app.config["SESSION_COOKIE_SECURE"] = True
    app.config["PREFERRED_URL_SCHEME"] = "https"


def init_app(app: Flask) -> Limiter:
    """Configure keys, cookies, CSRF, headers and the rate limiter."""
    if app.config["ENV"].lower() == "production":
        check_production(app)
    elif not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(Path(app.instance_path))
    # Flask's own defaults: no SameSite, a 31-day session. The visitor id should last a year.
    if app.config["SESSION_COOKIE_SAMESITE"] is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if app.config["PERMANENT_SESSION_LIFETIME"] == dt.timedelta(days=31):
        app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(days=365)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    # The cookie is sent again when the session changes (a new visit, a vote), not on every page.
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # tokens live as long as the session: no expiry mid-form
    if n := app.config["PROXY_COUNT"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    CSRFProtect(app)

    app.after_request(secure_headers)

    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # A rate-limit store that is down (Redis restarting) must not turn searches and votes into 500s: each
    # process counts in memory meanwhile and goes back to the shared store when it answers again.
    limiter = Limiter(get_remote_address, app=app, storage_uri=app.config["RATELIMIT_STORAGE_URI"],
                      strategy="moving-window", in_memory_fallback_enabled=True, swallow_errors=True,
                      on_breach=_breached)
    app.extensions["kb_limiter"] = limiter  # Flask-Limiter keeps only weak references to itself
    return limiter


def secure_headers(response: Response) -> Response:
    """Add the strict headers every response carries (unless its view set its own)."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def _breached(_limit: RequestLimit) -> None:
    """Remember a client that went over a limit: search never learns from it (the answer is still 429)."""
    from .visitors import record_limited  # the visitor machinery needs the database: imported when needed

    record_limited()


def limit(app: Flask, limiter: Limiter, endpoints: dict[str, str]) -> None:
    """Apply the named rate-limit setting to each endpoint's POSTs (its GETs too when it only answers GET)."""
    for endpoint, setting in endpoints.items():
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        methods = ["POST"] if "POST" in (rule.methods or ()) else None
        decorate = limiter.limit(_setting_reader(app, setting), methods=methods)
        # Flask-Limiter's decorator is typed for async views too, which Flask's view table does not take.
        app.view_functions[endpoint] = decorate(app.view_functions[endpoint])  # type: ignore[assignment]


def _setting_reader(app: Flask, setting: str) -> Callable[[], str]:
    """Return a function reading a rate-limit setting when a request is counted (tests change it live)."""
    return lambda: str(app.config[setting])
