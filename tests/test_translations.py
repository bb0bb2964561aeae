"""Articles in other languages: ``<slug>.<lang>.md`` beside the source, checked by kb check (stale, orphaned,
colliding), and kept out of the source language's index."""

from __future__ import annotations

from pathlib import Path

from search import build_index, load_corpus
from search.articles import load_article
from search.check import check_articles
from tests.fakes import HashingEmbedder
from tests.test_check import article, found

ROOT = Path(__file__).parent.parent


def translate(root: Path, rel: str, title: str, source: Path, **meta: str) -> Path:
    """Write a translation of ``source`` made from its current revision (unless meta says otherwise)."""
    meta.setdefault("source_revision", load_article(source, root).revision)
    return article(root, rel, title, "Etwas Text.\n\n## Späte Pakete\nWarten Sie einen Tag.\n", **meta)


def test_a_current_translation_passes_and_stays_out_of_the_sources_index(tmp_path):
    root = tmp_path / "tree"
    track = article(root, "orders/track.md", "Track", "Intro.\n\n## Late parcels\nWait a day.\n")
    translate(root, "orders/track.de.md", "Sendung verfolgen", track)
    assert check_articles(root) == []
    corpus = load_corpus(root)
    [german] = corpus.translations
    assert [a.slug for a in corpus.articles] == ["track"]
    assert (german.slug, german.lang, german.translation_of, german.category) == ("track", "de", "track", "orders")
    report = build_index(root, tmp_path / "index", HashingEmbedder())
    assert report.articles == 1 and not report.errors


def test_a_translation_older_than_its_source_is_flagged_with_the_revision_to_set(tmp_path):
    root = tmp_path / "tree"
    track = article(root, "orders/track.md", "Track", "Intro.\n")
    translate(root, "orders/track.fr.md", "Suivre", track)
    old = load_article(track, root).revision
    article(root, "orders/track.md", "Track", "Intro, now with more to say.\n")
    new = load_article(track, root).revision
    assert found(root) == [("track.fr.md", 4, f"source_revision: track.md changed since this translation was made "
                                              f"(from {old}, now {new}): bring the translation up to date, then "
                                              f"set source_revision: {new}", "warning")]


def test_a_translation_without_a_source_or_revision_is_an_error(tmp_path):
    root = tmp_path / "tree"
    track = article(root, "orders/track.md", "Track", aliases="[order-tracking]")
    article(root, "orders/gone.de.md", "Weg", source_revision="0123456789ab")
    article(root, "orders/renamed.de.md", "Umbenannt", translation_of="order-tracking",
            source_revision="0123456789ab")
    article(root, "orders/norev.de.md", "Ohne", translation_of="track")
    article(root, "orders/badrev.fr.md", "Mauvais", translation_of="track", source_revision="abc")
    messages = {(name, message) for name, _line, message, severity in found(root) if severity == "error"}
    assert ("gone.de.md", "translation_of: there is no article 'gone' to translate") in messages
    assert ("renamed.de.md", "translation_of: there is no article 'order-tracking' to translate (it is now "
                             "'track': rename the file and set translation_of)") in messages
    assert any(name == "norev.de.md" and "source_revision: is required in a translation" in m for name, m in messages)
    assert ("badrev.fr.md", "source_revision: 'abc' must be 12 hex digits") in messages
    assert load_corpus(root).articles[0].path == track


def test_slugs_colliding_across_languages_are_errors(tmp_path):
    root = tmp_path / "tree"
    track = article(root, "orders/track.md", "Track")
    article(root, "orders/cancel.md", "Cancel")
    translate(root, "orders/track.de.md", "Verfolgen", track, slug="cancel")  # another source's slug
    translate(root, "orders/track-copy.de.md", "Kopie", track, translation_of="track")
    translate(root, "orders/track-again.de.md", "Nochmal", track, translation_of="track")  # "track" twice in de
    messages = [(name, message) for name, _line, message, severity in found(root) if severity == "error"]
    assert messages == [
        ("track-copy.de.md", f"slug 'track' is already used in 'de' by {root / 'orders' / 'track-again.de.md'}"),
        ("track.de.md", f"slug 'cancel' is the slug of another article, {root / 'orders' / 'cancel.md'}")]


def test_a_revision_yaml_would_read_as_a_number_is_read_as_written(tmp_path):
    root = tmp_path / "tree"
    track = article(root, "orders/track.md", "Track")
    path = article(root, "orders/track.de.md", "Verfolgen", source_revision="012345670123")  # octal to YAML 1.1
    assert load_article(path, root).source_revision == "012345670123"
    assert load_article(track, root).revision != "012345670123"


def test_a_source_cannot_claim_to_be_a_translation(tmp_path):
    root = tmp_path / "tree"
    article(root, "orders/track.md", "Track", translation_of="cancel")
    assert [(n, m) for n, _l, m, _s in found(root)] == [
        ("track.md", "translation_of: belongs in a translation (a file named <slug>.<lang>.md), not in track.md")]
