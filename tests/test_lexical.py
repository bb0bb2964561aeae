"""Lexical search: any query string is safe and fast; codes, stems and typos; snippets are escaped."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from whoosh.analysis import Filter, LowercaseFilter, RegexTokenizer, StemFilter, StopFilter

from search import SearchEngine, build_index
from search.analysis import MAX_QUERY_CHARS, SPLIT_RE, STOP, TOKEN_RE, ShopAnalyzer, clean_query, stems


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from tests.conftest import CORPUS
    from tests.fakes import HashingEmbedder

    index = tmp_path_factory.mktemp("lexical-index")
    build_index(CORPUS, index, HashingEmbedder())
    return SearchEngine(index, HashingEmbedder())


ODD_QUERIES = [
    "NOT OR foo", "(((", '"unclosed', "*", "?", "AND", "title:refund", "refund^5", "a" * 100_000,
    "refund " * 20_000, "\x00\x01\x02 refund \x1b[31m", "📦📦 where is my 📦", "ﬁnd my ｒｅｆｕｎｄ",
    "", "   ", "-refund", "refund~2", "[to TO]", "{}", "\\", "'; DROP TABLE articles; --", "<script>alert(1)</script>",
]


@pytest.mark.parametrize("query", ODD_QUERIES, ids=range(len(ODD_QUERIES)))
def test_odd_queries_never_raise_and_stay_fast(engine: SearchEngine, query: str):
    """Operators, broken syntax, huge pastes, control characters and emoji return a list quickly."""
    for mode in ("lexical", "hybrid"):
        started = time.perf_counter()
        results = engine.search(query, mode=mode)
        assert (time.perf_counter() - started) < 0.5
        assert isinstance(results.hits, list) and results.total >= len(results.hits)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=3000))
def test_any_text_parses_within_100_ms(engine: SearchEngine, text: str):
    """Property: parsing any string never raises and takes under 100 ms."""
    started = time.perf_counter()
    parsed = engine._gen.lexical.parse(text)
    assert time.perf_counter() - started < 0.1
    assert all(weight > 0 for weight in parsed.terms.values())
    assert len(parsed.text) <= MAX_QUERY_CHARS


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["refund", "OR", "NOT", "(", ")", '"', "*", "~", "^", ":", "-", "📦", "\x00",
                                 "TH-45-GRN", "shiping"]), max_size=30).map(" ".join))
def test_any_operator_soup_returns_results_or_nothing(engine: SearchEngine, query: str):
    """Property: combinations of query-language symbols are plain input, never an error."""
    results = engine.search(query, mode="lexical")
    assert results.total == len(results.hits) or results.total > 10


def test_huge_paste_is_cut_not_rejected(engine: SearchEngine):
    """A 100 kB paste is searched by its beginning."""
    paste = "Where is my tracking number? " + "tracking " * 20_000
    assert len(paste) > 100_000
    assert engine.search(paste, mode="lexical").hits[0].slug == "track-your-order"


def test_clean_query_removes_controls_and_normalises():
    """Control characters go, compatibility forms are normalised, whitespace is collapsed."""
    assert clean_query("ﬁnd\x00\tmy\n\nｒｅｆｕｎｄ") == "find my refund"


def test_stemming_matches_word_forms(engine: SearchEngine):
    """'refunded' and 'refunds' match 'refund'; stop words alone match nothing."""
    assert stems("refunded refunds refunding") == ["refund"] * 3
    assert engine.search("refunded", mode="lexical").hits[0].slug == "refund-timescales"
    assert engine.search("the and of", mode="lexical").total == 0


def test_codes_are_whole_tokens_and_parts():
    """A product code is indexed whole and by its parts, so TH45GRN and 'TH 45' both match."""
    assert stems("TH-45-GRN") == ["th", "45", "grn", "th45grn"]
    assert stems("e-mail") == ["e", "mail", "email"]


def test_us_is_not_a_stop_word():
    """'US' matters to a shop that ships there."""
    assert "us" in stems("shipping to the US")


def test_snippet_escapes_html(engine: SearchEngine):
    """Snippets escape article text and only add <mark> tags."""
    snippet = engine._gen.lexical.snippet("Refunds <script>alert(1)</script> & more", ["refund"])
    assert snippet == "<mark>Refunds</mark> &lt;script&gt;alert(1)&lt;/script&gt; &amp; more"


def test_bad_mode_or_limit_is_a_query_error(engine: SearchEngine):
    """Unknown modes and out-of-range limits raise QueryError, a ValueError with a clear message."""
    from search import QueryError

    with pytest.raises(QueryError, match="mode"):
        engine.search("refund", mode="fuzzy")
    with pytest.raises(QueryError, match="limit"):
        engine.search("refund", limit=0)


class _ReferenceCompound(Filter):
    """The plain whoosh way to split codes: parts, then the joined whole, with character offsets."""

    def __call__(self, tokens):
        for token in tokens:
            text = token.text
            parts = [p for p in SPLIT_RE.split(text) if p]
            if len(parts) < 2 and not SPLIT_RE.search(text):
                yield token
                continue
            start, offset = token.startchar, 0
            for part in parts:
                offset = text.index(part, offset)
                token.text, token.startchar, token.endchar = part, start + offset, start + offset + len(part)
                offset += len(part)
                yield token
            token.text, token.startchar, token.endchar = "".join(parts), start, start + len(text)
            yield token


REFERENCE = (RegexTokenizer(TOKEN_RE) | _ReferenceCompound() | LowercaseFilter()
             | StopFilter(stoplist=STOP, minsize=1) | StemFilter())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("abcXYZ éß019-./'’ _\n")) | st.sampled_from(
    ["the ", "shipping ", "TH-45-GRN ", "refunds ", "e-mail ", "don't ", "US ", "3.5mm "]), max_size=60).map("".join))
def test_one_pass_analyzer_equals_the_whoosh_chain(text: str):
    """Property: ShopAnalyzer gives the same terms, offsets and stop flags as the composed whoosh filters."""
    for options in ({}, {"chars": True, "removestops": False, "mode": "query"}):
        ours = [(t.text, t.stopped, getattr(t, "startchar", None)) for t in ShopAnalyzer()(text, chars=True, **{
            k: v for k, v in options.items() if k != "chars"})]
        theirs = [(t.text, t.stopped, getattr(t, "startchar", None)) for t in REFERENCE(text, chars=True, **{
            k: v for k, v in options.items() if k != "chars"}) if t.text]  # ours never yields an empty term
        assert ours == theirs


def test_a_long_section_is_shown_where_its_terms_meet(engine: SearchEngine):
    """A long section's snippet starts at the sentence holding the query's terms, whole, its words marked
    ("locker" is not a word of the fixture corpus)."""
    filler = "Our team packs every order with care and checks it twice before it leaves. " * 40
    text = f"{filler}Deliveries to a parcel locker arrive within two days. {filler}"
    terms = engine._gen.lexical.parse("parcel locker delivery").terms
    snippet = engine._gen.lexical.snippet(text, terms)
    assert snippet.startswith("<mark>Deliveries</mark> to a <mark>parcel</mark> locker arrive within two days. ")
    assert len(snippet.replace("<mark>", "").replace("</mark>", "")) <= 240


def test_a_code_names_one_thing_a_year_does_not():
    """Codes that put their articles first: letters with digits, or five digits or more; not a year or "45"."""
    from search.lexical import _is_code

    assert all(_is_code(t) for t in ("th45grn", "nw482193", "30910", "covid19"))
    assert not any(_is_code(t) for t in ("2019", "45", "1000", "refund"))
