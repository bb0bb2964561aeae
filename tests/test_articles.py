"""Article files: front-matter validation with located errors, sections and anchors, corpus loading."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import textwrap
from pathlib import Path

import markdown
import pytest

from search.articles import ArticleError, field_line, heading_anchor, load_article, parse_article, split_sections
from search.folder import load_categories, load_corpus
from search.library import Library

FULL = """\
    ---
    title: Track your order
    summary: Find where your parcel is.
    category: orders
    tags: [tracking, delivery]
    questions:
      - where is my package
      - my order hasn't arrived
    aliases: [order-tracking]
    related: [delivery-times]
    updated: 2026-11-01
    draft: true
    slug: track-order
    owner: support-team
    ---
    Every order gets a tracking number.

    ## Find your tracking number
    Open the dispatch email.
    """


def write(root: Path, rel: str, text: str | bytes) -> Path:
    """Write an article file (dedented text, or raw bytes) under root and return its path."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> ArticleError:
    """Return the ArticleError that loading this article text raises."""
    path = write(tmp_path, "bad.md", text)
    with pytest.raises(ArticleError) as info:
        load_article(path)
    assert info.value.path == path
    return info.value


def toc_ids(headings: list[str], **options: object) -> list[str]:
    """Return the heading ids Python-Markdown's toc extension renders for these headings."""
    html = markdown.Markdown(extensions=["toc"], **options).convert("\n\n".join(f"## {h}" for h in headings))
    return re.findall(r'<h2 id="([^"]*)"', html)


def test_full_article_parses_every_field(tmp_path):
    """Every front-matter field of the format lands in the frozen Article with the right type and value."""
    article = load_article(write(tmp_path, "orders/track.md", FULL), tmp_path)
    assert (article.slug, article.title, article.summary) == ("track-order", "Track your order",
                                                              "Find where your parcel is.")
    assert article.category == "orders"
    assert article.tags == ("tracking", "delivery")
    assert article.questions == ("where is my package", "my order hasn't arrived")
    assert (article.aliases, article.related) == (("order-tracking",), ("delivery-times",))
    assert article.updated == dt.date(2026, 11, 1) and article.draft is True
    assert article.order is None
    assert article.extra == {"owner": "support-team"}
    assert article.body.startswith("Every order gets") and article.url("x") == "/articles/track-order#x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        article.title = "Changed"  # type: ignore[misc]


def test_slug_and_category_default_to_file_and_top_folder(tmp_path):
    """Without slug or category, the file name is the slug and the top folder under the root the category."""
    nested = load_article(write(tmp_path, "returns/eu/refunds.md", "---\ntitle: Refunds\n---\nx\n"), tmp_path)
    assert (nested.slug, nested.category, nested.draft, nested.updated) == ("refunds", "returns", False, None)
    top = load_article(write(tmp_path, "about.md", "---\ntitle: About\n---\nx\n"), tmp_path)
    assert (top.slug, top.category) == ("about", "")


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("---\nsummary: no title\n---\nbody\n", 1, "title", "required"),
    ("---\nsummary: s\ntitle: [a, b]\n---\nbody\n", 3, "title", "must be text"),
    ("---\ntitle: T\nsummary: s\ntags: shipping\n---\nbody\n", 4, "tags", "must be a list"),
    ("---\ntitle: T\nupdated: next week\n---\nbody\n", 3, "updated", "not a date"),
    ("---\ntitle: T\nupdated: 5\n---\nbody\n", 3, "updated", "must be a date"),
    ("---\ntitle: T\n\ndraft: 'yes'\n---\nbody\n", 4, "draft", "true or false"),
    ("---\ntitle: T\nslug: Track Order\n---\nbody\n", 3, "slug", "lowercase"),
    ("---\ntitle: T\naliases: [Old Name]\n---\nbody\n", 3, "aliases", "not a valid slug"),
    ("---\ntitle: T\norder: first\n---\nbody\n", 3, "order", "whole number (lower comes first), not 'first'"),
    ("---\ntitle: T\norder: '2'\n---\nbody\n", 3, "order", "whole number (lower comes first), not '2'"),
    ("---\ntitle: T\norder: 1.5\n---\nbody\n", 3, "order", "whole number (lower comes first), not 1.5"),
    ("---\ntitle: T\norder: true\n---\nbody\n", 3, "order", "whole number (lower comes first), not true/false"),
    ("---\ntitle: T\norder:\n---\nbody\n", 3, "order", "whole number (lower comes first), not empty"),
    ("---\ntitle: T\norder: [1]\n---\nbody\n", 3, "order", "whole number (lower comes first), not a list"),
    ("---\ntitle: T\norder: -1\n---\nbody\n", 3, "order", "must be 0 or more (lower comes first), not -1"),
])
def test_front_matter_errors_name_file_line_and_field(tmp_path, text, line, field, words):
    """Each front-matter mistake is reported as path:line: field: message at the offending key."""
    error = error_of(tmp_path, text)
    assert (error.line, error.field) == (line, field)
    assert words in error.message
    assert str(error) == f"{tmp_path / 'bad.md'}:{line}: {field}: {error.message}"


def test_field_line_reads_the_front_matter_only():
    """A key's line is found in the front-matter; the same words in the body, or no key, give line 1."""
    text = "---\ntitle: T\n\nrelated: [a]\n---\ncategory: not front-matter\n"
    assert field_line(text, "related") == 4
    assert field_line(text, "category") == 1
    assert field_line("no front-matter\nslug: x\n", "slug") == 1


def test_invalid_yaml_is_reported_past_the_first_line(tmp_path):
    """An unclosed bracket is an 'invalid YAML' error located inside the front-matter, not at line 1."""
    error = error_of(tmp_path, "---\ntitle: T\ntags: [a, b\nsummary: s\n---\nbody\n")
    assert "invalid YAML" in str(error) and error.line > 1 and error.field is None


def test_invalid_yaml_line_is_exact(tmp_path):
    """A YAML syntax error on line 3 of the file is reported at line 3."""
    assert error_of(tmp_path, "---\ntitle: T\nsummary: a: b\n---\nbody\n").line == 3


def test_impossible_date_is_an_article_error(tmp_path):
    """A date-shaped but impossible `updated` value is an ArticleError on the updated line."""
    assert error_of(tmp_path, "---\ntitle: T\nupdated: 2026-02-30\n---\nbody\n").field == "updated"


def test_yaml_is_loaded_safely(tmp_path):
    """A python/object tag is rejected as invalid YAML and never executed."""
    marker = tmp_path / "pwned"
    error = error_of(tmp_path, f"---\ntitle: !!python/object/apply:os.system ['touch {marker}']\n---\nbody\n")
    assert "invalid YAML" in error.message
    assert not marker.exists()


def test_non_utf8_file_is_a_clear_error(tmp_path):
    """Latin-1 bytes give an ArticleError that says the file is not UTF-8."""
    path = write(tmp_path, "cafe.md", "---\ntitle: Caf\xe9\n---\nbody\n".encode("latin-1"))
    with pytest.raises(ArticleError, match="not UTF-8") as info:
        load_article(path)
    assert info.value.path == path


def test_utf8_bom_is_accepted(tmp_path):
    """A file saved as UTF-8 with a byte-order mark (Windows editors) loads normally."""
    path = write(tmp_path, "bom.md", b"\xef\xbb\xbf---\ntitle: With BOM\n---\nbody\n")
    assert load_article(path).title == "With BOM"


def test_anchors_match_markdown_toc():
    """Anchors equal the toc extension's ids for punctuation, inline markup, links and duplicates."""
    headings = ["Returns & Exchanges!", "What's the cost?", "100% cotton (organic)", "Use `code` and *emphasis*",
                "See [the policy](/articles/returns) here", "FAQ", "FAQ", "FAQ", "Step 1: do it"]
    anchors = [s.anchor for s in split_sections("\n\n".join(f"## {h}" for h in headings))]
    assert anchors == toc_ids(headings)
    assert anchors[5:8] == ["faq", "faq_1", "faq_2"]


def test_unicode_anchor_matches_unicode_toc():
    """A German heading keeps its letters, as the site's toc (slugify_unicode) renders it."""
    from markdown.extensions.toc import TocExtension, slugify_unicode

    md = markdown.Markdown(extensions=[TocExtension(slugify=slugify_unicode)])
    md.convert("## Größe & Passform")
    assert heading_anchor("Größe & Passform", set()) == md.toc_tokens[0]["id"] == "größe-passform"


def test_underscore_anchor_matches_toc():
    """An underscore inside a word is kept in the id, as toc keeps it."""
    assert heading_anchor("Find your order_id", set()) == toc_ids(["Find your order_id"])[0]


def test_fenced_headings_and_intro_section():
    """Text before the first heading is a section with anchor ''; '#' lines inside fences are not headings."""
    body = textwrap.dedent("""\
        Intro text.
        ## Setup
        ```bash
        # not a heading
        ```
        ~~~
        ## also not one
        ~~~
        ### Next step
        done
        """)
    sections = split_sections(body, first_line=10)
    assert [(s.anchor, s.heading, s.level) for s in sections] == [("", "", 0), ("setup", "Setup", 2),
                                                                  ("next-step", "Next step", 3)]
    assert sections[0].text == "Intro text." and "# not a heading" in sections[1].text
    assert [s.line for s in sections] == [10, 11, 18]


@pytest.mark.parametrize("gap", [
    "",
    "\n",
])
def test_section_line_points_at_heading_in_file(tmp_path, gap):
    """Section.line is the heading's 1-based line in the file, with or without a blank line after '---'."""
    text = f"---\ntitle: T\n---\n{gap}Intro.\n\n## First\ntext\n\n## Second\nmore\n"
    path = write(tmp_path, "t.md", text)
    lines = text.splitlines()
    article = load_article(path)
    assert [lines[s.line - 1] for s in article.sections] == ["Intro.", "## First", "## Second"]


def test_load_corpus_collects_errors_skips_private_files_and_keeps_drafts(tmp_path):
    """Bad files become errors, good ones load, `_`/`.`/README files are skipped, drafts are unpublished."""
    write(tmp_path, "orders/good.md", "---\ntitle: Good\n---\nx\n")
    write(tmp_path, "orders/draft.md", "---\ntitle: Soon\ndraft: true\n---\nx\n")
    write(tmp_path, "orders/broken.md", "---\ntitle: B\ntags: oops\n---\nx\n")
    for skipped in ("_template.md", ".hidden.md", "README.md", "_drafts/old.md", "orders/readme.md"):
        write(tmp_path, skipped, "not an article at all\n")
    corpus = load_corpus(tmp_path)
    assert sorted(a.slug for a in corpus.articles) == ["draft", "good"]
    assert [(e.path.name, e.field) for e in corpus.errors] == [("broken.md", "tags")]
    assert [a.slug for a in corpus.published()] == ["good"]
    with pytest.raises(ArticleError, match="not a folder"):
        load_corpus(tmp_path / "missing")


def test_content_hash_tracks_indexed_content_only():
    """The hash changes with body or title and ignores the `updated` date."""
    base = parse_article("---\ntitle: T\nupdated: 2026-01-01\n---\nbody\n", Path("t.md"))
    later = parse_article("---\ntitle: T\nupdated: 2026-06-01\n---\nbody\n", Path("t.md"))
    assert base.content_hash == later.content_hash
    assert parse_article("---\ntitle: T\n---\nnew body\n", Path("t.md")).content_hash != base.content_hash
    assert parse_article("---\ntitle: U\n---\nbody\n", Path("t.md")).content_hash != base.content_hash


def test_load_categories_reads_yaml_and_derives_titles(tmp_path):
    """_category.yml gives title, description and order; other folders get a title from their name."""
    write(tmp_path, "orders/_category.yml", "title: Your orders\ndescription: Track and change.\norder: 2\n")
    write(tmp_path, "gift-wrapping/a.md", "---\ntitle: A\n---\nx\n")
    (tmp_path / "_private").mkdir()
    categories = load_categories(tmp_path)
    assert set(categories) == {"orders", "gift-wrapping"}
    orders = categories["orders"]
    assert (orders.title, orders.description, orders.order) == ("Your orders", "Track and change.", 2)
    assert (categories["gift-wrapping"].title, categories["gift-wrapping"].order) == ("Gift wrapping", 1000)


def test_load_categories_rejects_a_non_integer_order(tmp_path):
    """An order that is not a whole number is an error naming the file and field."""
    path = write(tmp_path, "orders/_category.yml", "title: Orders\norder: first\n")
    with pytest.raises(ArticleError, match="whole number") as info:
        load_categories(tmp_path)
    assert (info.value.path, info.value.field) == (path, "order")


def test_order_is_read_kept_out_of_extra_and_survives_the_record(tmp_path):
    """`order: 0` is the article's order (not an unknown key), and its record rebuilds it; old records have none."""
    article = load_article(write(tmp_path, "returns/policy.md", "---\ntitle: Policy\norder: 0\n---\nx\n"), tmp_path)
    assert (article.order, article.extra) == (0, {})
    record = article.record(tmp_path)
    assert record["order"] == 0 and type(article).from_record(record).order == 0
    del record["order"]
    assert type(article).from_record(record).order is None


def test_category_lists_ordered_articles_first_then_the_rest_by_title(tmp_path):
    """In a category, articles with `order` come first (lower first, ties by title), then the others by title."""
    orders = {"apples": None, "return-policy": 1, "zebra": 0, "exchange": 1, "banana": None, "cherry": 10}
    for slug, order in orders.items():
        line = f"order: {order}\n" if order is not None else ""
        write(tmp_path, f"returns/{slug}.md", f"---\ntitle: {slug.replace('-', ' ').title()}\n{line}---\nx\n")
    write(tmp_path, "orders/track.md", "---\ntitle: Track\norder: 0\n---\nx\n")
    corpus = load_corpus(tmp_path)
    library = Library.from_data({a.slug: a.record(tmp_path) for a in corpus.articles},
                                {"categories": [], "redirects": {}})
    assert [a.slug for a in library.in_category("returns")] == [
        "zebra", "exchange", "return-policy", "cherry", "apples", "banana"]
    assert [a.slug for a in library.by_title][:3] == ["apples", "banana", "cherry"]  # the A-Z list stays A-Z
    assert [a.slug for a in library.in_category("orders")] == ["track"]
