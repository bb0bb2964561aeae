"""Errors carry their HTTP status and are shown once: as a page, or as JSON to API clients."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from search import IndexCorrupt, IndexMissing, QueryError, SearchError

log = logging.getLogger(__name__)


class KBError(Exception):
    """An error a visitor should see, with its HTTP status."""

    status = 400
    title = "Bad request"

    def __init__(self, message: str, **extra: object):
        """``extra``: what else the page shows (and the JSON answer carries), such as a 404's suggestions."""
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFound(KBError):
    status = 404
    title = "Page not found"


TITLES = {
    400: "Bad request", 403: "Forbidden", 404: "Page not found", 405: "Method not allowed",
    413: "Too much data", 429: "Too many requests", 500: "Something went wrong", 503: "Temporarily unavailable",
}
MESSAGES = {
    404: "We couldn't find that page. It may have moved: try searching for what you need.",
    405: "This address doesn't accept that kind of request.",
    413: "That was more data than we accept in one request.",
    429: "You've sent a lot of requests in a short time. Please wait a minute and try again.",
    500: "Something went wrong on our side. Please try again in a moment.",
}
CODES = {400: "invalid", 403: "forbidden", 404: "not_found", 405: "method", 413: "too_large", 429: "rate_limited",
         500: "server", 503: "unavailable"}
# The search library's errors as answers: status, title, message (None: the error's own words), whether to log.
# A subclass is answered by the nearest class listed here.
SEARCH_ERRORS: dict[type[Exception], tuple[int, str, str | None, bool]] = {
    QueryError: (400, "Bad request", None, False),
    IndexMissing: (503, "Search is starting up", "The help centre is being set up: its articles are still being "
                   "indexed. Please try again in a minute.", False),
    IndexCorrupt: (503, "Search is starting up", "The help centre is being updated. Please try again in a minute.",
                   True),
    SearchError: (500, TITLES[500], MESSAGES[500], True),
}


def wants_json() -> bool:
    """Return whether the client is an API client (an /api/ path, or JSON preferred over HTML)."""
    if request.path.startswith(("/api/", "/widget/api/")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes["application/json"] > \
        request.accept_mimetypes["text/html"]


def from_script() -> bool:
    """Return whether a form was sent by the site's own script (fetch) or an API client: answer it JSON."""
    return wants_json() or request.headers.get("X-Requested-With") == "fetch"


def error_response(status: int, message: str, title: str | None = None, **extra: object) -> Response:
    """Return the error as JSON or as a page, with its status."""
    title = title or TITLES.get(status, "Error")
    if request.path.startswith("/widget/api/"):  # the widget tells errors apart by code
        extra.setdefault("code", CODES.get(status, "error"))
    if wants_json():
        response = jsonify({"error": {"status": status, "title": title, "message": message, **extra}})
    else:
        response = Response(render_template("error.html", status=status, title=title, message=message,
                                            **extra), mimetype="text/html")
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    """Register the error handlers: no visitor ever sees a stack trace."""

    @app.errorhandler(KBError)
    def _kb_error(exc: KBError) -> Response:
        return error_response(exc.status, exc.message, exc.title, **exc.extra)

    def _search_error(exc: Exception) -> Response:
        kind = next(k for k in type(exc).__mro__ if k in SEARCH_ERRORS)
        status, title, message, logged = SEARCH_ERRORS[kind]
        if logged:
            log.error("%s on %s %s: %s", type(exc).__name__, request.method, request.path, exc)
        return error_response(status, message or str(exc), title)

    for kind in SEARCH_ERRORS:
        app.register_error_handler(kind, _search_error)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Response:
        from .resend import csrf_failed  # it builds the public forms, which need the views

        log.warning("form without a valid CSRF token on %s %s (%s)", request.method, request.path, exc.description)
        return csrf_failed()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = MESSAGES.get(status) or exc.description or ""
        response = error_response(status, message)
        if status == 429:
            response.headers["Retry-After"] = "60"
        allow = exc.get_response().headers.get("Allow") if status == 405 else None
        if allow:
            response.headers["Allow"] = allow
        return response

    @app.errorhandler(SQLAlchemyError)
    def _database(exc: SQLAlchemyError) -> Response:
        log.error("database error on %s %s: %s", request.method, request.path, exc)
        response = error_response(503, "We couldn't save that just now because of a problem on our side. "
                                  "Nothing was saved: please try again in a moment.", retry_after=5)
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(InternalServerError)
    def _internal(exc: InternalServerError) -> Response:
        log.error("unhandled error on %s %s", request.method, request.path,
                  exc_info=exc.original_exception or exc)
        return error_response(500, MESSAGES[500])
