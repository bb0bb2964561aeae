"""The staff area: accounts and roles on every route, the dashboard's figures, tickets, links, privacy."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from kb_site.db import database
from kb_site.models import (
    DeliveryAttempt,
    Event,
    LearnedQuestion,
    Outbox,
    StaffSession,
    StaffUser,
    Ticket,
    TicketChange,
    Vote,
    aware,
)
from kb_site.staff import ACCESS, add_staff
from kb_site.tickets import NewTicket, create_ticket
from tests.conftest import csrf_token, free_port

PASSWORD = "correct horse battery"
NOW = dt.datetime.now(dt.UTC)


def staff(app, email: str, role: str, password: str = PASSWORD) -> None:
    with app.app_context(), database().session() as s:
        add_staff(s, email, role, password)


def signed_in(app, role: str):
    """A test client signed in as a new account with this role."""
    email = f"{role}-{len(app.extensions.setdefault('test_staff', []))}@shop.example"
    app.extensions["test_staff"].append(email)
    staff(app, email, role)
    client = app.test_client()
    response = client.post("/staff/login", data={"email": email, "password": PASSWORD,
                                                 "csrf_token": csrf_token(client, "/staff/login")})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def ticket(app, backend: str = "local", **overrides) -> Ticket:
    fields = {"name": "Sam", "email": "sam@example.com", "subject": "Refund", "message": "Where is my refund?",
              "topic": "returns", **overrides}
    with app.app_context(), database().sessions() as s:
        return create_ticket(s, NewTicket(**fields), backend, visit=overrides.get("subject", "v"), trail=[])


# --- accounts and roles -------------------------------------------------------------------------------------

def staff_routes(app) -> list[tuple[str, str, str]]:
    """Every staff route as (method, url, area), with sample arguments."""
    ref = ticket(app).reference
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("staff.") or rule.endpoint in ("staff.login", "staff.logout"):
            continue
        view = app.view_functions[rule.endpoint]
        url = rule.rule.replace("<reference>", ref)
        url += "?q=refund&table=top_queries" if rule.endpoint in ("staff.stub", "staff.dashboard_csv") else ""
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, url, view.staff_area))
    return routes


def test_every_staff_route_checks_the_role(app):
    """Anonymous visitors get the login page; wrong roles 403; right roles get through. All routes, all roles."""
    routes = staff_routes(app)
    assert len(routes) == 12  # a new route joins this walk by itself
    clients = {"anonymous": app.test_client(), **{r: signed_in(app, r) for r in ("editor", "support", "admin")}}
    for who, client in clients.items():
        token = csrf_token(client, "/staff/login")
        for method, url, area in routes:
            data = {"csrf_token": token, "status": "pending"}
            response = client.open(url, method=method, data=data if method == "POST" else None)
            if who == "anonymous":
                assert response.status_code == 302 and "/staff/login" in response.headers["Location"], (who, url)
            elif who in ACCESS[area]:
                # Through the role check: a page, a redirect, a refused retry, or (password) a form to correct,
                # or (removing a learned question) no question named.
                expected = (200, 302, 409, 400) if url in ("/staff/password", "/staff/learned/remove") \
                    else (200, 302, 409)
                assert response.status_code in expected, (who, method, url, response.status_code)
                if response.status_code == 302:
                    assert "/staff/login" not in response.headers["Location"], (who, url)
            else:
                assert response.status_code == 403, (who, method, url, response.status_code)
    # Support agents start at the ticket queue; editors at the dashboard.
    assert clients["support"].get("/staff/").headers["Location"] == "/staff/tickets"
    assert "Self-service dashboard" in clients["editor"].get("/staff/").get_data(as_text=True)


def test_login_logout_and_bad_passwords(app):
    """Wrong password: 401 and a message; right one: to the page asked for; sign-out needs CSRF."""
    staff(app, "ed@shop.example", "editor")
    client = app.test_client()
    assert client.get("/staff/links?q=refund").headers["Location"] == "/staff/login?next=/staff/links?q%3Drefund"
    token = csrf_token(client, "/staff/login")
    bad = client.post("/staff/login", data={"email": "ed@shop.example", "password": "wrong", "csrf_token": token})
    assert bad.status_code == 401 and "don&#39;t match an account" in bad.get_data(as_text=True)
    unknown = client.post("/staff/login", data={"email": "who@x.example", "password": "x", "csrf_token": token})
    assert unknown.status_code == 401
    good = client.post("/staff/login?next=/staff/links?q%3Drefund",
                       data={"email": "ED@shop.example", "password": PASSWORD, "csrf_token": token})
    assert good.headers["Location"] == "/staff/links?q=refund"
    assert client.post("/staff/logout").status_code == 400  # no CSRF token
    assert client.post("/staff/logout", data={"csrf_token": csrf_token(client, "/staff/links")}).status_code == 302
    assert client.get("/staff/links").status_code == 302


def test_login_never_redirects_off_site(app):
    """A crafted next= cannot send a signed-in member to another site."""
    staff(app, "ed@shop.example", "editor")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/staff/../../x"):
        client = app.test_client()
        response = client.post(f"/staff/login?next={target}", data={
            "email": "ed@shop.example", "password": PASSWORD, "csrf_token": csrf_token(client, "/staff/login")})
        location = response.headers["Location"]
        assert location.startswith("/staff") and "evil" not in location, target


# --- server-side sessions -------------------------------------------------------------------------------------

def sessions_of(app, email: str | None = None) -> list[StaffSession]:
    """Return the stored staff sessions (of one account)."""
    with app.app_context(), database().sessions() as s:
        query = select(StaffSession).join(StaffUser, StaffUser.id == StaffSession.staff_id)
        return list(s.scalars(query.where(StaffUser.email == email) if email else query))


def copy_of(app, client):
    """A second browser holding a copy of the client's session cookie (as a thief would)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def last_email(app) -> str:
    return app.extensions["test_staff"][-1]


def test_the_cookie_holds_a_random_token_and_the_row_its_hash(any_db_site):
    """The session cookie carries a random token; the database keeps only its SHA-256, one row a sign-in."""
    import hashlib

    editor = signed_in(any_db_site, "editor")
    data = any_db_site.session_interface.get_signing_serializer(any_db_site).loads(
        editor.get_cookie("session").value)
    token = data["staff"]["token"]
    assert len(token) >= 40 and str(any_db_site.extensions["test_staff"]) not in str(data)
    [row] = sessions_of(any_db_site, last_email(any_db_site))
    assert row.id == hashlib.sha256(token.encode()).hexdigest() and token not in row.id
    second = any_db_site.test_client()
    second.post("/staff/login", data={"email": last_email(any_db_site), "password": PASSWORD,
                                      "csrf_token": csrf_token(second, "/staff/login")})
    assert len(sessions_of(any_db_site, last_email(any_db_site))) == 2


def test_a_copied_cookie_stops_working_after_sign_out(any_db_site):
    """Signing out deletes the session row: every copy of the cookie is signed out at once."""
    editor = signed_in(any_db_site, "editor")
    thief = copy_of(any_db_site, editor)
    assert thief.get("/staff/").status_code == 200  # a copy works while the session lives
    stolen = editor.get_cookie("session").value
    assert editor.post("/staff/logout", data={"csrf_token": csrf_token(editor, "/staff/links")}).status_code == 302
    assert sessions_of(any_db_site, last_email(any_db_site)) == []
    for client in (thief, editor):
        response = client.get("/staff/")
        assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")
    replay = any_db_site.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/staff/links").status_code == 302


def test_a_password_change_ends_every_old_session(any_db_site):
    """Changing the password on its page ends every session of the account but starts a fresh one for you."""
    editor = signed_in(any_db_site, "editor")
    email = last_email(any_db_site)
    elsewhere = any_db_site.test_client()
    elsewhere.post("/staff/login", data={"email": email, "password": PASSWORD,
                                         "csrf_token": csrf_token(elsewhere, "/staff/login")})
    copies = [copy_of(any_db_site, editor), elsewhere, copy_of(any_db_site, elsewhere)]
    old_cookie = editor.get_cookie("session").value
    assert all(c.get("/staff/").status_code == 200 for c in copies)
    other_account = signed_in(any_db_site, "support")
    page = editor.get("/staff/password")
    assert page.status_code == 200 and 'autocomplete="current-password"' in page.get_data(as_text=True)
    token = csrf_token(editor, "/staff/password")
    new = "a brand new passphrase"
    wrong = editor.post("/staff/password", data={"current_password": "not it at all", "new_password": new,
                                                 "confirm": new, "csrf_token": token})
    assert wrong.status_code == 400 and "current password is not right" in wrong.get_data(as_text=True)
    assert new not in wrong.get_data(as_text=True) and "not it at all" not in wrong.get_data(as_text=True)
    short = editor.post("/staff/password", data={"current_password": PASSWORD, "new_password": "short",
                                                 "confirm": "short", "csrf_token": token})
    assert short.status_code == 400 and "at least 12 characters" in short.get_data(as_text=True)
    mismatch = editor.post("/staff/password", data={"current_password": PASSWORD, "new_password": new,
                                                    "confirm": new + "!", "csrf_token": token})
    assert mismatch.status_code == 400 and "don&#39;t match" in mismatch.get_data(as_text=True)
    assert len(sessions_of(any_db_site, email)) == 2  # nothing changed yet
    done = editor.post("/staff/password", data={"current_password": PASSWORD, "new_password": new,
                                                "confirm": new, "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"] == "/staff/"
    assert "Your password is changed" in editor.get("/staff/").get_data(as_text=True)  # the fresh session
    assert len(sessions_of(any_db_site, email)) == 1
    for client in copies:
        assert client.get("/staff/").status_code == 302
    replay = any_db_site.test_client()
    replay.set_cookie("session", old_cookie)
    assert replay.get("/staff/").status_code == 302
    assert other_account.get("/staff/tickets").status_code == 200  # other accounts keep their sessions
    fresh = any_db_site.test_client()
    assert fresh.post("/staff/login", data={"email": email, "password": new,
                                            "csrf_token": csrf_token(fresh, "/staff/login")}).status_code == 302


def test_kb_staff_password_ends_every_session(any_db_site):
    """kb staff password EMAIL: from stdin or generated once; every session of the account ends."""
    editor = signed_in(any_db_site, "editor")
    email = last_email(any_db_site)
    runner = any_db_site.test_cli_runner()
    result = runner.invoke(args=["staff", "password", email.upper(), "--password-stdin"],
                           input="another long password\n")
    assert result.exit_code == 0 and f"Changed the password of {email}" in result.output
    assert "1 session ended" in result.output
    assert editor.get("/staff/").status_code == 302 and sessions_of(any_db_site, email) == []
    generated = runner.invoke(args=["staff", "password", email, "--generate"])
    password = re.search(r"Password \(shown once\): (\S+)", generated.output).group(1)
    client = any_db_site.test_client()
    assert client.post("/staff/login", data={"email": email, "password": password,
                                             "csrf_token": csrf_token(client, "/staff/login")}).status_code == 302
    short = runner.invoke(args=["staff", "password", email, "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    nobody = runner.invoke(args=["staff", "password", "nobody@shop.example", "--generate"])
    assert nobody.exit_code == 1 and "no staff account for nobody@shop.example" in nobody.output
    assert client.get("/staff/").status_code == 200  # the failed attempts changed nothing


def test_removed_and_disabled_accounts_lose_their_sessions(any_db_site):
    """kb staff remove and a disabled account end the account's sessions, every copy of them."""
    editor = signed_in(any_db_site, "editor")
    removed = last_email(any_db_site)
    agent = signed_in(any_db_site, "support")
    disabled = last_email(any_db_site)
    copies = [copy_of(any_db_site, editor), copy_of(any_db_site, agent)]
    assert len(sessions_of(any_db_site)) == 2 and all(c.get("/staff/links").status_code == 200 for c in copies)
    assert any_db_site.test_cli_runner().invoke(args=["staff", "remove", removed]).exit_code == 0
    with any_db_site.app_context(), database().session() as s:
        s.scalar(select(StaffUser).where(StaffUser.email == disabled)).active = False
    for client in (editor, agent, *copies):
        assert client.get("/staff/links").status_code == 302
    assert sessions_of(any_db_site) == []


def test_sessions_expire_from_the_stored_row(any_db_site):
    """Idle (KB_STAFF_IDLE_MINUTES) and absolute (KB_STAFF_SESSION_HOURS) expiry are read from the row."""
    editor = signed_in(any_db_site, "editor")
    email = last_email(any_db_site)

    def age(**delta) -> None:
        with any_db_site.app_context(), database().session() as s:
            row = s.scalar(select(StaffSession))
            for column, minutes in delta.items():
                setattr(row, column, aware(getattr(row, column)) - dt.timedelta(minutes=minutes))

    age(seen_at=59)
    assert editor.get("/staff/").status_code == 200  # 59 minutes idle is still fine, and counts as seen now
    age(seen_at=61)
    expired = editor.get("/staff/")
    assert expired.status_code == 302 and "expired=1" in expired.headers["Location"]
    assert "Your session expired" in editor.get(expired.headers["Location"]).get_data(as_text=True)
    assert sessions_of(any_db_site, email) == []
    busy = signed_in(any_db_site, "editor")
    age(created_at=12 * 60 + 1)  # busy all day: seen a second ago, but signed in over 12 hours ago
    assert busy.get("/staff/").status_code == 302 and sessions_of(any_db_site) == []


def test_seen_at_is_written_at_most_every_30_seconds(any_db_site):
    """Requests in a row do not each write the session; one after 30 s does (the idle clock)."""
    editor = signed_in(any_db_site, "editor")
    [before] = sessions_of(any_db_site)
    for _ in range(3):
        assert editor.get("/staff/links").status_code == 200
    [same] = sessions_of(any_db_site)
    assert aware(same.seen_at) == aware(before.seen_at)
    with any_db_site.app_context(), database().session() as s:
        s.scalar(select(StaffSession)).seen_at = aware(before.seen_at) - dt.timedelta(seconds=31)
    assert editor.get("/staff/links").status_code == 200
    [after] = sessions_of(any_db_site)
    assert aware(after.seen_at) > aware(before.seen_at)
    assert "Set-Cookie" not in editor.get("/staff/links").headers  # the cookie itself is not rewritten


def test_login_attempts_are_rate_limited(tmp_path, corpus, fake_embedder):
    """Guessing passwords is stopped after KB_RATELIMIT_LOGIN attempts."""
    from tests.conftest import make_site

    app = make_site(tmp_path, corpus, fake_embedder, RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    token = csrf_token(client, "/staff/login")
    statuses = [client.post("/staff/login", data={"email": "a@b.example", "password": "guess",
                                                   "csrf_token": token}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_guessing_the_current_password_is_rate_limited(tmp_path, corpus, fake_embedder):
    """A stolen session cannot guess the account's password on the Change password page either."""
    from tests.conftest import make_site

    app = make_site(tmp_path, corpus, fake_embedder, RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = signed_in(app, "editor")
    token = csrf_token(client, "/staff/password")
    statuses = [client.post("/staff/password", data={"current_password": f"guess {n}", "csrf_token": token,
                                                      "new_password": "a new long password",
                                                      "confirm": "a new long password"}).status_code
                for n in range(4)]
    assert statuses[-1] == 429 and 429 not in statuses[:3]


def test_kb_staff_add_hashes_and_checks(app):
    """kb staff add: password from stdin or generated once; stored as a slow hash; bad input refused."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["staff", "add", "Ana@Shop.example", "--role", "support", "--password-stdin"],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0 and "Added ana@shop.example as support" in result.output
    generated = runner.invoke(args=["staff", "add", "bo@shop.example", "--role", "admin", "--generate"])
    password = re.search(r"Password \(shown once\): (\S+)", generated.output).group(1)
    assert len(password) >= 16
    with app.app_context(), database().sessions() as s:
        users = {u.email: u for u in s.scalars(select(StaffUser))}
    assert users["ana@shop.example"].password_hash.startswith("scrypt:")
    assert PASSWORD not in users["ana@shop.example"].password_hash
    client = app.test_client()
    assert client.post("/staff/login", data={"email": "bo@shop.example", "password": password,
                                             "csrf_token": csrf_token(client, "/staff/login")}).status_code == 302
    short = runner.invoke(args=["staff", "add", "c@shop.example", "--role", "editor", "--password-stdin"],
                          input="short\n")
    again = runner.invoke(args=["staff", "add", "ana@shop.example", "--role", "editor", "--generate"])
    role = runner.invoke(args=["staff", "add", "d@shop.example", "--role", "boss", "--generate"])
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    assert again.exit_code == 1 and "already has an account" in again.output
    assert role.exit_code == 2
    listed = runner.invoke(args=["staff", "list"]).output
    assert "ana@shop.example" in listed and "support" in listed and "bo@shop.example" in listed


# --- the dashboard ------------------------------------------------------------------------------------------

def seed(app) -> None:
    """A known history: 10 visits in the last week, 3 of which opened a ticket; searches, clicks, votes."""
    at = NOW - dt.timedelta(days=2)
    rows: list = []

    def event(visit: str, kind: str, **fields) -> Event:
        e = Event(visit=visit, visitor=f"p-{visit}", kind=kind, created_at=fields.pop("created_at", at), **fields)
        rows.append(e)
        return e

    for n in range(10):
        event(f"v{n}", "view", slug="return-policy")
    searches = [event("v0", "search", query="Refund", results=3), event("v1", "search", query="refund", results=3),
                event("v2", "search", query="refund", results=3), event("v3", "search", query="gift wrap", results=0),
                event("v4", "search", query="Gift wrap", results=0), event("v5", "search", query="zzz", results=0),
                event("v6", "search", query="tent poles", results=2)]
    event("v7", "deflection", slug="return-policy", query="refund")
    event("v8", "search", query="old query", results=0, created_at=NOW - dt.timedelta(days=40))
    with app.app_context(), database().session() as s:
        s.add_all(rows)
        s.flush()
        s.add(Event(visit="v0", visitor="p-v0", kind="click", slug="refund-timescales", search_id=searches[0].id,
                    position=1, created_at=at))
        s.add(Event(visit="v1", visitor="p-v1", kind="click", slug="refund-timescales", search_id=searches[1].id,
                    position=1, created_at=at))
        votes = [("return-policy", True, None, None, "r1"), ("return-policy", True, None, None, "r2"),
                 ("return-policy", False, "outdated", "Says 30 days", "r2"),
                 ("refund-timescales", False, "unclear", None, "r9"), ("refund-timescales", False, None, None, "r9"),
                 ("refund-timescales", False, "unclear", None, "r9"), ("stove-recall", True, None, None, "r5")]
        for i, (slug, helpful, reason, comment, revision) in enumerate(votes):
            s.add(Vote(visitor=f"p{i}", slug=slug, helpful=helpful, reason=reason, comment=comment,
                       revision=revision, created_at=at - dt.timedelta(minutes=10 - i), updated_at=at))
    for visit, topic in (("v0", "returns"), ("v3", "orders"), ("v5", "returns")):
        with app.app_context(), database().sessions() as s:
            t = create_ticket(s, NewTicket("Sam", "s@x.example", "Help", "Please help me.", topic), "local",
                              visit=visit, trail=[])
        with app.app_context(), database().session() as s:
            s.get(Ticket, t.id).created_at = at


def test_dashboard_figures_match_the_seeded_history(any_db_site):
    """3 of 10 visits opened a ticket: 70 %; gaps, clicks, helpfulness and topics as seeded."""
    from kb_site.views.desk import dashboard_tables

    seed(any_db_site)
    with any_db_site.test_request_context():
        overview, tables = dashboard_tables(7)
    assert (overview.visits, overview.visits_with_ticket) == (10, 3) and overview.self_service == 0.7
    assert (overview.tickets, overview.deflections, overview.searches, overview.zero_result_searches) == (3, 1, 7, 3)
    assert tables["zero_result_queries"][0]["query"] == "gift wrap" and tables["zero_result_queries"][0][
        "searches"] == 2
    assert [r["query"] for r in tables["zero_result_queries"]] == ["gift wrap", "zzz"]  # 40-day-old one left out
    assert tables["top_queries"][0] == {"query": "refund", "searches": 3, "avg_results": 3.0, "clicked_percent": 67}
    assert {r["query"]: r["searches_without_click"] for r in tables["no_click_queries"]} == {"refund": 1,
                                                                                           "tent poles": 1}
    helpful = {r["article"]: r for r in tables["helpfulness"]}
    assert [r["article"] for r in tables["helpfulness"]] == ["stove-recall", "return-policy", "refund-timescales"]
    assert helpful["return-policy"]["helpful_percent"] == 67 and "Says 30 days" in helpful["return-policy"][
        "comments"]
    assert helpful["refund-timescales"]["no_reasons"] == "It was hard to understand (2)"
    assert {r["topic"]: r["tickets"] for r in tables["tickets_by_topic"]} == {"returns": 2, "orders": 1}
    day = (NOW - dt.timedelta(days=2)).date().isoformat()
    assert {r["day"]: r["searches"] for r in tables["searches_per_day"]}[day] == 7
    assert len(tables["searches_per_day"]) == 7 and tables["searches_per_day"][-1]["day"] == NOW.date().isoformat()
    with any_db_site.test_request_context():
        older = dashboard_tables(90)[0]
    assert older.searches == 8 and older.visits == 10


def test_a_chart_over_n_days_has_n_bars(any_db_site):
    """7 days: 7 bars, one a UTC day, the last today, a zero bar for a day without searches, each day named like
    "Mon 30"; the chart counts what the figures count. 30 and 90 days: 30 and 90 bars."""
    today = dt.datetime.now(dt.UTC).date()
    midnight = dt.datetime.combine(today, dt.time(), dt.UTC)
    first = midnight - dt.timedelta(days=6)
    searches = {first + dt.timedelta(minutes=1): 1,  # the first day's first minute: in
                first - dt.timedelta(minutes=1): 5,  # the minute before: the eighth day back, out
                midnight - dt.timedelta(days=3, hours=-2): 3,
                midnight + dt.timedelta(seconds=1): 2}
    with any_db_site.app_context(), database().session() as s:
        for at, n in searches.items():
            s.add_all(Event(visit=f"c{at:%j%H%M}{i}", visitor="p", kind="search", query="tent", results=1,
                            created_at=at) for i in range(n))
    editor = signed_in(any_db_site, "editor")
    html = editor.get("/staff/?days=7").get_data(as_text=True)
    chart = re.search(r'<svg class="chart".*?</svg>', html, re.S).group(0)
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', chart)]
    assert len(heights) == 7
    assert [h > 0 for h in heights] == [True, False, False, True, False, False, True]
    days = [today - dt.timedelta(days=6 - i) for i in range(7)]
    labels = re.findall(r'<text class="day"[^>]*>([^<]+)</text>', chart)
    assert labels == [f"{d:%a} {d.day}" for d in days]  # "Mon 30", ending with today
    assert f"<title>{days[-1]:%a} {days[-1].day} {days[-1]:%b}: 2</title>" in chart
    assert "6 in total" in chart and "<dt>Searches</dt><dd>6</dd>" in html  # the chart and the figure agree
    for days_back in (30, 90):
        chart = re.search(r'<svg class="chart".*?</svg>', editor.get(f"/staff/?days={days_back}").get_data(
            as_text=True), re.S).group(0)
        assert chart.count("<rect ") == days_back and "11 in total" in chart
        assert re.findall(r'<text class="day"[^>]*>([^<]+)</text>', chart)[-1] == f"{today:%a} {today.day}"


def test_revisions_and_stale_articles():
    """The last edit's effect, and old articles that do not help, from plain rows."""
    from kb_site.staff.analytics import stale

    helpful = [{"article": "a", "title": "A", "votes": 5, "helpful_percent": 40},
               {"article": "b", "title": "B", "votes": 5, "helpful_percent": 40},
               {"article": "c", "title": "C", "votes": 1, "helpful_percent": 0},
               {"article": "d", "title": "D", "votes": 9, "helpful_percent": 90}]
    today = dt.date(2026, 11, 24)
    updated = {"a": dt.date(2026, 1, 1), "b": dt.date(2026, 11, 1), "c": dt.date(2020, 1, 1), "d": None}
    assert [r["article"] for r in stale(helpful, updated, today)] == ["a"]


def test_did_the_last_edit_help(any_db_site):
    """Votes before and after an edit (content revision) are compared per article."""
    from kb_site.staff.analytics import revisions

    with any_db_site.app_context(), database().session() as s:
        for i, (rev, ok) in enumerate([("old", False), ("old", False), ("old", True), ("new", True), ("new", True)]):
            s.add(Vote(visitor=f"x{i}", slug="return-policy", helpful=ok, revision=rev,
                       created_at=NOW - dt.timedelta(days=10 - i), updated_at=NOW))
    with any_db_site.app_context(), database().sessions() as s:
        [row] = revisions(s, {"return-policy": "new"}, {"return-policy": "Return policy"})
    assert (row["before_percent"], row["after_percent"], row["verdict"]) == (33, 100, "better")


def test_dashboard_page_chart_and_csv_match(any_db_site):
    """The page renders the SVG chart (no script, no CDN); each CSV equals its table."""
    from kb_site.views.desk import TABLES, dashboard_tables

    seed(any_db_site)
    editor = signed_in(any_db_site, "editor")
    html = editor.get("/staff/?days=7").get_data(as_text=True)
    assert '<svg class="chart"' in html and "70%" in html and "7 of 10 visits opened no ticket" in html
    assert 'href="/staff/gaps/stub?q=gift+wrap"' in html
    with any_db_site.test_request_context():
        tables = dashboard_tables(7)[1]
    for name in TABLES:
        response = editor.get(f"/staff/dashboard.csv?table={name}&days=7")
        assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert rows == [{k: "" if v is None else str(v) for k, v in row.items()} for row in tables[name]], name
    assert editor.get("/staff/dashboard.csv?table=nope").status_code == 404


def test_gap_stub_passes_kb_check(app, corpus):
    """The stub for a zero-result query is a draft with the query in `questions`; kb check finds no error."""
    from search.check import check_articles

    editor = signed_in(app, "editor")
    page = editor.get("/staff/gaps/stub?q=can+I+return+a+tent+I+used").get_data(as_text=True)
    assert "Save this as <code>articles/" in page and "data-copy-from" in page
    download = editor.get("/staff/gaps/stub?q=can+I+return+a+tent+I+used&download=1")
    assert download.headers["Content-Disposition"] == 'attachment; filename="can-i-return-a-tent-i-used.md"'
    text = download.get_data(as_text=True)
    assert '  - "can I return a tent I used"' in text and "draft: true" in text
    category = re.search(r"^category: (\S+)$", text, re.M).group(1)
    (corpus / category).mkdir(exist_ok=True)
    (corpus / category / "can-i-return-a-tent-i-used.md").write_text(text)
    problems = check_articles(corpus)
    assert [p for p in problems if p.severity == "error"] == []


# --- tickets, links, privacy --------------------------------------------------------------------------------

def test_ticket_queue_filters_status_and_history(any_db_site):
    """Filter by status, topic and delivery; change status with a history line; retry dead letters."""
    first = ticket(any_db_site, topic="returns")
    dead = ticket(any_db_site, backend="webhook", topic="orders")
    with any_db_site.app_context(), database().session() as s:
        row = s.scalar(select(Outbox).where(Outbox.ticket_id == dead.id))
        row.state, row.last_error = "dead", "HTTP 400: bad request"
    agent = signed_in(any_db_site, "support")
    listing = agent.get("/staff/tickets?delivery=dead").get_data(as_text=True)
    assert dead.reference in listing and first.reference not in listing
    assert first.reference in agent.get("/staff/tickets?topic=returns").get_data(as_text=True)
    token = csrf_token(agent, "/staff/tickets")
    agent.post(f"/staff/tickets/{first.reference}/status", data={"status": "pending", "csrf_token": token})
    page = agent.get(f"/staff/tickets/{first.reference}").get_data(as_text=True)
    assert "status open → pending by support-" in page
    assert agent.post(f"/staff/tickets/{first.reference}/status",
                      data={"status": "closed", "csrf_token": token}).status_code == 400
    assert agent.post(f"/staff/tickets/{first.reference}/retry", data={"csrf_token": token}).status_code == 409
    dead_page = agent.get(f"/staff/tickets/{dead.reference}").get_data(as_text=True)
    assert "Retry delivery" in dead_page and "HTTP 400: bad request" in dead_page
    assert agent.post(f"/staff/tickets/{dead.reference}/retry", data={"csrf_token": token}).status_code == 302
    with any_db_site.app_context(), database().sessions() as s:
        assert s.scalar(select(Outbox.state).where(Outbox.ticket_id == dead.id)) == "pending"
        assert s.scalar(select(Ticket.status).where(Ticket.id == first.id)) == "pending"
        assert len(s.scalars(select(TicketChange)).all()) == 2


def test_the_ticket_page_says_where_the_ticket_came_from(app):
    """An article by its current title (through a rename), a gone article said plainly, a search linked to its
    results, any other page as plain text."""
    agent = signed_in(app, "support")

    def came_from(source: str) -> str:
        page = agent.get(f"/staff/tickets/{ticket(app, source=source).reference}").get_data(as_text=True)
        return re.search(r"<dt>Came from</dt><dd[^>]*>(.*?)</dd>", page, re.S).group(1)

    assert came_from("article:return-policy") == 'the article <a href="/articles/return-policy">Return policy</a>'
    renamed = came_from("article:order-tracking")  # an alias of track-your-order
    assert renamed.startswith('the article <a href="/articles/track-your-order">Track your order</a>')
    assert "then at /articles/order-tracking" in renamed
    gone = came_from("article:a-tent-we-no-longer-sell")
    assert "no longer on the site" in gone and "/articles/a-tent-we-no-longer-sell" in gone and "href" not in gone
    assert came_from("search:tent & poles") == 'a search for <a href="/search?q=tent+%26+poles">“tent &amp; poles”</a>'
    page = came_from("page:https://shop.example/basket?step=2")
    assert "https://shop.example/basket?step=2" in page and "href" not in page  # a referrer is not ours to link
    assert came_from("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"


class Cells(HTMLParser):
    """The cells of a page's staff tables: each td's attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables, self.cells, self.headers = 0, [], []
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables += 1
            assert attrs.get("class") == "data-table", attrs
        elif tag in ("td", "th"):
            self._cell = {**attrs, "tag": tag, "text": ""}
            (self.cells if tag == "td" else self.headers).append(self._cell)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data + " "


def test_staff_tables_clip_long_cells_and_label_every_cell(app):
    """Every staff table is made with templates/staff/_cells.html: each cell names its column (data-label, for the
    phone's cards), a long text carries its whole self in a title, numbers are right-aligned cells, times human."""
    long_query = "can i return a sleeping bag i bought at the ridgeline store in aviemore last winter"
    email = "alexandra.konstantinopoulou-featherstonehaugh@a-very-long-customer-domain.example"
    with app.app_context(), database().session() as s:
        s.add_all(Event(visit=f"v{n}", visitor=f"p{n}", kind="search", query=long_query, results=0,
                        created_at=NOW - dt.timedelta(hours=n)) for n in range(3))
        s.add(LearnedQuestion(slug="return-policy", query=long_query, visitors=5, first_seen=NOW, last_seen=NOW))
    dead = ticket(app, backend="webhook", email=email, subject="My " + "very " * 30 + "long subject")
    with app.app_context(), database().session() as s:
        outbox = s.scalar(select(Outbox).where(Outbox.ticket_id == dead.id))
        s.add(DeliveryAttempt(outbox_id=outbox.id, number=1, worker="w-" + "x" * 60, outcome="retry",
                              detail="HTTP 502 from https://helpdesk.example/" + "a" * 80))
    admin = signed_in(app, "admin")
    pages = {}
    for path in ("/staff/?days=7", "/staff/tickets", f"/staff/tickets/{dead.reference}", "/staff/learned"):
        cells = Cells()
        cells.feed(admin.get(path).get_data(as_text=True))
        assert cells.tables and cells.cells, path
        unlabelled = [c for c in cells.cells if "data-label" not in c]
        assert unlabelled == [], path
        for c in cells.cells:
            if "cell-long" in c.get("class", ""):
                assert c["text"].split() and all(word in c["title"] for word in c["text"].split()), c
        pages[path] = cells
    gaps = [c for c in pages["/staff/?days=7"].cells if c["data-label"] == "Query"]
    assert gaps[0]["class"] == "cell-long" and gaps[0]["title"] == long_query
    assert any(c.get("class") == "cell-num" and c["text"].strip() == "3" for c in pages["/staff/?days=7"].cells)
    heads = [h["text"].strip() for h in pages["/staff/?days=7"].headers]
    first_gap = heads.index("Query")  # after the channels' and shop pages' tables
    assert heads[first_gap:first_gap + 3] == ["Query", "Searches", "Last searched"]
    customer = next(c for c in pages["/staff/tickets"].cells if c["data-label"] == "Customer")
    assert customer["title"] == f"Sam <{email}>" and "cell-long" in customer["class"]
    subject = next(c for c in pages["/staff/tickets"].cells if c["data-label"] == "Subject")
    assert subject["title"] == dead.subject
    worker = next(c for c in pages[f"/staff/tickets/{dead.reference}"].cells if c["data-label"] == "Worker")
    assert worker["title"] == "w-" + "x" * 60
    opened = next(c for c in pages["/staff/tickets"].cells if c["data-label"] == "Opened")
    assert opened["text"].strip().startswith("today ") and opened["class"] == "cell-time"
    question = next(c for c in pages["/staff/learned"].cells if c["data-label"] == "Question")
    assert question["title"] == long_query


@pytest.mark.parametrize("name", ["dashboard", "tickets", "ticket", "learned"])
def test_staff_pages_show_human_dates(app, name):
    """No staff page shows a raw ISO time or Python's str() of a datetime; times are in <time> with a title."""
    with app.app_context(), database().session() as s:
        s.add(Event(visit="v", visitor="p", kind="search", query="gift wrap", results=0,
                    created_at=NOW - dt.timedelta(days=1)))
        s.add(LearnedQuestion(slug="return-policy", query="parcel lost", visitors=5, first_seen=NOW, last_seen=NOW))
    made = ticket(app, source="article:return-policy")
    with app.app_context(), database().session() as s:
        s.get(Ticket, made.id).trail = json.dumps([{"kind": "search", "at": NOW.isoformat(timespec="seconds"),
                                                   "query": "refund", "results": 0}])
    admin = signed_in(app, "admin")
    token = csrf_token(admin, "/staff/tickets")
    admin.post(f"/staff/tickets/{made.reference}/status", data={"status": "pending", "csrf_token": token})
    path = {"dashboard": "/staff/?days=7", "tickets": "/staff/tickets", "ticket": f"/staff/tickets/{made.reference}",
            "learned": "/staff/learned"}[name]
    html = admin.get(path).get_data(as_text=True)
    shown = re.sub(r"<[^>]+>", " ", html)  # the text, without attributes (where ISO times belong)
    assert not re.search(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d", shown), name
    times = re.findall(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', html)
    assert times, name
    for iso, title, text in times:
        assert dt.datetime.fromisoformat(iso).tzinfo is not None and title.endswith("UTC"), (iso, title)
        assert re.fullmatch(r"(today|yesterday|Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:\d\d|\d{1,2} [A-Z][a-z]{2}( \d{4})?",
                            text), text


def test_link_finder_and_kb_link(app):
    """Agents get absolute deep links and a reply snippet; `kb link` prints the best URL."""
    agent = signed_in(app, "support")
    html = agent.get("/staff/links?q=print+a+returns+label").get_data(as_text=True)
    assert 'value="http://localhost/articles/return-policy#print-a-returns-label"' in html
    assert "Return policy: Send items back within 30 days.\nhttp://localhost/articles/return-policy" in html
    assert html.count("Copy link") >= 1 and "Copy reply snippet" in html
    app.config["BASE_URL"] = "https://help.shop.example"
    nobody = f"http://127.0.0.1:{free_port()}"  # no site answers there: the local index does
    result = app.test_cli_runner().invoke(args=["link", "--site", nobody, "print a returns label"])
    assert result.output.strip() == "https://help.shop.example/articles/return-policy#print-a-returns-label"


def test_client_addresses_are_hashed_and_purge_removes_only_old_events(app):
    """Tickets keep a keyed hash of the address, never the address; purge deletes only expired events."""
    from tests.test_contact import GOOD, form_fields

    app.config["CONTACT_MIN_SECONDS"] = 0
    client = app.test_client()
    client.post("/contact", data={**form_fields(client), **GOOD, "confirm": "1"},
                environ_base={"REMOTE_ADDR": "203.0.113.7"})
    with app.app_context(), database().sessions() as s:
        [t] = s.scalars(select(Ticket)).all()
    assert t.client and len(t.client) == 32 and "203.0.113.7" not in t.client
    with app.app_context(), database().session() as s:
        s.query(Event).delete()
        for days in (10, 364, 366, 900):
            s.add(Event(visit="v", visitor="p", kind="view", slug="x", created_at=NOW - dt.timedelta(days=days)))
    result = app.test_cli_runner().invoke(args=["purge"])
    assert "Removed 2 events older than 365 days" in result.output
    with app.app_context(), database().sessions() as s:
        ages = sorted((NOW - e.created_at.replace(tzinfo=dt.UTC)).days for e in s.scalars(select(Event)))
    assert ages == [10, 364]


@pytest.mark.parametrize("role", ["editor", "support", "admin"])
def test_staff_pages_are_private(app, role):
    """Staff pages are never cached or indexed."""
    client = signed_in(app, role)
    response = client.get("/staff/links")
    assert response.headers["Cache-Control"] == "no-store" and response.headers["X-Robots-Tag"] == "noindex"
    assert "Still need help?" not in response.get_data(as_text=True)  # the customers' footer link


# --- downloads: CSV formula injection, file names -------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example")', "+SUM(1,2)", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|'/C calc'!A0",
            "\t=1+1", "\r=1+1"]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def test_dashboard_csv_neutralises_formulas_and_keeps_numbers(any_db_site):
    """Queries and comments that start like a formula come out quoted (OWASP); numbers, negative ones too, stay."""
    editor = signed_in(any_db_site, "editor")
    for query in FORMULAS[:4]:  # through the real search page: zero results, so a content gap
        assert editor.get("/search", query_string={"q": query}).status_code == 200
    token = csrf_token(editor, "/articles/return-policy")
    for comment in ("=1+1 looks odd", "@SUM(1+1)"):
        editor.post("/articles/return-policy/feedback", data={"helpful": "no", "comment": comment,
                                                              "csrf_token": token})
    from kb_site.views import library

    with any_db_site.test_request_context():
        current = library().articles["refund-timescales"].content_hash
    with any_db_site.app_context(), database().session() as s:
        # The search page strips leading tabs and CRs; events stored by any other path keep them.
        for query in FORMULAS[4:]:
            s.add(Event(visit="v", visitor="p", kind="search", query=query, results=0))
        # An edit that made an article worse: change_points is a real negative number.
        for i, (rev, ok) in enumerate([("old", True), ("old", True), ("old", True), (current, False)]):
            s.add(Vote(visitor=f"w{i}", slug="refund-timescales", helpful=ok, revision=rev,
                       created_at=NOW - dt.timedelta(days=5 - i), updated_at=NOW - dt.timedelta(days=20)))
    from kb_site.views.desk import TABLES

    cells: list[str] = []
    tables = {}
    for name in TABLES:
        response = editor.get(f"/staff/dashboard.csv?table={name}&days=7")
        assert response.status_code == 200, name
        tables[name] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        cells += [cell for row in tables[name] for cell in row.values()] + list(tables[name][0] if tables[name] else [])
    # The only cell that starts with one of the characters is a number we wrote: the edit's -100 points.
    assert [c for c in cells if c.startswith(DANGEROUS)] == ["-100"]
    queries = {row["query"] for row in tables["top_queries"]}
    assert queries == {"'" + query.lower() for query in FORMULAS}
    comments = next(r["comments"] for r in tables["helpfulness"] if r["article"] == "return-policy")
    assert comments.startswith("'@SUM(1+1)") or comments.startswith("'=1+1")
    [revision] = [r for r in tables["revisions"] if r["article"] == "refund-timescales"]
    assert revision["change_points"] == "-100" and revision["verdict"] == "worse"
    assert {r["query"]: r["searches"] for r in tables["top_queries"]}["'" + FORMULAS[0].lower()] == "1"


@pytest.mark.parametrize("value, cell", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("plain", "plain"), ("a=1", "a=1"), ("", ""), (-3, -3), (2.5, 2.5), (-0.5, -0.5), (None, None)])
def test_safe_cell_quotes_strings_that_start_like_a_formula(value, cell):
    """Strings that a spreadsheet would run get a leading quote; numbers (negative too) stay numbers."""
    from kb_site.staff.downloads import safe_cell

    assert safe_cell(value) == cell


def test_stub_is_markdown_not_html(app):
    """The downloaded stub keeps the query's characters as typed: Markdown is not HTML-escaped."""
    editor = signed_in(app, "editor")
    text = editor.get("/staff/gaps/stub", query_string={"q": "tents & <poles>", "download": "1"}).get_data(
        as_text=True)
    assert 'title: "Tents & <poles>"' in text and "“tents & <poles>” 0 times" in text
    assert text.endswith("[this](/articles/contact-us).\n")


def test_stub_download_names_any_query(app):
    """A stub for a non-Latin-1 query downloads with an ASCII name and the real one in RFC 5987 filename*."""
    from werkzeug.http import parse_options_header

    editor = signed_in(app, "editor")
    for query, ascii_name, real_name in [("zwrot pieniędzy", "zwrot-pieniedzy.md", "zwrot-pieniędzy.md"),
                                         ("返品 送料", "download.md", "返品-送料.md"),
                                         ('a "quoted"; name', "a-quoted-name.md", "a-quoted-name.md")]:
        response = editor.get("/staff/gaps/stub", query_string={"q": query, "download": "1"})
        assert response.status_code == 200, query
        disposition = response.headers["Content-Disposition"]
        kind, options = parse_options_header(disposition)
        assert kind == "attachment" and disposition.isascii()
        assert re.search(r'filename="([^"]+)"', disposition).group(1) == ascii_name
        assert options["filename"] == real_name  # werkzeug prefers filename* (RFC 5987) when it is there
        assert f'"{query}"' in response.get_data(as_text=True) or "quoted" in query


BAD_NUMBERS = ["/staff/tickets?page=9223372036854775808", "/staff/tickets?page=-1", "/staff/tickets?page=0",
               "/staff/tickets?page=1e3", "/staff/tickets?page=%EF%BC%91", "/staff/tickets?page=10001",
               "/staff/?days=99999999999999999999", "/staff/?days=-7", "/staff/?days=x", "/staff/?days=8",
               "/staff/dashboard.csv?table=top_queries&days=18446744073709551616"]


def test_integer_arguments_are_bounded(any_db_site):
    """Huge, negative or malformed numbers are a 400 that says what is allowed, never a server error."""
    admin = signed_in(any_db_site, "admin")
    for url in BAD_NUMBERS:
        response = admin.get(url)
        assert response.status_code == 400, (url, response.status_code)
        page = response.get_data(as_text=True)
        assert "whole number between" in page or "one of 7, 30, 90" in page, url
        assert admin.get(url.split("?")[0] + "?page=10000&days=7&table=top_queries").status_code == 200


def test_odd_filters_references_and_emails_are_refused_not_failed(any_db_site):
    """A NUL or a stranger in a filter, a reference or a sign-in email is a 400/404/401, not a database error."""
    admin = signed_in(any_db_site, "admin")
    for url in ("/staff/tickets?status=%00", "/staff/tickets?status=closed", "/staff/tickets?topic=%00",
                "/staff/tickets?topic=a%0Ab", "/staff/tickets?delivery=lost"):
        response = admin.get(url)
        assert response.status_code == 400 and "must be" in response.get_data(as_text=True), url
    assert admin.get("/staff/tickets?status=open&topic=returns&delivery=dead").status_code == 200
    assert admin.get("/staff/tickets/KB-%00").status_code == 404
    assert admin.get("/staff/tickets/" + "A" * 40).status_code == 404
    client = any_db_site.test_client()
    response = client.post("/staff/login", data={"email": "ed\x00@shop.example", "password": "x",
                                                 "csrf_token": csrf_token(client, "/staff/login")})
    assert response.status_code == 401


UNSAFE_NEXT = ["/staff/tickets/%0A", "/staff/tickets/%0D%0ASet-Cookie:x=1", "/staff/%00", "/staff/%09",
               "/staff/%E2%80%A8", "/staff/%C2%85", "/staff/../admin", "/staff/./x/../../admin", "/staffevil",
               "/staff//evil.example", "/staff/%2F%2Fevil.example", "/staff/%5Cevil.example", "/staff/ x"]


def test_sign_in_redirects_only_to_plain_staff_paths(app):
    """A next= with control characters, line breaks, dot segments or another host goes to the staff home."""
    staff(app, "ed@shop.example", "editor")
    for target in UNSAFE_NEXT:
        client = app.test_client()
        response = client.post(f"/staff/login?next={target}", data={
            "email": "ed@shop.example", "password": PASSWORD, "csrf_token": csrf_token(client, "/staff/login")})
        assert response.status_code == 302, target
        assert response.headers["Location"] == "/staff/", target


def test_sign_in_keeps_a_plain_staff_target(app):
    """The page asked for before signing in, query and non-ASCII characters included, is where you land."""
    staff(app, "ed@shop.example", "editor")
    client = app.test_client()
    first = client.get("/staff/gaps/stub?q=zwrot+pieni%C4%99dzy")
    assert first.status_code == 302
    login = client.get(first.headers["Location"])
    action = re.search(r'<form class="contact-form" method="post" action="([^"]+)"', login.get_data(as_text=True))
    response = client.post(action.group(1).replace("&amp;", "&"), data={
        "email": "ed@shop.example", "password": PASSWORD, "csrf_token": csrf_token(client, "/staff/login")})
    assert response.headers["Location"] == "/staff/gaps/stub?q=zwrot+pieni%C4%99dzy"
    assert client.get(response.headers["Location"]).status_code == 200
