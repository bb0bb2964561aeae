"""XSS hardening in a real browser: 100+ payloads in articles, front-matter, searches, feedback and tickets.

For every page that shows them: no dialog opens, no element carries an on* attribute, no URL attribute
holds javascript:, no payload script ran (window.__xss), and the CSP never had to block a script.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from kb_site.db import database
from kb_site.staff import add_staff
from kb_site.tickets import NewTicket, create_ticket
from search import build_index

RUN = "window.__xss=1;alert(1)"
BASE = [
    f"<script>{RUN}</script>",
    f"<SCRIPT>{RUN}</SCRIPT>",
    f"<script src=data:text/javascript,{RUN}></script>",
    f"<img src=x onerror={RUN}>",
    f"<IMG SRC=x ONERROR=\"{RUN}\">",
    f"<img/src=x/onerror={RUN}>",
    f"<img src=\"x\" onerror=\"{RUN}\"//",
    f"<svg onload={RUN}>",
    f"<svg><script>{RUN}</script></svg>",
    f"<svg><a xlink:href=\"javascript:{RUN}\"><text x=20 y=20>x</text></a></svg>",
    f"<svg><animate onbegin={RUN} attributeName=x dur=1s>",
    f"<body onload={RUN}>",
    f"<details open ontoggle={RUN}>",
    f"<input autofocus onfocus={RUN}>",
    f"<select autofocus onfocus={RUN}></select>",
    f"<textarea autofocus onfocus={RUN}></textarea>",
    f"<video><source onerror={RUN}></video>",
    f"<audio src=x onerror={RUN}>",
    f"<marquee onstart={RUN}>x</marquee>",
    f"<div onmouseover={RUN}>hover</div>",
    f"<a href=\"javascript:{RUN}\">x</a>",
    f"<a href=\"JaVaScRiPt:{RUN}\">x</a>",
    f"<a href=\" javascript:{RUN}\">x</a>",
    f"<a href=\"java&#x09;script:{RUN}\">x</a>",
    f"<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;{RUN}\">x</a>",
    f"<a href=\"data:text/html,<script>{RUN}</script>\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    f"<iframe src=\"javascript:{RUN}\"></iframe>",
    f"<iframe srcdoc=\"<script>{RUN}</script>\"></iframe>",
    f"<object data=\"javascript:{RUN}\"></object>",
    f"<embed src=\"javascript:{RUN}\">",
    f"<form action=\"javascript:{RUN}\"><button>go</button></form>",
    f"<button formaction=\"javascript:{RUN}\">go</button>",
    f"<meta http-equiv=\"refresh\" content=\"0;url=javascript:{RUN}\">",
    "<base href=\"javascript:alert(1)//\">",
    f"<div style=\"background:url(javascript:{RUN})\">x</div>",
    f"<style>@import 'javascript:{RUN}';</style>",
    f"<link rel=stylesheet href=\"javascript:{RUN}\">",
    f"<math><mtext><table><mglyph><style><img src=x onerror={RUN}>",
    f"<scr<script>ipt>{RUN}</script>",
    f"<<script>script>{RUN}//<</script>",
    f"\"><script>{RUN}</script>",
    f"'><img src=x onerror={RUN}>",
    f"</textarea><script>{RUN}</script>",
    f"</title><script>{RUN}</script>",
    f"</script><script>{RUN}</script>",
    f"<!--<script>{RUN}</script>-->",
    f"<noscript><p title=\"</noscript><img src=x onerror={RUN}>\">",
    f"%3Cscript%3E{RUN}%3C/script%3E",
    f"&lt;script&gt;{RUN}&lt;/script&gt;",
    f"\u003cscript\u003e{RUN}\u003c/script\u003e",
    f"[click](javascript:{RUN})",
    f"[click](JAVASCRIPT:{RUN})",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    f"![img](javascript:{RUN})",
    f"![img](x\" onerror=\"{RUN})",
    f"[a](<javascript:{RUN}>)",
    f"<https://x.example/\" onmouseover=\"{RUN}>",
    "{{ config.SECRET_KEY }}{% raw %}",
    "${7*7}<%= 7*7 %>",
]
WRAPPERS = ["{}", "text before {} text after", "**{}**"]
PAYLOADS = [w.format(p) for p in BASE for w in WRAPPERS[:2]]  # 120 placements of 60 payloads


CHECK = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.replace(/[\\s\\u0000-\\u001f]+/g, '').toLowerCase();
      if (name.startsWith('on')) bad.push(el.tagName + ' ' + name);
      if (['href', 'src', 'action', 'formaction', 'xlink:href', 'data', 'srcdoc'].includes(name)
          && (value.startsWith('javascript:') || value.startsWith('vbscript:') || value.startsWith('data:text/html')))
        bad.push(el.tagName + ' ' + name + '=' + value.slice(0, 40));
    }
    if (el.tagName === 'IFRAME' || el.tagName === 'OBJECT' || el.tagName === 'EMBED') bad.push(el.tagName);
  }
  return {bad, xss: window.__xss || 0, csp: window.__csp.filter(v => v.startsWith('script-src'))};
}"""


def assert_clean(page, where: str) -> None:
    page.mouse.move(5, 5)
    page.mouse.move(200, 300)  # hover handlers, if any reached the page
    result = page.evaluate(CHECK)
    assert result == {"bad": [], "xss": 0, "csp": []}, where
    assert page.dialogs == [], where


def test_payloads_in_articles_and_front_matter(page, live):
    """Payloads in article bodies, titles, summaries, tags and questions never run, on any page showing them."""
    assert len(PAYLOADS) >= 100
    root = live.app.config["ARTICLES_DIR"]
    folder = Path(root) / "xss"
    folder.mkdir()
    for n, payload in enumerate(BASE):
        front = {"title": f"Payload {n} {payload}"[:300], "summary": payload, "tags": [payload[:60]],
                 "questions": [payload]}
        body = f"Intro {n}.\n\n## Heading {payload}\n\n{payload}\n\n{WRAPPERS[2].format(payload)}\n"
        (folder / f"payload-{n}.md").write_text("---\n" + "\n".join(f"{k}: {json.dumps(v)}" for k, v in
                                                                    front.items()) + "\n---\n\n" + body)
    build_index(root, Path(live.app.instance_path) / "index", live.app.config["EMBEDDER"])
    for n in range(len(BASE)):
        page.goto(f"{live.url}/articles/payload-{n}")
        assert page.locator("h1").count() == 1
        assert_clean(page, f"article payload-{n}")
    for path in ("/", "/categories/xss", "/search?q=payload", "/sitemap.xml", "/search?q=script+alert"):
        page.goto(live.url + path)
        assert_clean(page, path)


def test_payloads_in_search_queries(page, live):
    """Every payload typed as a search is shown as text on the results page and in the suggestions."""
    for payload in PAYLOADS:
        page.goto(f"{live.url}/search?q={quote(payload)}")
        assert_clean(page, f"search {payload!r}")
    page.goto(live.url + "/")
    page.fill("#q-main", BASE[3])
    page.wait_for_timeout(400)
    assert_clean(page, "suggestions")


def test_payloads_in_feedback_and_tickets_shown_to_staff(page, live):
    """Comments and ticket fields full of payloads are inert on the staff dashboard, queue and ticket pages."""
    for payload in PAYLOADS[:40]:
        visitor = requests.Session()  # one vote a visitor: each payload comment from its own visitor
        token = visitor.get(live.url + "/visitor.json?article=return-policy").json()["csrf_token"]
        r = visitor.post(live.url + "/articles/return-policy/feedback", timeout=10,
                         data={"helpful": "no", "reason": "other", "comment": payload},
                         headers={"X-CSRFToken": token, "Accept": "application/json"})
        assert r.status_code == 200
    references = []
    with live.app.app_context():
        for payload in PAYLOADS:
            with database().sessions() as s:
                ticket = create_ticket(s, NewTicket(name=payload[:100], email="x@example.com", subject=payload[:150],
                                                    message=payload, topic=payload[:64], order_number=payload[:32],
                                                    source=payload[:500]), "local", visit=None,
                                       trail=[{"kind": "search", "at": "2026-11-24T10:00:00+00:00",
                                               "query": payload, "results": 0}])
            references.append(ticket.reference)
        with database().session() as s:
            add_staff(s, "admin@shop.example", "admin", "correct horse battery")
    page.goto(live.url + "/staff/login")
    page.fill("#email", "admin@shop.example")
    page.fill("#password", "correct horse battery")
    page.click("form button[type=submit]")
    for path in ["/staff/?days=7", "/staff/tickets", *[f"/staff/tickets/{r}" for r in references[:60]]]:
        page.goto(live.url + path)
        assert_clean(page, path)


@pytest.fixture(autouse=True)
def _clean_articles(live):
    yield
    shutil.rmtree(live.app.config["ARTICLES_DIR"] + "/xss", ignore_errors=True)

