"""Learned questions in the search library: one normal form, refusals of personal data, the learned-questions
file, stable parts of a query file, and the index: searched like questions, re-embedding only their article."""

from __future__ import annotations

import pytest

from search import SearchEngine, build_index
from search.learned import (
    LearnedFileError,
    normalise,
    part_of,
    read_learned,
    refusal,
    write_learned,
)
from search.learned import select as select_learned
from tests.conftest import CORPUS

QUERY = "parcel gone walkabout"  # "walkabout" is in no article: only a learned question can match it
SLUG = "track-your-order"


@pytest.mark.parametrize(("typed", "form"), [
    ("Where's my ORDER??", "where's my order"), ("  refund\tgift   card. ", "refund gift card"),
    ("“Tracking”", "tracking"), ("ＲＥＦＵＮＤ", "refund"), ("?!", ""),
])
def test_one_normal_form(typed, form):
    """Case, spacing, full-width letters and punctuation at the ends make no other question."""
    assert normalise(typed) == form


@pytest.mark.parametrize(("query", "reason"), [
    ("where is my parcel", None), ("covid-19 symptoms 2020", None), ("ridgeline tent th-45-grn", None),
    ("refund for sam@example.com", "an email address"), ("call me on +44 20 7946 0958", "a phone, card, account or "
                                                                                      "order number"),
    ("card 4111 1111 1111 1111 declined", "a phone, card, account or order number"),
    ("order 123456 late", "a phone, card, account or order number"),
    ("where is nw-123456", "a phone, card, account or order number"), ("where is nw-1234", "an order number"),
    ("see https://evil.example/x", "a web address"), ("word " * 17, "too long"), ("x" * 201, "too long"),
])
def test_personal_data_and_long_queries_are_refused(query, reason):
    """Email addresses, phone, card and order numbers, web addresses and pasted text are never learnable."""
    assert refusal(normalise(query), order_pattern=r"^NW-\d{4}$") == reason


def test_parts_are_stable_halves():
    """part_of puts a query in the same part whatever its case or punctuation, and cuts a file in ~halves."""
    assert part_of("Where is my parcel?", 2) == part_of("where is my parcel", 2)
    parts = [part_of(f"query {n}", 2) for n in range(1000)]
    assert set(parts) == {1, 2} and 400 < parts.count(1) < 600


def test_select_takes_agreed_pairs_under_the_rules_and_cap():
    """Each query once an article, refused ones out, at most the cap an article, in the order given."""
    pairs = [("Track it?", "a"), ("track it", "a"), ("mail me@x.io", "a"), ("second", "a"), ("third", "a"),
             ("other", "b")]
    assert select_learned(pairs, max_per_article=2) == {"a": ("track it", "second"), "b": ("other",)}


def test_learned_file_round_trip_and_errors(tmp_path):
    """The file is rewritten only when it changes; a malformed one names the file and the slug."""
    path = tmp_path / "learned.json"
    assert read_learned(path) == {}
    assert write_learned(path, {"b": ["x"], "a": ["y", "z"], "c": []})
    stamp = path.stat().st_mtime_ns
    assert not write_learned(path, {"a": ("y", "z"), "b": ("x",)}) and path.stat().st_mtime_ns == stamp
    assert read_learned(path) == {"a": ("y", "z"), "b": ("x",)}
    path.write_text('{"format": 1, "questions": {"a": "not a list"}}')
    with pytest.raises(LearnedFileError, match=r"learned.json: questions.a: expected a list of strings"):
        read_learned(path)
    path.write_text("{")
    with pytest.raises(LearnedFileError, match="not JSON"):
        read_learned(path)


# --- the index ---------------------------------------------------------------------------------------------

def test_only_the_article_whose_learned_questions_changed_is_embedded_again(tmp_path, fake_embedder):
    """A learned question re-indexes its article alone: only its text is embedded, and it is searched lexically
    and by meaning, but the article's own questions are what the site shows."""
    index = tmp_path / "index"
    build_index(CORPUS, index, fake_embedder)
    dense_before = {h.slug: h.dense_score for h in SearchEngine(index, fake_embedder).search(QUERY, mode="dense").hits}
    fake_embedder.encoded.clear()
    learned = {SLUG: ["Parcel gone walkabout?", "where is my package"], "no-such-article": ["x"]}
    report = build_index(CORPUS, index, fake_embedder, learned=learned)
    assert (report.changed, report.added, report.removed) == (1, 0, 0)
    assert fake_embedder.encoded == [QUERY]  # the article's other passages are reused; its own question not added
    engine = SearchEngine(index, fake_embedder, pages=True)
    assert [h.slug for h in engine.search("walkabout", mode="lexical").hits] == [SLUG]
    dense = engine.search(QUERY, mode="dense").hits
    assert dense[0].slug == SLUG and dense[0].dense_score > dense_before.get(SLUG, 0.0)
    assert engine.library.articles[SLUG].questions == ("where is my package", "my order hasn't arrived")
    assert build_index(CORPUS, index, fake_embedder, learned=learned).unchanged
    removed = build_index(CORPUS, index, fake_embedder)  # removed again: the article goes back to its own
    assert removed.changed == 1 and not SearchEngine(index, fake_embedder).search("walkabout", mode="lexical").hits


def test_a_broken_article_takes_its_learned_questions_from_its_last_good_version(corpus, tmp_path, fake_embedder):
    """An article whose file broke keeps its last good version, with new learned questions."""
    index = tmp_path / "index"
    build_index(corpus, index, fake_embedder)
    path = corpus / "orders" / "track-your-order.md"
    path.write_text(path.read_text().replace("title: Track your order", "title: [oops"))
    assert build_index(corpus, index, fake_embedder).errors
    report = build_index(corpus, index, fake_embedder, learned={SLUG: [QUERY]})
    assert report.changed == 1 and report.errors
    assert [h.slug for h in SearchEngine(index, fake_embedder).search("walkabout", mode="lexical").hits] == [SLUG]


def test_a_malformed_learned_file_names_itself(tmp_path, fake_embedder):
    """The build refuses a learned file it cannot read, naming it, rather than drop every learned question."""
    bad = tmp_path / "learned.json"
    bad.write_text('{"format": 2}')
    with pytest.raises(LearnedFileError, match="learned.json: expected"):
        build_index(CORPUS, tmp_path / "index", fake_embedder, learned=bad)
