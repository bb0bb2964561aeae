"""The help widget on a shop's page: another origin, a strict CSP, hostile global CSS, the one script tag.

Both servers are real: the help centre (``kb_site`` with ``KB_WIDGET_ORIGINS`` naming the shop) and the shop, a
small http.server on another port serving tests/browser/shop/. At 1280 and 360 px the customer goes from the
launcher to a ticket; the keyboard, the shop's JS API and its queue, errors, axe-core and script payloads are
checked too. Screenshots of every view go to screenshots/widget-<view>-<width>[-dark].png.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import json
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import make_server

from kb_site.db import database
from kb_site.models import Event, Ticket, Vote
from tests.browser.conftest import AXE, ROOT, closing, shots_folder
from tests.conftest import make_site
from tests.fakes import HashingEmbedder

SHOP = Path(__file__).parent / "shop"
SECRET = "the-shop-and-the-help-centre-share-this"
CSP = ("default-src 'self'; script-src 'self' {kb}; style-src 'self' {kb}; connect-src {kb}; "
       "img-src 'self' {kb} data:")
# Where the keyboard focus is, seen from inside the widget's shadow root.
FOCUS = """() => {
  const root = document.getElementById('kb-widget-host').shadowRoot, a = root.activeElement;
  if (!a) return null;
  return {kb: a.getAttribute('data-kb'), tag: a.localName, label: a.getAttribute('aria-label'),
          text: (a.textContent || '').trim().slice(0, 80), inPanel: root.getElementById('kb-panel').contains(a)};
}"""
# Anything in the shadow root that could run script: handlers, script URLs, script-bearing elements.
DANGER = """() => {
  const found = [];
  for (const e of document.getElementById('kb-widget-host').shadowRoot.querySelectorAll('*')) {
    const tags = ['script', 'iframe', 'object', 'embed', 'style', 'frame', 'base', 'meta'];
    if (tags.includes(e.localName)) found.push(e.localName);
    for (const a of e.attributes) {
      if (/^on/i.test(a.name) || a.name === 'style' || a.name === 'srcdoc') found.push(e.localName + ' ' + a.name);
      if (/^\\s*(javascript|vbscript):/i.test(a.value)) found.push(e.localName + ' ' + a.name + '=' + a.value);
    }
  }
  return found;
}"""


class Shop:
    """A shop on its own origin whose pages carry the help centre's tag (``kb`` is the help centre's origin).

    ``/`` has the strict CSP; ``/lax`` has none (so a payload that got in would run); ``?open`` adds
    data-kb-open; ``?title=`` and ``?h1=`` set the page's title and heading.
    """

    def __init__(self) -> None:
        self.kb = ""
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path, _, query = self.path.partition("?")
                params = parse_qs(query, keep_blank_values=True)
                headers = {}
                if path in ("/", "/lax") or path.startswith(("/products/", "/checkout")):
                    page = (SHOP / "index.html").read_text(encoding="utf-8")
                    for key, value in {
                        "{{KB}}": shop.kb, "{{OPEN}}": " data-kb-open" if "open" in params else "",
                        "{{TITLE}}": html.escape(params.get("title", ["Trail 2 tent · Northwind shop"])[0]),
                        "{{H1}}": html.escape(params.get("h1", ["Trail 2 tent"])[0]),
                    }.items():
                        page = page.replace(key, value)
                    body, kind = page.encode(), "text/html; charset=utf-8"
                    if path != "/lax":
                        headers["Content-Security-Policy"] = CSP.format(kb=shop.kb)
                elif path in ("/shop.css", "/shop.js"):
                    body = (SHOP / path[1:]).read_bytes()
                    kind = "text/css" if path.endswith(".css") else "text/javascript"
                elif path == "/__axe.js" and AXE.exists():
                    body, kind = AXE.read_bytes(), "text/javascript"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HelpCentre:
    """The help centre on its own port, with its application for looking into the database."""

    def __init__(self, app, server) -> None:
        self.app, self.server = app, server
        self.url = f"http://127.0.0.1:{server.server_port}"

    def stop(self) -> None:
        """Stop answering and close the port: the widget's requests fail as on a lost connection."""
        self.server.shutdown()
        self.server.server_close()

    def rows(self, model, *where):
        with self.app.app_context(), database().sessions() as s:
            return s.scalars(select(model).where(*where)).all()


@contextlib.contextmanager
def help_centre_for(tmp_path: Path, monkeypatch, origins: str, articles: dict[str, str] | None = None,
                    embedder=None, **config):
    """Serve the bundled articles (and ``articles``: path → text) with ``KB_WIDGET_ORIGINS=origins``, searched
    with the fake embedder unless given another."""
    folder = tmp_path / "articles"
    shutil.copytree(ROOT / "articles", folder)
    for name, text in (articles or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("KB_WIDGET_ORIGINS", origins)  # as a deployment sets it
    monkeypatch.setenv("KB_WIDGET_IDENTITY_SECRET", SECRET)
    app = make_site(tmp_path, folder, embedder or HashingEmbedder(), CONTACT_MIN_SECONDS=0, BASE_URL="", **config)
    server = make_server("127.0.0.1", 0, closing(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    centre = HelpCentre(app, server)
    try:
        yield centre
    finally:
        with contextlib.suppress(OSError):
            centre.stop()
        app.extensions["kb_db"].engine.dispose()


@pytest.fixture
def shop():
    shop = Shop()
    yield shop
    shop.close()


@pytest.fixture
def centre(tmp_path, monkeypatch, shop):
    with help_centre_for(tmp_path, monkeypatch, shop.url) as running:
        shop.kb = running.url
        yield running


def open_shop(browser, shop: Shop, path: str = "/", width: int = 1280, scheme: str = "light", **options):
    """A new tab on the shop's page; it records requests and the CSP's complaints (window.__csp)."""
    height = 800 if width < 600 else 900
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme, **options)
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', e => "
        "window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));")
    tab = context.new_page()
    tab.requests = []  # type: ignore[attr-defined]
    tab.dialogs = []  # type: ignore[attr-defined]
    tab.on("request", lambda r: tab.requests.append(r))
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    tab.goto(shop.url + path)
    expect(tab.locator("[data-kb=launcher]")).to_be_visible()
    return tab


def api_requests(tab) -> list:
    return [r for r in tab.requests if "/widget/api/" in r.url and r.method != "OPTIONS"]


def csp_complaints(tab) -> list[str]:
    """Return what the shop's CSP blocked, except axe-core's own <style> (the test's tool, not the widget)."""
    return [c for c in tab.evaluate("window.__csp") if "/__axe.js:" not in c]


def focus(tab) -> dict:
    return tab.evaluate(FOCUS)


def axe_serious(tab) -> list[str]:
    """Return axe-core's serious and critical findings on the whole page, the widget's shadow root included."""
    if not AXE.exists():
        return []
    if not tab.evaluate("typeof axe !== 'undefined'"):
        tab.add_script_tag(url=tab.url.split("?")[0].rstrip("/").rsplit("/lax", 1)[0] + "/__axe.js")
    result = tab.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def until(check, seconds: float = 5.0):
    """Return ``check()``'s first truthy value, trying for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.mark.parametrize(("width", "scheme"), [(1280, "light"), (360, "light"), (1280, "dark"), (360, "dark")])
def test_from_the_launcher_to_a_ticket(browser, shop, centre, width, scheme):
    """Launcher only, and no request to the API, until the click; then search, the answer, an article and a vote,
    the contact form with live deflection (an opened suggestion is recorded), Back to the form as it was, field
    errors in place, the reference; Escape closes and the launcher has the focus. The shop's CSS changes nothing
    inside, the CSP never complains, axe finds nothing serious in any view."""
    tab = open_shop(browser, shop, width=width, scheme=scheme)
    suffix = f"{width}" + ("-dark" if scheme == "dark" else "")
    shots = shots_folder()
    problems: dict[str, list[str]] = {}

    def look(view: str) -> None:
        tab.mouse.move(1, 1)  # no card left looking hovered by the last click
        tab.screenshot(path=str(shots / f"widget-{view}-{suffix}.png"))
        found = axe_serious(tab)
        if found:
            problems[view] = found
        # the widget's own content never scrolls sideways
        assert tab.evaluate("""() => { const b = document.getElementById('kb-widget-host').shadowRoot
          .querySelector('.kb-body'); return b.scrollWidth - b.clientWidth; }""") <= 0, view

    tab.wait_for_timeout(300)  # time for an eager widget to call home: it must not
    assert api_requests(tab) == []
    assert tab.locator("#kb-widget-host").count() == 1
    assert tab.evaluate("document.getElementById('kb-widget-host').shadowRoot.querySelector('.kb-panel')") is None
    launcher = tab.locator("[data-kb=launcher]")
    expect(launcher).to_have_accessible_name("Help")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    # The shop's `* { font-size: 40px !important; color: red !important }` stays outside; ours stays inside.
    assert launcher.evaluate("e => getComputedStyle(e).fontSize") == "17px"
    assert launcher.evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
    assert tab.evaluate("getComputedStyle(document.querySelector('h1')).fontSize") == "40px"
    shop_button = tab.evaluate("getComputedStyle(document.querySelector('main button')).backgroundColor")
    assert shop_button == "rgb(255, 251, 224)"

    launcher.click()
    panel = tab.locator("[role=dialog]")
    expect(panel).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(panel).to_have_attribute("aria-modal", "true")
    expect(panel).to_have_accessible_name(re.compile("help", re.I))
    assert focus(tab)["kb"] == "search" and focus(tab)["inPanel"]
    panel.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")  # measured where it settles
    box = {k: round(v) for k, v in panel.bounding_box().items()}
    if width <= 480:
        assert box == {"x": 0, "y": 0, "width": width, "height": 800}
    else:
        assert box["width"] == 400 and 560 <= box["height"] <= 640
        assert box["x"] + box["width"] == width - 20 and box["y"] + box["height"] <= launcher.bounding_box()["y"]
    expect(tab.locator(".kb-suggested .kb-card").first).to_be_visible()  # "Suggested for this page"
    first = api_requests(tab)[0]
    assert "/widget/api/start?" in first.url and "h1=Trail+2+tent" in first.url
    look("home")

    search = tab.locator("[data-kb=search]")
    search.fill("where is my parcel")
    expect(tab.locator("[role=option]").first).to_be_visible()  # instant suggestions
    expect(search).to_have_attribute("aria-expanded", "true")
    search.press("Enter")
    answer = tab.locator("[data-kb=answer]")
    expect(answer).to_be_visible()
    expect(answer).to_contain_text("From Track your order")
    expect(tab.locator("[data-kb=result]").first).to_be_visible()
    assert focus(tab)["text"] == "Results for “where is my parcel”"
    look("results")

    tab.locator("[data-kb=result]").first.click()
    article = tab.locator("[data-kb=article]")
    expect(article).to_be_visible()
    expect(article.locator("h3")).to_have_text("Track your order")
    expect(article.locator(".kb-prose p").first).to_be_visible()
    look("article")

    tab.locator("[data-kb=helpful-no]").click()
    expect(tab.locator(".kb-reasons")).to_be_visible()
    expect(tab.locator("[data-kb=helpful-no]")).to_be_hidden()  # the question gives way to the reasons
    assert focus(tab)["tag"] == "input"
    look("article-reasons")
    tab.locator(".kb-choice", has_text="It didn't answer my question").click()
    tab.locator(".kb-reasons textarea").fill("I wanted the courier's phone number")
    tab.locator(".kb-reasons button[type=submit]").click()
    expect(tab.locator(".kb-feedback [role=status]")).to_have_text("Thanks for letting us know.")
    expect(tab.locator("[data-kb=helpful-no]")).to_have_attribute("aria-pressed", "true")
    assert [(v.slug, v.helpful, v.reason) for v in centre.rows(Vote)] == [("track-your-order", False, "not-answered")]
    look("article-voted")

    tab.locator("[data-kb=contact]").click()
    form = tab.locator(".kb-form")
    expect(form).to_be_visible()
    expect(form.locator("select[name=topic]")).to_have_value("orders")  # the article's category
    expect(form.locator("input[name=name]")).to_have_value("")  # the shop's unsigned identity prefills nothing
    form.locator("input[name=subject]").fill("My parcel has not arrived")
    deflected = tab.locator(".kb-deflect")
    expect(deflected).to_contain_text("These articles might answer your question")
    expect(deflected.locator(".kb-card-link").first).to_be_visible()
    body = tab.locator(".kb-body").bounding_box()
    assert deflected.bounding_box()["y"] + 60 < body["y"] + body["height"]  # in sight while typing the subject
    look("contact")

    title = deflected.locator(".kb-card-link").first.inner_text()
    deflected.locator(".kb-card-link").first.click()
    expect(article.locator("h3")).to_have_text(title)
    assert until(lambda: centre.rows(Event, Event.kind == "deflection")), "the opened suggestion was not recorded"
    tab.get_by_role("button", name="Back").click()
    expect(form.locator("input[name=subject]")).to_have_value("My parcel has not arrived")  # as it was left

    form.locator("input[name=name]").fill("Sam Carter")
    form.locator("input[name=email]").fill("sam@")
    form.locator("input[name=order_number]").fill("NW-123456")
    form.locator("textarea[name=message]").fill("Ordered a tent last week, tracking has said 'in transit' since.")
    form.locator("button[type=submit]").click()
    email = form.locator("input[name=email]")
    expect(email).to_have_attribute("aria-invalid", "true")
    error_id = email.get_attribute("aria-describedby")
    assert error_id and tab.locator(f"[id='{error_id}']").inner_text()
    assert focus(tab)["tag"] == "input"
    look("contact-errors")
    email.fill("sam@example.com")
    form.locator("button[type=submit]").click()
    reference = tab.locator("[data-kb=reference]")
    expect(reference).to_be_visible()
    expect(tab.locator(".kb-view-sent")).to_contain_text("We'll reply to sam@example.com")
    tickets = centre.rows(Ticket)
    assert [(t.reference, t.channel, t.email, t.order_number) for t in tickets] == [
        (reference.inner_text(), "widget", "sam@example.com", "NW-123456")]
    assert tickets[0].page and tickets[0].page.startswith(shop.url)
    trail = json.loads(tickets[0].trail)  # what the customer tried, each step from the widget on the shop's page
    assert {"search", "view", "vote", "deflection"} <= {step["kind"] for step in trail}
    assert any(step["kind"] == "search" and step.get("query") == "where is my parcel" for step in trail)
    assert all(step["channel"] == "widget" and step["page"] == shop.url + "/" for step in trail)
    look("sent")

    tab.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    assert focus(tab)["kb"] == "launcher"
    assert tab.evaluate("document.activeElement.id") == "kb-widget-host"

    # Every API call: no cookie, the host page, the session once the server gave one, a token on each POST.
    calls = api_requests(tab)
    assert all("cookie" not in r.headers for r in calls)
    assert all(r.headers.get("x-kb-page", "").startswith(shop.url) for r in calls)
    assert all(r.headers.get("x-kb-session") for r in calls[1:])
    assert all(r.headers.get("x-csrftoken") for r in calls if r.method == "POST")
    assert tab.evaluate("sessionStorage.getItem('kb-widget-session')")
    assert tab.evaluate("document.cookie") == ""
    assert csp_complaints(tab) == []
    assert tab.dialogs == []
    assert problems == {}
    tab.context.close()


def test_keyboard_alone(browser, shop, centre):
    """Enter on the launcher opens with the focus in the search box; arrows pick a suggestion, Enter opens it;
    Tab and Shift+Tab never leave the panel; Escape closes the list first, then the panel; reopening brings the
    same view back with the focus where it was; Back returns through the views."""
    tab = open_shop(browser, shop)
    launcher = tab.locator("[data-kb=launcher]")
    launcher.focus()
    tab.keyboard.press("Enter")
    expect(tab.locator("[role=dialog]")).to_be_visible()
    assert focus(tab)["kb"] == "search"
    tab.keyboard.type("refund")
    options = tab.locator("[role=option]")
    expect(options.first).to_be_visible()
    search = tab.locator("[data-kb=search]")
    tab.keyboard.press("ArrowDown")
    tab.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(search).to_have_attribute("aria-activedescendant", options.nth(1).get_attribute("id"))
    tab.keyboard.press("ArrowUp")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    tab.keyboard.press("Escape")  # the list, not the panel
    expect(search).to_have_attribute("aria-expanded", "false")
    expect(tab.locator("[role=dialog]")).to_be_visible()
    tab.keyboard.press("ArrowDown")
    expect(options.first).to_be_visible()
    tab.keyboard.press("ArrowDown")
    tab.keyboard.press("Enter")
    heading = tab.locator("[data-kb=article] h3")
    expect(heading).to_be_visible()
    assert focus(tab)["tag"] in ("h3", "h4", "h5", "h6")  # the article's title, or the answer's section

    seen = set()
    for _ in range(60):
        tab.keyboard.press("Tab")
        now = focus(tab)
        assert now and now["inPanel"], f"Tab left the panel: {now}"
        seen.add((now["tag"], now["label"] or now["text"][:30]))
    assert ("button", "Back") in seen and ("button", "Close help") in seen
    tab.get_by_role("button", name="Back").focus()
    tab.keyboard.press("Shift+Tab")  # from the first, round to the last
    assert focus(tab)["kb"] == "contact" and focus(tab)["inPanel"]
    tab.keyboard.press("Tab")
    assert focus(tab)["label"] == "Back"

    tab.keyboard.press("Escape")
    expect(tab.locator("[role=dialog]")).to_be_hidden()
    assert focus(tab)["kb"] == "launcher"
    tab.keyboard.press("Enter")
    expect(heading).to_be_visible()  # the same view, the focus where it was
    assert focus(tab)["label"] == "Back"
    tab.keyboard.press("Enter")
    expect(tab.locator(".kb-view-home")).to_be_visible()
    expect(tab.get_by_role("button", name="Back")).to_be_hidden()  # nothing further back
    assert focus(tab)["kb"] == "search"
    assert tab.locator("[role=dialog]").evaluate("e => getComputedStyle(e).animationName") == "kb-in"
    tab.context.close()

    still = open_shop(browser, shop, reduced_motion="reduce")
    still.locator("[data-kb=launcher]").click()
    assert still.locator("[role=dialog]").evaluate("e => getComputedStyle(e).animationName") == "none"
    still.context.close()


def test_the_shop_drives_it_with_kb(browser, shop, centre):
    """data-kb-open opens at once; KB() closes, searches, suggests articles (a picture in one loads from our
    origin), and a signed identity prefills the contact form (the unsigned one the shop queued before the script
    loaded did not)."""
    tab = open_shop(browser, shop, "/?open")
    expect(tab.locator("[role=dialog]")).to_be_visible()
    expect(tab.locator(".kb-view-home")).to_be_visible()
    assert tab.evaluate("typeof KB === 'function' && !KB.q")  # the queue was replayed and replaced
    tab.evaluate("KB('close')")
    expect(tab.locator("[role=dialog]")).to_be_hidden()

    tab.evaluate("KB('search', 'refund for a gift')")
    expect(tab.locator("[role=dialog]")).to_be_visible()
    expect(tab.locator(".kb-view-results h3")).to_have_text("Results for “refund for a gift”")
    expect(tab.locator("[data-kb=result]").first).to_be_visible()
    assert until(lambda: centre.rows(Event, Event.kind == "search"))  # a search sent, not typed: recorded

    tab.evaluate("KB('suggest', ['gift-cards', 'klarna'])")
    home = tab.locator(".kb-view-home")
    expect(home).to_be_visible()
    expect(home.locator(".kb-suggested h4")).to_have_text("Suggested for you")
    expect(home.locator(".kb-suggested .kb-card-link")).to_have_text(["Gift cards and e-gift cards",
                                                                     "Pay later with Klarna"])

    tab.evaluate("KB('suggest', ['clothing-size-guide'])")  # its picture's address is relative to our site
    tab.locator(".kb-view-home .kb-card-link", has_text="size guide").click()
    picture = tab.locator("[data-kb=article] .kb-prose img").first
    expect(picture).to_be_visible()
    assert picture.get_attribute("src").startswith(centre.url + "/")
    assert picture.evaluate("img => img.complete && img.naturalWidth > 0")  # loaded, under the shop's CSP
    tab.get_by_role("button", name="Back").click()

    signature = hmac.new(SECRET.encode(), b"sam@example.com", hashlib.sha256).hexdigest()
    who = {"name": "Sam Carter", "email": "sam@example.com", "signature": signature}
    tab.evaluate(f"KB('identify', {json.dumps(who)})")
    tab.wait_for_timeout(300)
    tab.locator("[data-kb=contact]").click()
    expect(tab.locator(".kb-form input[name=name]")).to_have_value("Sam Carter")
    expect(tab.locator(".kb-form input[name=email]")).to_have_value("sam@example.com")
    assert csp_complaints(tab) == []

    # A new page of the shop in the same tab: the same visitor (the session from sessionStorage), the same vote.
    tab.evaluate("KB('suggest', ['gift-cards'])")
    tab.locator(".kb-view-home .kb-card-link", has_text="Gift cards").click()
    tab.locator("[data-kb=helpful-yes]").click()
    expect(tab.locator(".kb-feedback [role=status]")).not_to_be_empty()
    stored = tab.evaluate("sessionStorage.getItem('kb-widget-session')")
    tab.requests.clear()
    tab.reload()  # data-kb-open: open at once
    expect(tab.locator(".kb-view-home")).to_be_visible()
    assert api_requests(tab)[0].headers.get("x-kb-session") == stored
    tab.evaluate("KB('suggest', ['gift-cards'])")
    tab.locator(".kb-view-home .kb-card-link", has_text="Gift cards").click()
    expect(tab.locator("[data-kb=helpful-yes]")).to_have_attribute("aria-pressed", "true")
    expect(tab.locator(".kb-feedback [role=status]")).to_have_text(
        "You said this article helped. You can change your answer.")
    tab.context.close()


def test_results_without_an_exact_match(browser, shop, tmp_path, monkeypatch, real_embedder):
    """With the real model (the fake one always finds something): a misspelling offers "Did you mean", which
    searches again; nonsense says there is no exact match, and still offers the contact form."""
    with help_centre_for(tmp_path, monkeypatch, shop.url, embedder=real_embedder) as running:
        shop.kb = running.url
        tab = open_shop(browser, shop)
        tab.locator("[data-kb=launcher]").click()
        tab.evaluate("KB('search', 'refnud policy')")
        results = tab.locator(".kb-view-results")
        expect(results.locator(".kb-did-you-mean")).to_have_text("Did you mean refund policy?")
        results.get_by_role("button", name="refund policy").click()
        expect(results.locator("h3")).to_have_text("Results for “refund policy”")
        expect(results.locator("[data-kb=result]").first).to_be_visible()
        tab.evaluate("KB('search', 'qqzzxx wwvv')")
        expect(results.locator(".kb-none")).to_have_text("No exact match for “qqzzxx wwvv”.")
        expect(results.locator("[data-kb=contact]")).to_be_visible()
        tab.get_by_role("button", name="Back").click()  # each search was a step of its own
        expect(results.locator("h3")).to_have_text("Results for “refund policy”")
        tab.context.close()


def test_a_page_with_a_show_on_rule_opens_on_its_articles(browser, shop, centre):
    """The bundled articles say where they help (show_on): the checkout's payment page opens on the payment
    articles, a tent's product page on tent care, whatever its title says."""
    tab = open_shop(browser, shop, "/checkout/payment?title=Rain+jacket&h1=Rain+jacket")
    tab.locator("[data-kb=launcher]").click()
    cards = tab.locator(".kb-suggested .kb-card")
    expect(cards.first).to_contain_text("Ways to pay")
    expect(tab.locator(".kb-suggested")).to_contain_text("Why was my payment declined")
    expect(tab.locator(".kb-view-home")).to_contain_text("Suggested for this page")
    tab.context.close()
    tent = open_shop(browser, shop, "/products/trail-2-tent?title=Jackets&h1=Rain")
    tent.locator("[data-kb=launcher]").click()
    expect(tent.locator(".kb-suggested .kb-card").first).to_contain_text("Caring for your tent")
    tent.context.close()


def test_a_shop_not_allowed_is_told_so(browser, centre):
    """A shop not in KB_WIDGET_ORIGINS gets no CORS answer (the API refuses it with 403, which the browser hides
    from the page by design), so the widget says help isn't available here, and nothing else happens."""
    stranger = Shop()
    stranger.kb = centre.url
    try:
        tab = open_shop(browser, stranger)
        tab.locator("[data-kb=launcher]").click()
        expect(tab.locator("[role=alert]")).to_contain_text("Help isn't available on this site", timeout=5000)
        expect(tab.locator("[data-kb=result]")).to_have_count(0)
        tab.context.close()
    finally:
        stranger.close()


def test_a_lost_connection_says_try_again(browser, shop, centre):
    """With the help centre gone, a search says something went wrong, offers "Try again" and stays on its view."""
    tab = open_shop(browser, shop)
    tab.locator("[data-kb=launcher]").click()
    expect(tab.locator(".kb-suggested .kb-card").first).to_be_visible()
    centre.stop()
    tab.locator("[data-kb=search]").fill("returns")
    tab.locator("[data-kb=search]").press("Enter")
    alert = tab.locator("[role=alert]")
    expect(alert).to_contain_text("Something went wrong — try again.")
    expect(alert.get_by_role("button", name="Try again")).to_be_visible()
    expect(tab.locator(".kb-view-home")).to_be_visible()  # still where it was
    tab.context.close()


def test_too_many_tickets_says_how_long_to_wait(browser, shop, tmp_path, monkeypatch):
    """Over the ticket limit, the form stays as typed and the panel says how many seconds to wait (Retry-After)."""
    with help_centre_for(tmp_path, monkeypatch, shop.url, RATELIMIT_ENABLED=True,
                         RATELIMIT_TICKETS="1 per hour") as running:
        shop.kb = running.url
        tab = open_shop(browser, shop)
        tab.locator("[data-kb=launcher]").click()
        for attempt in range(2):
            tab.locator("[data-kb=contact]").click()
            form = tab.locator(".kb-form")
            form.locator("input[name=name]").fill("Sam Carter")
            form.locator("input[name=email]").fill("sam@example.com")
            form.locator("select[name=topic]").select_option("orders")
            form.locator("input[name=subject]").fill(f"Question number {attempt + 1}")
            form.locator("textarea[name=message]").fill("Where is the tent I ordered last week, please?")
            form.locator("button[type=submit]").click()
            if attempt == 0:
                expect(tab.locator("[data-kb=reference]")).to_be_visible()
                tab.get_by_role("button", name="Back to help").click()
        expect(tab.locator("[role=alert]")).to_contain_text(re.compile(r"Too many requests, try again in \d+ seconds"))
        expect(tab.locator(".kb-form input[name=subject]")).to_have_value("Question number 2")
        assert len(running.rows(Ticket)) == 1
        tab.context.close()


PAYLOADS = [
    "<img src=x onerror=window.pwned=1>",
    "<script>window.pwned=1</script>",
    "<svg onload=window.pwned=1>",
    "<svg><script>window.pwned=1</script></svg>",
    '<a href="javascript:window.pwned=1">javascript link</a>',
    '<a href=" JaVa&#x09;ScRiPt:window.pwned=1">encoded link</a>',
    '<iframe srcdoc="<script>parent.pwned=1</script>"></iframe>',
    "<details open ontoggle=window.pwned=1>details</details>",
    '<a href="/articles/track-your-order" onclick="window.pwned=1">our article</a>',
    "<style>*{display:none}</style>",
    '"><img src=x onerror=window.pwned=1>',
    "[markdown link](javascript:window.pwned=1)",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.pwned=1>",
]


def test_script_payloads_never_run(browser, shop, tmp_path, monkeypatch):
    """Payloads in an article (title, summary, question, body), in the shop page's title and heading, and in a
    query, on a shop page without any CSP: nothing runs, nothing in the shadow root could."""
    probe = "\n".join([
        "---",
        f"title: {json.dumps('Parcel probe ' + PAYLOADS[0])}",
        f"summary: {json.dumps(PAYLOADS[1] + ' where the parcel probe goes')}",
        "questions:",
        f"  - {json.dumps('where is the parcel probe ' + PAYLOADS[2])}",
        "---",
        "The parcel probe article. Ask [the courier](https://courier.example/track) too.",
        "",
        *[f"{p}\n" for p in PAYLOADS],
    ])
    with help_centre_for(tmp_path, monkeypatch, shop.url, {"orders/parcel-probe.md": probe}) as running:
        shop.kb = running.url
        payload = PAYLOADS[0] + PAYLOADS[1]
        tab = open_shop(browser, shop, f"/lax?title={quote(payload)}&h1={quote(payload)}")
        tab.locator("[data-kb=launcher]").click()
        expect(tab.locator(".kb-suggested .kb-card").first).to_be_visible()
        search = tab.locator("[data-kb=search]")
        search.fill("parcel probe " + PAYLOADS[0])
        expect(tab.locator("[role=option]").first).to_be_visible()
        search.press("Enter")
        expect(tab.locator(".kb-view-results h3")).to_contain_text("onerror=window.pwned=1")  # as text
        tab.locator("[data-kb=result]", has_text="Parcel probe").first.click()
        article = tab.locator("[data-kb=article]")
        expect(article.locator("h3")).to_contain_text("Parcel probe <img")
        expect(article.locator(".kb-prose")).to_contain_text("The parcel probe article.")
        tab.wait_for_timeout(500)  # time for an image's error or a frame's script, had one got through
        assert tab.evaluate("window.pwned") is None
        assert tab.evaluate(DANGER) == []
        assert tab.dialogs == []
        courier = article.get_by_role("link", name="the courier")  # not ours: a new tab, no opener
        expect(courier).to_have_attribute("target", "_blank")
        expect(courier).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
        article.get_by_role("link", name="our article").click()  # our link opens in the widget, minus its onclick
        expect(article.locator("h3")).to_have_text("Track your order")
        assert tab.evaluate("window.pwned") is None
        tab.context.close()
