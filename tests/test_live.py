"""Live content: edits reach the running site without a restart; renamed articles keep their links."""

from __future__ import annotations

import contextlib
import threading
import urllib.error
import urllib.request
from pathlib import Path

from kb_site.serve import watch
from search import build_index
from tests.conftest import wait_for

ROOT = Path(__file__).parent.parent


@contextlib.contextmanager
def watching(app):
    """Run the article watcher over the site's articles folder (checking every 0.2 s) for the block's duration."""
    app.config["RELOAD_INTERVAL"] = 0.2
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(app, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def test_watcher_publishes_edits_additions_and_removals(app, corpus):
    """With the watcher running, edits, new files and deletions show on the site within 10 s."""
    client = app.test_client()
    with watching(app):
        path = corpus / "returns" / "return-policy.md"
        path.write_text(path.read_text().replace("title: Return policy", "title: Our 60-day return policy"))
        assert wait_for(lambda: "Our 60-day return policy" in client.get("/articles/return-policy").get_data(
            as_text=True))
        (corpus / "returns" / "store-credit.md").write_text(
            "---\ntitle: Store credit\nsummary: Refunds as store credit.\n---\n\nStore credit never expires.\n")
        assert wait_for(lambda: client.get("/articles/store-credit").status_code == 200)
        (corpus / "products" / "stove-recall.md").unlink()
        assert wait_for(lambda: client.get("/articles/stove-recall").status_code == 404)


def test_watcher_applies_an_edit_to_search_yml(app, corpus):
    """Synonyms and pins written to _search.yml reach the running site's search within 10 s."""
    client = app.test_client()
    assert client.get("/api/search?q=rucksack&mode=lexical").get_json()["total"] == 0
    with watching(app):
        (corpus / "_search.yml").write_text("synonyms:\n  - [rucksack, backpack]\n")
        assert wait_for(lambda: client.get("/api/search?q=rucksack&mode=lexical").get_json()["total"] == 2)
        (corpus / "_search.yml").write_text("synonyms:\n  - [daypack, backpack]\n")  # seen by the watcher alone
        assert wait_for(lambda: client.get("/api/search?q=daypack&mode=lexical").get_json()["total"] == 2)
        assert client.get("/api/search?q=rucksack&mode=lexical").get_json()["total"] == 0


def test_rebuild_is_seen_at_once_and_rename_redirects(app, corpus, fake_embedder):
    """After kb index the next request sees the new index; a renamed file's old slug answers 301."""
    client = app.test_client()
    assert client.get("/articles/refund-timescales").status_code == 200
    old = corpus / "returns" / "refund-timescales.md"
    old.rename(corpus / "returns" / "when-will-i-get-my-refund.md")
    build_index(corpus, Path(app.instance_path) / "index", fake_embedder)
    response = client.get("/articles/refund-timescales")
    assert response.status_code == 301 and response.headers["Location"] == "/articles/when-will-i-get-my-refund"
    assert client.get("/articles/when-will-i-get-my-refund").status_code == 200
    # A second rename keeps the first old slug working, pointing at the newest one.
    (corpus / "returns" / "when-will-i-get-my-refund.md").rename(corpus / "returns" / "refunds.md")
    build_index(corpus, Path(app.instance_path) / "index", fake_embedder)
    assert client.get("/articles/refund-timescales").headers["Location"] == "/articles/refunds"
    assert client.get("/api/articles/when-will-i-get-my-refund").headers["Location"] == "/api/articles/refunds"


def test_category_and_related_edits_publish_without_search_changes(app, corpus, fake_embedder):
    """Front-matter that search ignores (related, categories) still reaches the pages."""
    (corpus / "returns" / "_category.yml").write_text("title: Returns and refunds\ndescription: Send it back.\n")
    build_index(corpus, Path(app.instance_path) / "index", fake_embedder)
    assert "</span> Returns and refunds</h1>" in app.test_client().get("/categories/returns").get_data(as_text=True)


def test_kb_serve_runs_migrates_indexes_and_reloads(served, corpus):
    """kb serve: gunicorn, the database migrated, the index built, and edits live within 10 s."""
    base, folder = served
    with urllib.request.urlopen(base + "/articles/return-policy") as response:
        assert response.status == 200
        assert response.headers["Server"].startswith("gunicorn")
        assert "Return policy" in response.read().decode()
    assert (folder / "instance" / "kb.sqlite3").exists() and (folder / "instance" / "secret_key").exists()
    path = corpus / "returns" / "return-policy.md"
    path.write_text(path.read_text().replace("title: Return policy", "title: Returns within 60 days"))

    def shows() -> bool:
        with urllib.request.urlopen(base + "/articles/return-policy") as response:
            return "Returns within 60 days" in response.read().decode()

    assert wait_for(shows, timeout=10)


def test_watcher_keeps_a_broken_article_live_until_it_is_fixed(app, corpus):
    """Through the watcher: a typo keeps the last good page up and shows in /readyz; the fix goes live."""
    client = app.test_client()
    with watching(app):
        path = corpus / "returns" / "return-policy.md"
        good = path.read_text()
        path.write_text(good.replace("tags: [returns]", "tags: [returns").replace("30 days of", "60 days of"))
        assert wait_for(lambda: client.get("/readyz").get_json()["articles"]["errors"])
        page = client.get("/articles/return-policy")
        assert page.status_code == 200 and "within 30 days of delivery" in page.get_data(as_text=True)
        path.write_text(good.replace("30 days of", "60 days of"))
        assert wait_for(lambda: "within 60 days of" in client.get("/articles/return-policy").get_data(as_text=True))
        assert client.get("/readyz").get_json()["articles"]["errors"] == []


def test_kb_serve_keeps_a_broken_article_live(served, corpus):
    """kb serve as users run it: a typo keeps the page and its alias up, /readyz says why, the fix goes live."""
    import json

    base, _ = served
    path = corpus / "orders" / "track-your-order.md"
    good = path.read_text()
    path.write_text(good.replace("aliases: [order-tracking]", "aliases: [order-tracking").replace(
        "leaves our warehouse", "is packed"))

    def errors() -> list:
        with urllib.request.urlopen(base + "/readyz") as response:
            return json.loads(response.read())["articles"]["errors"]

    assert wait_for(errors, timeout=20)  # the machine may be busy: a rebuild is a spawned process
    with urllib.request.urlopen(base + "/articles/order-tracking") as response:  # the alias, redirected
        assert response.url.endswith("/articles/track-your-order") and "leaves our warehouse" in response.read(
        ).decode()
    path.write_text(good.replace("leaves our warehouse", "is packed"))

    def fixed() -> bool:
        with urllib.request.urlopen(base + "/articles/track-your-order") as response:
            return "is packed" in response.read().decode()

    assert wait_for(fixed, timeout=20) and errors() == []
