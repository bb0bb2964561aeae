"""The kb command: index, search, eval and bench as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CORPUS

ROOT = Path(__file__).parent.parent


def test_index_then_search_json(runner):
    """kb index builds with a progress report; kb search --json prints ranked hits with scores."""
    result = runner.invoke(args=["index"])
    assert result.exit_code == 0, result.output
    assert "Published index gen-000001: 12 articles" in result.output
    again = runner.invoke(args=["index"])
    assert "up to date" in again.output
    result = runner.invoke(args=["search", "refund gift card", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["mode"] == "hybrid" and data["total"] >= 1
    hit = data["hits"][0]
    assert hit["slug"] == "refund-timescales" and hit["url"].startswith("/articles/refund-timescales")
    assert {"score", "lexical_score", "dense_score", "snippet", "anchor"} <= hit.keys()


def test_search_text_output_marks_terms_and_suggests(runner):
    """The plain output shows the corrected query, titles, URLs and bracketed matches."""
    runner.invoke(args=["index"])
    result = runner.invoke(args=["search", "refnud", "--mode", "lexical"])
    assert result.exit_code == 0
    assert "Showing results for: refund" in result.output
    assert "/articles/refund-timescales#" in result.output and "[refund]" in result.output


def test_search_waits_for_the_model_instead_of_answering_by_words(bare_app):
    """The site answers lexically while its model loads; kb search loads the model first, then searches."""
    from tests.fakes import HashingEmbedder

    class Unloaded(HashingEmbedder):  # a model that is loaded on first use, as the real ones are
        def __init__(self) -> None:
            super().__init__()
            self.ready = False

        @property
        def loaded(self) -> bool:
            return self.ready

        def load(self) -> None:
            self.ready = True

    bare_app.config["EMBEDDER"] = Unloaded()
    runner = bare_app.test_cli_runner()
    runner.invoke(args=["index"])
    result = runner.invoke(args=["search", "refund", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fallback"] is False


def test_search_without_index_says_what_to_do(runner):
    """Searching before indexing is a one-line error, not a traceback."""
    result = runner.invoke(args=["search", "refund"])
    assert result.exit_code == 1
    assert "run 'kb index' first" in result.output and "Traceback" not in result.output


def test_index_reports_broken_articles_and_indexes_the_rest(runner, bare_app):
    """A broken article is named with file and line, and left out."""
    (Path(bare_app.config["ARTICLES_DIR"]) / "orders/bad.md").write_text("---\ntitle: [oops\n---\n")
    result = runner.invoke(args=["index"])
    assert result.exit_code == 0
    assert "bad.md:3: invalid YAML" in result.output and "12 articles" in result.output


def test_index_output_folder(runner, tmp_path):
    """kb index --output writes the index where asked."""
    result = runner.invoke(args=["index", "--output", str(tmp_path / "shared-index")])
    assert result.exit_code == 0
    assert (tmp_path / "shared-index" / "CURRENT").exists()


def test_eval_json_has_exactly_the_documented_shape(runner, tmp_path):
    """kb eval --json prints one object with articles, queries, every metric for every mode, the answers and
    the gaps."""
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "refund", "relevant": ["refund-timescales"]}\n'
                       '{"query": "tracking number", "relevant": ["track-your-order"]}\n')
    result = runner.invoke(args=["eval", "--articles", str(CORPUS), "--queries", str(queries), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"articles", "queries", "modes", "answers", "gaps"}
    assert data["articles"] == 12 and data["queries"] == 2
    assert set(data["answers"]) == {"answer_coverage", "answer_precision"}
    assert set(data["gaps"]) == {"withheld", "answerable", "unanswerable", "answerable_shown", "unanswerable_empty"}
    assert data["gaps"]["withheld"] == 3 and data["gaps"]["answerable"] + data["gaps"]["unanswerable"] == 2
    assert set(data["modes"]) == {"lexical", "dense", "hybrid"}
    for metrics in data["modes"].values():
        assert set(metrics) == {"ndcg@10", "mrr@10", "recall@5", "recall@10", "hit@1"}
    assert data["modes"]["lexical"]["hit@1"] == 1.0


def test_withheld_articles_are_the_same_each_run_and_make_queries_unanswerable(tmp_path):
    """withhold leaves out the same share of files every time; gap_report counts a query whose relevant
    articles are all withheld as unanswerable, and checks what each kind of query shows."""
    from search.evaluate import LabelledQuery, gap_report, withhold

    first = withhold(CORPUS, tmp_path / "a", 0.25)
    again = withhold(CORPUS, tmp_path / "b", 0.25)
    assert first == again and len(first) == 3
    assert {p.name for p in (tmp_path / "a").rglob("*.md")} == {p.name for p in (tmp_path / "b").rglob("*.md")}
    assert len(list((tmp_path / "a").rglob("*.md"))) == len(list(CORPUS.rglob("*.md"))) - 3
    bundled = Path(__file__).parent.parent / "articles"
    withhold(bundled, tmp_path / "c", 0.2)  # category files stay, whichever articles go
    assert len(list((tmp_path / "c").rglob("_category.yml"))) == len(list(bundled.rglob("_category.yml"))) > 0
    gone = sorted(first)[0]
    queries = [LabelledQuery("a", frozenset({"kept"})), LabelledQuery("b", frozenset({"kept", gone})),
               LabelledQuery("c", frozenset({gone})), LabelledQuery("d", frozenset({gone}))]
    shown = {"a": ["kept"], "b": ["other"], "c": [], "d": ["kept"]}
    assert gap_report(lambda q: shown[q], queries, {"kept", "other"}) == {
        "answerable": 2, "unanswerable": 2, "answerable_shown": 0.5, "unanswerable_empty": 0.5}


def test_answer_report_counts_shown_answers_and_right_ones():
    """Coverage is answers shown over queries; precision is right ones over shown, by section when labelled."""
    from search.evaluate import LabelledQuery, answer_report

    queries = [LabelledQuery("a", frozenset({"x"})), LabelledQuery("b", frozenset({"x"}), frozenset({"x#fees"})),
               LabelledQuery("c", frozenset({"y"})), LabelledQuery("d", frozenset({"y"}))]
    shown = {"a": "x#intro", "b": "x#intro", "c": "y#", "d": None}
    assert answer_report(shown.get, queries) == {"answer_coverage": 0.75, "answer_precision": round(2 / 3, 4)}
    assert answer_report(lambda q: None, queries) == {"answer_coverage": 0.0, "answer_precision": None}


def test_query_file_sections_must_name_slug_and_anchor(tmp_path):
    from search.evaluate import QueryFileError, load_queries

    good = tmp_path / "good.jsonl"
    good.write_text('{"query": "q", "relevant": ["x"], "sections": ["x#fees", "x#"]}\n')
    assert load_queries(good)[0].sections == {"x#fees", "x#"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "relevant": ["x"], "sections": ["fees"]}\n')
    with pytest.raises(QueryFileError, match="bad.jsonl:1"):
        load_queries(bad)


def test_withhold_takes_a_relative_folder(tmp_path, monkeypatch):
    """`kb eval --articles articles` names the folder relatively: the withheld articles are still read."""
    from search.evaluate import withhold

    monkeypatch.chdir(CORPUS.parent)
    assert withhold(Path(CORPUS.name), tmp_path / "a", 0.25) == withhold(CORPUS, tmp_path / "b", 0.25)


def test_eval_min_ndcg_fails_below_threshold(runner, tmp_path):
    """--min-ndcg exits non-zero when hybrid nDCG@10 is too low, and zero when it is met."""
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "refund", "relevant": ["sizing-guide"]}\n')
    failed = runner.invoke(args=["eval", "--articles", str(CORPUS), "--queries", str(queries),
                                 "--min-ndcg", "0.9"])
    assert failed.exit_code == 1 and "below --min-ndcg" in failed.output
    passed = runner.invoke(args=["eval", "--articles", str(CORPUS), "--queries", str(queries),
                                 "--min-ndcg", "0"])
    assert passed.exit_code == 0


def test_eval_bad_query_file_names_the_line(runner, tmp_path):
    """A malformed query file is reported with file and line."""
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "refund", "relevant": ["x"]}\n{"query": 3}\n')
    result = runner.invoke(args=["eval", "--articles", str(CORPUS), "--queries", str(queries)])
    assert result.exit_code == 1 and "q.jsonl:2:" in result.output


def test_bench_json_has_exactly_the_documented_shape(runner):
    """kb bench --json prints one object with build, update, no-op, memory and latency figures."""
    result = runner.invoke(args=["bench", "--articles", "40", "--queries", "20", "--json",
                                 "--seed-articles", str(ROOT / "articles")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"articles", "build_seconds", "update_one_seconds", "noop_reindex_seconds", "peak_rss_mb",
            "latency_ms"} <= set(data)
    assert data["articles"] == 40 and data["noop_embedded"] == 0 and data["update_one_embedded"] >= 1
    assert set(data["latency_ms"]) == {"lexical", "dense", "hybrid", "hybrid_ranking"}
    for cut in data["latency_ms"].values():
        assert 0 < cut["p50"] <= cut["p95"] <= cut["p99"]


def test_the_factory_does_not_import_the_command_line(tmp_path):
    """create_app needs no command line module: kb_site.cli is only the kb entry point."""
    import subprocess
    import sys

    code = "import sys, kb_site; kb_site.create_app({'INSTANCE_DIR': sys.argv[1]}); print('kb_site.cli' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                            text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


def test_library_errors_are_one_line_messages_in_every_command():
    """The kb group turns a search library error into click's error line and exit code 1, and no other error."""
    import click
    from click.testing import CliRunner

    from kb_site.cli import KbGroup
    from search import ArticleError, IndexCorrupt, IndexMissing, QueryError
    from search.evaluate import QueryFileError

    for error in (ArticleError("a.md", "broken"), IndexMissing("broken"), IndexCorrupt("broken"),
                  QueryError("broken"), QueryFileError("broken"), KeyError("broken")):
        def fail(error: Exception = error) -> None:
            raise error

        group = KbGroup(name="kb", create_app=lambda: None, commands=[click.Command("fail", callback=fail)])
        result = CliRunner().invoke(group, ["fail"])
        if isinstance(error, KeyError):  # not the library's: not hidden
            assert result.exception is error
        else:
            assert result.exit_code == 1 and result.output.startswith("Error: ") and "broken" in result.output


def test_server_memory_counts_the_process_and_its_children():
    """memory_mb adds up a process tree's resident memory, and a process that is gone has none."""
    import os
    import subprocess
    import sys
    import time

    from kb_site.http_bench import memory_mb

    alone = memory_mb(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)  # the child's interpreter is up
        both = memory_mb(os.getpid())
        assert both["rss"] > alone["rss"] > 0 and both["pss"] > alone["pss"] > 0
        assert 0 < both["pss"] <= both["rss"] and 0 < both["private"] <= both["pss"]
    finally:
        child.kill()
        child.wait()
    assert memory_mb(child.pid) == {"rss": 0.0, "pss": 0.0, "private": 0.0}
