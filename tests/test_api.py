"""The JSON API: search, articles and categories, its validation, and errors that are always JSON."""

from __future__ import annotations

import pytest

HIT_FIELDS = {"slug", "title", "url", "snippet", "score", "lexical_score", "dense_score"}
PUBLISHED = 12


def as_json(response) -> dict:
    """Return the body of an API response after checking it is JSON, never an HTML page."""
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:300]
    assert not response.get_data(as_text=True).lstrip().startswith("<")
    return response.get_json()


def error_of(response, status: int) -> dict:
    """Return the error object of a JSON error response with this status."""
    assert response.status_code == status
    error = as_json(response)["error"]
    assert error["status"] == status and error["title"] and error["message"]
    return error


def test_search_returns_ranked_hits_with_scores_and_facets(client):
    """A search answers JSON hits with every score, the total, a suggestion slot and category counts."""
    response = client.get("/api/search?q=refund")
    assert response.status_code == 200
    body = as_json(response)
    assert body["hits"] and body["hits"][0]["slug"] == "refund-timescales"
    for hit in body["hits"]:
        assert HIT_FIELDS <= set(hit)
        assert hit["url"].startswith(f"/articles/{hit['slug']}")
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert "suggestion" in body and body["suggestion"] is None
    assert body["categories"].get("returns", 0) >= 1
    assert sum(body["categories"].values()) == body["total"] >= len(body["hits"])


def test_category_filter_restricts_hits_to_that_category(client):
    """Filtering by each facet gives only that category's articles, as many as the facet counted."""
    facets = as_json(client.get("/api/search?q=refund"))["categories"]
    assert facets
    for category, count in facets.items():
        body = as_json(client.get(f"/api/search?q=refund&category={category}&limit=50"))
        assert body["total"] == count == len(body["hits"])
        assert {h["category"] for h in body["hits"]} == {category}
        assert body["categories"] == facets  # facets stay unfiltered


def test_limit_and_offset_page_through_one_ranking(client):
    """Two pages of two are the first four hits of one ranking, with no article on both pages."""
    full = as_json(client.get("/api/search?q=order&limit=10"))
    assert full["total"] >= 4
    first = as_json(client.get("/api/search?q=order&limit=2"))
    second = as_json(client.get("/api/search?q=order&limit=2&offset=2"))
    one, two = [h["slug"] for h in first["hits"]], [h["slug"] for h in second["hits"]]
    assert len(one) == len(two) == 2 and not set(one) & set(two)
    assert one + two == [h["slug"] for h in full["hits"][:4]]
    assert first["total"] == second["total"] == full["total"] and second["offset"] == 2


def test_typo_gets_a_did_you_mean_suggestion(client):
    """A misspelt word is answered with the corrected query as the suggestion."""
    assert as_json(client.get("/api/search?q=refnud"))["suggestion"] == "refund"


@pytest.mark.parametrize("query", ["", "limit=0", "limit=abc", "limit=1000", "offset=-1", "mode=bogus"])
def test_bad_search_parameters_answer_json_400(client, query):
    """A missing query, or a bad limit, offset or mode, is a 400 JSON error that says what is wrong."""
    url = f"/api/search?{query}" if not query else f"/api/search?q=refund&{query}"
    message = error_of(client.get(url), 400)["message"]
    name = query.split("=")[0] or "q"
    assert f"'{name}'" in message or name in message


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_every_search_mode_is_accepted(client, mode):
    """Each documented mode answers 200 with the mode's hits."""
    response = client.get(f"/api/search?q=refund&mode={mode}")
    assert response.status_code == 200 and as_json(response)["hits"]


ODD_QUERIES = {
    "operators": "NOT OR foo", "parens": "(((", "quote": '"unclosed', "star": "*",
    "control": "\x00\x07 refund \x1b[0m\x7f", "emoji": "🎒 tent ⛺ 👍🏽", "huge": "refund " * 15_000,
}


@pytest.mark.parametrize("query", ODD_QUERIES.values(), ids=ODD_QUERIES.keys())
def test_odd_queries_never_fail(client, query):
    """Operators, unbalanced syntax, control characters, emoji and a 100 kB query all answer 200 JSON."""
    response = client.get("/api/search", query_string={"q": query})
    assert response.status_code == 200
    body = as_json(response)
    assert isinstance(body["hits"], list) and len(body["query"]) <= 1000
    assert not any(ord(c) < 32 or ord(c) == 127 for c in body["query"])


def test_articles_lists_published_articles_by_title(client):
    """The article list holds every published article, sorted by title, and no draft."""
    body = as_json(client.get("/api/articles"))
    slugs = [a["slug"] for a in body["articles"]]
    assert body["total"] == len(slugs) == PUBLISHED
    assert "draft-gift-wrapping" not in slugs
    titles = [a["title"].lower() for a in body["articles"]]
    assert titles == sorted(titles)
    assert {"slug", "title", "summary", "category", "tags", "updated", "url"} <= set(body["articles"][0])


def test_articles_filter_by_category_and_paginate(client):
    """A category lists only its published articles; limit and offset slice the full list."""
    orders = as_json(client.get("/api/articles?category=orders"))
    assert orders["total"] == 2
    assert {a["slug"] for a in orders["articles"]} == {"cancel-an-order", "track-your-order"}
    full = [a["slug"] for a in as_json(client.get("/api/articles"))["articles"]]
    page = as_json(client.get("/api/articles?limit=5&offset=5"))
    assert [a["slug"] for a in page["articles"]] == full[5:10] and page["total"] == PUBLISHED
    error_of(client.get("/api/articles?limit=0"), 400)


def test_article_has_metadata_html_sections_and_revision(client):
    """One article carries its metadata, sanitised HTML, linkable sections and a revision hash."""
    response = client.get("/api/articles/track-your-order")
    assert response.status_code == 200
    body = as_json(response)
    assert body["slug"] == "track-your-order" and body["title"] == "Track your order"
    assert body["category"] == "orders" and body["aliases"] == ["order-tracking"]
    assert body["related"] == ["delivery-times"] and body["url"].endswith("/articles/track-your-order")
    assert "tracking number" in body["html"] and isinstance(body["revision"], str) and body["revision"]
    anchors = [s["anchor"] for s in body["sections"]]
    assert {"find-your-tracking-number", "if-the-parcel-is-late"} <= set(anchors)
    for section in body["sections"]:
        assert section["heading"] and section["level"] in (1, 2, 3, 4, 5, 6)
        assert section["url"].endswith(f"/articles/track-your-order#{section['anchor']}")
        assert f'id="{section["anchor"]}"' in body["html"]  # the anchor exists on the page


def test_article_alias_redirects_permanently(client):
    """An old slug answers 301 to the article's current API address."""
    response = client.get("/api/articles/order-tracking")
    assert response.status_code == 301
    assert response.headers["Location"].endswith("/api/articles/track-your-order")


@pytest.mark.parametrize("slug", ["no-such-article", "draft-gift-wrapping"])
def test_unknown_or_draft_article_is_json_404(client, slug):
    """An unknown slug, or a draft's, is a 404 JSON error."""
    assert slug in error_of(client.get(f"/api/articles/{slug}"), 404)["message"]


def test_categories_count_published_articles(client):
    """Categories list each topic with its published-article count (drafts not counted)."""
    body = as_json(client.get("/api/categories"))
    counts = {c["slug"]: c["articles"] for c in body["categories"]}
    assert counts == {"orders": 2, "products": 5, "returns": 2, "shipping": 3}
    assert all(c["title"] and c["url"].endswith(f"/categories/{c['slug']}") for c in body["categories"])


def test_unknown_api_path_and_wrong_method_are_json(client):
    """An unknown /api/ path is a 404 JSON error, and POST to a GET route a 405 JSON error with Allow."""
    error_of(client.get("/api/nothing-here"), 404)
    error_of(client.get("/api/articles/a/b"), 404)
    response = client.post("/api/search?q=refund")
    error_of(response, 405)
    assert "GET" in response.headers["Allow"]
    error_of(client.delete("/api/articles/return-policy"), 405)
