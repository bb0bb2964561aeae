"""The answer to a form sent without a valid CSRF token: a link to start again, or (public forms) a confirm step.

Why this design. A missing or wrong token means the form came from another site (a CSRF attempt), or
from one of our pages left open longer than its session. We cannot tell which, so the answer has to be
safe for the first and kind in the second:

- Staff forms, sign-in included, get no form back at all: nothing posted is echoed (no field, no
  password), no new form and no new token (the page does not even touch the session, so a forged post
  cannot sign anyone out either). A cross-site post therefore never turns into a same-site form that one
  click submits (login CSRF, a forged ticket change). The page explains and links to the page to start
  again from.
- The public contact and feedback forms are where a visitor could lose a long message. There the page
  shows what arrived as the visible, editable fields of the real form, never as hidden inputs (what the
  visitor sees is everything that will be sent), with a fresh token and an explicit "Yes, send it". A
  forged post gets at most a page of ours asking the visitor whether to send a message they can read and
  change; our pages cannot be framed (frame-ancestors 'none') and run no inline script (script-src
  'self'), so only the visitor's own informed click sends it. Values the visitor could not see (the page
  a contact form came from, unknown fields) are dropped; values we make (token, timestamp) are made anew.

Rendering the fresh token sets a session cookie. After a same-site post (a session that lost its token)
that is the visitor's own session; after a cross-site post the browser did not send its cookie, and the
new one replaces it: the visitor starts a new visit, which is the price of keeping their message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.urls import iri_to_uri
from wtforms import Field

from search import SearchError

from .errors import KBError, error_response, from_script
from .models import REASONS

CONFIRM = ("We haven't sent it yet: it reached us without our security check, because the page was open a long "
           "time or because another website sent it. If you wrote it, check it below and press “Yes, send it”. "
           "If you didn't, leave this page and nothing is sent.")
STAFF = ("We didn't make that change: the form arrived without our security check, because the page was open "
         "longer than your session or because another website sent it. Nothing was saved. "
         "Open the page again and make the change there if you still want it.")
SIGN_IN = ("We didn't sign you in: the sign-in form arrived without our security check, because the page was "
           "open a long time or because another website sent it. Nothing was kept. Open the sign-in page and "
           "sign in again.")
OTHER = ("We didn't save that: it arrived without our security check, because the page was open a long time "
         "or because another website sent it. Nothing was saved. Open the page again and try once more.")
API = ("The request had no valid CSRF token (a csrf_token field or an X-CSRFToken header from the page's "
       "csrf-token meta tag), so nothing was saved. Load a page for a fresh token and send it again.")


def start_again(path: str) -> str:
    """Return the nearest page of ours that opens with GET at or above ``path``: where to start again."""
    adapter = current_app.url_map.bind("localhost")
    parts = path.split("/")
    while len(parts) > 1:
        candidate = "/".join(parts) or "/"
        try:
            adapter.match(candidate, method="GET")
            return iri_to_uri(candidate)
        except RequestRedirect as moved:  # /staff → /staff/
            return urlsplit(moved.new_url).path
        except HTTPException:
            parts.pop()
    return "/"


def _contact() -> dict[str, Any]:
    """The contact form bound to what was posted, with a fresh timestamp; only its visible fields are offered."""
    from .views.contact import Rendered, _form  # the real form: its fields, choices and checks

    form = _form()
    form.rendered.data = Rendered.new().sign()  # a fresh single-use nonce: this page is a form of its own
    form.confirm.data = "1"  # the visitor confirms here, in place of the suggestions step
    visible: list[Field] = [f for f in form if f.type not in ("HiddenField", "CSRFTokenField") and
                            f.name != "website"]  # the honeypot stays empty
    return {"kind": "contact", "action": url_for("contact.contact"), "form": form, "fields": visible,
            "hidden": [form.rendered, form.confirm]}


def _feedback() -> dict[str, Any] | None:
    """The feedback widget with the vote that was posted (only valid answers ticked), or None for no article."""
    from .views import library

    lib = library()
    slug = lib.resolve(str((request.view_args or {}).get("slug", "")))
    if slug is None:
        return None
    helpful = request.form.get("helpful")
    reason = request.form.get("reason")
    return {"kind": "feedback", "action": url_for("feedback.vote", slug=slug), "article": lib.articles[slug],
            "helpful": helpful if helpful in ("yes", "no") else None, "reason": reason if reason in REASONS else None,
            "comment": request.form.get("comment", ""), "reasons": REASONS}


def csrf_failed() -> Response:
    """Answer a form sent without a valid CSRF token (see the module's docstring for why this way)."""
    endpoint = request.endpoint or ""
    if from_script():
        return error_response(400, API, "Missing security token")
    confirm = None
    try:
        confirm = _contact() if endpoint == "contact.contact" else _feedback() if endpoint == "feedback.vote" \
            else None
    except (KBError, SearchError):  # the site is starting up: no form to show, say so
        pass
    if confirm is not None:
        title = "Send this message?" if confirm["kind"] == "contact" else "Send this feedback?"
        return error_response(400, CONFIRM, title, confirm=confirm)
    staff = endpoint.startswith("staff.")
    if endpoint == "staff.login":
        from .staff.arguments import safe_next

        link, label, message, title = url_for("staff.login", next=safe_next(request.args.get("next"))), \
            "Go to the sign-in page", SIGN_IN, "Please sign in again"
    else:
        link, label = start_again(request.path), "Open the page again"
        message, title = (STAFF, "That change wasn't made") if staff else (OTHER, "That wasn't saved")
    return error_response(400, message, title, start_again=link, start_again_label=label, without_token=True,
                          staff_page=staff)
