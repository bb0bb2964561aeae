"""In a real browser: cross-site posts meet the missing-token page, and the change-password page, at 1280/360 px."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from kb_site.db import database
from kb_site.models import Ticket
from kb_site.staff import add_staff
from tests.browser.conftest import AXE, shots_folder
from tests.test_staff import ticket

PASSWORD = "correct horse battery"


def attacker_page(page, action: str, fields: dict[str, str]) -> None:
    """Open a page of another origin (about:blank) whose form posts to our site, and press its button."""
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    page.set_content(f'<form method="post" action="{html.escape(action)}">{inputs}<button>Win a prize</button></form>')
    with page.expect_navigation():
        page.click("button")


def shoot(page, name: str) -> None:
    """Save the page at 1280 and 360 px, and check nothing is wider than a phone's screen."""
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(shots_folder() / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
    page.set_viewport_size({"width": 1280, "height": 800})


def axe_serious(page, live) -> list[str]:
    """Return axe-core's serious and critical findings on the page (none when axe-core is not installed)."""
    if not AXE.exists():
        return []
    page.route("**/__axe.js", lambda route: route.fulfill(path=str(AXE), content_type="application/javascript"))
    page.add_script_tag(url=live.url + "/__axe.js")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']}" for v in result["violations"] if v["impact"] in ("serious", "critical")]


def sign_in(page, live, email: str = "admin@shop.example") -> None:
    with live.app.app_context(), database().session() as s:
        add_staff(s, email, "admin", PASSWORD)
    page.goto(live.url + "/staff/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form.contact-form button[type=submit]")
    page.wait_for_url(live.url + "/staff/")


def test_a_cross_site_contact_post_is_sent_only_after_yes(page, live):
    """The forged post shows the message in our form; nothing is sent until the visitor edits and confirms."""
    fields = {"name": "Sam Carter", "email": "sam@example.com", "topic": "returns", "order_number": "",
              "subject": "Refund not arrived", "message": "I sent my boots back two weeks ago. Any news?"}
    attacker_page(page, live.url + "/contact", fields)
    assert page.locator("h1").inner_text() == "Send this message?"
    assert page.locator("#name").input_value() == "Sam Carter"
    assert page.locator("#message").input_value() == fields["message"]
    assert axe_serious(page, live) == []
    shoot(page, "csrf-contact-confirm")
    with live.app.app_context(), database().sessions() as s:
        assert s.scalars(select(Ticket)).all() == []
    page.fill("#message", fields["message"] + " (checked by me)")
    page.click("form.resend button[type=submit]")
    page.wait_for_url(live.url + "/contact/sent")
    assert "KB-" in page.locator("main").inner_text()
    with live.app.app_context(), database().sessions() as s:
        [stored] = s.scalars(select(Ticket)).all()
    assert stored.message.endswith("(checked by me)") and stored.subject == "Refund not arrived"


def test_a_cross_site_vote_is_stored_only_after_yes(page, live):
    """A forged "No" vote shows as the feedback widget's own choices; it counts once the visitor confirms."""
    from kb_site.models import Vote

    attacker_page(page, live.url + "/articles/track-your-order/feedback",
                  {"helpful": "no", "reason": "unclear", "comment": "The map never loads."})
    assert page.locator("h1").inner_text() == "Send this feedback?"
    assert page.locator("input[name=reason][value=unclear]").is_checked()
    assert axe_serious(page, live) == []
    shoot(page, "csrf-feedback-confirm")
    with live.app.app_context(), database().sessions() as s:
        assert s.scalars(select(Vote)).all() == []
    page.click("form.resend button[type=submit]")
    page.wait_for_url(live.url + "/articles/track-your-order/feedback")
    with live.app.app_context(), database().sessions() as s:
        [vote] = s.scalars(select(Vote)).all()
    assert (vote.helpful, vote.reason, vote.comment) == (False, "unclear", "The map never loads.")


@pytest.mark.parametrize("form", ["ticket-status", "login"])
def test_a_cross_site_staff_post_offers_nothing_and_signs_nobody_out(page, live, form):
    """A forged staff change or sign-in gets an explanation and a link, no form; the real session carries on."""
    sign_in(page, live)
    reference = ticket(live.app).reference
    if form == "login":
        attacker_page(page, live.url + "/staff/login", {"email": "mallory@evil.example", "password": "hunter2hunter2"})
    else:
        attacker_page(page, live.url + f"/staff/tickets/{reference}/status", {"status": "solved"})
    body = page.content()
    assert page.locator("form").count() == 0 and "csrf" not in body.lower() and "hunter2" not in body
    assert axe_serious(page, live) == []
    shoot(page, f"csrf-staff-{form}")
    page.click("a.button")
    expected = "/staff/login" if form == "login" else f"/staff/tickets/{reference}"
    assert page.url.startswith(live.url + expected)
    page.goto(live.url + "/staff/tickets")  # still signed in: the page set no cookie
    assert page.url == live.url + "/staff/tickets"
    with live.app.app_context(), database().sessions() as s:
        assert s.scalar(select(Ticket.status).where(Ticket.reference == reference)) == "open"


def test_change_password_page(page, live):
    """The page asks for the current password; after a change you stay signed in, with a note saying so."""
    sign_in(page, live)
    page.click("text=Change password")
    page.wait_for_url(live.url + "/staff/password")
    assert axe_serious(page, live) == []
    page.fill("#current_password", "not my password")
    page.fill("#new_password", "a brand new passphrase")
    page.fill("#confirm", "a brand new passphrase")
    page.click("form.contact-form button[type=submit]")
    assert "current password is not right" in page.locator("main").inner_text()
    assert page.locator("#new_password").input_value() == ""  # never sent back
    shoot(page, "change-password")
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", "a brand new passphrase")
    page.fill("#confirm", "a brand new passphrase")
    page.click("form.contact-form button[type=submit]")
    page.wait_for_url(live.url + "/staff/")
    assert "Your password is changed" in page.locator("main").inner_text()
