"""The answer on top, extracted from one section: whole sentences as written, chosen by the query's topic words."""

from __future__ import annotations

from search.analysis import stems
from search.answers import MOST_CHARS, extract, revision

SECTION = "\n".join([
    "We refund the way you paid. Most refunds reach you within 5 working days.",
    "If you paid with PayPal, the money is back within 24 hours. Klarna updates your plan within 2 days.",
    "Gift cards are refunded to a new gift card.",
])


def terms(query: str, **weights: float) -> tuple[dict[str, float], dict[str, str]]:
    words = {stems(w)[0]: w for w in query.lower().split() if stems(w)}
    return {t: weights.get(w, 1.0) for t, w in words.items()}, words


def test_the_sentences_with_most_topic_words_and_the_next_one():
    """The best sentence, then the next ones of its paragraph while they fit."""
    answer = extract(SECTION, *terms("paypal refund how long", paypal=3.0))  # a rarer word tells more
    assert answer == ("If you paid with PayPal, the money is back within 24 hours. "
                      "Klarna updates your plan within 2 days.")


def test_function_words_choose_nothing():
    """"how do i" matches every paragraph equally: the section's first sentences are the answer."""
    assert extract(SECTION, *terms("how do i")).startswith("We refund the way you paid.")


def test_a_short_lead_in_goes_on_with_the_rows_it_introduces():
    rows = "All times are UK time.\nMonday to Friday: 8am to 8pm\nSaturday: 9am to 5pm\nSunday: closed"
    assert extract(rows, *terms("what time")) == rows


def test_an_answer_is_never_longer_than_three_lines():
    long = " ".join(["This sentence about parcels goes on and on"] * 20) + "."
    answer = extract(long, *terms("parcels"))
    assert len(answer) <= MOST_CHARS + 2 and answer.endswith(" …") and long.startswith(answer[:-2])


def test_a_section_revision_changes_with_its_text():
    assert revision("Fees", "£3.95") == revision("Fees", "£3.95") != revision("Fees", "£4.95")
    assert len(revision("", "")) == 16


def test_a_table_row_is_an_answer_of_its_own():
    rows = "Card: 3 to 5 working days\nPayPal: Within 24 hours\nGift card: Instantly"
    assert extract(rows, *terms("paypal")) == "PayPal: Within 24 hours"
