"""The contact form: validation, spam traps, deflection, and the ticket with the customer's trail."""

from __future__ import annotations

import json
import re

import pytest

from kb_site.db import database
from kb_site.models import Event, Outbox, Ticket
from kb_site.tickets import ALPHABET

GOOD = {"name": "Sam Carter", "email": "sam@example.com", "topic": "returns", "order_number": "NW-482913",
        "subject": "Refund not arrived", "message": "I sent my boots back two weeks ago and have no refund yet."}


def form_fields(client, path: str = "/contact") -> dict[str, str]:
    """Return the hidden fields a contact page hands out (CSRF token, signed timestamp, source, confirm)."""
    html = client.get(path).get_data(as_text=True)
    fields = dict(re.findall(r'<input[^>]*?name="(csrf_token|rendered|source|confirm)"[^>]*?value="([^"]*)"', html))
    fields.update({k: v for k, v in re.findall(r'<input[^>]*?id="(source|rendered|confirm)"[^>]*?value="([^"]*)"',
                                                html)})
    return fields


def send(client, path: str = "/contact", **overrides):
    data = {**form_fields(client, path), **GOOD, "confirm": "1", **overrides}
    return client.post("/contact", data=data)


def tickets(app) -> list[Ticket]:
    with app.app_context(), database().sessions() as s:
        return list(s.query(Ticket).order_by(Ticket.id))


@pytest.fixture
def contact_site(any_db_site):
    any_db_site.config["CONTACT_MIN_SECONDS"] = 0
    return any_db_site


def test_ticket_with_reference_and_trail(contact_site):
    """A ticket gets a short reference and carries the searches, reads and votes of the visit."""
    client = contact_site.test_client()
    client.get("/search?q=refund")
    from tests.conftest import csrf_token, read_article

    read_article(client, "refund-timescales", "http://localhost/search?q=refund")

    client.post("/articles/refund-timescales/feedback", data={"helpful": "no", "reason": "not-answered"},
                headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"})
    response = send(client, "/contact?from=refund-timescales")
    assert response.status_code == 303 and response.headers["Location"] == "/contact/sent"
    page = client.get("/contact/sent").get_data(as_text=True)
    [ticket] = tickets(contact_site)
    assert re.fullmatch(rf"KB-[{ALPHABET}]{{4}}-[{ALPHABET}]{{2}}", ticket.reference)
    assert ticket.reference in page and "What happens next" in page
    assert (ticket.name, ticket.email, ticket.order_number, ticket.topic) == ("Sam Carter", "sam@example.com",
                                                                          "NW-482913", "returns")
    assert ticket.source == "article:refund-timescales"
    trail = json.loads(ticket.trail)
    kinds = [step["kind"] for step in trail]
    assert kinds[0] == "search" and trail[0]["query"] == "refund" and trail[0]["results"] >= 1
    assert {"kind": "vote", "article": "refund-timescales", "helpful": False, "reason": "not-answered"}.items() <= \
        next(s for s in trail if s["kind"] == "vote").items()
    assert "view" in kinds and "click" in kinds
    with contact_site.app_context(), database().sessions() as s:
        [outbox] = s.query(Outbox).all()
    assert outbox.backend == "local" and outbox.state == "delivered"


def test_entry_points_link_to_the_form(contact_site):
    """Every page links to the form; articles and "No" votes pass where they came from, searches the query."""
    client = contact_site.test_client()
    article = client.get("/articles/return-policy").get_data(as_text=True)
    assert 'href="/contact?from=return-policy"' in article
    form = client.get("/contact?q=broken+zip").get_data(as_text=True)
    assert 'value="Refund not arrived"' not in form and 'value="broken zip"' in form
    preset = client.get("/contact?from=return-policy").get_data(as_text=True)
    assert '<option selected value="returns">' in preset


def test_validation_messages_sit_next_to_fields_and_keep_input(contact_site):
    """Bad input gets one message per field, next to it, with everything typed kept."""
    client = contact_site.test_client()
    response = send(client, email="sam@", order_number="12345", subject="", message="short", topic="")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'id="email-error">That doesn&#39;t look like an email address', html)
    assert "Order numbers look like NW-123456" in html
    assert "Give your message a subject." in html and "Write between 10 and 5,000 characters." in html
    assert 'value="Sam Carter"' in html and 'value="sam@"' in html and re.search(r">\s*short</textarea>", html)
    assert 'aria-invalid="true"' in html and 'aria-describedby="email-error"' in html
    assert tickets(contact_site) == []


def test_header_breaking_input_is_refused(contact_site):
    """Line breaks in one-line fields are refused at the form (and stripped again before any header)."""
    response = send(contact_site.test_client(), name="Sam\r\nBcc: evil@example.com", subject="Hi\nBcc: x@y.z")
    assert response.status_code == 400 and "Please keep this to one line." in response.get_data(as_text=True)
    assert tickets(contact_site) == []


@pytest.mark.parametrize("field, value, message", [
    ("subject", "Refund\u2028not arrived", "Please keep this to one line."),
    ("subject", "Refund\x85not arrived", "Please keep this to one line."),
    ("subject", "Refund\u2029not arrived", "Please keep this to one line."),
    ("name", "Sam\u202eretraC", "Please remove the invisible character U+202E (right-to-left override)"),
    ("name", "Sam\u200bCarter", "Please remove the invisible character U+200B (zero width space)"),
    ("order_number", "NW-482913\n", "Please keep this to one line."),
    ("email", "sam@example.com\ufeff", "Please remove the invisible character U+FEFF"),
    ("subject", "Refund\tnot arrived", "Please remove the control character U+0009"),
])
def test_hidden_line_breaks_and_format_characters_are_refused(contact_site, field, value, message):
    """Unicode line breaks (NEL, LS, PS), controls and format characters in one-line fields: a friendly message
    next to the field, what was typed kept, no ticket."""
    response = send(contact_site.test_client(), **{field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(rf'id="{field}-error">{re.escape(message)}', html), html[html.find("field-error"):][:300]
    assert "Please correct this" in html
    assert tickets(contact_site) == []


def test_spam_traps_drop_silently(contact_site):
    """A filled honeypot, a forged or missing timestamp, or a too-quick send look sent but create nothing."""
    client = contact_site.test_client()
    for overrides in ({"website": "http://spam.example"}, {"rendered": "forged"}, {"rendered": ""}):
        response = send(client, **overrides)
        assert response.status_code == 200 and "we've got your message" in response.get_data(as_text=True)
    contact_site.config["CONTACT_MIN_SECONDS"] = 60
    assert send(client).status_code == 200
    assert tickets(contact_site) == []


def test_first_send_without_javascript_suggests_articles(contact_site):
    """Without confirm, a send shows matching articles and a "None of these help" button; then it sends."""
    client = contact_site.test_client()
    data = {**form_fields(client), **GOOD, "subject": "When will I get my refund", "message": "Refund for boots?"}
    data.pop("confirm", None)
    html = client.post("/contact", data=data).get_data(as_text=True)
    assert "do any of these answer your question?" in html
    assert 'href="/contact/open/refund-timescales?q=When+will+I+get+my+refund"' in html
    assert "None of these help — send my request" in html
    assert 'id="confirm" name="confirm" type="hidden" value="1"' in html
    assert tickets(contact_site) == []
    opened = client.get("/contact/open/refund-timescales?q=When+will+I+get+my+refund")
    assert opened.status_code == 302 and opened.headers["Location"] == "/articles/refund-timescales"
    with contact_site.app_context(), database().sessions() as s:
        [deflection] = s.query(Event).filter_by(kind="deflection").all()
    assert deflection.slug == "refund-timescales" and deflection.query == "When will I get my refund"
    data["confirm"] = "1"
    assert client.post("/contact", data=data).status_code == 303
    [ticket] = tickets(contact_site)
    assert "deflection" in [s["kind"] for s in json.loads(ticket.trail)]


def test_the_suggestions_step_shows_the_answer_and_links_its_section(contact_site):
    """When one article answers the message (here: the subject is its own title), its answer is quoted above
    the suggestions, linked to its section through the deflection record."""
    client = contact_site.test_client()
    data = {**form_fields(client), **GOOD, "subject": "When will I get my refund", "message": ""}
    data.pop("confirm", None)
    data["message"] = "When will I get my refund"
    html = client.post("/contact", data=data).get_data(as_text=True)
    box = html.split('data-kb="answer"')[1].split("</div>")[0]
    link = re.search(r'href="(/contact/open/refund-timescales\?[^"]*anchor=([^"&]*)[^"]*)"', box)
    assert link and "From <a" in box and "When will I get my refund ›" in box
    opened = client.get(link.group(1).replace("&amp;", "&"))
    assert opened.headers["Location"] == f"/articles/refund-timescales#{link.group(2)}" and link.group(2)
    assert client.get("/contact/open/refund-timescales?anchor=nowhere").headers["Location"] == \
        "/articles/refund-timescales"


def test_contact_needs_csrf_and_is_rate_limited(tmp_path, corpus, fake_embedder):
    """No token: 400 and nothing stored; the per-client limit stops the sixth ticket in an hour."""
    from tests.conftest import make_site

    app = make_site(tmp_path, corpus, fake_embedder, CONTACT_MIN_SECONDS=0, RATELIMIT_ENABLED=True,
                    RATELIMIT_TICKETS="2 per hour")
    client = app.test_client()
    fields = form_fields(client)
    fields.pop("csrf_token")
    assert client.post("/contact", data={**fields, **GOOD, "confirm": "1"}).status_code == 400
    statuses = [send(client).status_code for _ in range(2)]
    assert statuses == [303, 303]
    assert send(client).status_code == 429
    assert client.get("/contact").status_code == 200  # reading the form is never limited
    assert len(tickets(app)) == 2


def test_same_form_sent_twice_makes_one_ticket(contact_site):
    """A double click or a replay of one rendered form: one ticket, and both answers show its reference."""
    client = contact_site.test_client()
    data = {**form_fields(client), **GOOD, "confirm": "1"}
    first = client.post("/contact", data=data)
    first_page = client.get("/contact/sent").get_data(as_text=True)
    second = client.post("/contact", data=data)
    second_page = client.get("/contact/sent").get_data(as_text=True)
    assert first.status_code == second.status_code == 303
    [ticket] = tickets(contact_site)
    assert first.headers["X-Ticket-Reference"] == second.headers["X-Ticket-Reference"] == ticket.reference
    assert ticket.reference in first_page and ticket.reference in second_page
    assert "already received" not in first_page and "already received this form" in second_page
    assert len(ticket.form_nonce or "") >= 16
    send(client)  # a new rendering of the form is a new request
    assert len(tickets(contact_site)) == 2


def test_concurrent_sends_of_one_form_make_one_ticket(contact_site):
    """One form posted twice at the same moment (two tabs, two clients sharing the session): one ticket."""
    import threading

    for _ in range(4):
        first = contact_site.test_client()
        data = {**form_fields(first), **GOOD, "confirm": "1"}
        second = contact_site.test_client()
        second.set_cookie("session", first.get_cookie("session").value)
        barrier = threading.Barrier(2)
        answers: list = []

        def post(client, answers=answers, barrier=barrier, data=data):
            barrier.wait()
            answers.append(client.post("/contact", data=data))

        threads = [threading.Thread(target=post, args=(c,)) for c in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [a.status_code for a in answers] == [303, 303]
        assert answers[0].headers["X-Ticket-Reference"] == answers[1].headers["X-Ticket-Reference"]
    references = [t.reference for t in tickets(contact_site)]
    assert len(references) == len(set(references)) == 4


def test_a_nonce_clash_is_not_a_reference_collision(contact_site, monkeypatch):
    """The unique nonce decides: create_ticket hands back the first ticket instead of drawing a new reference,
    while a reference drawn twice is still drawn again."""
    import kb_site.tickets as tickets_module
    from kb_site.tickets import FormAlreadySent, NewTicket, create_ticket

    new = NewTicket(GOOD["name"], GOOD["email"], GOOD["subject"], GOOD["message"], GOOD["topic"])
    with contact_site.app_context(), database().sessions() as s:
        monkeypatch.setattr(tickets_module, "new_reference", iter(["KB-AAAA-11", "KB-AAAA-11", "KB-BBBB-22",
                                                                   "KB-CCCC-33"]).__next__)
        assert create_ticket(s, new, "local", visit=None, trail=[], form_nonce="n-1").reference == "KB-AAAA-11"
        assert create_ticket(s, new, "local", visit=None, trail=[], form_nonce="n-2").reference == "KB-BBBB-22"
        with pytest.raises(FormAlreadySent) as clash:
            create_ticket(s, new, "local", visit=None, trail=[], form_nonce="n-1")
        assert clash.value.ticket.reference == "KB-AAAA-11"
        assert s.query(Outbox).count() == 2
    assert [t.form_nonce for t in tickets(contact_site)] == ["n-1", "n-2"]


def test_a_used_form_sent_with_other_words_is_kept_not_dropped(contact_site):
    """Back, edit, send again: the used form's nonce does not swallow the new message; it is shown again to send
    as a new request."""
    client = contact_site.test_client()
    data = {**form_fields(client), **GOOD, "confirm": "1"}
    assert client.post("/contact", data=data).status_code == 303
    [first] = tickets(contact_site)
    edited = {**data, "message": "Also, the zip on the second pair of boots is broken."}
    response = client.post("/contact", data=edited)
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and first.reference in html and "new request" in html
    assert re.search(r">\s*Also, the zip on the second pair of boots is broken.</textarea>", html)
    fresh = re.search(r'id="rendered" name="rendered" type="hidden" value="([^"]*)"', html).group(1)
    assert fresh != data["rendered"]
    again = client.post("/contact", data={**edited, "rendered": fresh})
    assert again.status_code == 303 and again.headers["X-Ticket-Reference"] != first.reference
    assert [t.message for t in tickets(contact_site)] == [GOOD["message"], edited["message"]]


def test_a_form_left_open_over_a_day_is_kept_not_dropped(contact_site):
    """A genuine form shown more than a day ago is no bot: it comes back with every word kept, to send again."""
    import time

    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    class DayOld(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - 25 * 3600)

    signer = URLSafeTimedSerializer(contact_site.config["SECRET_KEY"], salt="kb-contact-form", signer=DayOld)
    client = contact_site.test_client()
    data = {**form_fields(client), **GOOD, "confirm": "1",
            "rendered": signer.dumps({"shown": time.time() - 25 * 3600, "nonce": "left-open-overnight"})}
    response = client.post("/contact", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "open for more than a day" in html
    assert re.search(rf">\s*{re.escape(GOOD['message'])}</textarea>", html) and 'value="Sam Carter"' in html
    assert tickets(contact_site) == []
    fresh = re.search(r'id="rendered" name="rendered" type="hidden" value="([^"]*)"', html).group(1)
    assert client.post("/contact", data={**data, "rendered": fresh}).status_code == 303
    [ticket] = tickets(contact_site)
    assert ticket.form_nonce == "left-open-overnight"


def limited_site(tmp_path, corpus, embedder, **config):
    """A site with rate limiting on (the `site` fixtures turn it off)."""
    from tests.conftest import make_site

    return make_site(tmp_path, corpus, embedder, CONTACT_MIN_SECONDS=0, RATELIMIT_ENABLED=True, **config)


def test_only_accepted_tickets_use_up_the_allowance(tmp_path, corpus, fake_embedder):
    """Forms with errors, deflection steps and bot drops are free; the third accepted ticket of two is refused."""
    app = limited_site(tmp_path, corpus, fake_embedder, RATELIMIT_TICKETS="2 per hour",
                       RATELIMIT_TICKETS_EMAIL="2 per hour")
    client = app.test_client()
    for _ in range(3):
        assert send(client, email="sam@", message="short").status_code == 400
        step = send(client, confirm="", subject="When will I get my refund", message="Refund for my boots?")
        assert step.status_code == 200 and "do any of these answer your question?" in step.get_data(as_text=True)
        assert send(client, website="http://spam.example").status_code == 200
    assert tickets(app) == []
    assert send(client).status_code == 303
    second = {**form_fields(client), **GOOD, "confirm": "1"}
    accepted = client.post("/contact", data=second)
    assert accepted.status_code == 303
    assert send(client).status_code == 429
    # A repeat of a form already sent is its confirmation, even at the limit, and costs nothing.
    repeat = client.post("/contact", data=second)
    assert repeat.status_code == 303 and repeat.headers["X-Ticket-Reference"] == accepted.headers["X-Ticket-Reference"]
    assert len(tickets(app)) == 2


def test_the_ticket_past_the_limit_keeps_every_field_and_says_the_real_wait(tmp_path, corpus, fake_embedder):
    """The (N+1)th ticket from one address: the contact form again with everything typed, the real wait in words,
    and a Retry-After that matches it."""
    app = limited_site(tmp_path, corpus, fake_embedder, RATELIMIT_TICKETS="1 per 40 minutes")
    client = app.test_client()
    assert send(client).status_code == 303
    typed = {"name": "Ana Lima", "email": "ana@example.com", "topic": "other", "order_number": "NW-000111",
             "subject": "Second parcel & the \"gift\" note", "message": "The second parcel never came.\nCan you check?"}
    response = send(client, **typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 429
    assert 2390 <= int(response.headers["Retry-After"]) <= 2400
    assert "try again in about 40 minutes" in html and "a minute" not in html
    assert '<h1>Contact us</h1>' in html and 'action="/contact"' in html
    assert 'value="Ana Lima"' in html and 'value="ana@example.com"' in html and 'value="NW-000111"' in html
    assert 'value="Second parcel &amp; the &#34;gift&#34; note"' in html
    assert '<option selected value="other">' in html
    assert re.search(r">\s*The second parcel never came.\r?\nCan you check\?</textarea>", html)
    assert len(tickets(app)) == 1
    assert client.get("/contact").status_code == 200  # reading the form is never limited


@pytest.mark.parametrize("storage", ["memory://", "redis"])
def test_one_email_from_two_addresses_is_held_by_the_email_limit(tmp_path, corpus, fake_embedder, storage):
    """Office and mobile networks share addresses, customers change networks: the email limit counts one
    customer across addresses, the address limit stays generous."""
    if storage == "redis":
        from tests.conftest import REDIS_URL

        storage = REDIS_URL
    app = limited_site(tmp_path, corpus, fake_embedder, RATELIMIT_TICKETS="10 per hour",
                       RATELIMIT_TICKETS_EMAIL="2 per hour", RATELIMIT_STORAGE_URI=storage)

    def from_address(address: str, **overrides):
        client = app.test_client()
        data = {**form_fields(client), **GOOD, "confirm": "1", **overrides}
        return client.post("/contact", data=data, environ_overrides={"REMOTE_ADDR": address})

    assert [from_address("203.0.113.5").status_code for _ in range(2)] == [303, 303]
    held = from_address("198.51.100.7", email="SAM@example.com")
    assert held.status_code == 429 and "about an hour" in held.get_data(as_text=True)
    assert 3500 <= int(held.headers["Retry-After"]) <= 3600
    assert from_address("198.51.100.7", email="ana@example.com").status_code == 303
    assert from_address("203.0.113.5", email="li@example.com").status_code == 303  # the office is not blocked
    assert len(tickets(app)) == 4


def test_the_limit_page_offers_the_other_ways_and_never_leads_back_into_the_block(tmp_path, corpus, fake_embedder):
    """Other ways to reach support come from settings, only those set; none set is said plainly; and no link on
    the page leads back to /contact."""
    app = limited_site(tmp_path, corpus, fake_embedder, RATELIMIT_TICKETS="1 per hour",
                       SUPPORT_EMAIL="help@northwind.example", SUPPORT_PHONE="+44 20 7946 0000",
                       SUPPORT_HOURS="Monday to Friday, 9am to 5pm UK time", SUPPORT_CHAT_URL="")
    client = app.test_client()
    send(client)
    html = send(client).get_data(as_text=True)
    assert 'href="mailto:help@northwind.example"' in html and 'href="tel:+442079460000"' in html
    assert "+44 20 7946 0000" in html and "Monday to Friday, 9am to 5pm UK time" in html
    assert "chat" not in html.lower()
    assert "support-aside" not in html  # the notice lists them: the aside beside the form would repeat it
    assert not re.search(r'href="[^"]*/contact', html), re.findall(r'href="[^"]*/contact[^"]*"', html)
    app.config.update(SUPPORT_EMAIL="", SUPPORT_PHONE="", SUPPORT_HOURS="", SUPPORT_CHAT_URL="https://chat.example")
    html = send(client).get_data(as_text=True)
    assert 'href="https://chat.example"' in html and "mailto:" not in html and "tel:" not in html
    app.config["SUPPORT_CHAT_URL"] = ""
    response = send(client)
    html = response.get_data(as_text=True)
    assert response.status_code == 429 and "There's no other way to reach us" in html
    assert not re.search(r'href="[^"]*/contact', html)


def test_an_unreachable_limit_store_never_loses_a_ticket(tmp_path, corpus, fake_embedder):
    """Redis down: the ticket is still taken (the limit fails open, and says so in the log), never a 500."""
    from tests.conftest import free_port

    app = limited_site(tmp_path, corpus, fake_embedder, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}")
    response = send(app.test_client())
    assert response.status_code == 303 and len(tickets(app)) == 1


@pytest.mark.parametrize("seconds, words", [(5, "less than a minute"), (61, "about 2 minutes"),
                                            (2400, "about 40 minutes"), (3540, "about 59 minutes"),
                                            (3599, "about an hour"), (5000, "about an hour"),
                                            (3 * 3600 + 600, "about 3 hours"), (86400 * 2, "about 2 days")])
def test_waits_are_said_in_words(seconds, words):
    """The wait on the limit page is the real one, rounded the way a person would say it."""
    from kb_site.tickets.allowance import in_words

    assert in_words(seconds) == words


def test_a_form_rendered_before_nonces_still_sends_once(contact_site):
    """A form shown before this release (a bare signed timestamp) is still accepted; sent again after it
    went stale, it gets a nonce of its own, never one shared with other such forms."""
    import time

    from itsdangerous import URLSafeTimedSerializer

    signer = URLSafeTimedSerializer(contact_site.config["SECRET_KEY"], salt="kb-contact-form")
    client = contact_site.test_client()
    old = {**form_fields(client), **GOOD, "confirm": "1", "rendered": signer.dumps(str(time.time() - 60))}
    assert client.post("/contact", data=old).status_code == 303
    stale = {**old, "rendered": signer.dumps(str(time.time() - 25 * 3600)), "name": "Ana Lima"}
    html = client.post("/contact", data=stale).get_data(as_text=True)
    fresh = re.search(r'id="rendered" name="rendered" type="hidden" value="([^"]*)"', html).group(1)
    assert client.post("/contact", data={**stale, "rendered": fresh}).status_code == 303
    first, second = tickets(contact_site)
    assert first.form_nonce is None and second.form_nonce and second.form_nonce != "None"


def aside(html: str) -> str:
    """Return the contact page's "Other ways to reach us" aside, without its line-break hints, or ''."""
    found = re.search(r'<aside class="support-aside".*?</aside>', html, re.S)
    return found.group(0).replace("<wbr>", "") if found else ""


def test_the_contact_page_offers_the_other_ways_to_reach_support(tmp_path, corpus, fake_embedder):
    """Phone (shown as written, dialled as its digits), live chat, email and hours, beside the form."""
    from tests.conftest import make_site

    app = make_site(tmp_path, corpus, fake_embedder, SUPPORT_EMAIL="care@shop.example",
                    SUPPORT_PHONE="+44 (0)20 7946 0123", SUPPORT_HOURS="Every day, 8am to 8pm",
                    SUPPORT_CHAT_URL="https://chat.shop.example/start")
    html = app.test_client().get("/contact").get_data(as_text=True)
    shown = aside(html)
    assert "Other ways to reach us" in shown
    assert '<a class="support-value" href="tel:+442079460123">+44 (0)20 7946 0123</a>' in shown
    assert 'href="mailto:care@shop.example">care@shop.example</a>' in shown
    assert 'href="https://chat.shop.example/start">Chat with us</a>' in shown
    assert "Every day, 8am to 8pm" in shown
    assert html.index("</form>") < html.index('<aside class="support-aside"')  # after the form: below it on a phone


def test_only_the_ways_set_are_offered_and_none_set_shows_nothing(app):
    """A way not set has no row; hours alone are said without "Other ways"; none set: no aside, no empty heading."""
    client = app.test_client()
    html = client.get("/contact").get_data(as_text=True)
    assert aside(html) == "" and "Other ways to reach us" not in html and "tel:" not in html
    app.config.update(SUPPORT_HOURS="Weekdays, 9 to 5")
    shown = aside(client.get("/contact").get_data(as_text=True))
    assert "Weekdays, 9 to 5" in shown and "Other ways" not in shown and "When we’re available" in shown
    app.config.update(SUPPORT_HOURS="", SUPPORT_PHONE="0800 123 4567")
    shown = aside(client.get("/contact").get_data(as_text=True))
    assert 'href="tel:08001234567">0800 123 4567</a>' in shown
    assert "mailto:" not in shown and "Chat with us" not in shown and "Opening hours" not in shown


def test_the_bundled_sample_contact_page_shows_its_sample_ways(tmp_path, fake_embedder):
    """Out of the box (the packaged articles), the sample shop's contact page shows its fictional ways to reach it."""
    from pathlib import Path

    from kb_site.config import SAMPLE_SUPPORT
    from tests.conftest import make_site

    app = make_site(tmp_path, Path(__file__).parent.parent / "articles", fake_embedder)
    shown = aside(app.test_client().get("/contact").get_data(as_text=True))
    assert f'href="tel:+442079460000">{SAMPLE_SUPPORT["SUPPORT_PHONE"]}</a>' in shown
    assert f'href="mailto:{SAMPLE_SUPPORT["SUPPORT_EMAIL"]}"' in shown
    assert SAMPLE_SUPPORT["SUPPORT_HOURS"] in shown and SAMPLE_SUPPORT["SUPPORT_CHAT_URL"] in shown


def test_the_confirmation_repeats_the_address_we_reply_to(contact_site):
    """The sent page says where the reply goes (the address typed, read back from the ticket), with the reference,
    also for a repeat of the same form; a dropped bot gets no such promise."""
    client = contact_site.test_client()
    data = {**form_fields(client), **GOOD, "email": "sam.carter@example.com", "confirm": "1"}
    for _ in range(2):  # the second is the same form again: its first ticket's confirmation
        assert client.post("/contact", data=data).status_code == 303
        page = client.get("/contact/sent").get_data(as_text=True).replace("<wbr>", "")
        [ticket] = tickets(contact_site)
        assert "We'll reply to <strong class=\"reply-address\">sam.carter@example.com</strong>" in page
        assert ticket.reference in page
    with client.session_transaction() as kept:  # read from the ticket, never kept in the session cookie
        assert "sam.carter" not in json.dumps(dict(kept)) and kept["ticket"] == ticket.reference
    bot = client.post("/contact", data={**form_fields(client), **GOOD, "website": "http://spam.example"})
    assert bot.status_code == 200 and "reply to" not in bot.get_data(as_text=True)
