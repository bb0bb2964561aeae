"""Editors tune search in git: synonyms and pins in articles/_search.yml, checked, built, applied, explained."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kb_site.serve import snapshot
from search import SearchConfig, SearchEngine, build_index
from search.check import check_articles
from search.lexical import ParsedQuery
from search.tuning import SYNONYM_WEIGHT, Pin, Tuning, entry_terms, normalise, parse_tuning, pinned_first

TODAY = dt.date.today()


def tune(root: Path, text: str) -> Path:
    """Write a dedented _search.yml at the top of the articles folder."""
    path = root / "_search.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(root: Path) -> list[str]:
    """Return kb check's findings in _search.yml as 'line: [warning: ]message'."""
    return [str(p).removeprefix(f"{root / '_search.yml'}:") for p in check_articles(root)
            if p.path.name == "_search.yml"]


# --------------------------------------------------------------------------- the file, as kb check sees it


def test_a_valid_file_has_no_problems_and_reads_as_written(corpus):
    """Groups of words (several-word entries too) and both forms of pin, with an until date, check clean."""
    tune(corpus, """\
        # editors' search tuning
        synonyms:
          - [Rucksack, backpack, daypack]
          - [refund, money back]
        pins:
          "Where is my parcel?": track-your-order
          "black friday":
            article: refund-timescales
            until: 2999-12-31
        """)
    assert problems(corpus) == []
    tuning, found = parse_tuning((corpus / "_search.yml").read_text(), corpus / "_search.yml")
    assert found == []
    assert tuning.synonyms == (("rucksack", "backpack", "daypack"), ("refund", "money back"))
    assert tuning.pins == (Pin("where is my parcel", "track-your-order"),
                           Pin("black friday", "refund-timescales", dt.date(2999, 12, 31)))


def test_invalid_yaml_is_one_error_at_the_line_yaml_stopped(corpus):
    tune(corpus, """\
        synonyms:
          - [parcel, package
        pins: {}
        """)
    [problem] = problems(corpus)
    assert problem.startswith("3: invalid YAML: ") and "that starts on line 2" in problem


def test_every_problem_is_reported_on_its_line(corpus):
    """Unknown keys, short groups, a word in two groups, bad slugs and dates, duplicate queries: each located."""
    tune(corpus, """\
        synonym:
          - [a, b]
        synonyms:
          - [parcel, package]
          - [refund]
          - [Parcels, delivery]
          - [the, of]
          - boots
          - [jacket, jacket]
        pins:
          "where is my parcel": track-your-order
          "Where is my  parcel?!": refund-timescales
          "lost": no-such-article
          "stove": Stove Recall
          "cancel":
            article: cancel-an-order
            until: 2026-13-01
          "sale":
            article: cancel-an-order
            untill: 2026-01-01
          "tent":
            until: 2999-01-01
          "fit": draft-gift-wrapping
        """)
    assert problems(corpus) == [
        "1: unknown key 'synonym': the keys are synonyms and pins",
        "5: synonyms: a group needs two or more different words: 'refund' is alone",
        "6: synonyms: 'Parcels' is already in the group on line 4 (as 'parcel'): a word belongs to one group",
        "7: synonyms: 'the' has no word that search uses (only stop words)",
        "7: synonyms: 'of' has no word that search uses (only stop words)",
        "8: synonyms: each group is a list of two or more words, like [parcel, package]",
        "9: warning: synonyms: 'jacket' is listed twice in this group",
        "9: synonyms: a group needs two or more different words: 'jacket' is alone",
        '12: pins: "Where is my parcel?!" is already pinned on line 11 (queries are compared lowercased, '
        'without punctuation)',
        "13: pins: no article is named 'no-such-article'",
        "14: pins: the pin of \"stove\" must name an article by its slug, like track-your-order, not 'Stove Recall'",
        "17: pins: until: '2026-13-01' is not a date (use YYYY-MM-DD)",
        '20: pins: unknown key \'untill\' in the pin of "sale": the keys are article and until',
        '22: pins: the pin of "tent" names no article (article: <slug>)',
        "23: pins: 'draft-gift-wrapping' is a draft: only published articles can be pinned",
    ]


def test_a_pin_past_its_date_and_a_pin_to_an_alias_are_warnings(corpus):
    """kb check warns (and passes) on a pin that no longer applies and on one naming an old alias."""
    tune(corpus, """\
        pins:
          "black friday":
            article: cancel-an-order
            until: 2020-11-30
          "tracking": order-tracking
        """)
    assert problems(corpus) == [
        '4: warning: pins: the pin of "black friday" ended on 2020-11-30: it no longer applies',
        "5: warning: pins: 'order-tracking' is an old alias; use 'track-your-order'",
    ]


def test_kb_check_names_the_line_of_a_broken_search_file_and_fails(runner, bare_app):
    """`kb check` prints _search.yml's problems as file:line: message like every other file's."""
    root = Path(bare_app.config["ARTICLES_DIR"])
    path = tune(root, "synonyms:\n  - [parcel, package]\npins:\n  lost: nowhere\n")
    result = runner.invoke(args=["check", str(root)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"{path}:4: pins: no article is named 'nowhere'"]


def test_pinned_queries_are_compared_lowercased_without_punctuation():
    assert normalise("  Where's my PARCEL?! ") == "wheres my parcel" == normalise("wheres my parcel")
    assert normalise("track-your-order") == "track your order"
    assert normalise("parcels") != normalise("parcel")


def test_synonym_entries_are_the_terms_a_query_searches():
    """Stemmed as the index stems them, stop words out, a code whole."""
    assert entry_terms("Deliveries") == entry_terms("delivery") == ("deliveri",)
    assert entry_terms("money back") == ("monei", "back")
    assert entry_terms("the") == ()
    assert entry_terms("TH-45-GRN") == ("th45grn",)


# --------------------------------------------------------------------------- synonyms and pins, searched


@pytest.fixture
def tuned(corpus, tmp_path, fake_embedder):
    """The corpus with synonyms and pins, indexed by the fake embedder; returns (corpus, index folder)."""
    tune(corpus, f"""\
        synonyms:
          - [rucksack, backpack]
          - [refund, money back]
        pins:
          "Where is my parcel": track-your-order
          "stove": stove-recall
          "sizes":
            article: sizing-guide
            until: {TODAY.isoformat()}
          "expired offer":
            article: refund-timescales
            until: {(TODAY - dt.timedelta(days=1)).isoformat()}
        """)
    build_index(corpus, tmp_path / "ix", fake_embedder)
    return corpus, tmp_path / "ix"


def test_a_synonym_finds_an_article_that_only_uses_the_other_word(tuned, fake_embedder):
    """No article says rucksack: with [rucksack, backpack] it finds the backpack articles, in every mode."""
    _corpus, index = tuned
    engine = SearchEngine(index, fake_embedder)
    found = engine.search("rucksack", mode="lexical")
    assert {h.slug for h in found.hits} == {"backpack-fitting", "trailhead-backpack"}
    assert found.parsed is not None and found.parsed.terms == {"backpack": SYNONYM_WEIGHT}
    assert found.parsed.synonyms == {"backpack": "rucksack"}
    # The fake embedder knows no meaning ("rucksack" is far from every article), so by words alone: every
    # candidate holding the synonym counts, however far in meaning.
    hybrid = SearchEngine(index, fake_embedder, SearchConfig(lexical_min_cosine=-1.0)).search("rucksack")
    assert {"backpack-fitting", "trailhead-backpack"} <= {h.slug for h in hybrid.hits}


def test_an_entry_of_several_words_is_used_when_the_query_has_them_all(tuned, fake_embedder):
    engine = SearchEngine(tuned[1], fake_embedder)
    found = engine.search("my money back", mode="lexical")
    assert found.hits[0].slug == "refund-timescales"
    assert found.parsed is not None and found.parsed.synonyms == {"refund": "money back"}
    assert "refund" not in engine.search("money", mode="lexical").parsed.terms  # "back" is missing


def test_a_synonym_counts_less_than_the_word_typed(fake_embedder):
    """The typed word keeps 1.0; a synonym gets SYNONYM_WEIGHT of it, shared among a several-word entry's words."""
    tuning = Tuning((("parcel", "package", "money back"),))
    parsed = tuning.expand(ParsedQuery("parcel package", {"parcel": 1.0, "packag": 1.0}), lambda term: True)
    assert parsed.terms == {"parcel": 1.0, "packag": 1.0, "monei": SYNONYM_WEIGHT / 2, "back": SYNONYM_WEIGHT / 2}
    corrected = tuning.expand(ParsedQuery("parcl", {"parcel": 0.8}, {"parcl": "parcel"}), lambda term: True)
    assert corrected.terms["packag"] == pytest.approx(0.8 * SYNONYM_WEIGHT)
    unknown = tuning.expand(ParsedQuery("parcel", {"parcel": 1.0}), lambda term: term != "packag")
    assert "packag" not in unknown.terms  # no article has it: nothing to search


def test_a_pin_puts_its_article_first_and_counts_it_in_every_mode(tuned, fake_embedder):
    """However the query is typed, the pinned article is first and in the total, lexical, dense or hybrid."""
    engine = SearchEngine(tuned[1], fake_embedder)
    for mode in ("lexical", "dense", "hybrid"):
        plain = engine.search("stove valve kit", mode=mode)
        found = engine.search("  STOVE? ", mode=mode)
        assert found.hits[0].slug == "stove-recall" and found.pinned == "stove-recall", mode
        assert plain.pinned is None
    nothing = engine.search("where is my parcel", mode="lexical")  # "where", "my", "parcel": few matches
    assert nothing.pinned == "track-your-order" and nothing.hits[0].slug == "track-your-order"
    assert len({h.slug for h in nothing.hits}) == len(nothing.hits) == min(nothing.total, 10)


def test_a_pinned_article_that_matches_no_word_joins_the_results(tuned, fake_embedder):
    """A pin to an article sharing no word with the query adds it to the matches, first."""
    corpus, index = tuned
    tune(corpus, 'pins:\n  "send it back": stove-recall\n')
    build_index(corpus, index, fake_embedder)
    engine = SearchEngine(index, fake_embedder)
    found = engine.search("send it back", mode="lexical")
    without = engine.search("send it back to", mode="lexical")  # the same words searched: "to" is a stop word
    assert found.hits[0].slug == "stove-recall" and found.total == without.total + 1
    assert found.categories["products"] == without.categories.get("products", 0) + 1
    assert [h.slug for h in found.hits[1:]] == [h.slug for h in without.hits][:len(found.hits) - 1]


def test_a_pin_respects_the_category_filter(tuned, fake_embedder):
    """A pinned article outside the category asked for is not forced in; inside it, it is first."""
    engine = SearchEngine(tuned[1], fake_embedder)
    outside = engine.search("where is my parcel", category="returns")
    assert outside.pinned is None and "track-your-order" not in {h.slug for h in outside.hits}
    inside = engine.search("where is my parcel", category="orders")
    assert inside.pinned == "track-your-order" and inside.hits[0].slug == "track-your-order"


def test_a_pin_applies_through_its_until_date_and_stops_after_it(tuned, fake_embedder):
    engine = SearchEngine(tuned[1], fake_embedder)
    assert engine.search("sizes").pinned == "sizing-guide"  # until today: still on
    assert engine.search("expired offer").pinned is None  # until yesterday: over
    pin = engine.tuning.pin_for("sizes")
    assert pin is not None and pin.applies(TODAY) and not pin.applies(TODAY + dt.timedelta(days=1))
    rows = {"sizing-guide": 2}
    _matched, pinned = engine.tuning.pin("sizes", rows, np.zeros(4, dtype=bool), today=TODAY + dt.timedelta(days=1))
    assert pinned is None


def test_pinned_first_keeps_the_page_length():
    matched = np.array([True, True, True, True])
    tuning = Tuning(pins=(Pin("q", "d"),))
    matched, pinned = tuning.pin("Q", {"d": 3}, matched)
    assert pinned is not None
    assert pinned_first(np.array([0, 1, 2]), pinned, matched)[0].tolist() == [3, 0, 1]
    assert pinned_first(np.array([1, 3, 0]), pinned, matched)[0].tolist() == [3, 1, 0]
    matched[3] = False  # left out by the category filter
    assert pinned_first(np.array([0, 1, 2]), pinned, matched) == (pytest.approx(np.array([0, 1, 2])), None)


# --------------------------------------------------------------------------- built and applied without a restart


def test_a_change_to_search_yml_alone_publishes_a_generation_without_embedding(tuned, fake_embedder):
    """Editing only _search.yml publishes a new generation, embeds nothing, and a refreshed engine applies it."""
    corpus, index = tuned
    engine = SearchEngine(index, fake_embedder)
    assert engine.search("daypack", mode="lexical").total == 0
    tune(corpus, "synonyms:\n  - [daypack, backpack]\n")
    fake_embedder.encoded.clear()
    report = build_index(corpus, index, fake_embedder)
    assert fake_embedder.encoded == []  # no article was embedded again
    assert report.published and report.generation != engine.generation
    assert (report.added, report.changed, report.removed, report.embedded) == (0, 0, 0, 0)
    assert engine.search("daypack", mode="lexical").total == 0  # until it refreshes
    assert engine.refresh()
    assert {h.slug for h in engine.search("daypack", mode="lexical").hits} == {"backpack-fitting",
                                                                               "trailhead-backpack"}
    assert engine.search("stove").pinned is None  # the pins went with the old file
    assert build_index(corpus, index, fake_embedder).unchanged  # and nothing new the next time
    (corpus / "_search.yml").unlink()
    build_index(corpus, index, fake_embedder)
    engine.refresh()
    assert engine.tuning == Tuning() and engine.search("daypack", mode="lexical").total == 0


def test_a_broken_search_yml_keeps_the_last_good_tuning_and_is_reported(tuned, fake_embedder):
    """Like a broken article: the error is recorded with its line, the last good synonyms and pins stay."""
    corpus, index = tuned
    good = (corpus / "_search.yml").read_text()
    (corpus / "_search.yml").write_text(good.replace("[rucksack, backpack]", "[rucksack, backpack") + "\n")
    report = build_index(corpus, index, fake_embedder)
    [error] = report.errors
    assert (error.path, error.line) == ("_search.yml", 3) and error.message.startswith("invalid YAML")
    assert str(error).endswith("(the synonyms and pins of the last good build are kept)")
    engine = SearchEngine(index, fake_embedder, pages=True)
    assert engine.library.errors == report.errors  # on the dashboard and in /readyz
    assert engine.search("rucksack", mode="lexical").total == 2 and engine.search("stove").pinned == "stove-recall"
    # A file that parses but pins a missing article is broken the same way: nothing of it applies.
    (corpus / "_search.yml").write_text("synonyms:\n  - [daypack, backpack]\npins:\n  lost: nowhere\n")
    [error] = build_index(corpus, index, fake_embedder).errors
    assert (error.line, error.field, error.message) == (4, "pins", "no article is named 'nowhere'")
    engine.refresh()
    assert engine.search("daypack", mode="lexical").total == 0 and engine.search("stove").pinned == "stove-recall"
    (corpus / "_search.yml").write_text("synonyms:\n  - [daypack, backpack]\n")
    assert build_index(corpus, index, fake_embedder).errors == ()
    engine.refresh()
    assert engine.library.errors == () and engine.search("daypack", mode="lexical").total == 2


def test_a_pin_to_an_alias_pins_the_article_that_has_it(corpus, tmp_path, fake_embedder):
    tune(corpus, 'pins:\n  "tracking": order-tracking\n')
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert report.errors == ()
    assert SearchEngine(tmp_path / "ix", fake_embedder).search("tracking").pinned == "track-your-order"


def test_a_folder_without_search_yml_searches_as_before(corpus, tmp_path, fake_embedder):
    build_index(corpus, tmp_path / "ix", fake_embedder)
    engine = SearchEngine(tmp_path / "ix", fake_embedder)
    assert engine.tuning == Tuning()
    found = engine.search("where is my parcel")
    assert found.pinned is None and found.parsed is not None and found.parsed.synonyms == {}


def test_a_synonym_holds_the_word_it_stands_for_in_the_honest_results(tuned):
    """Without a model, results hold every topic word: a word of a group is held by any entry of the group."""
    engine = SearchEngine(tuned[1], None)
    assert {h.slug for h in engine.search("rucksack").hits} == {"backpack-fitting", "trailhead-backpack"}
    assert [h.slug for h in engine.search("rucksack buckles").hits] == ["trailhead-backpack"]
    assert engine.search("rucksack recall").total == 0  # the other words still count


def test_the_watcher_notices_a_change_to_search_yml(corpus):
    before = snapshot(corpus)
    tune(corpus, "synonyms:\n  - [rucksack, backpack]\n")
    assert snapshot(corpus) != before


# --------------------------------------------------------------------------- kb search --explain


def _tuned_runner(runner, bare_app) -> None:
    root = Path(bare_app.config["ARTICLES_DIR"])
    tune(root, 'synonyms:\n  - [parcel, package]\npins:\n  "where is my parcl": track-your-order\n')
    assert runner.invoke(args=["index"]).exit_code == 0


def test_search_explain_shows_terms_pin_and_scores(runner, bare_app):
    """--explain: each term with its weight and origin (typed, corrected, synonym), the pin, each hit's scores."""
    _tuned_runner(runner, bare_app)
    result = runner.invoke(args=["search", "Where is my parcl", "--explain", "--limit", "3"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index("Terms searched (index term, weight, where it comes from):")
    assert lines[start + 1:start + 6] == [
        '  where   1.00  typed "where"',
        '  my      1.00  typed "my"',
        '  parcel  0.80  corrected "parcl" to "parcel"',
        f'  packag  {0.8 * SYNONYM_WEIGHT:.2f}  synonym of "parcel" in _search.yml ("package")',
        'Pin: "where is my parcl" -> track-your-order, applied',
    ]
    first = lines.index(next(line for line in lines if line.startswith(" 1. Track your order")))
    assert lines[first + 1] == '    pinned first by _search.yml for "where is my parcl"'
    assert lines[first + 2].startswith("    lexical ") and " dense 0." in lines[first + 2] and " fused " in lines[
        first + 2]
    plain = runner.invoke(args=["search", "Where is my parcl", "--limit", "3"]).stdout
    assert "Terms searched" not in plain and "pinned" not in plain


def test_search_explain_json_has_an_explain_object(runner, bare_app):
    _tuned_runner(runner, bare_app)
    result = runner.invoke(args=["search", "where is my parcl", "--explain", "--json", "--category", "returns"])
    assert result.exit_code == 0, result.output
    explain = json.loads(result.stdout)["explain"]
    assert explain.keys() == {"terms", "pin", "hits"}
    assert {"term": "packag", "weight": round(0.8 * SYNONYM_WEIGHT, 4), "kind": "synonym", "from": "parcel",
            "word": "package"} in explain["terms"]
    assert explain["pin"] == {"query": "where is my parcl", "article": "track-your-order", "until": None,
                              "applied": False, "reason": "the category filter leaves the article out"}
    assert explain["hits"] and set(explain["hits"][0]) == {"slug", "lexical", "dense", "fused", "pinned"}
    plain = json.loads(runner.invoke(args=["search", "where is my parcl", "--json"]).stdout)
    assert "explain" not in plain


# --------------------------------------------------------------------------- shipped and documented

ROOT = Path(__file__).parent.parent


def test_the_bundled_search_yml_is_clean_and_pins_where_is_my_parcel():
    """The sample tuning has no problem at all, not even a warning, and pins the parcel question."""
    articles = ROOT / "articles"
    assert [str(p) for p in check_articles(articles) if p.path.name == "_search.yml"] == []
    tuning, found = parse_tuning((articles / "_search.yml").read_text(), articles / "_search.yml")
    assert found == [] and len(tuning.synonyms) >= 5
    assert tuning.pin_for("Where is my parcel?") == Pin("where is my parcel", "track-your-order")


def test_the_readme_documents_the_file_and_the_flag():
    readme = (ROOT / "README.md").read_text()
    for name in ("`_search.yml`", "`synonyms`", "`pins`", "`until`", "--explain", '"explain"'):
        assert name in readme, name
    assert f"at {SYNONYM_WEIGHT} of the weight" in " ".join(readme.split())
