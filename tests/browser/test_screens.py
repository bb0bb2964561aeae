"""Screenshots at 1280 and 360 px, no sideways scrolling on phones, and axe-core finding nothing serious."""

from __future__ import annotations

import pytest

from kb_site.db import database
from kb_site.staff import add_staff
from tests.browser.conftest import AXE, shots_folder
from tests.conftest import need_service

PAGES = {
    "home": "/",
    "category": "/categories/returns",
    "feedback": "/articles/return-policy/feedback?helpful=no",  # the no-script vote
    "not-found": "/articles/retrun-polcy",
    "article": "/articles/clothing-size-guide",
    "results": "/search?q=refund+for+a+gift",
    "contact": "/contact?from=return-policy",
    "dashboard": "/staff/?days=30",
    "zero-results": "/search?q=qqzzxx+wwvv",
    "answer": "/search?q=what+time+are+you+open",  # one of the contact article's own questions
    "pinned-answer": "/search?q=where+is+my+parcel",  # articles/_search.yml pins it
    "corrected": "/search?q=refnud+policy",
    "no-answer": "/search?q=tent+rental",  # no article says "rental": "These might help"
    "tickets": "/staff/tickets",
    "link-finder": "/staff/links?q=return+label",
    "learned": "/staff/learned",
}


def sign_in(page, live) -> None:
    with live.app.app_context(), database().session() as s:
        add_staff(s, "admin@shop.example", "admin", "correct horse battery")
    page.goto(live.url + "/staff/login")
    page.fill("#email", "admin@shop.example")
    page.fill("#password", "correct horse battery")
    page.click("form button[type=submit]")
    page.wait_for_url(live.url + "/staff/")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 360])
def test_screenshots_and_no_sideways_scrolling(browser, live, width, scheme, capsys):
    """Each page is captured at this width in this colour scheme; at 360 px nothing is wider than the screen."""
    context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme)
    page = context.new_page()
    page.goto(live.url + "/search?q=refund")  # something on the dashboard
    sign_in(page, live)
    folder = shots_folder()
    for name, path in PAGES.items():
        page.goto(live.url + path)
        target = folder / f"{name}-{width}-{scheme}.png"
        page.screenshot(path=str(target), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
    context.close()
    with capsys.disabled():
        print(f"\nscreenshots at {width}px, {scheme}: {folder}")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violations(browser, live, scheme):
    """axe-core (from npm, served to the page from the site's own origin) on every page, in the light and the
    dark scheme (contrast included): nothing serious."""
    if not AXE.exists():
        need_service("axe-core", f"{AXE} missing (npm install --prefix tests/browser)")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page = context.new_page()
    # Same-origin URL, so the page's CSP (script-src 'self') lets it in, as any local asset.
    page.route("**/__axe.js", lambda route: route.fulfill(path=str(AXE), content_type="application/javascript"))
    sign_in(page, live)
    found = {}
    for name, path in {**PAGES, "login": "/staff/login"}.items():
        page.goto(live.url + path)
        page.add_script_tag(url=live.url + "/__axe.js")
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} element(s)"
                   for v in result["violations"] if v["impact"] in ("serious", "critical")]
        if serious:
            found[name] = serious
    context.close()
    assert found == {}
