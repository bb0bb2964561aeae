"""Security: headers and cookies, CSRF with a friendly resend, sanitised articles, rate and size limits, keys."""

from __future__ import annotations

import re
import stat
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select

from kb_site import create_app
from kb_site.db import database
from kb_site.models import Vote
from tests.conftest import csrf_token, make_site

FEEDBACK = "/articles/return-policy/feedback"


def stored_votes(app) -> list[Vote]:
    """Return every vote in the application's database."""
    with app.app_context(), database().session() as s:
        return list(s.scalars(select(Vote)))


class Tags(HTMLParser):
    """Collects every start tag with its attributes (entities decoded, as a browser reads them)."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def assert_inert(html: str, site_scripts: int = 0) -> None:
    """Fail if the HTML has a script (beyond the site's own), an event handler, a javascript: URL or a frame."""
    tags = Tags(html).tags
    scripts = [a for t, a in tags if t == "script"]
    assert len(scripts) == site_scripts and all(a.get("src", "").startswith("/static/") for a in scripts)
    assert html.lower().count("<script") == site_scripts
    assert not [(t, a) for t, a in tags if any(k.startswith("on") for k in a)]
    assert not [(t, a) for t, a in tags if any("javascript:" in re.sub(r"\s", "", v).lower() for v in a.values())]
    assert "javascript:" not in html.lower()
    assert "<iframe" not in html.lower() and " style=" not in html
    # The only SVG is the site's own decoration (icons, hidden from screen readers): no article's or visitor's.
    assert all(a.get("aria-hidden") == "true" and a.get("focusable") == "false" for t, a in tags if t == "svg")
    assert not [t for t, _ in tags if t in ("foreignobject", "use", "image", "animate", "set")]


@pytest.mark.parametrize("path", ["/", "/search?q=x", "/articles/return-policy", "/articles/no-such-page"])
def test_html_pages_carry_strict_security_headers(client, path):
    """Every page, a 404 included, forbids inline script and framing, sniffing, and full-URL referrers."""
    response = client.get(path)
    assert response.mimetype == "text/html" and response.status_code in (200, 404)
    policy = {d.split()[0]: d.split()[1:] for d in response.headers["Content-Security-Policy"].split(";")}
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_session_cookie_is_httponly_and_samesite_lax(client):
    """The visitor's session cookie is hidden from scripts and not sent on cross-site posts."""
    response = client.get("/visitor.json?article=return-policy")
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookies[0].split(";")[1:]}
    assert "httponly" in attributes
    assert attributes.get("samesite") == "SameSite=Lax", f"session cookie lacks SameSite=Lax: {cookies[0]}"


class Forms(HTMLParser):
    """Every form of a page with its fields as a browser would send them (visible or hidden, and their values)."""

    def __init__(self, html: str):
        super().__init__()
        self.forms: list[dict] = []
        self._textarea: tuple[str, list[str]] | None = None
        self._select: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"method": a.get("method", "get").lower(), "action": a.get("action", ""),
                               "fields": {}, "hidden": {}, "visible": set()})
        elif not self.forms:
            return
        form = self.forms[-1] if self.forms else None
        name = a.get("name")
        if tag == "input" and name and form is not None:
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox") and "checked" not in a:
                form["visible"].add(name)
                return
            (form["hidden"] if kind == "hidden" or "hidden" in a else form["fields"])[name] = a.get("value", "")
            if kind != "hidden" and "hidden" not in a:
                form["visible"].add(name)
        elif tag == "textarea" and name:
            self._textarea = (name, [])
        elif tag == "select" and name and form is not None:
            self._select = name
            form["visible"].add(name)
        elif tag == "option" and self._select and "selected" in a and form is not None:
            form["fields"][self._select] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea and self.forms:
            name, text = self._textarea
            # A browser drops one line break straight after <textarea> (CRLF read as LF).
            self.forms[-1]["fields"][name] = "".join(text).replace("\r\n", "\n").removeprefix("\n")
            self.forms[-1]["visible"].add(name)
            self._textarea = None
        elif tag == "select":
            self._select = None

    def post_forms(self) -> list[dict]:
        return [f for f in self.forms if f["method"] == "post"]


CROSS_SITE = {"Origin": "https://evil.example", "Referer": "https://evil.example/trap.html",
              "Sec-Fetch-Site": "cross-site"}


def test_feedback_without_token_asks_to_confirm_and_stores_nothing_until_then(app, client):
    """A vote without a token is a 400 page showing the vote as the real, editable widget: sent only on "Yes"."""
    fields = {"helpful": "no", "reason": "unclear", "comment": "Step 2 <b>failed</b> & the label was blank"}
    response = client.post(FEEDBACK, data=fields, headers=CROSS_SITE)
    assert response.status_code == 400 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Traceback" not in page and "Yes, send it" in page and "Return policy" in page
    assert "Step 2 &lt;b&gt;failed&lt;/b&gt; &amp; the label was blank</textarea>" in page
    assert_inert(page, site_scripts=1)
    [form] = Forms(page).post_forms()
    assert form["action"] == FEEDBACK
    # What the visitor typed is visible and editable; the only hidden input is our fresh token.
    assert set(form["hidden"]) == {"csrf_token"} and {"helpful", "reason", "comment"} <= form["visible"]
    assert {k: form["fields"][k] for k in fields} == fields
    assert stored_votes(app) == []
    again = client.post(form["action"], data={**form["fields"], **form["hidden"]})
    assert again.status_code == 303
    [vote] = stored_votes(app)
    assert (vote.helpful, vote.reason, vote.comment) == (False, "unclear", fields["comment"])


def test_feedback_confirm_shows_only_valid_choices(app, client):
    """Forged values are not carried: an unknown reason or answer is simply not ticked."""
    page = client.post(FEEDBACK, data={"helpful": "maybe", "reason": "<x>", "extra": "smuggled"},
                       headers=CROSS_SITE).get_data(as_text=True)
    [form] = Forms(page).post_forms()
    assert "helpful" not in form["fields"] and "reason" not in form["fields"]
    assert "smuggled" not in page and "extra" not in form["fields"] and "extra" not in form["hidden"]
    missing = client.post("/articles/no-such-article/feedback", data={"helpful": "yes"}, headers=CROSS_SITE)
    assert missing.status_code == 400 and Forms(missing.get_data(as_text=True)).post_forms() == []


def test_contact_without_token_asks_to_confirm_and_loses_nothing(app, client):
    """A contact form without a token shows the message in our real form's visible fields; "Yes" sends it."""
    from tests.test_contact import GOOD, tickets

    app.config["CONTACT_MIN_SECONDS"] = 0
    typed = {**GOOD, "message": "My <script>alert(1)</script> boots & laces:\nline two"}
    response = client.post("/contact", data={**typed, "source": "page:https://evil.example/", "confirm": "1",
                                             "website": ""}, headers=CROSS_SITE)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Yes, send it" in page and "haven&#39;t sent" in page and "evil.example" not in page
    assert_inert(page, site_scripts=1)
    [form] = Forms(page).post_forms()
    assert form["action"] == "/contact"
    assert {k: form["fields"][k] for k in typed} == typed  # every field kept, visible and editable
    assert set(typed) <= form["visible"]
    # Hidden: only what we make fresh (the token, the form's signed timestamp, "suggestions seen").
    assert set(form["hidden"]) == {"csrf_token", "rendered", "confirm"}
    assert tickets(app) == []
    sent = client.post(form["action"], data={**form["fields"], **form["hidden"]})
    assert sent.status_code == 303 and sent.headers["Location"] == "/contact/sent"
    [ticket] = tickets(app)
    assert (ticket.name, ticket.email, ticket.subject, ticket.message, ticket.order_number, ticket.topic) == (
        typed["name"], typed["email"], typed["subject"], typed["message"].replace("\r\n", "\n"),
        typed["order_number"], typed["topic"])
    assert ticket.source is None  # a value nobody could see is not carried over
    again = client.post(form["action"], data={**form["fields"], **form["hidden"]})  # a double click on "Yes"
    assert again.status_code == 303 and len(tickets(app)) == 1  # the confirm form is single-use too


def test_staff_sign_in_without_token_echoes_nothing(app, client):
    """A cross-site sign-in (login CSRF) shows no password, no form and no token: only a link to start again."""
    from kb_site.staff import add_staff

    with app.app_context(), database().session() as s:
        add_staff(s, "ed@shop.example", "editor", "correct horse battery")
    secret = "correct horse battery"
    for headers in (CROSS_SITE, {**CROSS_SITE, "Accept": "application/json"}):
        response = client.post("/staff/login?next=/staff/tickets", data={"email": "ed@shop.example",
                                                                         "password": secret}, headers=headers)
        assert response.status_code == 400
        body = response.get_data(as_text=True)
        assert secret not in body and "correct" not in body and "ed@shop.example" not in body
        if headers.get("Accept") == "application/json":  # the error, and nothing of the request
            assert set(response.get_json()["error"]) == {"status", "title", "message"}
        else:
            assert "csrf" not in body.lower() and "<form" not in body and 'type="password"' not in body
        assert not [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    page = client.post("/staff/login", data={"email": "ed@shop.example", "password": secret},
                       headers=CROSS_SITE).get_data(as_text=True)
    assert "<form" not in page and 'type="password"' not in page and "csrf" not in page.lower()
    assert 'href="/staff/login"' in page and "sign in again" in page.lower()
    assert client.get("/staff/").status_code == 302  # and nobody was signed in


def test_staff_form_without_token_offers_no_form(app):
    """A forged staff change (ticket status) makes no change and offers no form to re-send; the session lives on."""
    from kb_site.models import Ticket
    from tests.test_staff import signed_in, ticket

    agent = signed_in(app, "support")
    t = ticket(app)
    response = agent.post(f"/staff/tickets/{t.reference}/status", data={"status": "solved"}, headers=CROSS_SITE)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "<form" not in page and "csrf" not in page.lower() and "solved" not in page
    assert f'href="/staff/tickets/{t.reference}"' in page
    with app.app_context(), database().sessions() as s:
        assert s.get(Ticket, t.id).status == "open"
    assert agent.get(f"/staff/tickets/{t.reference}").status_code == 200  # still signed in
    logout = agent.post("/staff/logout", headers=CROSS_SITE)  # a forged sign-out neither
    assert logout.status_code == 400 and "<form" not in logout.get_data(as_text=True)
    assert agent.get("/staff/links").status_code == 200


def test_feedback_without_token_answers_json_to_api_clients(app, client):
    """A script that sends no token gets a JSON 400 error, and nothing is stored."""
    response = client.post(FEEDBACK, data={"helpful": "yes"}, headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == 400 and error["title"] and error["message"]
    assert stored_votes(app) == []


@pytest.mark.parametrize("how", ["form", "header"])
def test_feedback_with_the_page_token_is_saved(app, client, how):
    """The token a page hands out is accepted as the csrf_token field or the X-CSRFToken header."""
    token = csrf_token(client, "/articles/return-policy")
    if how == "form":
        response = client.post(FEEDBACK, data={"helpful": "yes", "csrf_token": token})
        assert response.status_code == 303 and response.headers["Location"].endswith("/articles/return-policy/feedback")
    else:
        response = client.post(FEEDBACK, data={"helpful": "yes"}, headers={"X-CSRFToken": token,
                                                                            "Accept": "application/json"})
        assert response.status_code == 200 and response.get_json()["saved"] is True
    assert [(v.slug, v.helpful) for v in stored_votes(app)] == [("return-policy", True)]


XSS_ARTICLE = """\
---
title: "<script>alert('title')</script> Zebraquux probe"
summary: "<svg onload=alert('summary')> Zebraquux summary"
---

Intro zebraquux paragraph.

<script>alert('body')</script>

<img src=x onerror=alert(1)> and <a href="#" onclick="alert(1)">click</a>

[plain](javascript:alert(1)) and [upper](JaVaScRiPt:alert(1))

<a href="data:text/html,%3Cscript%3Ealert(1)%3C/script%3E">data link</a>

<a href="&#106;avascript:alert(1)">decimal</a> <a href="&#x6A;&#x61;vascript&colon;alert(1)">hex</a>

<svg onload=alert(1)><circle r="1"/></svg>

<iframe src="https://evil.example/"></iframe>

<p style="background:url(https://evil.example/x.png)">styled zebraquux</p>

## Zebraquux section <img src=x onerror=alert(2)>

More zebraquux text.
"""


def test_article_html_is_sanitised_everywhere(tmp_path: Path, corpus: Path, fake_embedder):
    """Scripts, handlers, javascript:/data: URLs, SVG, frames and styles never reach the page or the API."""
    (corpus / "returns" / "xss-probe.md").write_text(XSS_ARTICLE, encoding="utf-8")
    app = make_site(tmp_path, corpus, fake_embedder)
    client = app.test_client()
    response = client.get("/articles/xss-probe")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert_inert(page, site_scripts=1)
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; Zebraquux probe</h1>" in page
    assert "&lt;svg onload=alert(&#39;summary&#39;)&gt; Zebraquux summary</p>" in page
    assert "data:text/html" not in page and "styled zebraquux" in page
    body = client.get("/api/articles/xss-probe").get_json()
    assert body["title"].startswith("<script>")  # JSON carries the text; escaping is the reader's job
    assert_inert(body["html"])
    assert "data:text/html" not in body["html"] and "More zebraquux text" in body["html"]
    results = client.get("/search?q=zebraquux")
    assert "/articles/xss-probe" in results.get_data(as_text=True)
    assert_inert(results.get_data(as_text=True), site_scripts=1)
    app.extensions["kb_db"].engine.dispose()


def test_search_query_is_echoed_escaped(client):
    """A query holding a script tag is shown as text on the results page, never as markup."""
    page = client.get("/search", query_string={"q": "<script>alert(1)</script>"}).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert_inert(page, site_scripts=1)


@pytest.mark.parametrize("path", ["/api/search?q=refund", "/search?q=refund"])
def test_searches_are_rate_limited(tmp_path: Path, corpus: Path, fake_embedder, path):
    """Past RATELIMIT_SEARCH a client gets 429 with Retry-After: JSON from the API, a readable page otherwise."""
    app = make_site(tmp_path, corpus, fake_embedder, RATELIMIT_ENABLED=True, RATELIMIT_SEARCH="3 per minute")
    client = app.test_client()
    assert [client.get(path).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(path)
    # Seconds until the minute's window ends: 60, or 59 when a second boundary passed since the first request.
    assert response.status_code == 429 and response.headers["Retry-After"] in ("59", "60")
    if path.startswith("/api/"):
        assert response.mimetype == "application/json" and response.get_json()["error"]["status"] == 429
    else:
        page = response.get_data(as_text=True)
        assert response.mimetype == "text/html" and "Too many requests" in page and "wait a minute" in page
    app.extensions["kb_db"].engine.dispose()


def test_votes_are_rate_limited(tmp_path: Path, corpus: Path, fake_embedder):
    """Past RATELIMIT_VOTES a vote is refused with 429 and does not change the stored vote."""
    app = make_site(tmp_path, corpus, fake_embedder, RATELIMIT_ENABLED=True, RATELIMIT_VOTES="2 per minute")
    client = app.test_client()
    token = csrf_token(client, "/articles/return-policy")
    headers = {"X-CSRFToken": token, "Accept": "application/json"}
    assert [client.post(FEEDBACK, data={"helpful": "yes"}, headers=headers).status_code for _ in range(2)] == [200, 200]
    response = client.post(FEEDBACK, data={"helpful": "no"}, headers=headers)
    assert response.status_code == 429 and response.get_json()["error"]["status"] == 429
    assert [v.helpful for v in stored_votes(app)] == [True]
    app.extensions["kb_db"].engine.dispose()


def test_oversized_body_is_refused_with_413(app, client):
    """A 100 kB comment exceeds MAX_CONTENT_LENGTH: 413 with a clear message, and nothing stored."""
    assert app.config["MAX_CONTENT_LENGTH"] == 65536
    token = csrf_token(client, "/articles/return-policy")
    response = client.post(FEEDBACK, data={"csrf_token": token, "helpful": "no", "comment": "x" * 100_000})
    assert response.status_code == 413
    assert "more data than we accept" in response.get_data(as_text=True)
    assert stored_votes(app) == []


def test_comment_limit_is_1000_characters(app, client):
    """A 1,001-character comment is a 400 naming the 1,000-character limit; exactly 1,000 is accepted."""
    token = csrf_token(client, "/articles/return-policy")
    response = client.post(FEEDBACK, data={"csrf_token": token, "helpful": "no", "comment": "x" * 1001})
    assert response.status_code == 400 and "1,000 characters" in response.get_data(as_text=True)
    assert stored_votes(app) == []
    response = client.post(FEEDBACK, data={"csrf_token": token, "helpful": "no", "comment": "y" * 1000})
    assert response.status_code == 303
    assert [len(v.comment or "") for v in stored_votes(app)] == [1000]


def test_secret_key_is_generated_once_and_shared(tmp_path: Path, corpus: Path, fake_embedder, monkeypatch):
    """Without KB_SECRET_KEY the first app writes a private key file that a second app reuses."""
    monkeypatch.delenv("KB_SECRET_KEY", raising=False)
    config = {"INSTANCE_DIR": str(tmp_path / "instance"), "ARTICLES_DIR": str(corpus), "EMBEDDER": fake_embedder}
    first, second = create_app(config), create_app(config)
    path = tmp_path / "instance" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert len(key) >= 32 and first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".secret_key")] == []
    for app in (first, second):
        app.extensions["kb_db"].engine.dispose()


def test_redis_rate_limit_holds_across_processes(tmp_path, corpus, fake_embedder):
    """With Redis storage, two application instances (two processes' worth) share one search budget."""
    import uuid

    import redis

    from tests.conftest import REDIS_URL, need_service

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        need_service("Redis", str(exc))
    shared = {"RATELIMIT_ENABLED": True, "RATELIMIT_SEARCH": "3 per minute", "RATELIMIT_STORAGE_URI": REDIS_URL,
              "RATELIMIT_KEY_PREFIX": f"kb-test-{uuid.uuid4().hex}"}
    first = make_site(tmp_path / "a", corpus, fake_embedder, **shared).test_client()
    second = make_site(tmp_path / "b", corpus, fake_embedder, **shared).test_client()
    statuses = [client.get("/api/search?q=refund").status_code for client in (first, second, first, second)]
    assert statuses == [200, 200, 200, 429]


def test_a_dead_rate_limit_store_never_makes_a_500(tmp_path, corpus, fake_embedder):
    """With the shared limit store unreachable, searches, votes and sign-in still answer, limited per process."""
    from tests.conftest import free_port, make_site

    app = make_site(tmp_path, corpus, fake_embedder, RATELIMIT_ENABLED=True, RATELIMIT_SEARCH="3 per minute",
                    RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}")  # nothing listens there
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: an exception would be a 500 page
    client = app.test_client()
    statuses = [client.get("/api/search?q=refund").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # counted in memory meanwhile
    assert client.get("/staff/login").status_code == 200
