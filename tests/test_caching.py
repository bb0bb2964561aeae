"""Public pages a CDN may cache (the same bytes for everybody, ETag and 304), private pages that stay private,
fingerprinted assets, and the brand from settings."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from kb_site import create_app
from kb_site.config import ConfigError
from tests.conftest import csrf_token, make_site

PUBLIC = ["/", "/categories/returns", "/articles/return-policy", "/sitemap.xml"]


def vote(client, slug: str, helpful: str) -> None:
    response = client.post(f"/articles/{slug}/feedback", data={"helpful": helpful},
                           headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"})
    assert response.status_code == 200


def test_public_pages_are_the_same_bytes_for_every_visitor(app):
    """A visitor who searched, voted and holds a session sees exactly what a first-time visitor sees: no token,
    no vote, no cookie, no Vary: Cookie."""
    regular, first_time = app.test_client(), app.test_client()
    regular.get("/search?q=refund")
    vote(regular, "return-policy", "no")
    regular.get("/visitor.json?article=return-policy")
    assert regular.get_cookie("session") is not None
    for path in PUBLIC:
        mine, theirs = regular.get(path), first_time.get(path)
        assert mine.status_code == theirs.status_code == 200
        assert mine.data == theirs.data, f"{path} differs between visitors"
        assert "Set-Cookie" not in mine.headers and "Cookie" not in mine.headers.get("Vary", "")
        assert not re.search(rb'name="csrf[-_]token" (content|value)="[^"]', mine.data)
    assert first_time.get_cookie("session") is None


def test_public_pages_revalidate_with_304_and_change_tag_when_they_change(app):
    """ETag and Last-Modified come from the index generation (and the page's votes); a current copy gets 304
    with no body; a vote on the article, or a new index, gives it a new tag."""
    client = app.test_client()
    first = client.get("/articles/return-policy")
    tag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=600"
    assert first.headers["Last-Modified"]
    again = client.get("/articles/return-policy", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag
    since = client.get("/articles/return-policy", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304
    assert client.get("/articles/return-policy", headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get("/categories/returns").headers["ETag"] != tag  # a tag a page

    vote(app.test_client(), "return-policy", "yes")
    counted = client.get("/articles/return-policy", headers={"If-None-Match": tag})
    assert counted.status_code == 200 and counted.headers["ETag"] != tag
    assert "1 of 1 found this helpful" in counted.get_data(as_text=True)


def test_an_edited_article_gets_a_new_tag(tmp_path, corpus, fake_embedder):
    from search import build_index

    app = make_site(tmp_path, corpus, fake_embedder)
    client = app.test_client()
    tag = client.get("/articles/return-policy").headers["ETag"]
    path = corpus / "returns" / "return-policy.md"
    path.write_text(path.read_text().replace("within 30 days", "within 45 days"))
    build_index(corpus, Path(app.instance_path) / "index", fake_embedder)
    changed = client.get("/articles/return-policy", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and "45 days" in changed.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/search?q=refund", "/search", "/contact", "/visitor.json",
                                  "/articles/return-policy/feedback", "/staff/login", "/api/search?q=refund"])
def test_the_visitors_own_pages_are_never_stored(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] in ("private, no-store", "no-store")
    assert "ETag" not in response.headers


def test_visitor_json_gives_the_token_and_the_visitors_own_vote(app):
    client = app.test_client()
    assert client.get("/visitor.json?article=return-policy").get_json()["vote"] is None
    vote(client, "return-policy", "no")
    state = client.get("/visitor.json?article=return-policy").get_json()
    assert state["article"] == "return-policy" and state["vote"] == {"helpful": False, "reason": False,
                                                                     "comment": False}
    assert state["csrf_token"]
    assert client.get("/visitor.json?article=nope").get_json()["vote"] is None


def test_assets_are_fingerprinted_and_kept_a_year(client):
    html = client.get("/").get_data(as_text=True)
    css = re.search(r'href="/static/css/site\.([0-9a-f]{12})\.css"', html)
    root = Path(__file__).parent.parent / "static"
    assert css and css.group(1) == hashlib.sha256((root / "css" / "site.css").read_bytes()).hexdigest()[:12]
    with client.get(f"/static/css/site.{css.group(1)}.css") as served:
        assert served.status_code == 200 and served.data == (root / "css" / "site.css").read_bytes()
        assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    with client.get("/static/css/site.000000000000.css") as stale:  # an old page during a deploy gets styles
        assert stale.status_code == 200 and "immutable" not in stale.headers["Cache-Control"]
    with client.get("/static/css/site.css") as plain:
        assert "immutable" not in plain.headers["Cache-Control"]
    for bad in ["/static/../kb_site/config.py", "/static/css/../../kb_site/config.py", "/static/nope.000000000000.css"]:
        with client.get(bad) as refused:
            assert refused.status_code == 404


def test_the_brand_comes_from_settings(tmp_path, corpus, fake_embedder):
    """Logo, shop link, footer links and colour reach every page; the colour through a stylesheet (no inline
    style: the CSP forbids it) with a shade for the dark scheme that stays readable."""
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "mark.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    app = make_site(tmp_path, corpus, fake_embedder, SHOP_URL="https://shop.example.com", SHOP_NAME="Pine & Peak",
                    LOGO="mark.png", BRAND_COLOR="#7a2e8e",
                    FOOTER_LINKS='{"Privacy": "https://shop.example.com/privacy", "Terms": "/terms"}')
    client = app.test_client()
    html = client.get("/articles/return-policy").get_data(as_text=True)
    assert ('<a class="shop-link" href="https://shop.example.com"><span aria-hidden="true">←</span> '
            'Back to Pine &amp; Peak</a>') in html
    assert '<a href="https://shop.example.com/privacy">Privacy</a>' in html and '<a href="/terms">Terms</a>' in html
    logo = re.search(r'<img class="brand-logo" src="(/brand/logo\.[0-9a-f]{12}\.png)" alt=""', html).group(1)
    with client.get(logo) as served:
        assert served.status_code == 200 and served.mimetype == "image/png"
        assert "immutable" in served.headers["Cache-Control"]
    sheet = client.get(re.search(r'href="(/brand\.[0-9a-f]{12}\.css)"', html).group(1))
    text = sheet.get_data(as_text=True)
    assert sheet.mimetype == "text/css" and "--brand: #7a2e8e;" in text and "prefers-color-scheme: dark" in text
    from kb_site.brand import DARK_BACKGROUND, DARK_SOFT, LIGHT_SOFT, contrast, parse_colour

    light_link, dark_link = (parse_colour(c) for c in re.findall(r"--link: (#[0-9a-f]{6})", text))
    assert contrast(light_link, LIGHT_SOFT) >= 4.5 and contrast(light_link, (255, 255, 255)) >= 4.5
    assert contrast(dark_link, DARK_BACKGROUND) >= 4.5 and contrast(dark_link, DARK_SOFT) >= 4.5


def test_the_bundled_shop_has_its_logo(tmp_path):
    """The sample articles carry the sample shop's logo; no setting is needed to show it."""
    from kb_site.brand import EXTENSION

    articles = Path(__file__).parent.parent / "articles"
    app = create_app({"INSTANCE_DIR": str(tmp_path), "ARTICLES_DIR": str(articles), "TESTING": True})
    assert app.extensions[EXTENSION].logo == (articles / "logo.svg").resolve()
    with app.test_client().get(f"/brand/{app.extensions[EXTENSION].logo_name}") as served:
        assert served.status_code == 200 and served.mimetype == "image/svg+xml"
        assert "sandbox" in served.headers["Content-Security-Policy"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"BRAND_COLOR": "#ffd84d"}, "too light for white text"),
    ({"BRAND_COLOR": "green"}, "must be a colour like"),
    ({"FOOTER_LINKS": '{"Evil": "javascript:alert(1)"}'}, "must link to an http(s) address"),
    ({"FOOTER_LINKS": "[1, 2]"}, "JSON object of labels"),
    ({"SHOP_URL": "shop.example.com"}, "KB_SHOP_URL"),
    ({"LOGO": "missing.svg"}, "is in neither the instance folder"),
])
def test_bad_brand_settings_stop_the_start_with_a_clear_message(tmp_path, corpus, settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_app({"INSTANCE_DIR": str(tmp_path), "ARTICLES_DIR": str(corpus), "TESTING": True, **settings})


def test_too_light_a_colour_is_refused_with_one_that_works(tmp_path, corpus):
    from kb_site.brand import contrast, parse_colour

    with pytest.raises(ConfigError) as refused:
        create_app({"INSTANCE_DIR": str(tmp_path), "ARTICLES_DIR": str(corpus), "BRAND_COLOR": "#6cb4ff"})
    suggested = re.search(r"try (#[0-9a-f]{6})", str(refused.value)).group(1)
    assert contrast(parse_colour(suggested), (255, 255, 255)) >= 4.5


def test_article_shows_reading_time_and_helpful_count(app):
    for answer in ("yes", "yes", "no"):
        vote(app.test_client(), "return-policy", answer)
    html = app.test_client().get("/articles/return-policy").get_data(as_text=True)
    assert re.search(r"<span>\d+ min read</span>", html)
    assert '<p class="feedback-tally" data-kb="helpful-count">2 of 3 found this helpful</p>' in html
    assert "found this helpful" not in app.test_client().get("/articles/refund-timescales").get_data(as_text=True)


def test_a_category_page_searches_in_its_category(client):
    html = client.get("/categories/returns").get_data(as_text=True)
    form = html.split('class="search-form search-form--category"')[1].split("</form>")[0]
    assert 'placeholder="Search in Returns"' in form or "Search in " in form
    assert '<input type="hidden" name="category" value="returns">' in form
