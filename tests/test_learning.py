"""Search that learns from its customers: the rule, its guards (poisoning, staff, rate limits, personal data),
the staff page, the watcher, and ``kb learn`` / ``kb eval --learn-from``. The library's side: test_learned.py."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from kb_site import create_app
from kb_site.config import ConfigError
from kb_site.db import database
from kb_site.learning import LearnSettings, learn, run_pass, visit_successes
from kb_site.models import Event, LearnedQuestion, LearnedWitness, Ticket, utcnow
from kb_site.search_service import service
from kb_site.serve import watch
from search import build_index
from search.learned import pairs_of, part_of, read_learned
from tests.conftest import CORPUS, csrf_token, make_site, read_article, wait_for
from tests.test_staff import signed_in

QUERY = "parcel gone walkabout"  # "walkabout" is in no article: only a learned question can match it
WORDS = "gone walkabout"  # no word of it is in any article
SLUG = "track-your-order"
LATER = dt.timedelta(minutes=45)  # past KB_VISIT_MINUTES: every visit of the test is over
# Learning is what these tests are about, not which results are confident: every candidate is a result, so
# the article the visitor opens is one of the search's results whatever the fake embedder makes of the query.
EVERY_CANDIDATE = {"CONFIDENCE": -9.0, "CONFIDENCE_MARGIN": 9.0}


@pytest.fixture
def app(tmp_path, corpus, fake_embedder):
    built = make_site(tmp_path, corpus, fake_embedder, **EVERY_CANDIDATE)
    yield built
    built.extensions["kb_db"].engine.dispose()


@pytest.fixture
def any_db_site(tmp_path, corpus, fake_embedder, database_url):
    built = make_site(tmp_path, corpus, fake_embedder, DATABASE_URL=database_url, **EVERY_CANDIDATE)
    yield built
    built.extensions["kb_db"].engine.dispose()


def journey(app, query: str = QUERY, slug: str = SLUG, *, address: str, vote: str | None = "yes", client=None):
    """One visit as a browser makes it: search, open a result from the results page, maybe vote."""
    client = client or app.test_client()
    env = {"REMOTE_ADDR": address}
    assert client.get("/search", query_string={"q": query}, environ_base=env).status_code == 200
    read_article(client, slug, "http://localhost/search?q=x", environ_base=env)
    if vote:
        token = client.get("/visitor.json", environ_base=env).get_json()["csrf_token"]
        response = client.post(f"/articles/{slug}/feedback", data={"helpful": vote, "csrf_token": token},
                               environ_base=env)
        assert response.status_code == 303
    return client


def new_visit(client) -> None:
    """Make the client's next request start a new visit (as after KB_VISIT_MINUTES away)."""
    with client.session_transaction() as session:
        session["seen"] = 0


def learned_file(app) -> dict[str, tuple[str, ...]]:
    return read_learned(Path(app.instance_path) / "learned.json")


def counts(app) -> dict[tuple[str, str], int]:
    with app.app_context(), database().sessions() as s:
        return {(q.slug, q.query): q.visitors for q in s.scalars(select(LearnedQuestion))}


def learn_now(app, later: dt.timedelta = LATER):
    with app.app_context():
        return run_pass(app, utcnow() + later)


# --- the rule: what a successful search is --------------------------------------------------------------------

def events(*steps) -> list[Event]:
    """A visit's events from (kind, slug, detail) steps, a second apart; a click belongs to the search before it."""
    out, start, search = [], dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC), None
    for number, (kind, slug, detail) in enumerate(steps, 1):
        event = Event(id=number, visit="v", visitor="p", kind=kind, slug=slug, detail=detail,
                      created_at=start + dt.timedelta(seconds=number),
                      query=f"query {number}" if kind == "search" else None,
                      search_id=search if kind == "click" else None)
        search = number if kind == "search" else search
        out.append(event)
    return out


@pytest.mark.parametrize(("steps", "found"), [
    ([("search", None, None), ("click", "a", None), ("view", "a", None), ("vote", "a", "yes")], ["a"]),
    ([("search", None, None), ("click", "a", None)], ["a"]),  # nothing after the click: they found it
    ([("search", None, None), ("click", "a", None), ("vote", "a", "no")], []),
    ([("search", None, None), ("click", "a", None), ("vote", "a", "no"), ("vote", "a", "yes")], ["a"]),
    ([("search", None, None), ("click", "a", None), ("search", None, None)], []),  # searched again
    ([("search", None, None), ("click", "a", None), ("vote", "a", "yes"), ("search", None, None)], ["a"]),
    ([("search", None, None), ("click", "a", None), ("click", "b", None)], ["b"]),  # a did not answer
    ([("search", None, None), ("click", "a", None), ("deflection", "c", None)], []),  # went to contact us
    ([("search", None, None), ("click", "a", None), ("vote", "b", "yes")], ["a"]),  # another article's vote
    ([("vote", "a", "yes"), ("search", None, None), ("click", "a", None), ("search", None, None)], []),
    ([("click", "a", None)], []),  # a click without its search
])
def test_a_search_succeeds_with_a_yes_or_when_nothing_follows(steps, found):
    """Yes on the clicked article, or the visit's last click with no search, click or contact after it."""
    assert [s.slug for s in visit_successes(events(*steps))] == found


def test_a_ticket_after_the_click_means_the_search_failed():
    """A ticket opened after the click (in the same visit) is a failed search; one before it is not."""
    visit = events(("search", None, None), ("click", "a", None))
    click_at = visit[1].created_at
    assert visit_successes(visit, [click_at + dt.timedelta(minutes=1)]) == []
    assert [s.slug for s in visit_successes(visit, [click_at - dt.timedelta(minutes=1)])] == ["a"]


# --- the pass: distinct visitors agree, one never teaches alone ------------------------------------------------

def test_three_visitors_teach_and_the_index_follows(app):
    """Three visitors from three addresses who found the article with one query make it a learned question;
    after a rebuild, the learned words find the article. Passes read each visit once."""
    for n in range(2):
        journey(app, address=f"198.51.100.{n}")
    report = learn_now(app)
    assert (report.visits, report.successes, report.counted, report.learned) == (2, 2, 2, 0)
    assert counts(app) == {(SLUG, QUERY): 2} and learned_file(app) == {}
    journey(app, "Parcel gone WALKABOUT?", address="198.51.100.2", vote=None)  # no vote, no further search
    report = learn_now(app)
    assert (report.visits, report.counted, report.learned, report.written) == (1, 1, 1, True)
    assert learned_file(app) == {SLUG: (QUERY,)}
    assert learn_now(app).counted == 0 and counts(app) == {(SLUG, QUERY): 3}  # nothing read twice

    with app.app_context():
        assert not service().engine().search("walkabout", mode="lexical").hits
        build_index(service().articles_dir, service().index_dir, service().embedder(), learned=service().learned_path)
        hits = service().engine().search("walkabout", mode="lexical").hits
    assert [h.slug for h in hits] == [SLUG]
    article = app.test_client().get(f"/api/articles/{SLUG}").get_json()
    assert article["questions"] == ["where is my package", "my order hasn't arrived"]  # not shown as the editor's
    assert "walkabout" not in app.test_client().get(f"/articles/{SLUG}").get_data(as_text=True)


def test_a_visit_still_going_is_read_when_it_is_over(app):
    """A visit with a recent event is not read yet; the pass after it ended reads it, once."""
    journey(app, address="198.51.100.1")
    assert learn_now(app, dt.timedelta(minutes=5)).visits == 0
    assert learn_now(app).visits == 1 and learn_now(app).visits == 0


def test_one_visitor_teaches_nothing_alone(any_db_site):
    """Poisoning: one visitor repeating query, click and Yes in ten visits, or one address behind ten visitor ids
    (a script dropping its cookie), counts once; three real visitors are needed. On SQLite and PostgreSQL."""
    app = any_db_site
    client = app.test_client()
    for _ in range(10):
        new_visit(client)
        journey(app, address="203.0.113.9", client=client)
    for _ in range(10):
        journey(app, address="203.0.113.10")  # a new visitor id each time, one address
    report = learn_now(app)
    assert report.visits == 20 and report.successes == 20
    assert report.counted == 2 and counts(app) == {(SLUG, QUERY): 2} and learned_file(app) == {}
    journey(app, address="192.0.2.77")
    assert learn_now(app).learned == 1 and learned_file(app) == {SLUG: (QUERY,)}


def test_staff_and_rate_limited_clients_never_teach(tmp_path, corpus, fake_embedder):
    """Signed-in staff (and their browser after signing out) and clients that went over a rate limit count nothing."""
    app = make_site(tmp_path, corpus, fake_embedder, **EVERY_CANDIDATE, RATELIMIT_ENABLED=True,
                    RATELIMIT_SEARCH="3 per minute")
    for n in range(3):
        staff = signed_in(app, "editor")
        journey(app, address=f"198.51.100.{n}", client=staff)
    signed_out = signed_in(app, "admin")
    signed_out.post("/staff/logout", data={"csrf_token": csrf_token(signed_out, "/staff/links")})
    journey(app, address="198.51.100.9", client=signed_out)
    for n in range(3):
        client = journey(app, address=f"192.0.2.{n}")
        for _ in range(3):  # then too many searches: refused, and remembered
            last = client.get("/search", query_string={"q": "tent"}, environ_base={"REMOTE_ADDR": f"192.0.2.{n}"})
        assert last.status_code == 429
    with app.app_context(), database().sessions() as s:
        flags = sorted((e.kind, e.flag) for e in s.scalars(select(Event).where(Event.flag.is_not(None))))
    assert ("limited", "limited") in flags and ("search", "staff") in flags
    assert len([f for f in flags if f[0] == "limited"]) == 3  # one a client, not one a refusal
    report = learn_now(app)
    assert report.successes == 7 and report.untrusted == 7 and report.counted == 0 and counts(app) == {}
    journey(app, "tent pegs", "ridgeline-tent-parts", address="203.0.113.1")  # an ordinary visitor still counts
    assert learn_now(app).counted == 1


def test_every_event_carries_the_address_hash_and_the_staff_flag(app):
    """Written at once or in a batch, an event holds a keyed hash of the address (never the address) and "staff"
    from a browser that signed in to /staff/, even after it signed out."""
    from kb_site import visitors

    app.config["EVENT_FLUSH_SECONDS"] = 3600  # page views wait for an explicit flush
    editor = signed_in(app, "editor")
    editor.post("/staff/logout", data={"csrf_token": csrf_token(editor, "/staff/links")})
    for client in (app.test_client(), editor):
        client.get("/search?q=tent", environ_base={"REMOTE_ADDR": "203.0.113.7"})  # written at once
        read_article(client, "return-policy", environ_base={"REMOTE_ADDR": "203.0.113.7"})  # batched
    with app.app_context():
        visitors.buffer().flush()
        with database().sessions() as s:
            rows = [(e.kind, e.client, e.flag) for e in s.scalars(select(Event).order_by(Event.id))]
    assert [(kind, flag) for kind, _client, flag in rows] == [("search", None), ("search", "staff"),
                                                             ("view", None), ("view", "staff")]
    assert len({c for _k, c, _f in rows}) == 1 and len(rows[0][1]) == 32 and "203.0.113.7" not in rows[0][1]


def test_limited_events_stay_out_of_the_ticket_trail(tmp_path, corpus, fake_embedder):
    """A rate-limit note is for learning, not part of what the customer tried."""
    from kb_site.visitors import trail

    app = make_site(tmp_path, corpus, fake_embedder, **EVERY_CANDIDATE, RATELIMIT_ENABLED=True,
                    RATELIMIT_SEARCH="1 per minute")
    client = app.test_client()
    client.get("/search?q=tent")
    assert client.get("/search?q=tent").status_code == 429
    with app.app_context(), database().sessions() as s:
        visit = s.scalar(select(Event.visit).where(Event.kind == "limited"))
    with app.app_context(), app.test_request_context():
        assert [e.kind for e in trail(visit)] == ["search"]


def test_personal_long_and_own_questions_are_never_learned(app):
    """However many agree: an email address, an order number, a long query or the article's own question."""
    queries = ["parcel for sam@example.com", "parcel NW-123456", "parcel " + "late " * 16, "Where is my package?"]
    for n in range(3):
        for query in queries:
            journey(app, query, address=f"198.51.100.{n}")
    report = learn_now(app)
    assert report.successes == 12 and report.counted == 0 and counts(app) == {}
    assert report.refused == {"an email address": 3, "a phone, card, account or order number": 3, "too long": 3,
                              "already a question of the article": 3}


def test_each_article_keeps_the_most_agreed_up_to_the_cap(tmp_path, corpus, fake_embedder):
    """Past KB_LEARN_MAX_PER_ARTICLE the questions most visitors agreed on are indexed; the others wait."""
    app = make_site(tmp_path, corpus, fake_embedder, **EVERY_CANDIDATE, LEARN_MAX_PER_ARTICLE=1)
    for n in range(4):
        journey(app, "parcel lost", address=f"198.51.100.{n}")
    for n in range(3):
        journey(app, QUERY, address=f"192.0.2.{n}")
    assert learn_now(app).learned == 1 and learned_file(app) == {SLUG: ("parcel lost",)}
    editor = signed_in(app, "editor")
    page = editor.get("/staff/learned").get_data(as_text=True)
    assert "parcel lost" in page and QUERY in page and "waiting (the article has its 1)" in page


def test_one_visitor_setting_is_refused(tmp_path):
    """KB_LEARN_MIN_VISITORS below 2 would let one visitor teach: the site does not start with it."""
    with pytest.raises(ConfigError, match="KB_LEARN_MIN_VISITORS must be at least 2, not 1"):
        create_app({"INSTANCE_DIR": str(tmp_path), "LEARN_MIN_VISITORS": 1})


# --- staff: the list, removal --------------------------------------------------------------------------------

def test_staff_list_and_remove_for_good(app):
    """Editors see each article's learned questions with counts; Remove (with CSRF) takes one out of the file
    at once and for good; support agents may not see the page."""
    for n in range(3):
        journey(app, address=f"198.51.100.{n}")
    learn_now(app)
    editor = signed_in(app, "editor")
    page = editor.get("/staff/learned").get_data(as_text=True)
    assert "Track your order" in page and QUERY in page and '<td class="cell-num" data-label="Visitors">3</td>' in page
    assert signed_in(app, "support").get("/staff/learned").status_code == 403
    with app.app_context(), database().sessions() as s:
        question = s.scalar(select(LearnedQuestion))
    refused = editor.post("/staff/learned/remove", data={"id": str(question.id)})
    assert refused.status_code == 400 and learned_file(app) == {SLUG: (QUERY,)}  # no CSRF token: nothing removed
    token = csrf_token(editor, "/staff/learned")
    assert editor.post("/staff/learned/remove", data={"id": "x", "csrf_token": token}).status_code == 400
    assert editor.post("/staff/learned/remove", data={"id": "999999", "csrf_token": token}).status_code == 404
    response = editor.post("/staff/learned/remove", data={"id": str(question.id), "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/learned"
    assert learned_file(app) == {}
    page = editor.get("/staff/learned").get_data(as_text=True)
    assert "is no longer a question of" in page and "Nothing learned yet" in page and "editor-" in page  # removed by
    for n in range(3, 7):  # more visitors agree: it stays removed
        journey(app, address=f"198.51.100.{n}")
    report = learn_now(app)
    assert report.refused["removed by staff"] == 4 and report.learned == 0 and learned_file(app) == {}


def test_old_witnesses_and_lone_candidates_are_forgotten(app):
    """Witnesses go after KB_RETENTION_DAYS like their events; a question nobody else agreed with goes too."""
    journey(app, address="198.51.100.1")
    learn_now(app)
    with app.app_context(), database().sessions() as s:
        assert s.scalar(select(LearnedWitness)) is not None
    learn_now(app, dt.timedelta(days=366))
    with app.app_context(), database().sessions() as s:
        assert s.scalar(select(LearnedWitness)) is None and s.scalar(select(LearnedQuestion)) is None


def test_kb_learn_command(app):
    """kb learn runs a pass now and says what it read and where the file is."""
    journey(app, address="198.51.100.1")
    with app.app_context(), database().session() as s:  # age the visit past KB_VISIT_MINUTES
        for event in s.scalars(select(Event)):
            event.created_at = event.created_at - LATER
    result = app.test_cli_runner().invoke(args=["learn"])
    assert result.exit_code == 0, result.output
    assert "Read 1 finished visit: 1 successful search, 1 visitor agreeing for the first time" in result.output
    assert f"0 learned questions in {Path(app.instance_path) / 'learned.json'} (changed" in result.output


def test_tickets_of_the_visit_fail_its_search(app):
    """A visit that ended in a ticket (after the click) taught nothing."""
    journey(app, address="198.51.100.1", vote=None)
    with app.app_context(), database().session() as s:
        visit = s.scalar(select(Event.visit))
        s.add(Ticket(reference="KB-TEST", name="S", email="s@example.com", subject="x", message="y", topic="orders",
                     visit=visit, created_at=utcnow()))
    assert learn_now(app).successes == 0


# --- the index follows without a restart ----------------------------------------------------------------------

def test_the_watcher_learns_and_serves_it_without_a_restart(app):
    """kb serve's watcher runs the learning pass, sees the file change and re-indexes: the site finds it."""
    for n in range(3):
        journey(app, address=f"198.51.100.{n}")
    with app.app_context(), database().session() as s:
        for event in s.scalars(select(Event)):
            event.created_at = event.created_at - LATER
    app.config.update(RELOAD_INTERVAL=0.1, LEARN_INTERVAL=0.002)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(app, stop), daemon=True)
    watcher.start()
    try:
        def found() -> bool:
            hits = app.test_client().get("/api/search?q=walkabout&mode=lexical").get_json()["hits"]
            return [h["slug"] for h in hits] == [SLUG]

        assert wait_for(found, timeout=20)
    finally:
        stop.set()
        watcher.join(10)


# --- kb eval --learn-from ----------------------------------------------------------------------------------

def test_kb_eval_learn_from_a_tiny_fixture(runner, tmp_path):
    """Queries of --learn-from (their first relevant article) become learned questions of the eval index, under
    the site's rules; --part and --learn-part cut the files in stable halves."""
    queries = tmp_path / "q.jsonl"
    email = "sam@example.com refund"
    queries.write_text(f'{{"query": "{WORDS}", "relevant": ["{SLUG}", "delivery-times"]}}\n'
                       f'{{"query": "{email}", "relevant": ["refund-timescales"]}}\n')
    assert pairs_of(queries) == [(WORDS, SLUG), (email, "refund-timescales")]
    base = ["eval", "--articles", str(CORPUS), "--queries", str(queries), "--withhold", "0", "--json"]
    without = json.loads(runner.invoke(args=base).stdout)
    assert "learned" not in without and without["modes"]["lexical"]["hit@1"] == 0.5
    result = runner.invoke(args=[*base, "--learn-from", str(queries)])
    assert result.exit_code == 0, result.output
    learned = json.loads(result.stdout)
    assert set(learned) == {"articles", "queries", "modes", "answers", "learned"}
    assert learned["learned"] == 1  # the email address is never learned
    assert learned["modes"]["lexical"]["hit@1"] == 1.0

    def halves(evaluated: int, learned_from: int) -> dict:
        args = [*base, "--part", f"{evaluated}/2", "--learn-from", str(queries), "--learn-part", f"{learned_from}/2"]
        return json.loads(runner.invoke(args=args).stdout)

    mine, its = part_of(WORDS, 2), part_of(email, 2)
    same = halves(mine, mine)
    assert same["queries"] == 1 + (its == mine) and same["learned"] == 1
    assert halves(mine, 3 - mine)["learned"] == 0  # the other half holds the email query at most: nothing learned
    bad = runner.invoke(args=[*base, "--part", "3/2"])
    assert bad.exit_code == 2 and "is not K/N" in bad.output


def test_learn_settings_come_from_the_config(app):
    """The pass reads its thresholds from KB_* settings, coerced once."""
    settings = LearnSettings.from_config(app.config)
    assert (settings.min_visitors, settings.max_per_article, settings.max_words, settings.visit_minutes) == \
        (3, 50, 16, 30)
    with app.app_context():
        assert learn(database().sessions, settings, None).visits == 0
