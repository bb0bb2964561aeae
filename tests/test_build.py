"""Index builds: incremental by content hash, atomic publication, crash safety, lexical fallback."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search import ArticleError, Doc, Generation, IndexCorrupt, IndexMissing, SearchEngine, build_index
from search.articles import load_article, parse_article
from search.generation import FORMAT_VERSION
from search.store import IndexStore
from tests.conftest import CORPUS
from tests.fakes import BrokenEmbedder, HashingEmbedder


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def test_unchanged_corpus_embeds_nothing_and_publishes_nothing(corpus, tmp_path, fake_embedder):
    """Re-indexing an unchanged folder embeds no text and keeps the same generation."""
    first = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert first.added == 12 and first.embedded > 0
    fake_embedder.encoded.clear()
    again = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert again.unchanged and again.generation == first.generation
    assert fake_embedder.encoded == []


def test_touching_files_parses_nothing_new(corpus, tmp_path, fake_embedder):
    """A new modification time with the same content embeds nothing and publishes nothing."""
    first = build_index(corpus, tmp_path / "ix", fake_embedder)
    for path in corpus.rglob("*.md"):
        os.utime(path, (time.time() + 5, time.time() + 5))
    fake_embedder.encoded.clear()
    again = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert again.unchanged and again.generation == first.generation and fake_embedder.encoded == []
    fake_embedder.encoded.clear()
    assert SearchEngine(tmp_path / "ix", fake_embedder).search("refund").hits  # still a valid index


def test_one_changed_article_reembeds_only_that_article(corpus, tmp_path, fake_embedder):
    """After one article changes, only its new passages are embedded; search sees the change."""
    build_index(corpus, tmp_path / "ix", fake_embedder)
    _edit(corpus / "shipping/contact-us.md", "Our team answers chat, phone and email.",
          "Our team answers chat, phone, email and carrier pigeons.")
    fake_embedder.encoded.clear()
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert (report.changed, report.added, report.removed) == (1, 0, 0)
    assert fake_embedder.encoded and all("Contact customer service" in t for t in fake_embedder.encoded)
    assert len(fake_embedder.encoded) == 1  # only the edited intro chunk: the article's other passages are cached
    engine = SearchEngine(tmp_path / "ix", fake_embedder)
    assert engine.search("pigeons", mode="lexical").hits[0].slug == "contact-us"


def test_added_and_removed_articles(corpus, tmp_path, fake_embedder):
    """New files are added and deleted files disappear from results."""
    build_index(corpus, tmp_path / "ix", fake_embedder)
    (corpus / "orders/cancel-an-order.md").unlink()
    (corpus / "orders/gift-cards.md").write_text(textwrap.dedent("""\
        ---
        title: Gift cards
        ---
        Gift cards are valid for 24 months.
        """))
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert (report.added, report.removed) == (1, 1)
    engine = SearchEngine(tmp_path / "ix", fake_embedder)
    assert engine.search("gift cards valid", mode="lexical").hits[0].slug == "gift-cards"
    assert "cancel-an-order" not in [h.slug for h in engine.search("cancel", mode="lexical", limit=50).hits]


def test_broken_and_duplicate_articles_are_left_out_and_reported(corpus, tmp_path, fake_embedder):
    """A file with bad front-matter or a repeated slug is reported; the others are indexed."""
    (corpus / "orders/broken.md").write_text("---\ntitle: [unclosed\n---\nBody\n")
    (corpus / "returns/track-your-order.md").write_text("---\ntitle: Duplicate\n---\nBody\n")
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert report.articles == 12
    messages = [str(e) for e in report.errors]
    assert any("broken.md" in m and "invalid YAML" in m for m in messages)
    assert any("returns/track-your-order.md" in m and "already the slug" in m for m in messages)


def test_reader_keeps_its_generation_until_refresh(corpus, tmp_path, fake_embedder):
    """An open engine answers from its generation and switches only when a newer one is published."""
    build_index(corpus, tmp_path / "ix", fake_embedder)
    engine = SearchEngine(tmp_path / "ix", fake_embedder)
    before = engine.generation
    _edit(corpus / "shipping/contact-us.md", "Opening hours", "Opening hours and holidays")
    build_index(corpus, tmp_path / "ix", fake_embedder)
    assert engine.generation == before
    assert engine.search("holidays", mode="lexical").total == 0
    assert engine.refresh() and engine.generation != before
    assert engine.search("holidays", mode="lexical").hits[0].slug == "contact-us"


def test_crash_mid_build_leaves_previous_index_usable(corpus, tmp_path):
    """A build killed while embedding publishes nothing; the old index still answers; the next build works."""
    index = tmp_path / "ix"
    build_index(corpus, index, HashingEmbedder())
    published = IndexStore(index).current_name()
    for n in range(40):
        (corpus / "orders" / f"new-{n}.md").write_text(f"---\ntitle: New article {n}\n---\nText {n}\n")
    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = [{str(Path(__file__).parent.parent)!r}]
        from tests.fakes import HashingEmbedder
        from search import build_index
        class Slow(HashingEmbedder):
            def encode(self, texts, progress=None):
                print("embedding", flush=True)
                time.sleep(60)
        build_index({str(corpus)!r}, {str(index)!r}, Slow())
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "embedding"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert IndexStore(index).current_name() == published
    assert list(index.glob(".tmp-gen-*"))  # the half-built generation was left behind, unpublished
    engine = SearchEngine(index, HashingEmbedder())
    assert engine.search("tracking number", mode="lexical").hits[0].slug == "track-your-order"
    report = build_index(corpus, index, HashingEmbedder())
    assert report.added == 40 and not list(index.glob(".tmp-gen-*"))


def test_old_generations_are_collected(corpus, tmp_path, fake_embedder):
    """Only the current and the previous generation stay on disk."""
    for n in range(4):
        (corpus / "orders" / f"extra-{n}.md").write_text(f"---\ntitle: Extra {n}\n---\nBody {n}\n")
        build_index(corpus, tmp_path / "ix", fake_embedder)
    assert len(list((tmp_path / "ix").glob("gen-*"))) == 2


def test_manifest_records_every_file(corpus, tmp_path, fake_embedder):
    """The manifest lists each file's size, so a truncated index is detected on open."""
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    folder = tmp_path / "ix" / report.generation
    manifest = json.loads((folder / "manifest.json").read_text())
    vectors = next(folder.rglob("vectors.npy"))  # a block's (see search.generation)
    assert manifest["dense"] is True and str(vectors.relative_to(folder)) in manifest["files"]
    with open(vectors, "r+b") as handle:
        handle.truncate(10)
    with pytest.raises(Exception, match="truncated"):
        SearchEngine(tmp_path / "ix", fake_embedder)


def test_no_index_yet_is_a_clear_error(tmp_path, fake_embedder):
    """Opening an empty folder says to run kb index."""
    with pytest.raises(IndexMissing, match="kb index"):
        SearchEngine(tmp_path / "nothing", fake_embedder)


def test_model_that_cannot_load_falls_back_to_lexical(corpus, tmp_path, caplog):
    """Without a usable model the index is lexical-only, and search answers with a fallback flag."""
    report = build_index(corpus, tmp_path / "ix", BrokenEmbedder())
    assert not report.dense
    engine = SearchEngine(tmp_path / "ix", BrokenEmbedder())
    results = engine.search("tracking number")
    assert results.fallback and results.hits[0].slug == "track-your-order"
    assert results.hits[0].dense_score is None


def test_model_failing_at_query_time_falls_back_and_warns(corpus, tmp_path, fake_embedder, caplog):
    """A dense index with a model that fails to load answers lexically, flags it, and logs a warning."""
    build_index(corpus, tmp_path / "ix", fake_embedder)
    engine = SearchEngine(tmp_path / "ix", BrokenEmbedder())
    with caplog.at_level("WARNING"):
        results = engine.search("refund")
    assert results.fallback and results.hits and results.hits[0].slug == "refund-timescales"
    assert "semantic search unavailable" in caplog.text
    assert engine.search("refund", mode="lexical").fallback is False


def test_a_generation_of_another_format_is_refused_and_rebuilt(corpus, tmp_path, fake_embedder, caplog):
    """An index written by another format is refused on open, saying so; the next build starts afresh."""
    first = build_index(corpus, tmp_path / "ix", fake_embedder)
    manifest = tmp_path / "ix" / first.generation / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": FORMAT_VERSION - 1}))
    with pytest.raises(IndexCorrupt, match=rf"format {FORMAT_VERSION - 1}, .*rebuild it with 'kb index'"):
        SearchEngine(tmp_path / "ix", fake_embedder)
    fake_embedder.encoded.clear()
    with caplog.at_level("WARNING"):
        again = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert "rebuilding the index from scratch" in caplog.text
    assert again.published and again.added == first.added and again.generation != first.generation
    assert SearchEngine(tmp_path / "ix", fake_embedder).search("refund").hits[0].slug == "refund-timescales"


def test_docs_round_trip_through_a_generation(tmp_path):
    """What a hit shows of an article is written to a generation and read back the same."""
    article = parse_article("---\ntitle: Track\nsummary: Where it is.\n---\nIntro here.\n\n## Late\nWait.\n",
                            tmp_path / "track.md", category="orders")
    doc = Doc.of(article)
    assert doc.sections == (("", "", "Intro here."), ("late", "Late", "Wait."))
    generation = Generation(tmp_path)
    generation.write_docs([doc])
    assert generation.docs() == [doc]


def test_server_engine_loads_the_model_in_the_background_and_records_why_it_failed(corpus, tmp_path):
    """A server's engine answers lexically at once while the model loads; a failed load is the dense error."""
    build_index(corpus, tmp_path / "ix", HashingEmbedder())
    embedder = BrokenEmbedder()
    engine = SearchEngine(tmp_path / "ix", embedder, wait_for_model=False)
    assert engine.search("refund").fallback
    assert engine._loader is not None
    engine._loader.join(10)
    assert engine.dense_error == embedder.error and "model.safetensors" in embedder.error
    assert engine.search("refund").fallback


def test_lexical_index_gains_vectors_when_the_model_returns(corpus, tmp_path, fake_embedder):
    """After a lexical-only build, a build with a working model adds the vectors."""
    build_index(corpus, tmp_path / "ix", BrokenEmbedder())
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert report.dense and report.embedded > 0
    assert SearchEngine(tmp_path / "ix", fake_embedder).search("refund").fallback is False


def test_large_cold_build_then_incremental_update(tmp_path, fake_embedder):
    """A cold build of 600 articles (written by two processes) searches and updates like a small one."""
    root = tmp_path / "articles"
    for n in range(600):
        folder = root / f"c{n % 6}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"a{n:03d}.md").write_text(f"---\ntitle: Article {n}\n---\nWord{n} parcel refund text.\n")
    report = build_index(root, tmp_path / "ix", fake_embedder)
    assert report.added == 600
    engine = SearchEngine(tmp_path / "ix", fake_embedder)
    assert engine.search("word417", mode="lexical").hits[0].slug == "a417"
    (root / "c3" / "a417.md").write_text("---\ntitle: Article 417\n---\nReplaced text about lockers.\n")
    (root / "c0" / "a000.md").unlink()
    update = build_index(root, tmp_path / "ix", fake_embedder)
    assert (update.changed, update.removed, update.articles) == (1, 1, 599)
    engine.refresh()
    assert engine.search("word417", mode="lexical").total == 0
    assert engine.search("lockers", mode="lexical").hits[0].slug == "a417"
    assert engine.search("word0", mode="lexical").total == 0


def test_another_model_reembeds_everything(corpus, tmp_path, fake_embedder):
    """Vectors of one model are never mixed with another's: a model change rebuilds them all."""
    build_index(corpus, tmp_path / "ix", fake_embedder)
    other = HashingEmbedder(dim=32)
    report = build_index(corpus, tmp_path / "ix", other)
    assert report.dense and report.embedded > 0 and report.added == 12
    assert SearchEngine(tmp_path / "ix", other).search("refund").hits[0].slug == "refund-timescales"


TRACK = "orders/track-your-order.md"


def _break(corpus: Path, rel: str = TRACK) -> str:
    """Leave a published article's tags list unclosed, as an editor's typo would; return the good text."""
    path = corpus / rel
    good = path.read_text()
    path.write_text(good.replace("tags: [tracking, delivery]", "tags: [tracking, delivery").replace(
        "Every order gets a tracking number", "Every order gets a parcel code"))
    return good


def test_broken_revision_keeps_the_last_good_version(corpus, tmp_path, fake_embedder):
    """A published article whose new revision does not parse keeps its last good version, vectors and all."""
    first = build_index(corpus, tmp_path / "ix", fake_embedder)
    version = dt.datetime.fromtimestamp((corpus / TRACK).stat().st_mtime_ns / 1e9, dt.UTC)
    dense = {h.slug: h.dense_score for h in SearchEngine(tmp_path / "ix", fake_embedder).search(
        "every order gets a tracking number as soon as it leaves our warehouse", mode="dense", limit=20).hits}
    _break(corpus)
    fake_embedder.encoded.clear()
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert fake_embedder.encoded == []  # carried over row for row: nothing embedded again
    assert report.articles == first.articles and report.generation != first.generation
    engine = SearchEngine(tmp_path / "ix", fake_embedder, pages=True)
    kept = engine.library.articles["track-your-order"]
    assert "Every order gets a tracking number" in kept.body and kept.aliases == ("order-tracking",)
    assert engine.library.resolve("order-tracking") == "track-your-order"
    assert engine.search("tracking number", mode="lexical").hits[0].slug == "track-your-order"
    again = {h.slug: h.dense_score for h in engine.search(
        "every order gets a tracking number as soon as it leaves our warehouse", mode="dense", limit=20).hits}
    assert again["track-your-order"] == dense["track-your-order"]  # the same vectors
    [error] = engine.library.errors
    assert (error.path, error.line, error.slug) == (TRACK, 5, "track-your-order")  # where YAML stopped
    assert error.message == "invalid YAML front-matter: did not find expected ',' or ']' (while parsing a " \
                            "flow sequence that starts on line 4)"
    assert abs(error.served - version) < dt.timedelta(seconds=1)  # the modification time of the good version
    assert version <= error.since <= dt.datetime.now(dt.UTC)
    assert [str(e) for e in report.errors] == [str(error)]
    assert "still serving the version of" in str(error)


def test_error_since_is_kept_while_the_file_stays_broken_and_dropped_once_fixed(corpus, tmp_path, fake_embedder):
    """The error's first-seen time survives rebuilds (also forced ones); fixing the file indexes it normally."""
    build_index(corpus, tmp_path / "ix", fake_embedder)
    good = _break(corpus)
    build_index(corpus, tmp_path / "ix", fake_embedder)
    [before] = SearchEngine(tmp_path / "ix", fake_embedder, pages=True).library.errors
    path = corpus / TRACK
    path.write_text(path.read_text().replace("title: Track your order", "title: Track your parcel"))
    os.utime(path, ns=(time.time_ns() + 10**9,) * 2)
    build_index(corpus, tmp_path / "ix", fake_embedder)
    build_index(corpus, tmp_path / "ix", fake_embedder, force=True)
    engine = SearchEngine(tmp_path / "ix", fake_embedder, pages=True)
    [after] = engine.library.errors
    assert (after.since, after.served) == (before.since, before.served)
    assert engine.library.articles["track-your-order"].title == "Track your order"
    assert engine.search("tracking number", mode="lexical").hits[0].slug == "track-your-order"
    path.write_text(good.replace("Every order gets a tracking number", "Every order gets a parcel code"))
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert report.errors == () and report.changed == 1
    engine.refresh()
    assert engine.library.errors == ()
    assert "parcel code" in engine.library.articles["track-your-order"].body
    assert engine.search("parcel code", mode="lexical").hits[0].slug == "track-your-order"


def test_new_file_that_never_parsed_stays_out_with_its_error(corpus, tmp_path, fake_embedder):
    """A new broken file is not published; its error is recorded with since, kept across rebuilds."""
    build_index(corpus, tmp_path / "ix", fake_embedder)
    (corpus / "orders" / "gift-cards.md").write_text("---\ntitle: Gift cards\ntags: [a\n---\nValid 24 months.\n")
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert [str(e) for e in report.errors] and "left out of the index" in str(report.errors[0])
    engine = SearchEngine(tmp_path / "ix", fake_embedder, pages=True)
    [error] = engine.library.errors
    assert (error.path, error.slug, error.served) == ("orders/gift-cards.md", "gift-cards", None)
    assert "gift-cards" not in engine.library.articles
    again = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert again.unchanged and again.generation == report.generation  # nothing new: nothing published
    (corpus / "orders" / "gift-cards.md").write_text("---\ntitle: Gift cards\n---\nValid 24 months.\n")
    build_index(corpus, tmp_path / "ix", fake_embedder)
    engine.refresh()
    assert engine.library.errors == () and "gift-cards" in engine.library.articles


def test_every_problem_of_a_broken_file_is_recorded(corpus, tmp_path, fake_embedder):
    """A file with several problems has each recorded, with its line and field."""
    build_index(corpus, tmp_path / "ix", fake_embedder)
    path = corpus / TRACK
    path.write_text(path.read_text().replace("title: Track your order\n", "").replace(
        "tags: [tracking, delivery]", "tags: tracking").replace("updated: 2026-11-01", "updated: 2026-13-01"))
    build_index(corpus, tmp_path / "ix", fake_embedder)
    errors = SearchEngine(tmp_path / "ix", fake_embedder, pages=True).library.errors
    assert sorted((e.line, e.field) for e in errors) == [(1, "title"), (3, "tags"), (9, "updated")]
    assert {e.served is not None for e in errors} == {True}


def test_a_build_that_only_records_errors_is_not_unchanged(corpus, tmp_path, fake_embedder):
    """Publishing a generation for a new error is a change (kb index does not say 'nothing to do')."""
    first = build_index(corpus, tmp_path / "ix", fake_embedder)
    _break(corpus)
    report = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert report.generation != first.generation and not report.unchanged
    assert build_index(corpus, tmp_path / "ix", fake_embedder).unchanged


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 400), st.sampled_from(list("[]{}:,'\"\n -#&*!|>%@\t")),
                                st.booleans()), min_size=1, max_size=4))
def test_any_typo_in_a_published_article_keeps_it_on_the_site(corpus, tmp_path, fake_embedder, edits):
    """Whatever an editor's typo does to the front-matter, the article is either the new valid version or the
    last good one, with its alias, and a recorded error; it never just disappears."""
    index = tmp_path / "ix"
    path = corpus / TRACK
    good = (CORPUS / TRACK).read_text()
    path.write_text(good)
    build_index(corpus, index, fake_embedder)
    end = good.index("\n---", 3)
    text = good
    for position, char, delete in edits:  # insert or delete characters inside the front-matter
        at = 4 + position % (end - 4)
        text = text[:at] + ("" if delete else char) + text[at + delete:]
    path.write_text(text)
    build_index(corpus, index, fake_embedder)
    library = SearchEngine(index, fake_embedder, pages=True).library
    try:
        new = load_article(path, corpus)
    except ArticleError:
        kept = library.articles["track-your-order"]
        assert kept.body == parse_article(good, path).body and library.resolve("order-tracking") == kept.slug
        assert library.errors and {e.path for e in library.errors} == {TRACK}
    else:
        assert library.errors == ()
        if not new.draft:
            assert library.articles[new.slug].record() == new.record(corpus) | {"path": TRACK}


def test_a_repeated_random_state_never_corrupts_the_published_generation(corpus, tmp_path, fake_embedder):
    """Generations share whoosh files by hard links: a build whose process repeats its random state (a fork,
    a seeded test) must still write new files, never into the published generation's."""
    build_index(corpus, tmp_path / "ix", fake_embedder)
    path = corpus / "shipping" / "contact-us.md"
    for n in range(4):
        path.write_text(path.read_text().replace("Opening hours", f"Opening hours {n}", 1))
        random.seed(0)
        build_index(corpus, tmp_path / "ix", fake_embedder)
        published = IndexStore(tmp_path / "ix").current()  # checks every file against the manifest
        engine = SearchEngine(tmp_path / "ix", fake_embedder)
        assert engine.generation == published.name
        assert engine.search("refund", mode="lexical").hits[0].slug == "refund-timescales"


def test_an_edit_rewrites_only_its_block_and_links_the_others(corpus, tmp_path, fake_embedder, monkeypatch):
    """Blocks without a changed article are hard links to the last generation's; the result is a fresh build's."""
    monkeypatch.setattr("search.build.BLOCK_ROWS", 4)  # 12 articles: three blocks
    first = build_index(corpus, tmp_path / "ix", fake_embedder)
    before = IndexStore(tmp_path / "ix").current()
    assert [n for _b, n in before.layout()] == [4, 4, 4]
    edited = next(p for p in sorted(corpus.rglob("*.md")) if "refund" in p.read_text().lower())
    edited.write_text(edited.read_text() + "\nRefunds for parcel lockers take a day longer.\n")
    (corpus / "orders" / "extra.md").write_text("---\ntitle: Weekend delivery\n---\nWe deliver on Saturdays.\n")
    second = build_index(corpus, tmp_path / "ix", fake_embedder)
    assert second.published and second.added == 1 and second.changed == 1 and first.generation != second.generation
    after = IndexStore(tmp_path / "ix").current()
    assert sum(n for _b, n in after.layout()) == 13 and all(n <= 4 for _b, n in after.layout())
    old_inodes = {(b.name, f.name): f.stat().st_ino for b in before.blocks() for f in b.path.iterdir()}
    shared = [b for b in after.blocks() if all(old_inodes.get((b.name, f.name)) == f.stat().st_ino
                                               for f in b.path.iterdir())]
    assert len(shared) == 2  # the edited article's block is rewritten, the other two are linked
    assert [slug for slug, _h in after.rows()] == [d.slug for d in after.docs()]
    engine = SearchEngine(tmp_path / "ix", fake_embedder, pages=True)
    fresh = SearchEngine(tmp_path / "fresh", fake_embedder, pages=True) if build_index(
        corpus, tmp_path / "fresh", fake_embedder).published else None
    assert fresh is not None and set(engine.slugs()) == set(fresh.slugs())
    assert engine.library.articles.keys() == fresh.library.articles.keys()
    for query in ("parcel lockers refund", "weekend delivery saturday", "tracking number"):
        assert [h.slug for h in engine.search(query).hits] == [h.slug for h in fresh.search(query).hits]


def test_a_large_index_searches_through_its_graph_and_updates_it_in_place(corpus, tmp_path, real_embedder,
                                                                          monkeypatch):
    """Above ann.MIN_PASSAGES the build writes a passage graph; the engine then scores only the graph's
    candidates (and the best lexical matches) and ranks as an exact scan does; an edit updates the graph."""
    import numpy as np

    from search import SearchConfig, ann

    config = SearchConfig(pool=3)  # with 12 articles, the best lexical matches alone would be all of them
    exact = SearchEngine(tmp_path / "exact", real_embedder, config) if build_index(
        corpus, tmp_path / "exact", real_embedder).published else None
    assert exact is not None and not IndexStore(tmp_path / "exact").current().graph_path.exists()
    build_index(corpus, tmp_path / "ix", real_embedder)
    assert not build_index(corpus, tmp_path / "ix", real_embedder).published  # nothing changed...
    monkeypatch.setattr(ann, "MIN_PASSAGES", 1)
    monkeypatch.setattr(ann, "CANDIDATES", 6)  # fewer than the corpus's passages: only some articles are scored
    changes = []
    monkeypatch.setattr("search.generation.write_graph", lambda *a: changes.append(ann.write_graph(*a)) or
                        changes[-1])
    assert build_index(corpus, tmp_path / "ix", real_embedder).published  # ...but now it should have a graph
    generation = IndexStore(tmp_path / "ix").current()
    passages = np.concatenate([b.passages()["keys"] for b in generation.blocks()])
    graph = ann.open_graph(generation.graph_path)
    assert sorted(np.asarray(graph.keys).tolist()) == sorted(set(ann.keys_of(passages).tolist()))
    assert changes == [(len(set(passages.tolist())), 0)]
    engine = SearchEngine(tmp_path / "ix", real_embedder, config)
    assert engine._gen.dense is not None and engine._gen.dense.graph is not None
    vector = engine.encode_query("how long does a refund take")
    assert vector is not None
    scored = engine._gen.dense.candidates(vector, np.zeros(0, np.int64))
    assert scored is not None and 0 < len(scored) < engine.articles
    for query in ("how long does a refund take", "where is my parcel", "change my delivery address",
                  "SKU-4471 battery", "opening hours"):
        assert [h.slug for h in engine.search(query).hits[:3]] == [h.slug for h in exact.search(query).hits[:3]]
        assert [h.anchor for h in engine.search(query).hits[:3]] == [h.anchor for h in exact.search(query).hits[:3]]

    edited = next(p for p in sorted(corpus.rglob("*.md")) if "refund" in p.read_text().lower())
    edited.write_text(edited.read_text() + "\n## Gift cards\n\nA gift card bought by mistake is refunded to the "
                      "card it was paid with, within ten working days.\n")
    build_index(corpus, tmp_path / "ix", real_embedder)
    added, removed = changes[-1]
    assert 1 <= added <= 3 and removed <= 2  # the new section (and a changed title passage), not the whole graph
    generation = IndexStore(tmp_path / "ix").current()
    passages = np.concatenate([b.passages()["keys"] for b in generation.blocks()])
    assert sorted(np.asarray(ann.open_graph(generation.graph_path).keys).tolist()) == sorted(
        set(ann.keys_of(passages).tolist()))
    engine.refresh()
    top = engine.search("gift card bought by mistake", mode="dense").hits[0]
    assert top.slug == load_article(edited, corpus).slug and top.section == "Gift cards"


def test_related_articles_come_from_each_blocks_stored_article_vectors(corpus, tmp_path, fake_embedder,
                                                                       monkeypatch):
    """Each block stores its articles' mean vectors (memory-mapped when served, so the passage vectors
    are not all read at open); related articles across blocks match the passages' means, after edits too."""
    import numpy as np

    monkeypatch.setattr("search.build.BLOCK_ROWS", 4)
    build_index(corpus, tmp_path / "ix", fake_embedder)
    edited = next(p for p in sorted(corpus.rglob("*.md")) if "refund" in p.read_text().lower())
    edited.write_text(edited.read_text() + "\nRefunds for parcel lockers take a day longer.\n")
    build_index(corpus, tmp_path / "ix", fake_embedder)
    generation = IndexStore(tmp_path / "ix").current()
    stored = generation.article_vector_blocks()
    assert len(stored) == 3 and all(isinstance(b, np.memmap) for b in stored)
    means = generation.dense().article_vectors()  # computed from every passage vector
    assert np.allclose(np.concatenate(stored), means, atol=1e-6)
    engine = SearchEngine(tmp_path / "ix", fake_embedder, pages=True)
    slugs = engine.slugs()
    for row, slug in enumerate(slugs):
        similarity = means @ means[row]
        similarity[row] = -np.inf
        expected = [slugs[i] for i in np.argsort(-similarity, kind="stable")[:3]]
        assert engine.related(slug, limit=3) == expected
