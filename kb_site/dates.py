"""Dates as people say them on staff pages: "today 14:02", "yesterday 09:15", "Mon 14:02", "3 Dec", "3 Dec 2025".

Every time is shown in UTC, the zone it is stored in, and the full date and time is in the ``<time>`` element's
``title`` (and its ISO form in ``datetime``). English names are spelled here rather than taken from the
process's locale, so a server's locale never changes a page.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask
from markupsafe import Markup, escape

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LONG_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")

When = dt.datetime | dt.date | str | None


def utc(moment: dt.datetime) -> dt.datetime:
    """Return a time in UTC; a naive one (SQLite hands them back so) is taken to be UTC already."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _read(value: When) -> dt.datetime | dt.date | None:
    """Return a datetime or a date from a value or its ISO text (trails and CSV rows keep times as text)."""
    if value is None or isinstance(value, dt.datetime | dt.date):
        return value
    try:
        return dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def day_label(day: dt.date | str, *, month: bool = False) -> str:
    """Return a day (or its ISO text) as a chart labels it: "Mon 30", or with its month "Mon 30 Nov"."""
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return f"{DAYS[day.weekday()]} {day.day}" + (f" {MONTHS[day.month - 1]}" if month else "")


def human_text(value: dt.datetime | dt.date, now: dt.datetime | None = None) -> str:
    """Return a time (or a day) relative to ``now``: today, yesterday, a weekday this week, a date this year, a date."""
    today = utc(now or dt.datetime.now(dt.UTC)).date()
    moment = utc(value) if isinstance(value, dt.datetime) else None
    day = moment.date() if moment else value
    assert isinstance(day, dt.date)
    clock = f" {moment:%H:%M}" if moment else ""
    ago = (today - day).days
    if ago == 0:
        return f"today{clock}"
    if ago == 1:
        return f"yesterday{clock}"
    if 1 < ago < 7 and moment:
        return f"{DAYS[day.weekday()]}{clock}"
    if day.year == today.year:
        return f"{day.day} {MONTHS[day.month - 1]}"
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def full_text(value: dt.datetime | dt.date) -> str:
    """Return the whole date (and time, in UTC): "Thursday 3 December 2026, 14:02:07 UTC"."""
    day = utc(value).date() if isinstance(value, dt.datetime) else value
    text = f"{LONG_DAYS[day.weekday()]} {day.day} {LONG_MONTHS[day.month - 1]} {day.year}"
    return f"{text}, {utc(value):%H:%M:%S} UTC" if isinstance(value, dt.datetime) else text


def human_time(value: When, now: dt.datetime | None = None) -> Markup:
    """Return a ``<time>`` element with the human date, its ISO form and the full date in its title.

    A value that is no time at all (None, or text such as "never") is shown as it is.
    """
    found = _read(value)
    if found is None:
        return Markup("") if value is None else escape(value)
    iso = utc(found).isoformat() if isinstance(found, dt.datetime) else found.isoformat()
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, full_text(found), human_text(found, now))


def init_app(app: Flask) -> None:
    """Make ``human_time`` a filter of every template."""
    app.add_template_filter(human_time, "human_time")
