"""Snippets people can trust: section text as a reader sees it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from search import SearchEngine, build_index
from tests.fakes import HashingEmbedder

ROOT = Path(__file__).parent.parent
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
