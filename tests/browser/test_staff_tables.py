"""Staff tables in a real browser: at 1280 px a table with clipped long cells, at 360 px a card a row; no word split
across lines, no header wider than its cell, nothing scrolling sideways. Screenshots of each page at both widths."""

from __future__ import annotations

import datetime as dt

import pytest

from kb_site.db import database
from kb_site.models import DeliveryAttempt, Event, LearnedQuestion, Outbox, Ticket, Vote
from kb_site.staff import add_staff
from kb_site.tickets import NewTicket, create_ticket
from tests.browser.conftest import shots_folder
from tests.browser.test_staff_pages import axe_serious

PASSWORD = "correct horse battery"
LONG_QUERY = "can I return a sleeping bag I bought at the Ridgeline store in Aviemore last winter without a receipt"
LONG_WORD = "waterproofing-membrane-delamination-warranty-claim-replacement"  # one word, wider than a phone
LONG_URL = "https://helpdesk.shop.example/api/v2/tickets/import/batch?idempotency_key=3f9a1c77e2b04d5aa1"
LONG_WORKER = "worker-ip-10-0-3-17.eu-west-2.compute.internal-48213"
LONG_EMAIL = "alexandra.konstantinopoulou-featherstonehaugh@a-very-long-customer-domain.example"
NOW = dt.datetime.now(dt.UTC)

# Every staff table cell and header on the page: what breaks a word across lines, and what is wider than its
# cell or scrolls sideways. Returns a list of complaints (empty when all is well).
CHECK = """() => {
  const bad = [];
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 1 && r.height > 1; };
  for (const cell of document.querySelectorAll('main table th, main table td')) {
    if (!shown(cell)) continue;  // the header row of a card layout: visually hidden
    const name = `${cell.tagName} "${cell.innerText.trim().slice(0, 40)}"`;
    if (cell.scrollWidth > cell.clientWidth + 1) bad.push(`${name} is wider than its cell`);
    const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) {
      const node = walk.currentNode;
      if (!shown(node.parentElement)) continue;
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (lines.size > 1) bad.push(`${name}: "${m[0]}" is split across ${lines.size} lines`);
      }
    }
  }
  for (const el of document.querySelectorAll('main *')) {
    const x = getComputedStyle(el).overflowX;
    if ((x === 'auto' || x === 'scroll') && el.scrollWidth > el.clientWidth + 1)
      bad.push(`${el.tagName}.${el.className} scrolls sideways by ${el.scrollWidth - el.clientWidth}px`);
  }
  const page = document.documentElement.scrollWidth - window.innerWidth;
  if (page > 0) bad.push(`the page scrolls sideways by ${page}px`);
  return bad;
}"""

# At phone width each row is a card and each cell shows its column's name (its data-label) before its value.
CARDS = """() => [...document.querySelectorAll('main table tbody td')].filter(td => td.dataset.label).map(td => {
  const label = getComputedStyle(td, '::before').content;
  return label === `"${td.dataset.label}"` ? null : `${td.innerText.trim().slice(0, 30)}: label ${label}`;
}).filter(Boolean)"""


def seed(app) -> str:
    """Searches, votes, tickets and learned questions with long words, queries and addresses; return a ticket's
    reference (one that came from a renamed article, with a long trail)."""
    at = NOW - dt.timedelta(days=1)
    rows: list = []
    for n, (query, results) in enumerate([(LONG_QUERY, 0), (LONG_QUERY, 0), (LONG_WORD, 0), ("gift wrap", 0),
                                          ("refund", 3), ("refund", 3), (LONG_QUERY + " please", 4)]):
        rows.append(Event(visit=f"v{n}", visitor=f"p{n}", kind="search", query=query, results=results,
                          created_at=at - dt.timedelta(days=n % 3)))
    comment = f"The page says 30 days but my {LONG_WORD} took six weeks and nobody answered my emails at all"
    for n in range(6):
        rows.append(Vote(visitor=f"p{n}", slug="return-policy", helpful=n < 2, reason=None if n < 2 else "outdated",
                         comment=comment if n == 2 else None, revision="r1", created_at=at, updated_at=at))
    rows.append(LearnedQuestion(slug="return-policy", query=LONG_QUERY[:200], visitors=5, first_seen=at,
                                last_seen=NOW))
    rows.append(LearnedQuestion(slug="return-policy", query=LONG_WORD, visitors=3, first_seen=at, last_seen=NOW,
                                removed_at=NOW, removed_by=LONG_EMAIL))
    with app.app_context():
        with database().session() as s:
            s.add_all(rows)
            add_staff(s, "admin@shop.example", "admin", PASSWORD)
        references = []
        for n, source in enumerate(["article:order-tracking", f"search:{LONG_QUERY}", "article:gone-for-good"]):
            with database().sessions() as s:
                trail = [{"kind": "search", "at": (at - dt.timedelta(minutes=3)).isoformat(timespec="seconds"),
                          "query": LONG_QUERY, "results": 0},
                         {"kind": "view", "at": at.isoformat(timespec="seconds"), "article": "return-policy",
                          "title": "Return policy"}]
                ticket = create_ticket(s, NewTicket(
                    name="Alexandra Konstantinopoulou-Featherstonehaugh", email=LONG_EMAIL,
                    subject=f"My {LONG_WORD} has not arrived after {n + 3} weeks", message=comment,
                    topic="returns", order_number="RL-2026-0001234567", source=source),
                    "webhook" if n == 0 else "local", visit=f"v{n}", trail=trail)
            references.append(ticket.reference)
        with database().session() as s:  # the first ticket's delivery failed twice, with long details
            outbox = s.query(Outbox).filter_by(ticket_id=s.query(Ticket).filter_by(
                reference=references[0]).one().id).one()
            outbox.state, outbox.attempts, outbox.last_error = "dead", 2, f"HTTP 502 from {LONG_URL}"
            for number in (1, 2):
                s.add(DeliveryAttempt(outbox_id=outbox.id, number=number, worker=LONG_WORKER,
                                      started_at=at + dt.timedelta(minutes=number), outcome="retry",
                                      detail=f"HTTP 502 Bad Gateway from {LONG_URL}"))
        with database().session() as s:  # one ticket from last year, one from this week
            for reference, when in zip(references[1:], (NOW - dt.timedelta(days=400), NOW - dt.timedelta(days=3)),
                                       strict=True):
                s.query(Ticket).filter_by(reference=reference).one().created_at = when
    return references[0]


def sign_in(page, live) -> None:
    page.goto(live.url + "/staff/login")
    page.fill("#email", "admin@shop.example")
    page.fill("#password", PASSWORD)
    page.click("form.contact-form button[type=submit]")
    page.wait_for_url(live.url + "/staff/")


@pytest.mark.parametrize("width", [1280, 360])
def test_staff_tables_split_no_word_and_fit_the_screen(page, live, width):
    """Dashboard, ticket queue, a ticket and the learned questions: every cell and header keeps its words whole
    and inside its cell, nothing scrolls sideways; at 360 px every row is a card whose cells carry their labels.
    axe-core (when installed) finds nothing serious in either layout."""
    reference = seed(live.app)
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, live)
    folder = shots_folder()
    problems = {}
    for name, path in {"dashboard": "/staff/?days=7", "tickets": "/staff/tickets",
                       "ticket": f"/staff/tickets/{reference}", "learned": "/staff/learned"}.items():
        page.goto(live.url + path)
        assert page.locator("main table").count() > 0, name
        page.screenshot(path=str(folder / f"staff-{name}-{width}.png"), full_page=True)
        found = page.evaluate(CHECK) + axe_serious(page, live)  # axe-core: nothing serious, cards or table
        if width == 360:
            found += page.evaluate(CARDS)
            assert page.locator("main table thead").first.bounding_box()["height"] <= 1, f"{name}: a header row"
        else:  # a table: the long query is clipped on one line, and the header row is shown
            assert page.locator("main table thead").first.is_visible(), name
        if found:
            problems[name] = found
    assert problems == {}


def test_long_cells_are_clipped_with_their_whole_text_in_a_title(page, live):
    """At 1280 px a long query is one line ending in an ellipsis, narrower than its text; hovering shows it all."""
    seed(live.app)
    sign_in(page, live)
    page.goto(live.url + "/staff/?days=7")
    cell = page.locator("[aria-labelledby=t-zero_result_queries] td[title]", has_text="can I return").first
    assert cell.get_attribute("title") == LONG_QUERY.lower()
    clip = cell.locator(".clip")
    assert clip.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
    assert clip.evaluate("e => e.scrollWidth > e.clientWidth")  # clipped: the text is wider than the cell shows
    box = clip.bounding_box()
    assert box["height"] < 2 * float(clip.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))
    figures = page.locator("[aria-labelledby=t-zero_result_queries] td.cell-num").first
    assert figures.evaluate("e => getComputedStyle(e).textAlign") == "right"
    assert "tabular-nums" in figures.evaluate("e => getComputedStyle(e).fontVariantNumeric")
