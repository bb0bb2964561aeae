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
    assert "<iframe" not in html.lower() and "<svg" not in html.lower() and " style=" not in html


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
    response = client.get("/articles/return-policy")
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookies[0].split(";")[1:]}
    assert "httponly" in attributes
    assert attributes.get("samesite") == "SameSite=Lax", f"session cookie lacks SameSite=Lax: {cookies[0]}"


def test_feedback_without_token_offers_a_resend_form_and_stores_nothing(site, client):
    """A vote without a CSRF token is a readable 400 page that keeps the comment and resends with a fresh token."""
    fields = {"helpful": "no", "reason": "unclear", "comment": "Step 2 <b>failed</b> & the label was blank"}
    response = client.post(FEEDBACK, data=fields)
    assert response.status_code == 400 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Please send that again" in page and "Traceback" not in page
    assert "Step 2 &lt;b&gt;failed&lt;/b&gt; &amp; the label was blank</textarea>" in page
    form = re.search(r'<form method="post" action="([^"]+)" class="resend">(.*?)</form>', page, re.S)
    assert form and form.group(1) == FEEDBACK
    assert 'name="helpful" value="no"' in form.group(2) and 'name="reason" value="unclear"' in form.group(2)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.group(2)).group(1)
    assert stored_votes(site) == []
    again = client.post(form.group(1), data={**fields, "csrf_token": token})
    assert again.status_code == 303
    [vote] = stored_votes(site)
    assert (vote.helpful, vote.reason, vote.comment) == (False, "unclear", fields["comment"])


def test_feedback_without_token_answers_json_to_api_clients(site, client):
    """A script that sends no token gets a JSON 400 error, and nothing is stored."""
    response = client.post(FEEDBACK, data={"helpful": "yes"}, headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == 400 and error["title"] and error["message"]
    assert stored_votes(site) == []


@pytest.mark.parametrize("how", ["form", "header"])
def test_feedback_with_the_page_token_is_saved(site, client, how):
    """The token a page hands out is accepted as the csrf_token field or the X-CSRFToken header."""
    token = csrf_token(client, "/articles/return-policy")
    if how == "form":
        response = client.post(FEEDBACK, data={"helpful": "yes", "csrf_token": token})
        assert response.status_code == 303 and response.headers["Location"].endswith("/articles/return-policy#feedback")
    else:
        response = client.post(FEEDBACK, data={"helpful": "yes"}, headers={"X-CSRFToken": token,
                                                                            "Accept": "application/json"})
        assert response.status_code == 200 and response.get_json()["saved"] is True
    assert [(v.slug, v.helpful) for v in stored_votes(site)] == [("return-policy", True)]


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
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
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


def test_oversized_body_is_refused_with_413(site, client):
    """A 100 kB comment exceeds MAX_CONTENT_LENGTH: 413 with a clear message, and nothing stored."""
    assert site.config["MAX_CONTENT_LENGTH"] == 65536
    token = csrf_token(client, "/articles/return-policy")
    response = client.post(FEEDBACK, data={"csrf_token": token, "helpful": "no", "comment": "x" * 100_000})
    assert response.status_code == 413
    assert "more data than we accept" in response.get_data(as_text=True)
    assert stored_votes(site) == []


def test_comment_limit_is_1000_characters(site, client):
    """A 1,001-character comment is a 400 naming the 1,000-character limit; exactly 1,000 is accepted."""
    token = csrf_token(client, "/articles/return-policy")
    response = client.post(FEEDBACK, data={"csrf_token": token, "helpful": "no", "comment": "x" * 1001})
    assert response.status_code == 400 and "1,000 characters" in response.get_data(as_text=True)
    assert stored_votes(site) == []
    response = client.post(FEEDBACK, data={"csrf_token": token, "helpful": "no", "comment": "y" * 1000})
    assert response.status_code == 303
    assert [len(v.comment or "") for v in stored_votes(site)] == [1000]


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
