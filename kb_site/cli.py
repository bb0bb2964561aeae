"""The ``kb`` command: thin wrappers over the search library, ``kb bench``, ``kb serve`` and ``kb purge``.

The application adds the commands of its resources (``kb db``, ``kb worker``, ``kb tickets``, ``kb staff``,
``kb link``) in their ``init_app``; nothing imports this module but the ``kb`` entry point.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click
from flask import Flask
from flask.cli import FlaskGroup, NoAppException, with_appcontext

from search import BuildReport, SearchError, build_index
from search.check import check_articles
from search.engine import MODES, SearchEngine, SearchResults, hit_dict
from search.evaluate import METRICS, answer_report, evaluate, gap_report, load_queries
from search.evaluate import withhold as withhold_articles
from search.learned import pairs_of, part_of
from search.learned import select as select_learned
from search.tuning import explain_terms

from . import create_app
from .config import ConfigError, search_config
from .db import database
from .http_bench import bench_command
from .privacy import purge
from .search_service import service
from .serve import serve_command

_MARK_RE = re.compile(r"</?mark>")


class KbGroup(FlaskGroup):
    """Flask's command group, turning the search library's errors into click's one-line error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SearchError as exc:  # a broken article, no index, a bad query or query file: one line, exit 1
            raise click.ClickException(str(exc)) from None


class Progress:
    """A click progress bar a stage, on standard error, for the library's progress callbacks."""

    LABELS = {"read": "Reading articles", "analyse": "Indexing words", "embed": "Embedding passages",
              "graph": "Linking passages"}

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: Any = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total <= 0:
            return
        if stage != self.stage:
            self.close()
            self.stage, self.done = stage, 0
            self.bar = click.progressbar(length=total, label=self.LABELS.get(stage, stage), file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def build(articles_dir: Path, index_dir: Path, **options: Any) -> BuildReport:
    """Build an index with a progress bar, naming every broken file and what is served instead."""
    progress = Progress()
    try:
        report = build_index(articles_dir, index_dir, service().embedder(), progress=progress, **options)
    finally:
        progress.close()
    for error in report.errors:  # each says what is served instead: the last good version, or nothing
        click.echo(str(error), err=True)
    return report


@click.command("index")
@click.option("--articles", "articles_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of articles (default: KB_ARTICLES_DIR).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="Index folder to write (default: KB_INDEX_DIR, or <instance>/index).")
@click.option("--force", is_flag=True, help="Rebuild everything instead of updating what changed.")
@with_appcontext
def index_command(articles_dir: Path | None, output: Path | None, force: bool) -> None:
    """Build or update the search index from the articles folder (with the site's learned questions)."""
    svc = service()
    report = build(articles_dir or svc.articles_dir, output or svc.index_dir, force=force, learned=svc.learned_path)
    if report.unchanged:
        click.echo(f"Index {report.generation} is up to date: {report.articles} articles, nothing to do "
                   f"({report.seconds:.2f} s).")
    else:
        click.echo(f"Published index {report.generation}: {report.articles} articles ({report.added} added, "
                   f"{report.changed} changed, {report.removed} removed), {report.embedded} passages "
                   f"embedded, in {report.seconds:.1f} s.")
    if not report.dense:
        click.echo("Semantic search is off for this index (no embedding model): lexical search only.", err=True)


@click.command("search")
@click.argument("query")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--category", help="Only articles of this category.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--explain", is_flag=True, help="Also show the terms searched with their weights (typed, corrected, "
                                               "synonyms), the pin applied, and each hit's scores.")
@with_appcontext
def search_command(query: str, limit: int, category: str | None, mode: str, as_json: bool, explain: bool) -> None:
    """Search the index and print the ranked articles."""
    engine = service().engine()
    engine.wait_for_model = True  # a command has no visitor to keep waiting: load the model, then answer
    results = engine.search(query, limit=limit, category=category, mode=mode)
    explained = _explain(engine, results) if explain else None
    if as_json:
        click.echo(json.dumps({
            "query": results.query, "mode": results.mode, "total": results.total,
            "suggestion": results.suggestion, "fallback": results.fallback,
            "answer": results.answer.record() if results.answer else None,
            "hits": [hit_dict(h) for h in results.hits], "nearest": [hit_dict(h) for h in results.nearest],
            **({"explain": explained} if explained else {}),
        }, indent=1))
        return
    if results.fallback:
        click.echo("Semantic search is unavailable; these are lexical results only.", err=True)
    if results.suggestion:
        click.echo(f"Showing results for: {results.suggestion}")
    click.echo(f"{results.total} matching articles ({results.took_ms:.1f} ms)")
    if explained:
        _echo_explanation(explained)
    if results.answer:
        click.echo(f"\nAnswer ({results.answer.title}" + (f" › {results.answer.section}" if results.answer.section
                                                          else "") + f", {results.answer.url}):")
        click.echo(f"    {results.answer.text}")
    if results.nearest:
        click.echo("No article answers this with confidence. These might help:")
    for rank, hit in enumerate(results.hits or results.nearest, 1):
        dense = f"{hit.dense_score:.3f}" if hit.dense_score is not None else "-"
        click.echo(f"\n{rank:2}. {click.style(hit.title, bold=True)}  {hit.url}")
        if explained and hit.slug == results.pinned and rank == 1:
            click.echo(f"    pinned first by _search.yml for \"{explained['pin']['query']}\"")
        if explained:
            click.echo(f"    lexical {hit.lexical_score:.3f}  dense {dense}  fused {hit.score:.3f}"
                       + (f"  § {hit.section}" if hit.section else ""))
        else:
            click.echo(f"    score {hit.score:.3f}  (bm25f {hit.lexical_score:.3f}, semantic {dense})"
                       + (f"  § {hit.section}" if hit.section else ""))
        snippet = html.unescape(_MARK_RE.sub(lambda m: "]" if m.group(0) == "</mark>" else "[", hit.snippet))
        click.echo(f"    {snippet}")


def _explain(engine: SearchEngine, results: SearchResults) -> dict[str, Any]:
    """Return how the results came about: the terms searched, the pin, each hit's scores (JSON-ready)."""
    terms = [{"term": n.term, "weight": round(n.weight, 4), "kind": n.kind, "from": n.source, "word": n.word}
             for n in explain_terms(results.parsed)] if results.parsed is not None else []
    pin = engine.tuning.pin_for(results.query)
    pinned = None
    if pin is not None:
        reason = None
        if results.pinned is None:
            if not pin.applies():
                reason = f"it ended on {pin.until}"
            elif pin.slug not in engine.slugs():
                reason = f"no article '{pin.slug}' is in the index"
            else:
                reason = "the category filter leaves the article out"
        pinned = {"query": pin.query, "article": pin.slug, "until": pin.until.isoformat() if pin.until else None,
                  "applied": results.pinned is not None, "reason": reason}
    hits = [{"slug": h.slug, "lexical": h.lexical_score, "dense": h.dense_score, "fused": h.score,
             "pinned": rank == 0 and h.slug == results.pinned}
            for rank, h in enumerate(results.hits or results.nearest)]  # those shown
    return {"terms": terms, "pin": pinned, "hits": hits}


def _echo_explanation(explained: dict[str, Any]) -> None:
    """Print the terms searched and the pin, before the hits."""
    click.echo("Terms searched (index term, weight, where it comes from):")
    if not explained["terms"]:
        click.echo("  none: no word of the query is in the index")
    width = max((len(t["term"]) for t in explained["terms"]), default=0)
    for term in explained["terms"]:
        origin = {"typed": f'typed "{term["from"]}"',
                  "corrected": f'corrected "{term["from"]}" to "{term["word"]}"',
                  "synonym": f'synonym of "{term["from"]}" in _search.yml ("{term["word"]}")'}[term["kind"]]
        click.echo(f"  {term['term']:<{width}}  {term['weight']:.2f}  {origin}")
    pin = explained["pin"]
    if pin is None:
        click.echo("Pin: none for this query")
    else:
        until = f" until {pin['until']}" if pin["until"] else ""
        outcome = "applied" if pin["applied"] else f"not applied: {pin['reason']}"
        click.echo(f"Pin: \"{pin['query']}\" -> {pin['article']}{until}, {outcome}")


@click.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def check_command(directory: Path | None) -> None:
    """Lint articles: front-matter, slugs, aliases, related articles, links and anchors."""
    root = directory or service().articles_dir
    problems = check_articles(root)
    for problem in problems:
        click.echo(str(problem))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    click.echo(f"{root}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}",
               err=True)
    if errors:
        sys.exit(1)


class Part(click.ParamType):
    """``K/N``: part K of a query file cut into N stable parts (``search.learned.part_of``)."""

    name = "K/N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        k, _, n = str(value).partition("/")
        if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n) and int(n) >= 2):
            self.fail(f"{value!r} is not K/N with 1 <= K <= N and N >= 2 (for example 1/2)", param, ctx)
        return int(k), int(n)


@click.command("eval")
@click.option("--articles", "articles_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of articles (default: KB_ARTICLES_DIR).")
@click.option("--queries", "queries_file", required=True, type=click.Path(dir_okay=False, exists=True,
              path_type=Path), help='JSON lines: {"query": "...", "relevant": ["slug", ...]}.')
@click.option("--withhold", default=0.2, show_default=True, type=click.FloatRange(0, 0.9),
              help="Also search an index without this share of the articles (the same ones each run) and "
                   "measure the shown result sets: answerable queries should show a relevant article, "
                   "unanswerable ones nothing. 0: skip.")
@click.option("--part", "query_part", type=Part(),
              help="Evaluate only part K of N of the queries (a split by each query's text: the same in every run "
                   "and file).")
@click.option("--learn-from", "learn_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Queries in the --queries format, each taken as a successful search of its first relevant "
                   "article: indexed as learned questions (the site's rules and KB_LEARN_MAX_PER_ARTICLE cap).")
@click.option("--learn-part", type=Part(), help="Learn only from part K of N of --learn-from.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--min-ndcg", type=click.FloatRange(0, 1), help="Fail when hybrid nDCG@10 is below this.")
@with_appcontext
def eval_command(articles_dir: Path | None, queries_file: Path, withhold: float, query_part: tuple[int, int] | None,
                 learn_file: Path | None, learn_part: tuple[int, int] | None, as_json: bool,
                 min_ndcg: float | None) -> None:
    """Measure lexical, dense and hybrid ranking quality on labelled queries, and honest result sets."""
    svc = service()
    queries = load_queries(queries_file)
    if query_part:
        queries = [q for q in queries if part_of(q.query, query_part[1]) == query_part[0]]
    learned = _learned_for_eval(learn_file, learn_part, svc.config) if learn_file else None
    if learned is not None and not as_json:
        click.echo(f"{sum(map(len, learned.values()))} learned questions from {learn_file}", err=True)
    root = articles_dir or svc.articles_dir
    cache = svc.index_dir / "embeddings.sqlite"
    gaps = None
    with tempfile.TemporaryDirectory(prefix="kb-eval-") as tmp:
        report = build(root, Path(tmp) / "all", cache_path=cache, learned=learned)
        engine = SearchEngine(Path(tmp) / "all", svc.embedder(), search_config(svc.config))
        known = set(engine.slugs())
        for query in queries:
            for slug in sorted(query.relevant - known):
                click.echo(f"warning: query {query.query!r} names no article '{slug}'", err=True)
        modes = [m for m in ("lexical", "dense", "hybrid") if m == "lexical" or report.dense]

        def ranking(mode: str) -> Callable[[str], list[str]]:
            # The ranking itself: every candidate in order, whether or not it would be shown as a result.
            return lambda query: [h.slug for h in engine.search(query, limit=10, mode=mode, honest=False).hits]

        scores = {mode: evaluate(ranking(mode), queries) for mode in modes}

        def answer(query: str) -> str | None:
            found = engine.search(query, limit=10).answer
            return f"{found.slug}#{found.anchor}" if found else None

        answered = answer_report(answer, queries)
        if withhold:
            withheld_articles = withhold_articles(root, Path(tmp) / "articles", withhold)
            build(Path(tmp) / "articles", Path(tmp) / "part", cache_path=cache, learned=learned)
            part = SearchEngine(Path(tmp) / "part", svc.embedder(), search_config(svc.config))
            gaps = {"withheld": len(withheld_articles), **gap_report(
                lambda q: [h.slug for h in part.search(q, limit=100).hits], queries, set(part.slugs()))}
    if as_json:
        click.echo(json.dumps({"articles": report.articles, "queries": len(queries), "modes": scores,
                               "answers": answered, **({"gaps": gaps} if gaps else {}),
                               **({"learned": sum(map(len, learned.values()))} if learned is not None else {})}))
    else:
        click.echo(f"{report.articles} articles, {len(queries)} queries\n")
        click.echo("mode     " + "".join(f"{m:>11}" for m in METRICS))
        for mode, values in scores.items():
            click.echo(f"{mode:<9}" + "".join(f"{values[m]:>11.4f}" for m in METRICS))
        click.echo(f"\nanswer on top: shown for {answered['answer_coverage']} of the queries, right in "
                   f"{answered['answer_precision']} of those")
        if gaps:
            click.echo(f"\nwithout {gaps['withheld']} articles: {gaps['answerable']} answerable queries, "
                       f"{gaps['answerable_shown']} with a relevant result shown; {gaps['unanswerable']} "
                       f"unanswerable, {gaps['unanswerable_empty']} with no result shown")
    if min_ndcg is not None:
        hybrid = scores.get("hybrid", scores["lexical"])["ndcg@10"]
        if hybrid < min_ndcg:
            click.echo(f"hybrid nDCG@10 {hybrid:.4f} is below --min-ndcg {min_ndcg}", err=True)
            sys.exit(1)


def _learned_for_eval(path: Path, part: tuple[int, int] | None, config: Any) -> dict[str, tuple[str, ...]]:
    """Return the learned questions of a query file (or of one part of it), as the site would learn them."""
    pairs = [p for p in pairs_of(path) if part is None or part_of(p[0], part[1]) == part[0]]
    return select_learned(pairs, max_per_article=config["LEARN_MAX_PER_ARTICLE"],
                          max_words=config["LEARN_MAX_WORDS"], order_pattern=config["ORDER_NUMBER_PATTERN"])


@click.command("purge")
@click.option("--days", type=click.IntRange(1), help="Keep this many days (default: KB_RETENTION_DAYS).")
@with_appcontext
def purge_command(days: int | None) -> None:
    """Delete events older than the retention period (the delivery worker does this daily)."""
    keep: int = days or service().config["RETENTION_DAYS"]
    removed = purge(database().sessions, keep)
    click.echo(f"Removed {removed} event{'s' * (removed != 1)} older than {keep} days.")


class Refused(NoAppException):
    """A configuration the site will not start with: one line and exit code 1, under ``kb --help`` too.

    Flask lists a failing app's commands with a traceback unless the error is its ``NoAppException``.
    """

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.ClickException.show(self, file)  # the message alone, without the usage lines


def _make_app() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:  # a bad or unsafe setting is a one-line refusal, not a traceback
        raise Refused(str(exc)) from None


# The application adds kb db, worker, tickets, staff and link (each resource's init_app); these are kb's own.
kb = KbGroup(name="kb", create_app=_make_app, add_version_option=False,
             commands=[index_command, search_command, check_command, eval_command, bench_command, serve_command,
                       purge_command],
             help="Run and manage the knowledge base: serve the site, index articles, search, check, "
                  "evaluate, benchmark, migrate the database.")


def main() -> None:
    """Run the kb command."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    kb.main(prog_name="kb")


if __name__ == "__main__":
    main()
