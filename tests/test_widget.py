"""The help widget's API: origins, the header session (no cookies), CSRF, channel and host page, show_on rules,
signed identities, tickets and deflections from the widget."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from kb_site.config import ConfigError
from kb_site.db import database
from kb_site.models import Event, Ticket
from search.articles import InvalidArticle, parse_article
from tests.conftest import make_site

SHOP = "http://shop.test:8000"
PAGE = f"{SHOP}/checkout/payment?email=sam@example.com#top"
SECRET = "shared-widget-secret-0123456789"


@pytest.fixture
def site(tmp_path, corpus, fake_embedder):
    tent = corpus / "products" / "ridgeline-tent-parts.md"
    tent.write_text(tent.read_text().replace("---\n", "---\nshow_on: [\"/products/*-tent\"]\n", 1))
    track = corpus / "orders" / "track-your-order.md"
    track.write_text(track.read_text().replace("---\n", "---\nshow_on: [\"/checkout*\", \"/orders/*\"]\n", 1))
    app = make_site(tmp_path, corpus, fake_embedder, WIDGET_ORIGINS=f"{SHOP}, https://www.shop.test",
                    WIDGET_IDENTITY_SECRET=SECRET, CONTACT_MIN_SECONDS=0)
    yield app
    app.extensions["kb_db"].engine.dispose()


class Widget:
    """A widget in a page of the shop: its Origin and page on every request, the session it is handed kept."""

    def __init__(self, app, origin: str = SHOP, page: str = PAGE):
        self.client = app.test_client()
        self.origin, self.page, self.session, self.token = origin, page, "", ""

    def headers(self) -> dict[str, str]:
        found = {"Origin": self.origin, "X-KB-Page": self.page, "X-CSRFToken": self.token}
        if self.session:
            found["X-KB-Session"] = self.session
        return found

    def _kept(self, response):
        assert "Set-Cookie" not in response.headers, "the widget's API never sets a cookie"
        self.session = response.headers.get("X-KB-Session", self.session)
        return response

    def get(self, path: str, **params):
        return self._kept(self.client.get(f"/widget/api/{path}", query_string=params, headers=self.headers()))

    def post(self, path: str, body: dict):
        return self._kept(self.client.post(f"/widget/api/{path}", json=body, headers=self.headers()))

    def start(self, **params):
        answer = self.get("start", **params)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        self.token = answer.get_json()["csrf_token"]
        return answer.get_json()


def events(app, kind: str) -> list[Event]:
    with app.app_context(), database().sessions() as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_only_allowed_origins_are_answered(site):
    widget = Widget(site)
    allowed = widget.get("search", q="refund", instant="1")
    assert allowed.status_code == 200 and allowed.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in allowed.headers["Vary"] and "X-KB-Session" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    preflight = site.test_client().options("/widget/api/contact", headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-csrftoken, x-kb-session, x-kb-page"})
    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert {"X-CSRFToken", "X-KB-Session", "X-KB-Page"} <= {
        h.strip() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    stranger = Widget(site, origin="https://evil.test", page="https://evil.test/")
    refused = stranger.get("search", q="refund")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "origin"
    assert "Access-Control-Allow-Origin" not in refused.headers
    refused_preflight = site.test_client().options("/widget/api/contact", headers={
        "Origin": "https://evil.test", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in refused_preflight.headers


def test_malformed_widget_origins_stop_the_start(tmp_path, corpus, fake_embedder):
    with pytest.raises(ConfigError, match="KB_WIDGET_ORIGINS must list origins"):
        make_site(tmp_path, corpus, fake_embedder, WIDGET_ORIGINS="https://shop.test/checkout")


def test_posts_need_the_origin_and_the_sessions_token(site):
    widget = Widget(site)
    widget.start()
    no_token = site.test_client().post("/widget/api/articles/return-policy/feedback", json={"helpful": "yes"},
                                       headers={"Origin": SHOP, "X-KB-Session": widget.session})
    assert no_token.status_code == 400 and no_token.get_json()["error"]["code"] == "csrf"
    other_session = Widget(site)
    other_session.token = widget.token  # a token is only good with the session it was made for
    assert other_session.post("articles/return-policy/feedback", {"helpful": "yes"}).status_code == 400
    no_origin = site.test_client().post("/widget/api/articles/return-policy/feedback", json={"helpful": "yes"},
                                        headers={"X-KB-Session": widget.session, "X-CSRFToken": widget.token})
    assert no_origin.status_code == 403
    assert widget.post("articles/return-policy/feedback", {"helpful": "yes"}).status_code == 200


def test_the_header_session_keeps_the_visitor_and_their_vote(site):
    widget = Widget(site)
    widget.start()
    voted = widget.post("articles/return-policy/feedback", {"helpful": "no", "reason": "unclear"})
    assert voted.get_json()["vote"]["helpful"] is False
    article = widget.get("articles/return-policy").get_json()
    assert article["vote"] == {"helpful": False, "reason": "given"} and article["tally"]["votes"] == 1
    assert "<script" not in article["html"] and article["title"] and article["url"].endswith("/articles/return-policy")
    stranger = Widget(site)
    assert stranger.get("articles/return-policy").get_json()["vote"] is None
    forged = Widget(site)
    forged.session = widget.session[:-4] + "AAAA"
    assert forged.get("articles/return-policy").get_json()["vote"] is None  # a forged session is a new visitor


def test_events_carry_the_channel_and_the_host_page_without_its_query(site):
    widget = Widget(site)
    widget.get("search", q="where is my parcel")
    widget.get("search", q="where is my par", instant="1")  # typed: not recorded
    site.test_client().get("/search?q=refund")
    searches = events(site, "search")
    assert [(e.query, e.channel, e.page) for e in searches] == [
        ("where is my parcel", "widget", f"{SHOP}/checkout/payment"), ("refund", "site", None)]


def test_a_ticket_from_the_widget_has_its_channel_page_and_trail(site):
    widget = Widget(site)
    widget.start()
    found = widget.get("search", q="where is my parcel").get_json()
    assert found["hits"] and "<mark>" not in json.dumps(found["hits"])
    widget.get(f"articles/{found['hits'][0]['slug']}", **{"from": "search"})
    form = widget.get("contact", **{"from": "track-your-order"}).get_json()
    assert form["topic"] == "orders" and form["source"] == "article:track-your-order"
    assert widget.post("contact/deflection", {"slug": "delivery-times", "q": "parcel late"}).status_code == 200
    sent = widget.post("contact", {"name": "Sam Carter", "email": "sam@example.com", "topic": "orders",
                                   "subject": "Parcel not here", "message": "My parcel has not arrived yet.",
                                   "rendered": form["rendered"], "source": form["source"], "confirm": "1"})
    assert sent.status_code == 201, sent.get_data(as_text=True)
    assert sent.get_json()["email"] == "sam@example.com"
    again = widget.post("contact", {"name": "Sam Carter", "email": "sam@example.com", "topic": "orders",
                                    "subject": "Parcel not here", "message": "My parcel has not arrived yet.",
                                    "rendered": form["rendered"], "source": form["source"], "confirm": "1"})
    assert again.status_code == 200 and again.get_json()["reference"] == sent.get_json()["reference"]
    with site.app_context(), database().sessions() as s:
        [ticket] = s.scalars(select(Ticket))
    assert (ticket.channel, ticket.page) == ("widget", f"{SHOP}/checkout/payment")
    trail = json.loads(ticket.trail)
    assert [step["kind"] for step in trail] == ["search", "click", "view", "deflection"]
    assert all(step["channel"] == "widget" and step["page"] == f"{SHOP}/checkout/payment" for step in trail)


def test_form_errors_come_back_by_field(site):
    widget = Widget(site)
    widget.start()
    form = widget.get("contact").get_json()
    bad = widget.post("contact", {"name": "", "email": "not-an-address", "topic": "orders", "subject": "Hi",
                                  "message": "short", "rendered": form["rendered"], "confirm": "1"})
    error = bad.get_json()["error"]
    assert bad.status_code == 400 and error["code"] == "invalid"
    assert {"name", "email", "subject", "message"} <= set(error["fields"])


def test_show_on_rules_choose_the_suggestions_then_the_page_title(site):
    on_tent = Widget(site, page=f"{SHOP}/products/ridgeline-2-tent").start()
    assert on_tent["suggested_by"] == "rule" and on_tent["suggestions"][0]["slug"] == "ridgeline-tent-parts"
    at_checkout = Widget(site).start()
    assert at_checkout["suggested_by"] == "rule" and at_checkout["suggestions"][0]["slug"] == "track-your-order"
    about = Widget(site, page=f"{SHOP}/about").start(title="Refunds and returns", h1="Return policy")
    assert about["suggested_by"] == "page" and "return-policy" in [a["slug"] for a in about["suggestions"]]
    asked = Widget(site, page=f"{SHOP}/about").start(suggest="stove-recall,order-tracking,nope")
    assert asked["suggested_by"] == "asked"
    assert [a["slug"] for a in asked["suggestions"]] == ["stove-recall", "track-your-order"]


def test_kb_check_refuses_a_show_on_that_is_not_a_path(tmp_path):
    text = "---\ntitle: Tents\nshow_on: [\"https://shop.test/tents\", \"/a b\", 3]\n---\nBody.\n"
    with pytest.raises(InvalidArticle) as raised:
        parse_article(text, tmp_path / "tents.md")
    messages = [p.message for p in raised.value.problems]
    assert any("must be a path on the shop's site" in m for m in messages)
    assert any("without spaces" in m for m in messages)
    assert parse_article("---\ntitle: Tents\nshow_on: [\"/tents*\"]\n---\nB.\n", tmp_path / "t.md").show_on == \
        ("/tents*",)


def test_only_a_signed_identity_prefills_the_form(site):
    widget = Widget(site)
    widget.start()
    unsigned = widget.post("identify", {"name": "Eve", "email": "eve@example.com", "signature": "0" * 64})
    assert unsigned.get_json() == {"identified": False}
    assert widget.get("contact").get_json()["email"] == ""
    signature = hmac.new(SECRET.encode(), b"sam@example.com", hashlib.sha256).hexdigest()
    signed = widget.post("identify", {"name": "Sam Carter", "email": "sam@example.com", "signature": signature})
    assert signed.get_json() == {"identified": True}
    form = widget.get("contact").get_json()
    assert (form["name"], form["email"]) == ("Sam Carter", "sam@example.com")
    assert widget.start()["identity"] == {"name": "Sam Carter", "email": "sam@example.com"}


def test_the_script_is_served_to_any_site(site):
    with site.test_client().get("/widget.js") as script:
        assert script.status_code == 200 and script.mimetype == "text/javascript"
        assert script.headers["Cross-Origin-Resource-Policy"] == "cross-origin" and script.headers["ETag"]
        assert "max-age=300" in script.headers["Cache-Control"] and "Set-Cookie" not in script.headers
        tag = script.headers["ETag"]
    with site.test_client().get("/widget.js", headers={"If-None-Match": tag}) as again:
        assert again.status_code == 304
    with site.test_client().get("/widget.css") as styles:
        assert styles.status_code == 200 and styles.mimetype == "text/css"


def test_the_dashboard_counts_each_channel_and_the_pages_that_still_led_to_tickets(site):
    from tests.test_staff import signed_in

    for page, send in ((f"{SHOP}/checkout/payment", True), (f"{SHOP}/checkout/payment", False),
                       (f"{SHOP}/products/ridgeline-2-tent", False)):
        widget = Widget(site, page=page)
        widget.start()
        widget.get("search", q="where is my parcel")
        if send:
            form = widget.get("contact").get_json()
            assert widget.post("contact", {"name": "Sam", "email": "sam@example.com", "topic": "orders",
                                           "subject": "Parcel", "message": "Where is my parcel, please?",
                                           "rendered": form["rendered"], "confirm": "1"}).status_code == 201
    site.test_client().get("/search?q=refund")
    staff = signed_in(site, "editor")
    page = staff.get("/staff/?days=7").get_data(as_text=True)
    assert "Help centre and widget" in page and "Shop pages where customers still opened a ticket" in page
    channels = staff.get("/staff/dashboard.csv?table=channels&days=7").get_data(as_text=True).splitlines()
    assert channels[0] == "channel,visits,visits_with_ticket,self_service_percent,deflections,tickets"
    assert channels[1:] == ["site,1,0,100.0,0,0", "widget,3,1,66.7,0,1"]
    pages = staff.get("/staff/dashboard.csv?table=ticket_pages&days=7").get_data(as_text=True).splitlines()
    assert pages[1:] == [f"{SHOP}/checkout/payment,2,1,50.0"]


def test_the_sites_rate_limits_hold_in_the_widget_and_their_answer_is_readable(tmp_path, corpus, fake_embedder):
    app = make_site(tmp_path, corpus, fake_embedder, WIDGET_ORIGINS=SHOP, RATELIMIT_ENABLED=True,
                    RATELIMIT_SEARCH="1 per minute", RATELIMIT_VOTES="1 per minute")
    widget = Widget(app)
    widget.start()
    assert widget.get("search", q="refund").status_code == 200
    limited = widget.get("search", q="refund")
    assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
    assert limited.headers["Access-Control-Allow-Origin"] == SHOP and limited.headers["Retry-After"]
    assert widget.post("articles/return-policy/feedback", {"helpful": "yes"}).status_code == 200
    assert widget.post("articles/return-policy/feedback", {"helpful": "no"}).status_code == 429
    app.extensions["kb_db"].engine.dispose()
