"""Integration: the real model over the fixture corpus — meaning, codes, typos, deep links, explanation."""

from __future__ import annotations

import pytest

from search import SearchConfig, SearchEngine, build_index
from search.analysis import stems
from search.embeddings import same_model
from tests.fakes import HashingEmbedder

pytestmark = pytest.mark.model


def test_meaning_match_with_no_shared_words(real_engine: SearchEngine):
    """A question sharing no word with the article still finds it first, through embeddings."""
    results = real_engine.search("lost my login details")
    best = results.hits[0]
    assert best.slug == "account-password"
    assert best.lexical_score == 0.0
    assert best.dense_score is not None and best.dense_score > 0.3
    lexical = real_engine.search("lost my login details", mode="lexical")
    assert "account-password" not in [h.slug for h in lexical.hits]


def test_exact_product_code_that_embeddings_alone_miss(real_index, real_embedder, real_engine):
    """A bare part number is found by its exact token; ranked by meaning alone it is not first."""
    everything = SearchEngine(real_index, real_embedder, SearchConfig(min_dense_score=-1.0))
    dense = everything.search("30910", mode="dense")
    assert not dense.hits  # no article is like a number with confidence
    assert dense.nearest[0].slug != "stove-recall"
    # As the site ranks: articles the model finds only faintly like a number are not matches at all.
    hybrid = real_engine.search("30910")
    assert hybrid.hits[0].slug == "stove-recall"
    assert hybrid.hits[0].anchor == "get-a-replacement-valve"


def test_hyphenated_code_beats_its_parts(real_engine: SearchEngine):
    """TH-45-BLU ranks the article holding that exact code above one holding TH-45-GRN twice."""
    assert real_engine.search("TH-45-BLU", mode="lexical").hits[0].slug == "backpack-fitting"
    assert real_engine.search("TH-45-BLU").hits[0].slug == "backpack-fitting"


@pytest.mark.parametrize(("typo", "slug", "word"), [
    ("refnud", "refund-timescales", "refund"),
    ("shiping", "delivery-times", "shipping"),
])
def test_typos_find_the_article_and_suggest_the_word(real_engine: SearchEngine, typo, slug, word):
    """A misspelt word matches the right article in every mode that reads words, and is suggested."""
    for mode in ("lexical", "hybrid"):
        results = real_engine.search(typo, mode=mode)
        assert results.hits[0].slug == slug, mode
        assert results.suggestion == word


def test_common_words_are_not_corrected(real_engine: SearchEngine):
    """A real word the corpus lacks is not 'corrected' into an unrelated one ('should' is not 'sold')."""
    assert real_engine.search("how big should my jacket be").suggestion is None


def test_hit_links_to_the_best_section(real_engine: SearchEngine):
    """The hit's URL carries the anchor of the section that answers the query."""
    hit = real_engine.search("how much is next-day delivery in the UK").hits[0]
    assert hit.slug == "delivery-times"
    assert hit.anchor == "united-kingdom"
    assert hit.url == "/articles/delivery-times#united-kingdom"
    assert hit.section == "United Kingdom"


def test_hit_explains_itself(real_engine: SearchEngine):
    """Each hit carries the fused score, both retrievers' scores, and a snippet with terms marked."""
    hit = real_engine.search("refund gift card").hits[0]
    assert hit.slug == "refund-timescales"
    assert hit.lexical_score > 0 and hit.dense_score is not None and 0 < hit.score <= 1
    assert "<mark>" in hit.snippet and "</mark>" in hit.snippet
    marked = {w.lower() for w in hit.snippet.replace("</mark>", "<mark>").split("<mark>")[1::2]}
    assert {s for w in marked for s in stems(w)} <= {"refund", "gift", "card"}


def test_drafts_are_not_searchable(real_engine: SearchEngine):
    """An article with draft: true is left out of the index."""
    results = real_engine.search("gift wrapping", limit=20)
    assert "draft-gift-wrapping" not in [h.slug for h in results.hits]


def test_category_filter_and_pagination(real_engine: SearchEngine):
    """Category filters results; pages do not overlap and the total counts every match."""
    only = real_engine.search("spare parts", category="products", limit=20)
    assert only.hits and {h.category for h in only.hits} == {"products"}
    first = real_engine.search("order", limit=1)
    second = real_engine.search("order", limit=1, offset=1)
    assert first.total == second.total >= 2
    assert not {h.slug for h in first.hits} & {h.slug for h in second.hits}


def test_nonsense_finds_nothing(real_engine: SearchEngine):
    """A query matching no word and close to no article's meaning gives zero results."""
    results = real_engine.search("zxqv wmbt")
    assert results.total == 0 and results.hits == []


def test_misspelt_query_means_the_same_to_the_model(real_engine: SearchEngine):
    """Typos blur a query's meaning; the corrected wording is embedded too, so meaning still ranks it."""
    results = real_engine.search("wher is my parcl")
    assert results.suggestion is not None and "parcel" in results.suggestion
    assert results.hits[0].slug == "track-your-order"
    plain = real_engine.search("wher is my parcel")
    assert results.hits[0].dense_score == pytest.approx(plain.hits[0].dense_score, abs=0.02)


class OtherModel(HashingEmbedder):
    """A different model: same dimension, other vectors."""

    @property
    def name(self) -> str:
        return "other-model/int8"


def test_vectors_of_another_model_are_not_used_and_the_next_build_re_embeds(corpus, tmp_path):
    """An index embedded by one model, queried by another: lexical with a reason, until a build re-embeds."""
    index = tmp_path / "index"
    build_index(corpus, index, HashingEmbedder())
    engine = SearchEngine(index, OtherModel())
    found = engine.search("refund")
    assert found.fallback and found.hits
    assert engine.mismatch and "hashing-" in engine.mismatch and "other-model/int8" in engine.mismatch
    report = build_index(corpus, index, OtherModel())
    assert not report.unchanged and report.embedded > 0
    engine.refresh()
    assert engine.mismatch is None and not engine.search("refund").fallback
    # one model on two runtimes: its vectors agree, so they are used as they are
    assert same_model("all-MiniLM-L6-v2/float32", "all-MiniLM-L6-v2/onnx-int8")


def test_only_articles_that_answer_are_results(real_engine: SearchEngine):
    """A question near many articles in meaning has a few results, not every candidate."""
    query = "how do i get my money back"
    found = real_engine.search(query)
    assert "refund-timescales" in [h.slug for h in found.hits]
    assert 0 < found.total < real_engine.search(query, honest=False).total
    assert sum(found.categories.values()) == found.total  # the facets count the results, not the candidates


def test_no_confident_article_offers_the_nearest(real_engine: SearchEngine):
    """A question no article answers has no results, and offers the closest few as "These might help"."""
    found = real_engine.search("what is the meaning of life")
    assert found.total == 0 and found.hits == [] and found.categories == {}
    assert found.nearest and len(found.nearest) <= 3
    assert real_engine.search("what is the meaning of life", offset=10).nearest == []  # only on the first page


def test_an_articles_own_question_puts_it_first(real_engine: SearchEngine):
    """A query that is one of an article's questions ranks that article first, in every mode that reads words."""
    for mode in ("lexical", "hybrid"):
        assert real_engine.search("Where is my package?", mode=mode).hits[0].slug == "track-your-order"
        assert real_engine.search("can I send something back", mode=mode).hits[0].slug == "return-policy"


@pytest.mark.parametrize(("query", "suggestion"), [
    ("cancle my order", "cancel my order"),  # the correction finds the article
    ("rent a tent", None),  # "rest a tent" finds nothing better than the tent the query names
    ("best pizza in naples", None),  # "belt pizza" answers nothing either
])
def test_a_correction_is_applied_only_when_it_finds_better(real_engine: SearchEngine, query, suggestion):
    assert real_engine.search(query).suggestion == suggestion


def test_search_instead_for_the_words_as_typed(real_engine: SearchEngine):
    """correct=False searches the words as typed: a misspelt word then matches nothing."""
    assert real_engine.search("refnud", mode="lexical").hits[0].slug == "refund-timescales"
    typed = real_engine.search("refnud", mode="lexical", correct=False)
    assert typed.suggestion is None and typed.total == 0


def test_the_answer_is_sentences_of_the_best_section(real_engine: SearchEngine):
    """A question one article answers gets its answer: whole sentences of the right section, as written."""
    found = real_engine.search("how long until the refund is on my card")
    answer = found.answer
    assert answer is not None and answer.slug == found.hits[0].slug == "refund-timescales"
    assert answer.url == f"/articles/refund-timescales#{answer.anchor}"
    doc = next(d for d in real_engine._gen.docs if d.slug == "refund-timescales")
    text = next(t for a, _, t in doc.sections if a == answer.anchor)
    assert answer.text.rstrip(" …") in " ".join(text.split())  # taken as written, never made up
    assert "within 5 working days" in answer.text
    assert len(answer.revision) == 16


def test_no_answer_when_two_articles_are_as_good(real_engine: SearchEngine):
    """No answer when nothing answers, or when the best result is not well ahead of the next."""
    assert real_engine.search("what is the meaning of life").answer is None
    assert real_engine.search("backpack", mode="lexical").answer is None  # words alone are never sure enough


def test_the_sample_shop_answers_as_a_customer_expects(bundled_engine: SearchEngine):
    """The bundled shop's checks: the parcel question gets Track your order first with its answer (the pin
    in articles/_search.yml), "how do i contact you" gets Contact us first, and the SKU finds exactly the
    articles that name it, the first one's snippet showing the code."""
    parcel = bundled_engine.search("where is my parcel")
    assert parcel.hits[0].slug == "track-your-order" and parcel.answer and parcel.answer.slug == "track-your-order"
    assert bundled_engine.search("how do i contact you").hits[0].slug == "contact-us"
    code = bundled_engine.search("TH-45-GRN")
    assert {h.slug for h in code.hits} == {"backpack-fit-guide", "damaged-or-wrong-item", "exchange-an-item"}
    assert "<mark>TH-45-GRN</mark>" in code.hits[0].snippet
    paypal = bundled_engine.search("paypal refund how long")
    assert paypal.answer and paypal.answer.text == "PayPal: Within 24 hours"
