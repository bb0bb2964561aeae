"""Search that learns from its customers: the queries of successful searches become questions of their article.

A learning pass (``kb learn``, and ``kb serve``'s index watcher every KB_LEARN_INTERVAL minutes) reads the
event log of finished visits once each, and counts who agreed:

- **A visit is over** when nothing happened in it for KB_VISIT_MINUTES: the visitor's next request starts
  a new visit (``visitors.visit``). A pass reads the visits whose last event is older than that (and two
  minutes more, for events still waiting in a process's buffer), each once: ``job_marks`` keeps how far
  it got (see ``learn``).
- **A search succeeded** with article A when a click on A among its results was followed, in the visit, by
  a Yes vote on A; or when that click was the visit's last, with no search, no other click, no contact
  (a ticket, or an article the contact form suggested) and no No vote on A after it.
- **Who agrees** is counted once a visitor: a witness row holds a keyed hash of the visitor id and of the
  client address, and a visitor id or an address already counted for that query and article counts
  nothing. The query (normalised, ``search.learned.normalise``) becomes a learned question of A once
  KB_LEARN_MIN_VISITORS (at least 2) agree. One visitor, however many visits, searches and votes, or
  many visitor ids from one address (a script dropping its cookie), teach nothing alone.
- **Never learned**: visitors and addresses that were ever signed in to /staff/ or went over a rate limit
  (events flagged ``staff`` or ``limited``, as long as those are kept); queries longer than
  KB_LEARN_MAX_WORDS, or with an email address, a web address, a phone, card, account or order number
  (``search.learned.refusal``); queries that are already the article's title or one of its questions;
  articles that are not published; and a question staff removed, for good.
- **Capped**: an article is indexed with at most KB_LEARN_MAX_PER_ARTICLE learned questions, those the
  most visitors agreed on (the rest wait for a place).

Each pass ends by writing ``<instance>/learned.json`` when it changed; ``build_index`` reads it, and the
watcher rebuilds on its change, re-embedding only the articles whose learned questions changed. Witnesses
and questions nobody else agreed with are deleted after KB_RETENTION_DAYS, like the events they came from.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from search import SearchError
from search.learned import normalise, refusal, write_learned
from search.store import IndexStore

from .db import database, delete_rows
from .models import Event, JobMark, LearnedQuestion, LearnedWitness, Ticket, aware, utcnow
from .privacy import client_hash

log = logging.getLogger(__name__)

MARK = "learn"
SETTLE = dt.timedelta(minutes=2)  # events wait up to KB_EVENT_FLUSH_SECONDS in a process before they are written
CHUNK = 5000  # events read a transaction
BATCH = 500  # visits a query
KINDS = ("search", "click", "vote", "deflection")


@dataclass(frozen=True)
class LearnSettings:
    """What a learning pass takes from the configuration."""

    min_visitors: int = 3
    max_per_article: int = 50
    max_words: int = 16
    visit_minutes: float = 30
    retention_days: int = 365
    order_pattern: str = ""
    secret: str = ""  # keys the visitor and address hashes of the witnesses

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LearnSettings:
        """Return the settings from a (coerced) Flask config."""
        return cls(config["LEARN_MIN_VISITORS"], config["LEARN_MAX_PER_ARTICLE"], config["LEARN_MAX_WORDS"],
                   config["VISIT_MINUTES"], config["RETENTION_DAYS"], config["ORDER_NUMBER_PATTERN"],
                   config["SECRET_KEY"])


@dataclass
class LearnReport:
    """What one pass did."""

    visits: int = 0  # finished visits read
    successes: int = 0  # successful searches found in them
    counted: int = 0  # of those, visitors who agreed for the first time
    untrusted: int = 0  # successful searches of staff or rate-limited clients, not counted
    refused: Counter[str] = field(default_factory=Counter)  # successful searches not learnable, by reason
    learned: int = 0  # learned questions in the file after the pass
    written: bool = False  # whether the file changed


@dataclass(frozen=True)
class Success:
    """A search that found its article, in a finished visit."""

    query: str  # as searched
    slug: str
    at: dt.datetime  # when the click happened
    visitor: str
    client: str | None  # the keyed hash of the address searched from


def visit_successes(events: Sequence[Event], contacts: Iterable[dt.datetime] = ()) -> list[Success]:
    """Return the successful searches of one finished visit (its events, and when it opened tickets).

    A click on a search's result succeeded if a Yes vote on that article followed it (the last vote on it
    counts), or if no vote on it did and nothing followed it that says the search failed: another
    search, another click, or the contact form.
    """
    ordered = sorted(events, key=lambda e: (aware(e.created_at), e.id or 0))
    searches = {e.id: e for e in ordered if e.kind == "search"}
    tickets = [aware(t) for t in contacts]
    found = []
    for number, opened in enumerate(ordered):
        search = searches.get(opened.search_id) if opened.kind == "click" and opened.search_id else None
        if search is None or not opened.slug or not search.query:
            continue
        at = aware(opened.created_at)
        later = ordered[number + 1:]
        votes = [e.detail for e in later if e.kind == "vote" and e.slug == opened.slug]
        if votes:
            succeeded = votes[-1] == "yes"
        else:
            succeeded = not any(e.kind in ("search", "click", "deflection") for e in later) and \
                not any(t >= at for t in tickets)
        if succeeded:
            found.append(Success(search.query, opened.slug, at, search.visitor, search.client))
    return found


def published_questions(index_dir: Path) -> dict[str, set[str]] | None:
    """Return each published article's own questions and title, normalised; None when there is no index."""
    try:
        records = IndexStore(index_dir).current().records()
    except (SearchError, OSError, ValueError) as exc:
        log.info("learning without the published articles: %s", exc)
        return None
    return {slug: {normalise(q) for q in (*r["questions"], r["title"])} for slug, r in records.items()}


def learn(sessions: sessionmaker[Session], settings: LearnSettings, known: Mapping[str, set[str]] | None,
          now: dt.datetime | None = None) -> LearnReport:
    """Read the visits that finished since the last pass, and count the visitors whose search succeeded.

    ``known`` is each published article's questions (``published_questions``): queries already among them
    are not learned, nor are clicks on articles not in it. None: no such check (no index yet).

    The event log is read by event id, which the one database hands out in the order events are written
    (the web machines' clocks and a process's buffered events do not matter), a few thousand events a
    transaction so that a first pass over a year of events never holds up the site's own writes. Only
    the visits seen in new events are read, each whole; a visit still going holds the mark at its last
    event, so that the pass after it ended reads it. Counting is idempotent (one witness a visitor), so
    a visit read twice (two passes at once, a pass that died half-way) counts once.
    """
    now = now or utcnow()
    cutoff = now - dt.timedelta(minutes=settings.visit_minutes) - SETTLE  # visits quiet since then are over
    report = LearnReport()
    with sessions() as s:
        flagged = s.execute(select(Event.visitor, Event.client).where(Event.flag.is_not(None)).distinct()).all()
    untrusted = {v for v, _c in flagged} | {c for _v, c in flagged if c}
    before: tuple[dt.datetime, int] | None = None  # the last pass: visits over by then, read up to that event
    position, held = 0, None  # the last event id read; the mark a visit still going holds
    done: set[str] = set()
    while True:
        with sessions() as s, s.begin():
            mark = _hold_mark(s)
            if before is None:
                before, position = (aware(mark.until), mark.read_id), mark.event_id
            rows = s.execute(select(Event.id, Event.visit).where(Event.id > position).order_by(Event.id)
                             .limit(CHUNK)).all()
            if rows:
                position = rows[-1][0]
                visits = sorted({visit for _id, visit in rows} - done)
                done.update(visits)
                for at in range(0, len(visits), BATCH):
                    still = _read_visits(s, visits[at:at + BATCH], cutoff, before, settings, known, untrusted,
                                         report)
                    if still is not None:
                        held = still if held is None else min(held, still)
            mark.event_id = max(mark.event_id, min(position, held) if held is not None else position)
            mark.read_id = max(mark.read_id, position)
            if not rows:
                mark.until = max(aware(mark.until), cutoff)
                break
    with sessions() as s, s.begin():
        _forget_old(s, settings, now)
    return report


def _hold_mark(s: Session) -> JobMark:
    """Return the learning mark, holding it for this transaction: a second pass (another machine) waits."""
    s.execute(update(JobMark).where(JobMark.name == MARK).values(until=JobMark.until))  # the row's write lock
    mark = s.get(JobMark, MARK, populate_existing=True)
    if mark is None:  # the first pass reads what the event log still holds
        mark = JobMark(name=MARK, until=dt.datetime(1970, 1, 1, tzinfo=dt.UTC), event_id=0, read_id=0)
        s.add(mark)
        s.flush()
    return mark


def _read_visits(s: Session, visits: Sequence[str], cutoff: dt.datetime, before: tuple[dt.datetime, int],
                 settings: LearnSettings, known: Mapping[str, set[str]] | None, untrusted: set[str],
                 report: LearnReport) -> int | None:
    """Count the successful searches of these visits that are over and were not read before.

    Return the mark the visits still going hold (just before the last event of the earliest), or None.
    """
    held = None
    finished = []
    for visit, last_id, last_at in s.execute(select(Event.visit, func.max(Event.id), func.max(Event.created_at))
                                             .where(Event.visit.in_(visits)).group_by(Event.visit)):
        if aware(last_at) > cutoff:  # still going: its last event is read again next time, and the visit with it
            held = last_id - 1 if held is None else min(held, last_id - 1)
        elif not (aware(last_at) <= before[0] and last_id <= before[1]):  # over, and not read by the last pass
            finished.append(visit)
    if not finished:
        return held
    events: dict[str, list[Event]] = {}
    for event in s.scalars(select(Event).where(Event.visit.in_(finished), Event.kind.in_(KINDS))):
        events.setdefault(event.visit, []).append(event)
    tickets: dict[str | None, list[dt.datetime]] = {}
    for ticket_visit, opened in s.execute(select(Ticket.visit, Ticket.created_at)
                                          .where(Ticket.visit.in_(finished))):
        tickets.setdefault(ticket_visit, []).append(opened)
    report.visits += len(finished)
    for visit in finished:
        found = visit_successes(events.get(visit, []), tickets.get(visit, []))
        if not found:
            continue
        report.successes += len(found)
        people = {e.visitor for e in events[visit]} | {e.client for e in events[visit] if e.client}
        if people & untrusted:
            report.untrusted += len(found)
            continue
        for success in found:
            _count(s, success, settings, known, report)
    return held


def _count(s: Session, success: Success, settings: LearnSettings, known: Mapping[str, set[str]] | None,
           report: LearnReport) -> None:
    """Count one visitor's successful search, unless it is not learnable or they (or their address) already were."""
    query = normalise(success.query)
    reason = refusal(query, max_words=settings.max_words, order_pattern=settings.order_pattern)
    if reason is None and known is not None:
        if success.slug not in known:
            reason = "not a published article"
        elif query in known[success.slug]:
            reason = "already a question of the article"
    if reason is not None:
        report.refused[reason] += 1
        return
    question = s.scalar(select(LearnedQuestion).where(LearnedQuestion.slug == success.slug,
                                                      LearnedQuestion.query == query))
    if question is None:
        question = LearnedQuestion(slug=success.slug, query=query, visitors=0, first_seen=success.at,
                                   last_seen=success.at)
        s.add(question)
        s.flush()
    if question.removed_at is not None:
        report.refused["removed by staff"] += 1
        return
    question.last_seen = max(aware(question.last_seen), success.at)
    who = client_hash(settings.secret, f"visitor:{success.visitor}") or success.visitor
    address = success.client  # a keyed hash already
    same = LearnedWitness.visitor == who
    seen = s.scalar(select(func.count()).select_from(LearnedWitness).where(
        LearnedWitness.question_id == question.id, or_(same, LearnedWitness.client == address) if address else same))
    if seen:
        return
    s.add(LearnedWitness(question_id=question.id, visitor=who, client=address, seen_at=success.at))
    question.visitors += 1
    report.counted += 1


def _forget_old(s: Session, settings: LearnSettings, now: dt.datetime) -> None:
    """Delete witnesses older than the retention period, and questions nobody else came to agree with."""
    cutoff = now - dt.timedelta(days=settings.retention_days)
    delete_rows(s, delete(LearnedWitness).where(LearnedWitness.seen_at < cutoff))
    stale = select(LearnedQuestion.id).where(LearnedQuestion.visitors < settings.min_visitors,
                                             LearnedQuestion.removed_at.is_(None), LearnedQuestion.last_seen < cutoff)
    delete_rows(s, delete(LearnedWitness).where(LearnedWitness.question_id.in_(stale)))
    delete_rows(s, delete(LearnedQuestion).where(LearnedQuestion.visitors < settings.min_visitors,
                                                 LearnedQuestion.removed_at.is_(None),
                                                 LearnedQuestion.last_seen < cutoff))


# --------------------------------------------------------------------------- what is learned, for the index and staff


@dataclass(frozen=True)
class Learned:
    """A learned question as staff see it."""

    id: int
    slug: str
    query: str
    visitors: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    indexed: bool  # within the article's cap (the rest wait for a place)


def learned(s: Session, settings: LearnSettings, known: Mapping[str, set[str]] | None = None
            ) -> dict[str, list[Learned]]:
    """Return the learned questions of each article, most agreed first (removed ones and candidates left out)."""
    rows = s.scalars(select(LearnedQuestion).where(LearnedQuestion.removed_at.is_(None),
                                                   LearnedQuestion.visitors >= settings.min_visitors)
                     .order_by(LearnedQuestion.slug, LearnedQuestion.visitors.desc(), LearnedQuestion.first_seen,
                               LearnedQuestion.id))
    out: dict[str, list[Learned]] = {}
    for row in rows:
        if known is not None and (row.slug not in known or row.query in known[row.slug]):
            continue  # the article is gone, or its editor made the query one of its questions
        taken = out.setdefault(row.slug, [])
        taken.append(Learned(row.id, row.slug, row.query, row.visitors, aware(row.first_seen), aware(row.last_seen),
                             len(taken) < settings.max_per_article))
    return out


def removed(s: Session, limit: int = 200) -> list[LearnedQuestion]:
    """Return the questions staff removed, latest first."""
    return list(s.scalars(select(LearnedQuestion).where(LearnedQuestion.removed_at.is_not(None))
                          .order_by(LearnedQuestion.removed_at.desc(), LearnedQuestion.id.desc()).limit(limit)))


def remove(s: Session, question_id: int, staff: str) -> LearnedQuestion | None:
    """Remove a learned question for good (it is never learned again); None if there is no such question."""
    question = s.get(LearnedQuestion, question_id)
    if question is not None and question.removed_at is None:
        question.removed_at = utcnow()
        question.removed_by = staff
    return question


def export(sessions: sessionmaker[Session], settings: LearnSettings, path: Path,
           known: Mapping[str, set[str]] | None = None) -> tuple[int, bool]:
    """Write the learned questions the index is to hold (each article's capped share) to ``path``.

    Return how many there are and whether the file changed (it is not touched otherwise).
    """
    with sessions() as s:
        found = learned(s, settings, known)
    questions = {slug: [q.query for q in rows if q.indexed] for slug, rows in found.items()}
    return sum(len(q) for q in questions.values()), write_learned(path, questions)


def run_pass(app: Flask, now: dt.datetime | None = None) -> LearnReport:
    """Learn from the visits finished since the last pass and write the learned-questions file."""
    from .search_service import service

    svc = service()
    settings = LearnSettings.from_config(app.config)
    known = published_questions(svc.index_dir)
    report = learn(database().sessions, settings, known, now)
    report.learned, report.written = export(database().sessions, settings, svc.learned_path, known)
    return report


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@click.command("learn")
@with_appcontext
def learn_command() -> None:
    """Learn questions from the successful searches of finished visits, and write the learned-questions file."""
    from flask import current_app

    from .search_service import service

    report = run_pass(current_app._get_current_object())  # type: ignore[attr-defined]
    refused = ", ".join(f"{n} {reason}" for reason, n in report.refused.most_common())
    click.echo(f"Read {_n(report.visits, 'finished visit', 'finished visits')}: "
               f"{_n(report.successes, 'successful search', 'successful searches')}, "
               f"{_n(report.counted, 'visitor', 'visitors')} agreeing for the first time, "
               f"{report.untrusted} from staff or rate-limited clients (not counted)"
               + (f"; not learnable: {refused}" if refused else "") + ".")
    where = service().learned_path
    state = "changed: the index watcher (or 'kb index') takes it up" if report.written else "unchanged"
    click.echo(f"{_n(report.learned, 'learned question', 'learned questions')} in {where} ({state}).")


def init_app(app: Flask) -> None:
    """Add ``kb learn``."""
    app.cli.add_command(learn_command)
