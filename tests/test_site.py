"""The help pages through the test client: what a visitor sees, and where links lead."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from kb_site.db import database
from kb_site.models import Event


def events(app, kind: str) -> list[Event]:
    with app.app_context(), database().sessions() as s:
        return list(s.query(Event).filter_by(kind=kind).order_by(Event.id))


def test_home_lists_categories_with_counts_and_featured_articles(client):
    """Home has the search combobox, every category with its article count, and articles to start with."""
    html = client.get("/").get_data(as_text=True)
    assert 'role="combobox"' in html and 'action="/search"' in html
    assert re.search(r'href="/categories/products">Products</a>.*?5 articles', html, re.S)
    assert re.search(r'href="/categories/orders">.*?2 articles', html, re.S)  # the draft is not counted
    assert "Most helpful articles" in html and 'href="/articles/' in html
    assert '<link rel="canonical" href="http://localhost/">' in html


def test_category_page_lists_its_articles_and_404s_unknown(client):
    """A category page lists its published articles; an unknown one is a 404 with a search box."""
    html = client.get("/categories/returns").get_data(as_text=True)
    assert "Return policy" in html and "When will I get my refund" in html
    assert "<title>Returns · " in html
    missing = client.get("/categories/nope")
    assert missing.status_code == 404 and 'role="search"' in missing.get_data(as_text=True)


def test_article_page_has_toc_anchors_breadcrumbs_and_related(client):
    """An article shows its contents, heading anchors with links, breadcrumbs, date and related articles."""
    response = client.get("/articles/return-policy")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<h2 id="print-a-returns-label">' in html
    assert '<a class="anchor" href="#print-a-returns-label"' in html
    assert '<a href="#items-we-cannot-accept">' in html  # table of contents
    assert re.search(r'class="breadcrumbs".*?href="/categories/returns"', html, re.S)
    assert '<time datetime="2026-09-30">30 September 2026</time>' in html
    related = html[html.index('id="related-title"'):]
    first = re.findall(r'href="/articles/([\w-]+)"', related)
    assert first[0] == "refund-timescales"  # hand-picked first, then nearest by embedding
    assert len(first) >= 3 and "return-policy" not in first
    assert '<meta name="description" content="Send items back within 30 days.">' in html
    assert '<link rel="canonical" href="http://localhost/articles/return-policy">' in html


def test_alias_redirects_permanently_keeping_the_query(client):
    """An alias answers 301 to the current URL."""
    response = client.get("/articles/order-tracking?x=1")
    assert response.status_code == 301
    assert response.headers["Location"] == "/articles/track-your-order?x=1"


def test_drafts_and_unknown_articles_are_not_found(client):
    """Drafts are not published; an unknown slug is a friendly 404 page with a search box."""
    for slug in ("draft-gift-wrapping", "no-such-article"):
        response = client.get(f"/articles/{slug}")
        assert response.status_code == 404
        html = response.get_data(as_text=True)
        assert "Page not found" in html and 'role="search"' in html and "Traceback" not in html


def test_search_page_marks_terms_links_sections_and_counts(client, app):
    """Results show the count, marked snippets, links to the best section, and record the search."""
    html = client.get("/search?q=returns+label").get_data(as_text=True)
    assert re.search(r"\d+ articles? for “returns label”", html)
    assert "<mark>" in html
    assert 'href="/articles/return-policy#print-a-returns-label"' in html
    assert '<meta name="robots" content="noindex, follow">' in html
    [search] = events(app, "search")
    assert search.query == "returns label" and search.results >= 1


def test_search_category_filter_and_facets(client):
    """Facets count matches per category; choosing one filters the results to it."""
    html = client.get("/search?q=backpack").get_data(as_text=True)
    assert re.search(r'category=products"[^>]*>Products <span class="count">\(\d+\)', html)
    filtered = client.get("/search?q=backpack&category=products").get_data(as_text=True)
    links = re.findall(r'class="result-title"><a href="/articles/([\w-]+)', filtered)
    assert links and set(links) <= {"backpack-fitting", "trailhead-backpack", "ridgeline-tent-parts",
                                     "sizing-guide", "stove-recall"}


def test_search_pagination(app):
    """Pages of results do not overlap and link to each other."""
    client = app.test_client()
    app.config["PAGE_SIZE"] = 2
    first = client.get("/search?q=order").get_data(as_text=True)
    second = client.get("/search?q=order&page=2").get_data(as_text=True)
    slugs = lambda html: re.findall(r'class="result-title"><a href="/articles/([\w-]+)', html)  # noqa: E731
    assert len(slugs(first)) == 2 and slugs(second) and not set(slugs(first)) & set(slugs(second))
    assert 'rel="next" href="/search?q=order&amp;page=2"' in first
    assert 'rel="prev"' in second
    assert client.get("/search?q=order&page=x").status_code == 400


def test_did_you_mean_and_zero_results(tmp_path, corpus):
    """A typo is corrected, with the way back to the words as typed; nothing found says so and offers
    popular articles and the way to contact support."""
    from tests.conftest import make_site

    # Lexical only: the fake embedder's hashed words would give nonsense some meaning.
    client = make_site(tmp_path, corpus, None, EMBEDDING_MODEL="none").test_client()
    html = client.get("/search?q=refnud").get_data(as_text=True)
    assert ('Showing results for <strong>refund</strong> · Search instead for '
            '<a href="/search?q=refnud&amp;spell=0">refnud</a>') in html
    assert "refund-timescales" in html
    typed = client.get("/search?q=refnud&spell=0").get_data(as_text=True)
    assert "Showing results for" not in typed and "No article answers “refnud” yet" in typed
    empty = client.get("/search?q=zzqxv+wplk").get_data(as_text=True)
    assert "No article answers “zzqxv wplk” yet" in empty
    assert 'Contact our support team' in empty and 'href="/contact?q=zzqxv+wplk"' in empty
    assert "Popular articles" in empty
    assert 'href="/categories/returns"' in empty


def test_a_query_no_article_answers_says_so_and_is_a_gap(tmp_path, corpus):
    """No confident result: the page says no article answers it, offers the nearest as "These might help"
    and the contact path, and records the search with no results (a gap on the dashboard)."""
    from tests.conftest import make_site

    app = make_site(tmp_path, corpus, None, EMBEDDING_MODEL="none")
    client = app.test_client()
    html = client.get("/search?q=tent+rental").get_data(as_text=True)  # no article says "rental"
    assert "No article answers “tent rental” yet" in html
    nearest = html.split('data-kb="nearest"')[1].split("</ol>")[0]
    assert "/articles/ridgeline-tent-parts" in nearest
    assert 'href="/contact?q=tent+rental"' in html
    assert events(app, "search")[-1].results == 0
    found = client.get("/api/search?q=tent+rental").get_json()
    assert found["total"] == 0 and found["hits"] == [] and found["nearest"][0]["slug"] == "ridgeline-tent-parts"
    app.extensions["kb_db"].engine.dispose()


def test_click_on_a_result_is_recorded(client, app):
    """Opening a result from the results page records a click with its position."""
    html = client.get("/search?q=backpack").get_data(as_text=True)
    slug = re.findall(r'class="result-title"><a href="/articles/([\w-]+)', html)[1]
    # The article page's script reports the view with the page's referrer; the page itself records nothing.
    client.get(f"/articles/{slug}", headers={"Referer": "http://localhost/search?q=backpack"})
    assert events(app, "view") == []
    client.get("/visitor.json", query_string={"article": slug, "referrer": "http://localhost/search?q=backpack"})
    client.get(f"/visitor.gif?article={slug}")  # later views without the results page are not clicks
    [click] = events(app, "click")
    assert (click.slug, click.position, click.query) == (slug, 2, "backpack")
    assert click.search_id == events(app, "search")[0].id
    assert len(events(app, "view")) == 2


def test_suggestion_pick_is_recorded(client, app):
    """A suggestion picked while typing is recorded as a search with a click."""
    from tests.conftest import csrf_token

    token = csrf_token(client)
    response = client.post("/search/picked", data={"q": "refund", "slug": "refund-timescales", "position": "1"},
                           headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert response.status_code == 200
    [click] = events(app, "click")
    assert click.slug == "refund-timescales" and click.position == 1
    bad = client.post("/search/picked", data={"q": "x", "slug": "nope"}, headers={"X-CSRFToken": token,
                                                                                "Accept": "application/json"})
    assert bad.status_code == 400 and len(events(app, "click")) == 1


def test_sitemap_and_robots(client):
    """The sitemap lists home, categories and every published article; robots.txt points to it."""
    root = ET.fromstring(client.get("/sitemap.xml").data)
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = [e.text for e in root.findall("s:url/s:loc", ns)]
    assert "http://localhost/" in locs and "http://localhost/categories/returns" in locs
    assert "http://localhost/articles/return-policy" in locs
    assert not any("draft" in loc for loc in locs)
    assert len([loc for loc in locs if "/articles/" in loc]) == 12
    robots = client.get("/robots.txt").get_data(as_text=True)
    assert "Sitemap: http://localhost/sitemap.xml" in robots and "Disallow: /search" in robots


def test_sitemap_escapes_its_addresses_for_xml(tmp_path, corpus, fake_embedder):
    """A base URL with XML's special characters still gives a well-formed sitemap listing it as given."""
    from tests.conftest import make_site

    base = "https://help.example.com/?a=1&b=<2>"
    client = make_site(tmp_path, corpus, fake_embedder, BASE_URL=base).test_client()
    response = client.get("/sitemap.xml")
    assert response.mimetype == "application/xml" and response.data.endswith(b"</urlset>\n")
    locs = [e.text for e in ET.fromstring(response.data).iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert locs[0] == base + "/" and "&amp;b=&lt;2&gt;" in response.get_data(as_text=True)


def test_base_url_sets_canonical_links(tmp_path, corpus, fake_embedder):
    """KB_BASE_URL is used for canonical links and the sitemap behind a proxy."""
    from tests.conftest import make_site

    app = make_site(tmp_path, corpus, fake_embedder, BASE_URL="https://help.example.com/")
    html = app.test_client().get("/articles/return-policy").get_data(as_text=True)
    assert '<link rel="canonical" href="https://help.example.com/articles/return-policy">' in html


def test_pages_work_without_javascript(client):
    """Every control is a link or a form: search, filters, feedback and pagination need no script."""
    html = client.get("/articles/return-policy").get_data(as_text=True)
    assert '<form class="feedback-vote" method="get" action="/articles/return-policy/feedback"' in html
    assert 'name="helpful" value="yes"' in html and 'name="helpful" value="no"' in html
    assert re.search(r'<script src="/static/js/site\.[0-9a-f]{12}\.js" defer></script>', html)
    assert "<script>" not in html  # no inline script (the CSP forbids it)
    # Without a script the view is still counted, by an image.
    assert '<noscript><img class="beacon" src="/visitor.gif?article=return-policy"' in html


def test_index_missing_is_a_503_page(tmp_path, corpus, fake_embedder):
    """Before the first index, pages say the site is being set up (503), not a stack trace."""
    from kb_site import create_app

    app = create_app({"INSTANCE_DIR": str(tmp_path / "fresh"), "ARTICLES_DIR": str(corpus),
                      "EMBEDDER": fake_embedder})
    response = app.test_client().get("/")
    assert response.status_code == 503 and "being set up" in response.get_data(as_text=True)
    assert app.test_client().get("/api/search?q=x").get_json()["error"]["status"] == 503


def test_corrupt_index_is_a_logged_503(tmp_path, corpus, fake_embedder, caplog):
    """An unreadable index answers 503 "being updated" as a page and as JSON, and the reason is logged."""
    from tests.conftest import make_site

    app = make_site(tmp_path, corpus, fake_embedder)
    for manifest in Path(app.instance_path, "index").rglob("manifest.json"):
        manifest.write_text("{")
    with caplog.at_level("ERROR"):
        page = app.test_client().get("/")
        error = app.test_client().get("/api/search?q=x").get_json()["error"]
    assert page.status_code == 503 and "being updated" in page.get_data(as_text=True)
    assert error == {"status": 503, "title": "Search is starting up",
                     "message": "The help centre is being updated. Please try again in a minute."}
    assert "IndexCorrupt" in caplog.text and "manifest.json is unreadable" in caplog.text


def test_any_other_library_error_is_a_logged_500_without_a_traceback(app, caplog):
    """A search library error no table row names is answered by its base class's row: 500, logged, no trace."""
    from search import NotLoaded

    @app.get("/boom")
    def boom():
        raise NotLoaded("the engine's library was never opened")

    with caplog.at_level("ERROR"):
        page = app.test_client().get("/boom")
        error = app.test_client().get("/boom", headers={"Accept": "application/json"}).get_json()["error"]
    assert page.status_code == 500 and "Traceback" not in page.get_data(as_text=True)
    assert error["status"] == 500 and error["message"].startswith("Something went wrong on our side")
    assert "NotLoaded" in caplog.text and "never opened" in caplog.text


def test_static_assets_are_local(client):
    """Styles and scripts are served by the site itself."""
    for asset in ("/static/css/site.css", "/static/js/site.js", "/static/favicon.svg"):
        with client.get(asset) as response:
            assert response.status_code == 200
    html = client.get("/").get_data(as_text=True)
    assert not re.search(r'src="(https?:)?//', html)
    assert not re.search(r'<link rel="(stylesheet|icon)" href="(https?:)?//', html)


def test_article_images_are_served_from_the_articles_folder(tmp_path, corpus, fake_embedder):
    """A relative image resolves under /media/; only image files are served, never outside the folder."""
    from tests.conftest import make_site

    (corpus / "products" / "images").mkdir()
    (corpus / "products" / "images" / "fit.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (corpus / "products" / "notes.txt").write_text("not an image")
    path = corpus / "products" / "backpack-fitting.md"
    path.write_text(path.read_text() + "\n![How to fit](images/fit.svg)\n")
    client = make_site(tmp_path, corpus, fake_embedder).test_client()
    html = client.get("/articles/backpack-fitting").get_data(as_text=True)
    assert '<img alt="How to fit" src="/media/products/images/fit.svg">' in html
    with client.get("/media/products/images/fit.svg") as response:
        assert response.status_code == 200 and "sandbox" in response.headers["Content-Security-Policy"]
    assert client.get("/media/products/notes.txt").status_code == 404
    assert client.get("/media/../pyproject.toml").status_code == 404
    assert client.get("/media/products/../../secret.svg").status_code == 404


def test_links_to_article_files_open_their_pages(tmp_path, corpus, fake_embedder):
    """A Markdown link to another article's file becomes a link to its page, also when its slug differs."""
    from tests.conftest import make_site

    path = corpus / "returns" / "return-policy.md"
    path.write_text(path.read_text() + "\nSee [refunds](refund-timescales.md#how-long) and "
                    "[a](../orders/cancel-an-order.md).\n")
    cancel = corpus / "orders" / "cancel-an-order.md"
    cancel.write_text(cancel.read_text().replace("title:", "slug: cancelling\ntitle:", 1))
    client = make_site(tmp_path, corpus, fake_embedder).test_client()
    html = client.get("/articles/return-policy").get_data(as_text=True)
    assert 'href="/articles/refund-timescales#how-long"' in html and 'href="/articles/cancel-an-order"' in html
    assert client.get("/articles/cancel-an-order").headers["Location"] == "/articles/cancelling"


def test_broken_revision_keeps_serving_and_is_shown_to_staff(any_db_site, corpus, fake_embedder):
    """A typo in a live article: the page, its alias and search still work; /readyz and the dashboard say why."""
    from pathlib import Path

    from search import build_index
    from tests.test_staff import signed_in

    index = Path(any_db_site.instance_path) / "index"
    client = any_db_site.test_client()
    path = corpus / "orders" / "track-your-order.md"
    good = path.read_text()
    path.write_text(good.replace("tags: [tracking, delivery]", "tags: [tracking, delivery").replace(
        "as soon as it leaves our warehouse", "when it is packed"))
    build_index(corpus, index, fake_embedder)
    page = client.get("/articles/track-your-order")
    assert page.status_code == 200 and "as soon as it leaves our warehouse" in page.get_data(as_text=True)
    assert client.get("/articles/order-tracking").headers["Location"] == "/articles/track-your-order"
    assert 'href="/articles/track-your-order' in client.get("/search?q=tracking+number").get_data(as_text=True)
    ready = client.get("/readyz")
    assert ready.status_code == 200  # the site serves: readiness stays up
    [error] = ready.get_json()["articles"]["errors"]
    assert (error["file"], error["line"], error["field"], error["slug"]) == (
        "orders/track-your-order.md", 5, None, "track-your-order")
    assert error["message"].startswith("invalid YAML front-matter") and error["since"] and error["serving"]
    editor = signed_in(any_db_site, "editor")
    html = editor.get("/staff/").get_data(as_text=True)
    panel = html[html.index('id="article-errors"'):]
    panel = panel[:panel.index("</section>")]
    assert "Articles with errors" in panel and "orders/track-your-order.md" in panel and "Line 5" in panel
    assert "invalid YAML front-matter" in panel and "still serving the version of" in panel.lower()
    assert "since" in panel.lower() and "<time datetime=\"" in panel
    path.write_text(good.replace("as soon as it leaves our warehouse", "when it is packed"))
    build_index(corpus, index, fake_embedder)
    assert "when it is packed" in client.get("/articles/track-your-order").get_data(as_text=True)
    assert client.get("/readyz").get_json()["articles"]["errors"] == []
    assert 'id="article-errors"' not in editor.get("/staff/").get_data(as_text=True)


def test_article_errors_panel_shows_front_matter_as_text(app, corpus, fake_embedder):
    """Error messages quote what editors wrote: the panel shows it as text, never as markup."""
    from pathlib import Path

    from search import build_index
    from tests.test_staff import signed_in

    (corpus / "orders" / "x.md").write_text('---\ntitle: X\nslug: "<script>alert(1)</script>"\n'
                                            'updated: "<img src=x onerror=alert(2)>"\n---\nBody\n')
    build_index(corpus, Path(app.instance_path) / "index", fake_embedder)
    html = signed_in(app, "admin").get("/staff/").get_data(as_text=True)
    panel = html[html.index('id="article-errors"'):]
    assert "&#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39; must be lowercase" in panel
    assert "&lt;img src=x onerror=alert(2)&gt;" in panel
    assert "<script>alert" not in html and "<img src=x" not in html


def test_related_articles_put_the_hand_picked_first(app):
    """An article's own `related` come first, then the nearest in meaning, five in all, never itself."""
    from kb_site.content import related
    from kb_site.search_service import service

    with app.app_context():
        engine = service().engine()
        shown = [a.slug for a in related(engine, engine.library.articles["return-policy"])]
        nearest = engine.related("return-policy", limit=8)
    assert shown[0] == "refund-timescales" and len(shown) == 5 and "return-policy" not in shown
    assert shown[1:] == [s for s in nearest if s not in ("refund-timescales", "return-policy")][:4]
