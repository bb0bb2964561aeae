"""The feedback widget and the visitor's trail, stored on SQLite and on PostgreSQL."""

from __future__ import annotations

import re

from kb_site.db import database
from kb_site.models import Event, Vote
from kb_site.visitors import trail
from tests.conftest import csrf_token


def votes(app) -> list[Vote]:
    with app.app_context(), database().sessions() as s:
        return list(s.query(Vote).order_by(Vote.id))


def revision(app, slug: str) -> str:
    return app.test_client().get(f"/api/articles/{slug}").get_json()["revision"]


def test_vote_without_javascript_then_reason(any_db_site):
    """Without a script, "No" on the (token-less, public) article page opens the feedback page, whose form
    has a token and asks why; sending it stores the vote with its reason, and the page then says thanks."""
    client = any_db_site.test_client()
    article = client.get("/articles/return-policy").get_data(as_text=True)
    vote_form = re.search(r'<form class="feedback-vote" method="get" action="([^"]+)"', article)
    assert vote_form and "csrf" not in article.split('class="feedback-vote"')[1].split("</form>")[0]
    asked = client.get(vote_form.group(1), query_string={"helpful": "no"})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and asked.headers["Cache-Control"] == "private, no-store"
    assert "Sorry it didn" in page and "What was wrong?" in page and votes(any_db_site) == []
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/articles/return-policy/feedback", data={
        "csrf_token": token, "helpful": "no", "reason": "outdated", "comment": "Says 30 days, I got 14"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/articles/return-policy/feedback")
    assert "Thanks for letting us know." in client.get(response.headers["Location"]).get_data(as_text=True)
    [vote] = votes(any_db_site)
    assert (vote.slug, vote.helpful, vote.reason, vote.comment) == ("return-policy", False, "outdated",
                                                                   "Says 30 days, I got 14")
    assert vote.revision == revision(any_db_site, "return-policy")


def test_yes_without_javascript_is_confirmed_on_the_feedback_page(any_db_site):
    """"Yes" without a script asks to send it (a GET never stores a vote); the feedback page remembers it."""
    client = any_db_site.test_client()
    page = client.get("/articles/return-policy/feedback?helpful=yes").get_data(as_text=True)
    assert "Send “Yes, it helped”?" in page and votes(any_db_site) == []
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/articles/return-policy/feedback", data={"csrf_token": token, "helpful": "yes"})
    assert [v.helpful for v in votes(any_db_site)] == [True]
    assert "Thanks for letting us know." in client.get("/articles/return-policy/feedback").get_data(as_text=True)
    assert "You said this article helped" in client.get("/articles/return-policy/feedback").get_data(as_text=True)


def test_vote_with_javascript_is_json_and_changeable(any_db_site):
    """fetch() with the CSRF header gets JSON; voting again changes the one vote, clearing the reason."""
    client = any_db_site.test_client()
    token = csrf_token(client, "/articles/return-policy")
    headers = {"X-CSRFToken": token, "Accept": "application/json"}
    first = client.post("/articles/return-policy/feedback", data={"helpful": "no", "reason": "unclear"},
                        headers=headers)
    assert first.status_code == 200 and first.get_json()["vote"]["reason"] == "unclear"
    second = client.post("/articles/return-policy/feedback", data={"helpful": "yes"}, headers=headers)
    assert second.get_json()["vote"] == {"id": first.get_json()["vote"]["id"], "slug": "return-policy",
                                         "helpful": True, "reason": None, "comment": None,
                                         "revision": revision(any_db_site, "return-policy")}
    [vote] = votes(any_db_site)
    assert vote.helpful and vote.reason is None
    other = any_db_site.test_client()  # another visitor has a vote of their own
    other.post("/articles/return-policy/feedback", data={"helpful": "no"},
               headers={"X-CSRFToken": csrf_token(other, "/"), "Accept": "application/json"})
    assert [v.helpful for v in votes(any_db_site)] == [True, False]


def test_save_keeps_one_vote_a_visitor_and_the_reason_of_a_repeated_no(any_db_site):
    """votes.save changes the visitor's one vote: a bare second "No" keeps the reason, a "Yes" clears it."""
    from kb_site import votes as vote_store

    with any_db_site.app_context():
        vote_store.save("p1", "return-policy", False, "outdated", "Says 30 days", "r1")
        vote_store.save("p1", "return-policy", False, None, None, "r1")
        vote_store.save("p2", "return-policy", True, None, None, "r1")
    [first, second] = votes(any_db_site)
    assert (first.visitor, first.helpful, first.reason, first.comment) == ("p1", False, "outdated", "Says 30 days")
    assert (second.visitor, second.helpful, second.reason) == ("p2", True, None)
    with any_db_site.app_context():
        vote_store.save("p1", "return-policy", True, None, None, "r2")
    changed = votes(any_db_site)[0]
    assert (changed.helpful, changed.reason, changed.comment, changed.revision) == (True, None, None, "r2")


def test_vote_on_an_alias_counts_for_the_article(any_db_site):
    """A vote sent to an old slug is stored under the current one."""
    client = any_db_site.test_client()
    response = client.post("/articles/order-tracking/feedback", data={"helpful": "yes"},
                           headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"})
    assert response.status_code == 200
    assert [v.slug for v in votes(any_db_site)] == ["track-your-order"]


def test_bad_votes_store_nothing(any_db_site):
    """Unknown article, missing or wrong answer, unknown reason, huge comment: 4xx with a message, no vote."""
    client = any_db_site.test_client()
    headers = {"X-CSRFToken": csrf_token(client), "Accept": "application/json"}
    cases = [
        ("/articles/nope/feedback", {"helpful": "yes"}, 404, "no article called 'nope'"),
        ("/articles/return-policy/feedback", {}, 400, "Say whether the article helped"),
        ("/articles/return-policy/feedback", {"helpful": "maybe"}, 400, "Answer yes or no"),
        ("/articles/return-policy/feedback", {"helpful": "no", "reason": "bogus"}, 400, "Choose one of the reasons"),
        ("/articles/return-policy/feedback", {"helpful": "no", "comment": "x" * 1001}, 400, "1,000 characters"),
    ]
    for url, data, status, message in cases:
        response = client.post(url, data=data, headers=headers)
        assert response.status_code == status, (data, response.get_json())
        assert message in response.get_json()["error"]["message"]
    assert votes(any_db_site) == []


def test_vote_records_revision_so_edits_can_be_compared(any_db_site, corpus):
    """After an article is edited, new votes carry the new revision; old ones keep theirs."""
    from search import build_index

    first, second = any_db_site.test_client(), any_db_site.test_client()
    first.post("/articles/return-policy/feedback", data={"helpful": "no"},
               headers={"X-CSRFToken": csrf_token(first), "Accept": "application/json"})
    before = revision(any_db_site, "return-policy")
    path = corpus / "returns" / "return-policy.md"
    path.write_text(path.read_text().replace("within 30 days", "within 60 days"))
    build_index(corpus, any_db_site.instance_path + "/index", any_db_site.config["EMBEDDER"])
    after = revision(any_db_site, "return-policy")
    second.post("/articles/return-policy/feedback", data={"helpful": "yes"},
                headers={"X-CSRFToken": csrf_token(second), "Accept": "application/json"})
    assert before != after
    assert [(v.helpful, v.revision) for v in votes(any_db_site)] == [(False, before), (True, after)]


def test_trail_keeps_what_the_visitor_did(any_db_site):
    """Searches with counts, views and votes of this visit are recorded in order, for the ticket form."""
    client = any_db_site.test_client()
    client.get("/search?q=refund")
    # The article page's script reports the view with the page's own referrer (the page is everybody's).
    client.get("/visitor.json", query_string={"article": "refund-timescales",
                                              "referrer": "http://localhost/search?q=refund"})
    client.post("/articles/refund-timescales/feedback", data={"helpful": "no", "reason": "not-answered"},
                headers={"X-CSRFToken": csrf_token(client, "/search"), "Accept": "application/json"})
    with any_db_site.app_context(), database().sessions() as s:
        visit = s.query(Event).filter_by(kind="search").one().visit
    with any_db_site.app_context():
        steps = [(e.kind, e.slug, e.query, e.detail) for e in trail(visit)]
    assert steps[0][0] == "search" and steps[0][2] == "refund"
    assert ("click", "refund-timescales", "refund", None) in steps
    assert ("vote", "refund-timescales", None, "no:not-answered") in steps
    assert [s[0] for s in steps].index("view") < [s[0] for s in steps].index("vote")


def test_helpful_articles_lead_the_home_page(any_db_site):
    """Articles with the best helpful share (and enough votes) are listed first on the home page."""
    for _ in range(3):
        client = any_db_site.test_client()
        client.post("/articles/stove-recall/feedback", data={"helpful": "yes"},
                    headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"})
    html = any_db_site.test_client().get("/").get_data(as_text=True)
    featured = html[html.index("Most helpful articles"):]
    assert re.findall(r'href="/articles/([\w-]+)"', featured)[0] == "stove-recall"


def test_database_down_pages_still_read_votes_refused_cleanly(app):
    """With the database unreachable, articles and search still render; a vote gets 503 and is not acknowledged."""
    from kb_site.db import EXTENSION, Database

    app.extensions[EXTENSION] = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    client = app.test_client()
    assert client.get("/articles/return-policy").status_code == 200
    assert client.get("/search?q=refund").status_code == 200
    assert client.get("/").status_code == 200
    response = client.post("/articles/return-policy/feedback", data={"helpful": "yes"},
                           headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "Nothing was saved" in response.get_json()["error"]["message"]
    page = client.post("/articles/return-policy/feedback", data={"helpful": "yes", "csrf_token": csrf_token(client)})
    assert page.status_code == 503 and "try again" in page.get_data(as_text=True)


def test_page_views_are_batched_and_survive_an_outage(app):
    """With a flush interval, views wait in memory and are written together; while the database is away
    they are kept and written when it returns."""
    from kb_site import visitors
    from kb_site.db import EXTENSION, Database

    app.config["EVENT_FLUSH_SECONDS"] = 3600  # only explicit flushes in this test
    client = app.test_client()
    for _ in range(3):
        client.get("/visitor.json?article=return-policy")
    with app.app_context():
        waiting = visitors.buffer()
        assert waiting is not None and len(waiting.waiting) == 3
        with database().sessions() as s:
            assert s.query(Event).filter_by(kind="view").count() == 0
        good = app.extensions[EXTENSION]
        waiting.database = Database("postgresql+psycopg://postgres@127.0.0.1:1/none")
        waiting.flush()  # the database is away: nothing is lost
        assert len(waiting.waiting) == 3
        waiting.database = good
        waiting.flush()
        assert waiting.waiting == []
        with database().sessions() as s:
            views = s.query(Event).filter_by(kind="view").all()
    assert [v.slug for v in views] == ["return-policy"] * 3 and len({v.visit for v in views}) == 1


def answer_votes(app) -> list:
    from kb_site.models import AnswerVote

    with app.app_context(), database().sessions() as s:
        return list(s.query(AnswerVote).order_by(AnswerVote.id))


def test_the_answer_on_top_takes_a_vote_stored_with_its_sections_revision(any_db_site):
    """The results page shows the answer with "Was this answer helpful?"; a vote without JavaScript is stored
    with the section's revision and the query, changeable, and the page says thanks."""
    client = any_db_site.test_client()
    page = client.get("/search?q=where+is+my+package").get_data(as_text=True)  # one of the article's questions
    box = page.split('data-kb="answer"')[1].split("</section>")[0]
    assert "Track your order" in box and "Was this answer helpful?" in box
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', box))
    assert fields["slug"] == "track-your-order" and re.fullmatch(r"[0-9a-f]{16}", fields["revision"])
    response = client.post("/answers/feedback", data={**fields, "helpful": "no"})
    assert response.status_code == 303 and response.headers["Location"].endswith("#answer")
    assert "Sorry it didn" in client.get(response.headers["Location"]).get_data(as_text=True)
    answer = client.post("/answers/feedback", data={**fields, "helpful": "yes"},
                         headers={"X-Requested-With": "fetch", "X-CSRFToken": fields["csrf_token"]})
    assert answer.get_json()["saved"] is True
    [vote] = answer_votes(any_db_site)
    assert (vote.slug, vote.anchor, vote.revision, vote.query, vote.helpful) == (
        "track-your-order", fields["anchor"], fields["revision"], "where is my package", True)


def test_an_answer_vote_must_name_a_published_section(client):
    """A vote on an unknown article or section, or a revision that is not one, is a clear 400."""
    token = csrf_token(client)
    base = {"csrf_token": token, "helpful": "yes", "slug": "track-your-order", "anchor": "", "q": "parcel",
            "revision": "0123456789abcdef"}
    for change, message in [({"slug": "nope"}, "not published"), ({"anchor": "nowhere"}, "not published"),
                            ({"revision": "x"}, "revision"), ({"helpful": "maybe"}, "yes or no")]:
        response = client.post("/answers/feedback", data={**base, **change}, headers={"Accept": "application/json"})
        assert response.status_code == 400 and message in response.get_json()["error"]["message"]
    assert client.post("/answers/feedback", data={**base, "csrf_token": ""}).status_code == 400  # CSRF
