"""The staff area under generated input: every route, every role, odd paths and parameters; never a server error.

Like the public API's schemathesis test (tests/test_openapi.py), but the staff pages have no OpenAPI
description, so the routes come from the application's own URL map and hypothesis generates the rest:
path arguments, query strings and form fields full of arbitrary Unicode, huge and malformed integers,
control characters, line breaks and raw percent-encodings. Every POST carries the client's valid CSRF
token, so it reaches the view. Nothing may answer 5xx (a 503 from a database error counts) or show a trace.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kb_site.db import database
from kb_site.models import Outbox
from kb_site.staff import add_staff
from tests.conftest import csrf_token
from tests.test_staff import PASSWORD, seed, ticket

ROLES = ("anonymous", "editor", "support", "admin")
QUERY_KEYS = ("page", "days", "table", "q", "status", "topic", "delivery", "download", "next", "expired")
FORM_KEYS = ("status", "email", "password", "current_password", "new_password", "confirm")
NASTY = ("", "0", "-1", "1e3", "\uff11", " 1", "+1", "9223372036854775808", "18446744073709551616", "10" * 30,
         "7", "30", "90", "top_queries", "searches_per_day", "open", "solved", "dead", "returns", "1",
         "/staff/tickets/%0A", "/staff/tickets/\n", "//evil.example", "/\\evil", "\x00", "\r\n", "\u2028",
         "\u2029", "\x85", "\ufeff", "\u202e", "%00", "%0A", "%FF", "%", "zwrot pieniędzy", "返品", "=1+1",
         "../../etc/passwd", "<script>alert(1)</script>", "'; DROP TABLE tickets; --", "x" * 3000)

SWEEP = ("\x00", "\u2028", "9223372036854775808", "-1", "\r\n", "%FF", "zwrot pieniędzy", "//evil.example",
         "x" * 3000)
# Values: arbitrary Unicode, control characters, huge integers, and the known troublemakers.
values = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=10),  # C0 and C1 controls, DEL
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(NASTY),
)
# A raw query-string piece, sent as is: percent-escapes that decode to anything (invalid UTF-8 included).
raw_escapes = st.lists(st.integers(0, 255).map(lambda b: f"%{b:02X}"), max_size=6).map("".join)


def staff_rules(app) -> list[tuple[str, str, tuple[str, ...]]]:
    """Every staff route as (method, rule, argument names), from the URL map: a new route is fuzzed too."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/staff"):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                routes.append((method, rule.rule, tuple(sorted(rule.arguments))))
    return routes


def url_of(rule: str, arguments: dict[str, str]) -> str:
    for name, value in arguments.items():
        rule = rule.replace(f"<{name}>", quote(value, safe=""))
    return rule


class Staff:
    """One signed-in (or anonymous) client per role, signed in again after a fuzzed sign-out."""

    def __init__(self, app):
        self.app = app
        self.clients = {}
        for role in ROLES:
            if role != "anonymous":
                with app.app_context(), database().session() as s:
                    add_staff(s, f"{role}@shop.example", role, PASSWORD)
            self.clients[role] = app.test_client()
            self.sign_in(role)

    def sign_in(self, role: str) -> None:
        client = self.clients[role]
        token = csrf_token(client, "/staff/login")
        if role != "anonymous":
            response = client.post("/staff/login", data={"email": f"{role}@shop.example", "password": PASSWORD,
                                                         "csrf_token": token})
            assert response.status_code == 302
            token = csrf_token(client, "/staff/links")
        self.tokens = {**getattr(self, "tokens", {}), role: token}

    def request(self, role: str, method: str, url: str, form: dict[str, str]):
        client = self.clients[role]
        data = {**form, "csrf_token": self.tokens[role]} if method == "POST" else None
        response = client.open(url, method=method, data=data)
        body = response.get_data(as_text=True)
        assert response.status_code < 500, (role, method, url, form, response.status_code, body[:500])
        assert "Traceback" not in body and 'File "' not in body, (role, method, url)
        if role != "anonymous" and method == "POST" and url.startswith("/staff/logout") and \
                response.status_code == 302:
            self.sign_in(role)  # the fuzzed request signed this client out (sign-out is a staff route too)
        return response


def test_no_staff_route_fails_on_any_input(any_db_site):
    """Every staff route x method x role, with fixed and generated path, query and form values: no 5xx."""
    seed(any_db_site)
    reference = ticket(any_db_site).reference
    dead = ticket(any_db_site, backend="webhook")
    with any_db_site.app_context(), database().session() as s:
        s.scalar(select(Outbox).where(Outbox.ticket_id == dead.id)).state = "dead"
    staff = Staff(any_db_site)
    rules = staff_rules(any_db_site)
    assert len(rules) >= 12 and {r[1] for r in rules} >= {"/staff/", "/staff/login", "/staff/tickets/<reference>"}

    # A sweep: each route, method and role with real arguments, then with one value of each kind of trouble
    # everywhere (fewer on the routes that check a password: scrypt is slow on purpose).
    for method, rule, names in rules:
        slow = method == "POST" and rule in ("/staff/login", "/staff/logout", "/staff/password")
        for role in ROLES:
            staff.request(role, method, url_of(rule, dict.fromkeys(names, reference)), {"status": "pending"})
            for value in SWEEP[:2] if slow else SWEEP:
                url = url_of(rule, dict.fromkeys(names, value)) + "?" + urlencode(dict.fromkeys(QUERY_KEYS, value))
                staff.request(role, method, url, dict.fromkeys(FORM_KEYS, value))
    for known in ("/staff/gaps/stub?q=zwrot+pieni%C4%99dzy&download=1", "/staff/tickets?page=9223372036854775808",
                  f"/staff/tickets/{dead.reference}"):
        staff.request("admin", "GET", known, {})
    staff.request("anonymous", "POST", "/staff/login?next=/staff/tickets/%0A", {"email": "admin@shop.example",
                                                                                "password": PASSWORD})

    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(route=st.sampled_from(rules), role=st.sampled_from(ROLES), data=st.data())
    def fuzz(route, role, data):
        method, rule, names = route
        arguments = {name: data.draw(st.one_of(values, st.just(reference)), label=name) for name in names}
        query = data.draw(st.dictionaries(st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=5)), values,
                                          max_size=4), label="query")
        raw = data.draw(st.one_of(st.just(""), st.tuples(st.sampled_from(QUERY_KEYS), raw_escapes).map(
            lambda kv: f"&{kv[0]}={kv[1]}")), label="raw")
        form = data.draw(st.dictionaries(st.sampled_from(FORM_KEYS), values, max_size=4), label="form")
        staff.request(role, method, f"{url_of(rule, arguments)}?{urlencode(query)}{raw}", form)

    fuzz()
