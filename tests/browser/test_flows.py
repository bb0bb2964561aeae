"""End-to-end flows in headless Chromium: instant search, articles, feedback, contact form, staff tools."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy import select

from kb_site.db import database
from kb_site.models import Event, Ticket, Vote
from kb_site.staff import add_staff


def test_instant_search_keyboard(page, live):
    """Typing shows suggestions; arrows move, Enter opens the chosen article, Escape closes the list."""
    page.goto(live.url + "/")
    box = page.locator("#q-main")
    box.fill("how do i return something")
    options = page.locator("#q-main-list [role=option]")
    expect(options.first).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    box.press("ArrowDown")
    box.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", "q-main-list-1")
    box.press("ArrowUp")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    box.press("Escape")
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#q-main-list")).to_be_hidden()
    box.press("ArrowDown")  # opens the list again
    expect(options.first).to_be_visible()
    box.press("ArrowDown")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/articles/[\w-]+"))
    assert page.locator("h1").inner_text()
    with live.app.app_context(), database().sessions() as s:
        assert s.scalar(select(Event).where(Event.kind == "click")) is not None  # the pick was recorded


def test_results_page_with_and_without_javascript(browser, live):
    """The results page works the same with scripts off: count, marked snippets, filters, pages."""
    for javascript in (True, False):
        context = browser.new_context(java_script_enabled=javascript)
        tab = context.new_page()
        tab.goto(live.url + "/")
        tab.fill("#q-main", "refund")
        tab.press("#q-main", "Enter") if not javascript else tab.click("form.search-form--main button")
        tab.wait_for_url(re.compile(r"/search\?q=refund"))
        expect(tab.locator(".result-count")).to_contain_text("for “refund”")
        expect(tab.locator(".result-snippet mark").first).to_be_visible()
        tab.locator(".facets a", has_text="Returns").click()
        expect(tab.locator(".facets a[aria-current=true]")).to_contain_text("Returns")
        context.close()


def test_article_toc_copy_link_and_feedback(page, live):
    """Contents link to sections; copy-link puts the deep link on the clipboard; votes save without reload."""
    page.goto(live.url + "/articles/return-policy")
    toc = page.locator("nav.toc a")
    assert toc.count() >= 3
    first = toc.first.get_attribute("href")
    anchor = page.locator(f"h2{first} a.anchor")
    anchor.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"{live.url}/articles/return-policy{first}"
    expect(page.locator("[data-copy-status]")).to_contain_text("Link copied")
    page.evaluate("window.__same_page = true")
    page.click(".feedback-vote button[value=yes]")
    expect(page.locator(".feedback-status")).to_have_text("Thanks for letting us know.")
    page.click(".feedback-vote button[value=no]")
    expect(page.locator(".feedback-reason")).to_be_visible()
    expect(page.locator(".feedback-contact")).to_be_visible()
    page.check("input[name=reason][value=outdated]")
    page.fill("#feedback-comment", "The label link is gone")
    page.click(".feedback-reason button[type=submit]")
    expect(page.locator(".feedback-reason")).to_be_hidden()
    assert page.evaluate("window.__same_page") is True  # no reload happened
    with live.app.app_context(), database().sessions() as s:
        [vote] = s.scalars(select(Vote)).all()
    assert (vote.slug, vote.helpful, vote.reason, vote.comment) == ("return-policy", False, "outdated",
                                                                   "The label link is gone")


def test_contact_form_suggests_records_deflection_and_sends(page, live):
    """Suggestions appear while typing; opening one is a deflection; errors sit by their fields; sending
    shows the reference."""
    page.goto(live.url + "/contact")
    page.click("form.contact-form button[type=submit]")
    expect(page.locator("#email-error")).to_have_text("We need your email address to reply.")
    expect(page.locator("#name")).to_have_attribute("aria-invalid", "true")
    page.fill("#name", "Sam Carter")
    page.fill("#email", "sam@example.com")
    page.select_option("#topic", "returns")
    page.fill("#subject", "refund for my boots")
    page.fill("#message", "I returned my boots and want to know when the refund arrives")
    suggestion = page.locator("[data-suggestions] a").first
    expect(suggestion).to_be_visible()
    with page.context.expect_page() as opened:
        suggestion.click()
    opened.value.wait_for_load_state()
    assert "/articles/" in opened.value.url
    opened.value.close()
    with live.app.app_context(), database().sessions() as s:
        assert s.scalar(select(Event).where(Event.kind == "deflection")) is not None
    page.click("form.contact-form button[type=submit]")
    expect(page.locator(".reference")).to_have_text(re.compile(r"KB-\w{4}-\w{2}"))
    reference = page.locator(".reference").inner_text()
    with live.app.app_context(), database().sessions() as s:
        assert s.scalar(select(Ticket.reference)) == reference


def test_staff_login_dashboard_csv_and_link_finder(page, live):
    """Staff sign in, see the chart, download a CSV, and copy links and reply snippets."""
    with live.app.app_context(), database().session() as s:
        add_staff(s, "admin@shop.example", "admin", "correct horse battery")
    page.goto(live.url + "/search?q=refund")  # some traffic for the dashboard
    page.goto(live.url + "/search?q=nothing+matches+qqzz")
    page.goto(live.url + "/staff/")
    page.fill("#email", "admin@shop.example")
    page.fill("#password", "correct horse battery")
    page.click("form button[type=submit]")
    page.wait_for_url(live.url + "/staff/")
    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["height"] > 50 and page.locator("svg.chart rect").count() >= 8
    with page.expect_download() as download:
        page.locator("#t-top_queries").locator("xpath=..").get_by_text("Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert {"query", "searches"} <= set(rows[0]) and "refund" in [r["query"] for r in rows]
    page.goto(live.url + "/staff/links")
    page.fill("#link-q", "return label")
    page.press("#link-q", "Enter")
    page.wait_for_url(re.compile(r"/staff/links\?q="))
    page.press("#link-q", "ArrowDown")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Copy link"
    page.keyboard.press("Enter")
    link = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(rf"{re.escape(live.url)}/articles/[\w-]+(#[\w-]+)?", link)
    page.locator("[data-copy-from^=reply-]").first.click()
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert snippet.endswith(link.split("#")[0]) or link in snippet
