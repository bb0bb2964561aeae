"""The help widget on the shop's own pages: `/widget.js`, and the JSON API it calls across origins.

The widget runs in a shadow root on the shop's page (see static/widget/widget.js), so its requests to us are
cross-origin. Browsers keep third-party cookies from them, and we set none on the shop's origin: the widget's
visitor session travels in the ``X-KB-Session`` header instead (signed like the cookie, with its own salt), so
visits, trails, votes and the CSRF token work as on the site. Every request must come from an origin in
``KB_WIDGET_ORIGINS`` (or our own); POSTs also need the session's CSRF token in ``X-CSRFToken``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, request, send_from_directory, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf, validate_csrf
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import MultiDict
from wtforms.validators import ValidationError

from search import Article
from search.analysis import clean_query

from . import stats, visitors
from .config import Support, widget_origins
from .content import page
from .errors import KBError
from .models import REASONS
from .views import absolute, current_slug, engine, library
from .views.contact import Rendered, _form, _is_bot, open_ticket, topics
from .views.feedback import FeedbackForm, saved_vote

SESSION_HEADER = "X-KB-Session"
bp = Blueprint("widget", __name__)
api = Blueprint("widget_api", __name__, url_prefix="/widget/api")
STATIC = Path(__file__).parent.parent / "static" / "widget"
TAGS = re.compile(r"<[^>]+>")


class Forbidden(KBError):
    status = 403
    title = "Forbidden"


class WidgetSessions(SecureCookieSessionInterface):
    """Sessions in a cookie on the site, in the ``X-KB-Session`` header for the widget's API."""

    def _widget_serializer(self, app: Flask) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(app.secret_key or "", salt="kb-widget-session", serializer=self.serializer,
                                      signer_kwargs={"key_derivation": self.key_derivation,
                                                     "digest_method": self.digest_method})

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        if not request.path.startswith(visitors.WIDGET_API):
            return super().open_session(app, request)
        value = request.headers.get(SESSION_HEADER, "")
        if not value:
            return self.session_class()
        try:
            data = self._widget_serializer(app).loads(
                value, max_age=int(app.permanent_session_lifetime.total_seconds()))
        except BadSignature:  # forged or expired: a new visitor, as with a bad cookie
            return self.session_class()
        return self.session_class(data)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if not request.path.startswith(visitors.WIDGET_API):
            super().save_session(app, session, response)
            return
        if session.modified and session:
            response.headers[SESSION_HEADER] = self._widget_serializer(app).dumps(dict(session))


ORIGINS = "kb_widget_origins"  # app.extensions: KB_WIDGET_ORIGINS, read once at start-up


def allowed_origins() -> tuple[str, ...]:
    """Return the origins whose pages may use the widget: the settings' and our own."""
    own = (current_app.config["BASE_URL"] or request.host_url).rstrip("/")
    return (*current_app.extensions[ORIGINS], own.lower())


@api.before_request
def _check_origin() -> None:
    """Refuse another site's pages (their browser would refuse our answer anyway, but not the POST's effect),
    and a POST without this visitor's token."""
    origin = request.headers.get("Origin")
    if origin is None:
        if request.method not in ("GET", "HEAD"):
            raise Forbidden("The help widget's API takes changes only from a page in a browser.", code="origin")
        return  # a GET from a script or the command line: the same answers as the public API
    if origin.lower() not in allowed_origins():
        raise Forbidden(f"The help widget is not enabled for {origin[:100]}: add it to KB_WIDGET_ORIGINS.",
                        code="origin")
    if request.method == "POST":
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except ValidationError:
            raise KBError("Your help session expired: please try again.", code="csrf") from None


@api.after_request
def _cors(response: Response) -> Response:
    """Answer the allowed origin, and say what it may send and read; never with credentials (no cookies)."""
    origin = request.headers.get("Origin")
    response.vary.add("Origin")
    if origin and origin.lower() in allowed_origins():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = f"{SESSION_HEADER}, Retry-After"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Allow-Headers"] = f"Content-Type, X-CSRFToken, X-KB-Page, {SESSION_HEADER}"
            response.headers["Access-Control-Max-Age"] = "600"
    return response


def _script(name: str, mimetype: str) -> Response:
    """Serve the widget's script or stylesheet under its fixed address (the shop's tag never changes), kept
    five minutes and revalidated by ETag; any site may load it."""
    response = send_from_directory(STATIC, name, mimetype=mimetype, max_age=300, conditional=True, etag=True)
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@bp.get("/widget.js")
def script() -> Response:
    return _script("widget.js", "text/javascript")


@bp.get("/widget.css")
def stylesheet() -> Response:
    return _script("widget.css", "text/css")


def _body() -> MultiDict[str, Any]:
    """Return a POST's fields, sent as JSON (the widget) or as a form."""
    data = request.get_json(silent=True) if request.is_json else None
    if isinstance(data, dict):
        return MultiDict({k: "" if v is None else str(v) for k, v in data.items()})
    return MultiDict(request.form)


def _card(article: Article) -> dict[str, Any]:
    return {"slug": article.slug, "title": article.title, "summary": article.summary,
            "url": absolute(article.url())}


def _plain(snippet: str) -> str:
    return html.unescape(TAGS.sub("", snippet))


def _identity() -> dict[str, str] | None:
    found = session.get("identity")
    return {"name": found[0], "email": found[1]} if found else None


@api.get("/start")
def start() -> Response:
    """What the widget needs when it opens: a token, the articles for the host page, the form's choices."""
    lib = library()
    asked = [lib.articles[s] for s in dict.fromkeys(lib.resolve(x.strip()) or "" for x in
                                                     request.args.get("suggest", "").split(",")[:10]) if s]
    if asked:
        suggestions, by = asked, "asked"
    elif ruled := lib.for_page(urlsplit(visitors.host_page() or "").path or "/"):
        suggestions, by = ruled, "rule"
    else:
        query = clean_query(f"{request.args.get('h1', '')[:200]} {request.args.get('title', '')[:200]}")
        found = engine().search(query, limit=5) if query else None
        if found is not None and found.hits:
            suggestions, by = [lib.articles[h.slug] for h in found.hits], "page"
        else:
            suggestions, by = stats.featured(lib, 5), "popular"
    support = Support.from_config(current_app.config)
    return jsonify({
        "csrf_token": generate_csrf(), "shop": {"name": current_app.config["SHOP_NAME"]},
        "suggestions": [_card(a) for a in suggestions[:5]], "suggested_by": by, "identity": _identity(),
        "topics": [{"value": value, "label": label} for value, label in topics()],
        "reasons": [{"value": k, "label": v} for k, v in REASONS.items()],
        "order_example": current_app.config["ORDER_NUMBER_EXAMPLE"],
        "support": {"email": support.email or None, "phone": support.phone or None, "hours": support.hours or None,
                    "chat_url": support.chat_url or None},
    })


@api.get("/search")
def search() -> Response:
    """Search as the site does; a search the visitor sent (not ``instant=1``, typed) is recorded."""
    query = request.args.get("q", "")
    limit = max(1, min(20, request.args.get("limit", 8, type=int) or 8))
    if not clean_query(query):
        raise KBError("Type a few words to search for.", code="invalid")
    found = engine().search(query, limit=limit)
    if request.args.get("instant") != "1":
        visitors.record_search(found, None)

    def hit(h: Any) -> dict[str, Any]:
        return {"slug": h.slug, "title": h.title, "summary": h.summary, "snippet": _plain(h.snippet),
                "category": h.category, "section": h.section, "url": absolute(h.url)}

    answer = found.answer.record() if found.answer else None
    if answer:
        answer["url"] = absolute(str(answer["url"]))
    return jsonify({"query": found.query, "total": found.total, "suggestion": found.suggestion, "answer": answer,
                    "hits": [hit(h) for h in found.hits], "nearest": [hit(h) for h in found.nearest]})


def _vote(slug: str) -> dict[str, Any] | None:
    shown = visitors.my_vote(slug)
    return None if shown is None else {"helpful": shown.helpful, "reason": shown.reason}


@api.get("/articles/<slug>")
def article(slug: str) -> Response:
    """One article to read in the widget, with its tally and the visitor's vote; the view is recorded."""
    current = current_slug(slug)
    shown = page(library().articles[current])
    visitors.record_view(current, None, from_results=request.args.get("from") == "search")
    tally = stats.tally(current)
    a = shown.article
    return jsonify({**_card(a), "html": shown.html, "updated": a.updated.isoformat() if a.updated else None,
                    "reading_minutes": shown.reading_minutes, "tally": {"yes": tally.yes, "votes": tally.votes},
                    "vote": _vote(current)})


@api.post("/articles/<slug>/feedback")
def vote(slug: str) -> Response:
    """Store the visitor's vote, as the site's form does."""
    current = current_slug(slug, " to give feedback on")
    form = FeedbackForm(_body())
    if not form.validate():
        raise KBError(" ".join(str(m) for errors in form.errors.values() for m in errors), code="invalid")
    return jsonify(saved_vote(current, form))


@api.post("/identify")
def identify() -> Response:
    """Remember the shop's signed-in customer (name and email signed with KB_WIDGET_IDENTITY_SECRET) to prefill
    the contact form; an unsigned or wrongly signed identity prefills nothing."""
    data = _body()
    email, name = data.get("email", "").strip()[:254], data.get("name", "").strip()[:100]
    secret = current_app.config["WIDGET_IDENTITY_SECRET"]
    expected = hmac.new(secret.encode(), email.encode(), hashlib.sha256).hexdigest() if secret and email else ""
    if expected and hmac.compare_digest(expected, data.get("signature", "").strip().lower()):
        session["identity"] = [name, email]
        return jsonify({"identified": True})
    session.pop("identity", None)
    return jsonify({"identified": False})


@api.get("/contact")
def contact_form() -> Response:
    """A new contact form: its signed render time (the site's bot check) and what to prefill."""
    lib = library()
    origin = request.args.get("from", "")[:200]
    found = lib.articles.get(lib.resolve(origin) or "") if origin else None
    identity = _identity() or {"name": "", "email": ""}
    host = visitors.host_page()
    return jsonify({"rendered": Rendered.new().sign(), **identity, "topic": found.category if found else "",
                    "source": f"article:{found.slug}" if found else f"page:{host}" if host else ""})


@api.post("/contact/deflection")
def deflection() -> Response:
    """Record that the contact form's suggestion was opened (in the widget) instead of sending."""
    data = _body()
    current = current_slug(data.get("slug", "")[:200])
    visitors.record_later("deflection", slug=current, query=clean_query(data.get("q", ""))[:500] or None)
    return jsonify({"recorded": True})


@api.post("/contact")
def send() -> tuple[Response, int]:
    """Open a ticket from the widget's form: the site's checks (fields, bot, limits, once a form), in JSON."""
    form = _form(_body())
    if not form.validate():
        fields = {name: [str(m) for m in errors] for name, errors in form.errors.items()}
        raise KBError("Please check the highlighted fields.", code="invalid", fields=fields)
    rendered = Rendered.read(form.rendered.data)
    bot = _is_bot(form, rendered)
    if bot or rendered is None:
        current_app.logger.warning("widget contact form dropped (%s) from %s", bot, request.remote_addr)
        return jsonify({"reference": None, "email": None, "message": "Thanks: we've got your message."}), 200
    if rendered.stale:
        raise KBError("This form was open for more than a day: check it and send it again.", code="stale",
                      rendered=Rendered.new().sign())
    opened = open_ticket(form, rendered)
    if opened.wait:
        seconds = max(1, round(opened.wait))
        response = jsonify({"error": {"status": 429, "code": "rate_limited", "retry_after": seconds,
                                      "message": "We've had several requests from you in a short time. Please "
                                                 f"try again in {seconds} seconds, or reach us another way."}})
        response.headers["Retry-After"] = str(seconds)
        return response, 429
    if opened.conflict is not None:
        raise KBError(f"You already sent this form (reference {opened.conflict.reference}). Send it again to "
                      "open a new request.", code="conflict", rendered=Rendered.new().sign())
    assert opened.ticket is not None
    return jsonify({"reference": opened.ticket.reference, "email": opened.ticket.email, "repeat": opened.repeat,
                    "message": f"We'll reply to {opened.ticket.email}."}), 200 if opened.repeat else 201


def init_app(app: Flask) -> None:
    """Register the widget: its script, its API (exempt from the cookie-bound CSRF check, which it replaces
    with its own: origin, then the header session's token), its session interface and rate limits."""
    app.extensions[ORIGINS] = widget_origins(app.config["WIDGET_ORIGINS"])  # a malformed origin stops the start
    app.session_interface = WidgetSessions()
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.extensions["csrf"].exempt(api)
