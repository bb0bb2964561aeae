"""Snippets people can trust: section text as a reader sees it, whole sentences, no marked stop words."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search import SearchEngine, build_index
from search.analysis import TOKEN_PATTERN, stems
from tests.fakes import HashingEmbedder

ROOT = Path(__file__).parent.parent
QUERIES = [
    "paypal refund how long", "how do i return my order", "TH-45-GRN", "womens size 12 hips", "gift wrap price",
    "where is my refund", "can I pay with klarna", "parcel marked as delivered but not here", "reset my password",
    "change delivery address", "customs charges EU", "what does waterproof rating mean", "scam text from courier",
]
SPACE_BEFORE_PUNCTUATION = re.compile(r"\s[.,;:!?)]")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> SearchEngine:
    """The bundled sample articles, indexed with the fake embedder."""
    index = tmp_path_factory.mktemp("sample-index")
    build_index(ROOT / "articles", index, HashingEmbedder())
    return SearchEngine(index, HashingEmbedder())


def section(engine: SearchEngine, slug: str, anchor: str) -> str:
    doc = engine._gen.docs[engine._gen.rows[slug]]
    return next(text for a, _heading, text in doc.sections if a == anchor)


def plain(snippet: str) -> str:
    return html.unescape(snippet.replace("<mark>", "").replace("</mark>", ""))


def marked(snippet: str) -> list[str]:
    return [html.unescape(w) for w in re.findall(r"<mark>(.*?)</mark>", snippet)]


def hits(engine: SearchEngine):
    for query in QUERIES:
        for mode in ("hybrid", "lexical"):
            for hit in engine.search(query, mode=mode).hits:
                yield query, hit


# --------------------------------------------------------------------------- section text


def test_table_rows_read_as_sentences():
    """A row under a header reads "PayPal: Within 24 hours"; wider rows name their cells; no header row."""
    from search.text import section_units

    assert section_units(
        "| How you paid | Time after we issue the refund |\n|---|---|\n| PayPal | Within 24 hours |\n"
        "| **Gift card** | Instantly |\n"
    ) == ["PayPal: Within 24 hours", "Gift card: Instantly"]
    assert section_units(
        "| Size | Chest (cm) | Waist (cm) |\n|---|---|---|\n| XS | 86 to 91 | 71 to 76 |\n| S | | 76 to 81 |\n"
    ) == ["XS — Chest (cm): 86 to 91 · Waist (cm): 71 to 76", "S — Waist (cm): 76 to 81"]
    # A bare number is named by its column; a header that is a question needs no colon.
    assert section_units(
        "| UK size | EU size | Can I return it? |\n|---|---|---|\n| 8 | 36 | Yes |\n"
    ) == ["UK size 8 — EU size: 36 · Can I return it? Yes"]


def test_sample_table_row_is_one_line_of_the_section(sample: SearchEngine):
    """The refunds article's table gives the line "PayPal: Within 24 hours", without the header row."""
    lines = section(sample, "refund-timescales", "refund-times-by-payment-method").split("\n")
    assert "PayPal: Within 24 hours" in lines
    assert not any("How you paid" in line for line in lines)


def test_units_are_what_a_reader_sees():
    """Paragraphs, list items, quotes and code lines are units; link targets, images and markup are not."""
    from search.text import section_units

    source = (
        "Returns are **free** in the UK; see [our policy](/articles/return-policy#uk).\n\n"
        "![A parcel](images/parcel.png)\n\n"
        "1. Go to *Account*.\n2. Choose `Return items`, then the items:\n    - one\n    - two\n\n"
        "> Keep your proof of postage &amp; the receipt.\n\n"
        "```text\nNORTHWIND: order NW-482913\nis on its way.\n```\n\n"
        "Ask us <b>anything</b>.<script>alert(1)</script>\n"
    )
    assert section_units(source) == [
        "Returns are free in the UK; see our policy.",
        "Go to Account.",
        "Choose Return items, then the items:",
        "one", "two",
        "Keep your proof of postage & the receipt.",
        "NORTHWIND: order NW-482913", "is on its way.",
        "Ask us anything.",
    ]


def test_no_markdown_syntax_in_any_sample_section(sample: SearchEngine):
    """No pipes, separator rows, emphasis, backticks, link targets or spaces before punctuation survive."""
    texts = [text for doc in sample._gen.docs for _a, _h, text in doc.sections]
    assert texts
    for text in texts:
        for bad in ("|", "---", "**", "`", "](", "#", "/articles/"):
            assert bad not in text, (bad, text[:120])
        assert not SPACE_BEFORE_PUNCTUATION.search(text), SPACE_BEFORE_PUNCTUATION.search(text)
        assert all(text.split("\n")) or not text


@pytest.mark.parametrize(("unit", "expected"), [
    ("Use a soft tape, e.g. a sewing tape. Keep it level.", ["Use a soft tape, e.g. a sewing tape.", "Keep it level."]),
    ("Ask for locker No. 5 at the desk. It is 3.5 m away.", ["Ask for locker No. 5 at the desk.", "It is 3.5 m away."]),
    ("Go to northwindoutfitters.co.uk/track. Then wait!", ["Go to northwindoutfitters.co.uk/track.", "Then wait!"]),
    ("The code is TH-45-GRN. It fits.", ["The code is TH-45-GRN.", "It fits."]),
    ('"Your parcel couldn\'t be delivered, pay £1.45." Royal Mail never asks.',
     ['"Your parcel couldn\'t be delivered, pay £1.45."', "Royal Mail never asks."]),
    ("Wait... then go. Is it late? Call us", ["Wait... then go.", "Is it late?", "Call us"]),
    ("Signed by J. Smith. Done.", ["Signed by J. Smith.", "Done."]),
    ("Received — Means: We have it. · Can I cancel? Yes", ["Received — Means: We have it. · Can I cancel? Yes"]),
])
def test_sentences(unit: str, expected: list[str]):
    """A unit is cut at sentence ends, not at abbreviations, numbers, URLs, codes, or inside a table row."""
    from search.text import sentences

    assert sentences(unit) == expected


# --------------------------------------------------------------------------- snippets


def is_whole(piece: str, found: list[str]) -> bool:
    """Return whether a piece of a snippet is consecutive whole sentences, or one cut with "…"."""
    for i, first in enumerate(found):
        if not piece.startswith(first):
            continue
        rest, j = piece[len(first):], i + 1
        while rest and j < len(found):
            sep = next((s for s in (" ", " · ") if rest.startswith(s + found[j])), None)
            if sep is None:
                break
            rest, j = rest[len(sep) + len(found[j]):], j + 1
        if not rest:
            return True
    if piece.endswith("…"):  # one sentence too long to show: a part of it, from its start or after "…"
        core = piece.removeprefix("…").removesuffix("…")
        return any(core in s and (piece.startswith("…") or s.startswith(core)) for s in found)
    return False


def test_snippets_are_whole_sentences(sample: SearchEngine):
    """Every snippet is sentences of the hit's section, whole, each run joined by " … " to the next."""
    from search.text import sentences

    for query, hit in hits(sample):
        doc = sample._gen.docs[sample._gen.rows[hit.slug]]
        text = section(sample, hit.slug, hit.anchor) if doc.sections else doc.summary
        found = [s for unit in text.split("\n") for s in sentences(unit)]
        for piece in plain(hit.snippet).split(" … "):
            assert is_whole(piece, found), (query, hit.slug, piece)
        assert len(plain(hit.snippet)) <= 245, (query, hit.slug)


def test_snippets_have_no_space_before_punctuation(sample: SearchEngine):
    """Inline markup once left "Your provider : depends"; a snippet now reads as the page does."""
    for query, hit in hits(sample):
        assert not SPACE_BEFORE_PUNCTUATION.search(plain(hit.snippet)), (query, hit.slug, hit.snippet)


def test_stop_words_are_never_marked(sample: SearchEngine):
    """"how do i return my order" marks return and order, never how, do, i or my."""
    shown = [hit.snippet for mode in ("hybrid", "lexical")
             for hit in sample.search("how do i return my order", mode=mode).hits]
    words = {w.lower() for snippet in shown for w in marked(snippet)}
    assert words & {"return", "returns", "order", "orders"}
    assert not words & {"how", "do", "i", "my"}, words


def test_paypal_refund_snippet_shows_the_paypal_row(sample: SearchEngine):
    """The refunds table's section answers "paypal refund how long" with its PayPal row."""
    text = section(sample, "refund-timescales", "refund-times-by-payment-method")
    snippet = sample._gen.lexical.snippet(text, sample._gen.lexical.parse("paypal refund how long").terms)
    assert "<mark>PayPal</mark>: Within 24 hours" in snippet
    assert "24 hours" in plain(snippet) and "how" not in {w.lower() for w in marked(snippet)}


def test_a_code_query_shows_the_code(sample: SearchEngine):
    """The code is marked whole; a part of it alone ("TH-45-GRY" for TH-45-GRN) is not marked as the code."""
    hit = sample.search("TH-45-GRN", mode="lexical").hits[0]
    assert hit.slug == "backpack-fit-guide" and "<mark>TH-45-GRN</mark>" in hit.snippet
    text = section(sample, "exchange-an-item", "what-you-can-exchange")
    snippet = sample._gen.lexical.snippet(text, sample._gen.lexical.parse("TH-45-GRN").terms)
    assert "<mark>TH-45-GRN</mark>" in snippet and "TH-45-GRY" in plain(snippet)
    assert "TH-45-GRY" not in marked(snippet)


def test_the_code_wins_over_sentences_with_more_words(sample: SearchEngine):
    """A long section: the sentence holding the code is shown, though others hold more of the query's words."""
    filler = "Adjust the hip strap of the Trailhead 45 and the shoulder strap before a walk. " * 12
    text = f"{filler}A replacement strap for the TH-45-GRN is sold separately. {filler}"
    snippet = sample._gen.lexical.snippet(text, sample._gen.lexical.parse("TH-45-GRN hip strap adjust").terms)
    assert "<mark>TH-45-GRN</mark>" in snippet and len(plain(snippet)) <= 245


def test_an_overlong_sentence_is_cut_at_words_around_its_match(sample: SearchEngine):
    """One sentence longer than a snippet is cut at spaces, with "…", keeping the matched word."""
    words = " ".join(f"word{i}" for i in range(80))
    text = f"Our team packs {words} and a parcel locker delivery arrives {words} in the end."
    snippet = sample._gen.lexical.snippet(text, sample._gen.lexical.parse("parcel locker").terms)
    shown = plain(snippet)
    assert "<mark>parcel</mark> <mark>locker</mark>" in snippet and shown.startswith("…") and shown.endswith("…")
    assert len(shown) <= 242 and all(w in text.split() for w in shown.strip("…").split())


def test_no_query_terms_shows_the_first_sentences(sample: SearchEngine):
    """Without a matched word the snippet is the section's first whole sentences, unmarked."""
    text = section(sample, "refund-timescales", "")
    snippet = sample._gen.lexical.snippet(text, {})
    assert "<mark>" not in snippet and text.startswith(plain(snippet)[:60]) and plain(snippet).endswith(".")


WORDS = ["refund", "refunds", "day", "days", "TH-45-GRN", "th-45-gry", "hut-to-hut", "e-mail", "don't", "how",
         "my", "delivery", "deliveries", "3.5mm", "Day", "US", "us", "parcel", "(locker)", "45", "the"]


@settings(max_examples=200, deadline=None)
@given(text=st.lists(st.sampled_from(WORDS + [". ", ", ", " "]), max_size=40).map(" ".join),
       query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4))
def test_the_quick_scan_marks_what_reading_every_word_marks(text: str, query: list[str]):
    """Property: looking only where the term pattern points marks exactly the words a full reading marks."""
    from search.analysis import FUNCTION_WORDS
    from search.highlight import _sentences

    weights = dict.fromkeys((t for w in query for t in stems(w)), 1.0)
    got = [(s.text[a:b]) for s in _sentences(text, weights) for a, b in s.marks]
    expected = []
    for sentence in (s.text for s in _sentences(text, {})):
        for word in TOKEN_PATTERN.finditer(sentence):
            lower = word.group(0).lower()
            if lower in FUNCTION_WORDS:
                continue
            parts = [p for p in re.split(r"['’\-_./]", lower) if p]
            whole = stems("".join(parts))
            split = [t for p in parts for t in stems(p)] if len(parts) > 1 else []
            if any(t in weights for t in whole) or (not re.search(r"\d", lower) and any(t in weights for t in split)):
                expected.append(word.group(0))
    assert got == expected
