"""A missing article's page suggests the articles its address probably meant, the same page for everybody."""

from __future__ import annotations

import re

import pytest

from search.near import NearNames

DID_YOU_MEAN = re.compile(r'<div class="near-articles" data-kb="did-you-mean">.*?</div>', re.S)


def near(html: str) -> list[tuple[str, str]]:
    """Return the (address, title) of each article the page suggests."""
    found = DID_YOU_MEAN.search(html)
    return re.findall(r'<a href="([^"]+)">([^<]+)</a>', found.group(0)) if found else []


@pytest.mark.parametrize("slug", ["retrun-polcy", "return-policies-2024", "Return_Policy", "our-retrun-policy"])
def test_a_mistyped_or_wordier_address_suggests_the_article(client, slug):
    """A typo, extra words, a year, another case: the 404 asks "Did you mean" with a link to the article."""
    response = client.get(f"/articles/{slug}")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert near(html) == [("/articles/return-policy", "Return policy")]
    assert 'Did you mean: <a href="/articles/return-policy">Return policy</a>?' in html


@pytest.mark.parametrize("slug", ["qqzzxx-wwvv", "banana-bread", "how-to-do-it", "2024", "x" * 300])
def test_nothing_close_suggests_nothing(client, slug):
    """An address sharing no word with any article's name (or only function words and numbers): no "Did you mean"."""
    response = client.get(f"/articles/{slug}")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and "Did you mean" not in html and "near-articles" not in html
    assert "Search the help centre" in html


def test_the_missing_article_page_is_the_same_for_every_visitor(client, app):
    """No CSRF token (or anything else of the visitor's) on the suggesting 404: a visitor with a session and a
    newcomer get the same bytes."""
    regular = app.test_client()
    regular.get("/contact")  # a private page: a session, a token
    regular.get("/visitor.json")
    mine = regular.get("/articles/retrun-polcy")
    theirs = client.get("/articles/retrun-polcy")
    assert mine.status_code == theirs.status_code == 404
    assert mine.data == theirs.data
    assert not re.search(rb'csrf[-_]token', mine.data)
    assert "Set-Cookie" not in theirs.headers


def test_an_api_client_gets_the_suggestions_too(client):
    """Asked for JSON, the 404 carries the same suggestions, title and address."""
    body = client.get("/articles/retrun-polcy", headers={"Accept": "application/json"}).get_json()
    assert body["error"]["status"] == 404
    assert body["error"]["suggestions"] == [{"title": "Return policy", "url": "/articles/return-policy"}]


NAMES = [
    ("return-policy", ["return-policy", "Our return policy"]),
    ("returning-a-gift", ["returning-a-gift", "Returning a gift"]),
    ("gift-cards", ["gift-cards", "Gift cards and e-gift cards"]),
    ("gift-wrapping", ["gift-wrapping", "Gift wrapping and gift messages"]),
    ("gift-vouchers", ["gift-vouchers", "Gift vouchers", "gift-certificates"]),
    ("track-your-order", ["track-your-order", "Track your order", "order-tracking"]),
]


def test_at_most_three_suggestions_best_first():
    """Many equally near: three, those naming fewer other things first; the best one alone when it stands out."""
    names = NearNames(NAMES)
    assert names.nearest("gift") == ["gift-cards", "returning-a-gift", "gift-vouchers"]  # 1 of 2 words, then of 3
    assert names.nearest("gift", limit=1) == ["gift-cards"]
    assert names.nearest("retrun-policy") == ["return-policy"]  # not every article with "return" in it


def test_aliases_and_stems_count_as_names():
    """An old slug's words (an alias) and other forms of a word (policies, certificate) match."""
    names = NearNames(NAMES)
    assert names.nearest("order-trackng") == ["track-your-order"]
    assert names.nearest("gift-certificate") == ["gift-vouchers"]
    assert names.nearest("return-policies") == ["return-policy"]


def test_half_the_words_must_match():
    """One matched word of three is no suggestion; a word is the same only when nearly so ("gift" is not "lift")."""
    names = NearNames(NAMES)
    assert names.nearest("ski-lift-passes") == []
    assert names.nearest("lift") == []
    assert names.nearest("the-and-of") == [] and names.nearest("") == []
