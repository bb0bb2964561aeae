"""The public pages as a reader meets them: feedback in place, the instant list's last row, no-script votes,
the dark scheme and the printed article."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from kb_site.db import database
from kb_site.models import Vote


def stored_votes(live) -> list[tuple[bool, str | None]]:
    with live.app.app_context(), database().sessions() as s:
        return [(v.helpful, v.reason) for v in s.scalars(select(Vote)).all()]


def test_no_turns_the_question_into_the_reason_form_in_place(page, live):
    """After "No" the question gives way to "What was wrong?" (not repeated below it); the choices are big
    enough to hit; after a reload the page shows the visitor's own answer, which it got from /visitor.json."""
    page.goto(live.url + "/articles/return-policy")
    page.click(".feedback-vote button[value=no]")
    expect(page.locator(".feedback-reason")).to_be_visible()
    expect(page.locator(".feedback-vote")).to_be_hidden()
    expect(page.locator("input[name=reason]").first).to_be_focused()
    assert page.get_by_text("Was this article helpful?").is_hidden()
    for label in page.locator(".choice").all():
        box = label.bounding_box()
        assert box["height"] >= 24 and box["width"] >= 24
    radio = page.locator("input[name=reason]").first.bounding_box()
    assert radio["height"] >= 24 and radio["width"] >= 24
    page.locator(".choice", has_text="out of date").click()  # the label, not only the dot, picks it
    page.click(".feedback-reason button[type=submit]")
    expect(page.locator(".feedback-status")).to_have_text("Thanks for letting us know.")
    expect(page.locator(".feedback-vote")).to_be_visible()
    assert stored_votes(live) == [(False, "outdated")]
    page.reload()
    expect(page.locator(".feedback-vote button[value=no]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".feedback-status")).to_contain_text("You said this article didn't help")


def test_the_instant_list_ends_with_see_all_results(page, live):
    page.goto(live.url + "/")
    box = page.locator("#q-main")
    box.fill("refund")
    last = page.locator("#q-main-list [role=option]").last
    expect(last).to_have_attribute("data-kb", "see-all")
    expect(last).to_contain_text("results for “refund”")
    box.press("ArrowUp")  # from the box, up reaches the last row
    expect(last).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=refund$"))
    expect(page.locator("h1")).to_have_text("Search results")


def test_a_vote_without_javascript_goes_through_the_feedback_page(browser, live):
    """With scripts off, "No" opens the feedback page (it has the token the public page cannot carry) with the
    reason form; sending it stores the vote and says thanks."""
    context = browser.new_context(java_script_enabled=False)
    tab = context.new_page()
    tab.goto(live.url + "/articles/return-policy")
    tab.click(".feedback-vote button[value=no]")
    tab.wait_for_url(re.compile(r"/articles/return-policy/feedback\?helpful=no$"))
    tab.check("input[name=reason][value=unclear]")
    tab.click(".feedback-reason button[type=submit]")
    tab.wait_for_url(live.url + "/articles/return-policy/feedback")
    expect(tab.locator(".feedback-status")).to_contain_text("Thanks for letting us know.")
    assert stored_votes(live) == [(False, "unclear")]
    tab.goto(live.url + "/articles/return-policy")
    tab.click(".feedback-vote button[value=yes]")  # "Yes" is confirmed: a GET never stores a vote
    tab.click(".feedback-vote button[type=submit]")
    assert stored_votes(live) == [(True, None)]
    context.close()


def luminance(css_colour: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", css_colour)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_the_dark_scheme_follows_the_system(browser, live):
    for scheme, dark in (("light", False), ("dark", True)):
        context = browser.new_context(color_scheme=scheme)
        tab = context.new_page()
        tab.goto(live.url + "/articles/return-policy")
        background = tab.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        ink = tab.evaluate("getComputedStyle(document.querySelector('h1')).color")
        assert (luminance(background) < 0.2) is dark and (luminance(ink) > 0.6) is dark
        context.close()


def test_a_printed_article_is_the_article_alone(page, live):
    page.goto(live.url + "/articles/return-policy")
    page.emulate_media(media="print")
    expect(page.locator("article h1")).to_be_visible()
    expect(page.locator(".article-body")).to_be_visible()
    for hidden in (".site-header", ".site-footer", ".feedback", ".related", ".search-form", ".breadcrumbs"):
        expect(page.locator(hidden).first).to_be_hidden()
