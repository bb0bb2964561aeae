"""Human dates on staff pages: today, yesterday, this week's weekday, this year's date, an older date."""

from __future__ import annotations

import datetime as dt

import pytest

from kb_site.dates import day_label, human_text, human_time

NOW = dt.datetime(2026, 12, 3, 16, 30, tzinfo=dt.UTC)  # a Thursday


@pytest.mark.parametrize(("moment", "shown"), [
    (dt.datetime(2026, 12, 3, 14, 2, tzinfo=dt.UTC), "today 14:02"),
    (dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.UTC), "today 00:00"),
    (dt.datetime(2026, 12, 2, 9, 15, tzinfo=dt.UTC), "yesterday 09:15"),
    (dt.datetime(2026, 12, 2, 23, 59, tzinfo=dt.UTC), "yesterday 23:59"),
    (dt.datetime(2026, 11, 30, 14, 2, tzinfo=dt.UTC), "Mon 14:02"),
    (dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC), "Fri 08:00"),  # six days ago: still this week
    (dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC), "26 Nov"),  # a week ago: no weekday (it would be today's)
    (dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC), "1 Jan"),
    (dt.datetime(2025, 12, 3, 14, 2, tzinfo=dt.UTC), "3 Dec 2025"),
    (dt.datetime(2026, 12, 24, 9, 0, tzinfo=dt.UTC), "24 Dec"),  # later (a clock ahead): a date, never "today"
])
def test_human_text(moment, shown):
    assert human_text(moment, NOW) == shown


def test_naive_times_are_utc():
    """SQLite hands back naive times; they are UTC, not the server's local time."""
    assert human_text(dt.datetime(2026, 12, 3, 14, 2), NOW) == "today 14:02"
    html = human_time(dt.datetime(2026, 12, 3, 14, 2), NOW)
    assert html == ('<time datetime="2026-12-03T14:02:00+00:00" title="Thursday 3 December 2026, 14:02:00 UTC">'
                    "today 14:02</time>")


def test_other_zones_are_shown_in_utc():
    """A time in another zone is the same moment in UTC: 00:30 in Paris on the 4th is 23:30 UTC on the 3rd."""
    paris = dt.timezone(dt.timedelta(hours=1))
    assert human_text(dt.datetime(2026, 12, 4, 0, 30, tzinfo=paris), NOW) == "today 23:30"
    assert 'datetime="2026-12-03T23:30:00+00:00"' in human_time(dt.datetime(2026, 12, 4, 0, 30, tzinfo=paris), NOW)


def test_across_the_new_year():
    """On 1 January, New Year's Eve is yesterday, Christmas is a weekday, and last March carries its year."""
    new_year = dt.datetime(2027, 1, 1, 8, 0, tzinfo=dt.UTC)  # a Friday
    assert human_text(dt.datetime(2026, 12, 31, 22, 10, tzinfo=dt.UTC), new_year) == "yesterday 22:10"
    assert human_text(dt.datetime(2026, 12, 28, 10, 0, tzinfo=dt.UTC), new_year) == "Mon 10:00"
    assert human_text(dt.datetime(2026, 12, 20, 10, 0, tzinfo=dt.UTC), new_year) == "20 Dec 2026"
    assert human_text(dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC), new_year) == "3 Mar 2026"
    assert human_text(dt.datetime(2027, 1, 1, 0, 5, tzinfo=dt.UTC), new_year) == "today 00:05"


def test_days_without_a_time():
    assert human_text(dt.date(2026, 12, 3), NOW) == "today"
    assert human_text(dt.date(2026, 12, 2), NOW) == "yesterday"
    assert human_text(dt.date(2026, 11, 30), NOW) == "30 Nov"
    assert human_text(dt.date(2024, 2, 29), NOW) == "29 Feb 2024"
    assert human_time(dt.date(2024, 2, 29), NOW) == '<time datetime="2024-02-29" title="Thursday 29 February 2024">' \
                                                    "29 Feb 2024</time>"


def test_iso_text_and_what_is_no_time():
    """Trails and dashboard rows hold ISO text; "never" and None are shown as they are, escaped."""
    assert ">yesterday 10:00</time>" in human_time("2026-12-02T10:00:00+00:00", NOW)
    assert ">today 10:00</time>" in human_time("2026-12-03T10:00+00:00", NOW)
    assert ">1 Jun</time>" in human_time("2026-06-01", NOW)
    assert human_time("never", NOW) == "never"
    assert human_time("<b>", NOW) == "&lt;b&gt;"
    assert human_time(None, NOW) == ""


def test_the_filter_is_registered_and_escapes(app):
    with app.app_context():
        template = app.jinja_env.from_string("{{ when|human_time }}")
        html = template.render(when=dt.datetime.now(dt.UTC).replace(hour=9, minute=5))
    assert html.startswith('<time datetime="') and ">today 09:05</time>" in html


def test_day_labels():
    assert day_label(dt.date(2026, 11, 30)) == "Mon 30"
    assert day_label(dt.date(2027, 1, 1)) == "Fri 1"
