"""Linting a folder of articles: each problem exactly, as ``file:line: message``, and the ``kb check`` command."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from search.check import check_articles
from tests.conftest import CORPUS

ROOT = Path(__file__).parent.parent


def write(root: Path, rel: str, text: str) -> Path:
    """Write a dedented article file under root and return its path."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def article(root: Path, rel: str, title: str, body: str = "Some text.\n", **meta: str) -> Path:
    """Write a valid article with a summary, extra front-matter lines from meta, and body."""
    lines = "".join(f"{key}: {value}\n" for key, value in meta.items())
    return write(root, rel, f"---\ntitle: {title}\nsummary: About {title}.\n{lines}---\n{body}")


def found(root: Path) -> list[tuple[str, int, str, str]]:
    """Return the problems under root as (file name, line, message, severity)."""
    return [(p.path.name, p.line, p.message, p.severity) for p in check_articles(root)]


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    """A small tree with no problems: two linked articles in one category."""
    root = tmp_path / "tree"  # beside, not around, the copy of the corpus the app fixture makes
    article(root, "orders/track.md", "Track", "Intro.\n\n## Late parcels\nWait a day.\n",
            aliases="[order-tracking]", related="[cancel]")
    article(root, "orders/cancel.md", "Cancel",
            "See [tracking](/articles/track#late-parcels), [old](/articles/order-tracking), "
            "[file](track.md#late-parcels) and [site](https://example.com/x#y).\n", related="[track]")
    return root


def test_clean_tree_has_no_problems(clean):
    """Valid articles whose links, anchors, aliases and related slugs all resolve give no problems."""
    assert check_articles(clean) == []


@pytest.mark.parametrize("folder", [ROOT / "articles", CORPUS], ids=["bundled-articles", "fixture-corpus"])
def test_shipped_articles_have_no_errors(folder):
    """The repository's own articles and the test corpus pass the check."""
    assert [str(p) for p in check_articles(folder) if p.severity == "error"] == []


def test_duplicate_slug_names_the_other_file(clean):
    """A second article claiming a slug is an error on its slug line naming the first file."""
    article(clean, "returns/copy.md", "Copy", slug="track")
    problems = check_articles(clean)
    assert [(p.path.name, p.line, p.message) for p in problems] == [
        ("copy.md", 4, f"slug 'track' is already used by {clean / 'orders' / 'track.md'}")]


def test_alias_problems(clean):
    """An alias equal to another slug, or already another article's alias, is an error on the aliases line."""
    article(clean, "returns/refunds.md", "Refunds", aliases="[cancel]")
    article(clean, "returns/money.md", "Money", aliases="[order-tracking]")
    assert found(clean) == [
        ("money.md", 4, f"aliases: 'order-tracking' is already an alias of {clean / 'orders' / 'track.md'}",
         "error"),
        ("refunds.md", 4, f"aliases: 'cancel' is the slug of {clean / 'orders' / 'cancel.md'}", "error"),
    ]


def test_related_to_missing_article_is_an_error_and_to_alias_a_warning(clean):
    """related: an unknown slug is an error, an old alias a warning that names the current slug."""
    article(clean, "orders/gifts.md", "Gifts", related="[nope, order-tracking]")
    assert found(clean) == [
        ("gifts.md", 4, "related: no article is named 'nope'", "error"),
        ("gifts.md", 4, "related: 'order-tracking' is an old alias; use 'track'", "warning"),
    ]
    assert str(check_articles(clean)[1]) == f"{clean / 'orders' / 'gifts.md'}:4: warning: related: " \
                                             "'order-tracking' is an old alias; use 'track'"


def test_broken_links_are_reported_on_their_line(clean):
    """Links to a missing article, a missing anchor, a missing .md file or own missing anchor are errors."""
    article(clean, "orders/links.md", "Links", "Intro.\n\n## Here\n[a](/articles/nope)\n"
            "[b](/articles/track#nope) [c](/articles/track#late-parcels)\n[d](other.md)\n[e](#here) [f](#gone)\n")
    assert found(clean) == [
        ("links.md", 8, "link to a missing article: /articles/nope", "error"),
        ("links.md", 9, "link to a missing section: /articles/track#nope ('track' has no heading with id 'nope')",
         "error"),
        ("links.md", 10, "link to a missing article file: other.md", "error"),
        ("links.md", 11, "link to a missing section: #gone ('links' has no heading with id 'gone')", "error"),
    ]


def test_missing_images_are_errors(clean):
    """An image that is not in the articles folder is reported; one that is, and external ones, are fine."""
    (clean / "orders" / "images").mkdir()
    (clean / "orders" / "images" / "box.png").write_bytes(b"\x89PNG")
    article(clean, "orders/pics.md", "Pics", "![a](images/box.png) ![b](images/nope.png)\n"
            "![c](https://cdn.example.com/x.png) ![d](../../outside.png)\n")
    assert found(clean) == [
        ("pics.md", 5, "image not found in the articles folder: images/nope.png", "error"),
        ("pics.md", 6, "image not found in the articles folder: ../../outside.png", "error"),
    ]


def test_link_line_counts_blank_line_after_front_matter(tmp_path):
    """A broken link is reported on its own line when a blank line separates it from the front-matter."""
    path = article(tmp_path, "a.md", "A", "\nSee [x](/articles/missing).\n")
    [problem] = check_articles(tmp_path)
    assert path.read_text().splitlines()[problem.line - 1] == "See [x](/articles/missing)."


@pytest.mark.parametrize(("body", "line", "message"), [
    pytest.param("", 4, "the article has no body text", id="front-matter only"),
    pytest.param("```markdown\n[x](/articles/example)\n```\n[y](/articles/gone)\n", 8,
                 "link to a missing article: /articles/gone", id="link in a code block"),
])
def test_one_article_one_error(tmp_path, body, line, message):
    """Front-matter only is an article with no body text; a link shown as an example inside a fenced code
    block is not a broken link, one after it is."""
    article(tmp_path, "orders/a.md", "A", body)
    assert found(tmp_path) == [("a.md", line, message, "error")]


def test_front_matter_errors_are_surfaced_with_lines(tmp_path):
    """Files that fail to load appear as problems with their line, next to the good files' problems."""
    write(tmp_path, "a/no-title.md", "---\nsummary: s\n---\nbody\n")
    write(tmp_path, "a/bad-tags.md", "---\ntitle: T\nsummary: s\ntags: oops\n---\nbody\n")
    write(tmp_path, "a/bad-yaml.md", "---\ntitle: T\ntags: [a, b\n---\nbody\n")
    problems = found(tmp_path)
    assert problems[0] == ("bad-tags.md", 4, "tags: must be a list, not str", "error")
    assert problems[1][0] == "bad-yaml.md" and problems[1][1] > 1 and "invalid YAML" in problems[1][2]
    assert problems[2] == ("no-title.md", 1, "title: is required", "error")


def test_problem_strings_are_file_line_message(tmp_path):
    """Every problem prints as path:line: message."""
    article(tmp_path, "a/one.md", "One", "[x](/articles/two)\n", related="[zzz]")
    problems = check_articles(tmp_path)
    assert len(problems) == 2
    for problem in problems:
        assert re.fullmatch(rf"{re.escape(str(tmp_path / 'a' / 'one.md'))}:\d+: .+", str(problem))


def test_missing_folder_is_one_problem(tmp_path):
    """Checking a folder that does not exist reports that, instead of raising."""
    assert [p.message for p in check_articles(tmp_path / "nope")] == ["is not a folder of articles"]


def test_kb_check_fails_on_a_broken_tree(runner, tmp_path):
    """`kb check DIR` prints each problem as file:line: message and exits 1 when there are errors."""
    root = tmp_path / "tree"
    article(root, "orders/a.md", "A", "[x](/articles/nope)\n")
    write(root, "orders/b.md", "---\nsummary: s\n---\nbody\n")
    result = runner.invoke(args=["check", str(root)])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        f"{root / 'orders' / 'a.md'}:5: link to a missing article: /articles/nope",
        f"{root / 'orders' / 'b.md'}:1: title: is required",
    ]
    assert "2 errors, 0 warnings" in result.output


def test_kb_check_passes_a_clean_tree(runner, clean):
    """`kb check DIR` on a clean tree prints no problems and exits 0."""
    result = runner.invoke(args=["check", str(clean)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "0 errors, 0 warnings" in result.output


def test_every_error_of_a_file_is_reported_with_line_and_field(tmp_path):
    """A wrong type on tags, a missing title and a bad date in one file are three problems, each located."""
    write(tmp_path, "a/three.md", "---\nsummary: s\ntags: oops\nupdated: 2026-13-45\ndraft: maybe\n---\nbody\n")
    write(tmp_path, "a/two.md", "---\ntitle: T\nsummary: s\naliases: [Not A Slug, 'also bad']\n---\nbody\n")
    write(tmp_path, "a/quoted.md", "---\ntitle: T\nsummary: s\nupdated: '30/02/2026'\nslug: Bad\n---\nbody\n")
    problems = found(tmp_path)
    assert {severity for *_, severity in problems} == {"error"}
    assert [f"{name}:{line}: {message}" for name, line, message, _ in problems] == [
        "quoted.md:4: updated: '30/02/2026' is not a date (use YYYY-MM-DD)",
        "quoted.md:5: slug: 'Bad' must be lowercase letters, digits and hyphens",
        "three.md:1: title: is required",
        "three.md:3: tags: must be a list, not str",
        "three.md:4: updated: not a real date (month must be in 1..12)",
        "three.md:5: draft: must be true or false, not str",
        "two.md:4: aliases: 'Not A Slug' is not a valid slug",
        "two.md:4: aliases: 'also bad' is not a valid slug",
    ]


def test_yaml_syntax_error_is_one_problem(tmp_path):
    """A file whose front-matter is not YAML at all gives one problem, at the line YAML stopped."""
    write(tmp_path, "a/bad.md", "---\ntitle: T\nsummary: s\ntags: [a, b\nupdated: 2026-01-01\n---\nbody\n")
    [(name, line, message, _)] = found(tmp_path)
    assert name == "bad.md" and line > 1 and message.startswith("invalid YAML front-matter")


def test_a_file_that_only_failed_to_parse_causes_no_follow_on_errors(clean):
    """Links and related slugs naming an article that failed to parse are not reported as broken."""
    write(clean, "orders/broken.md", "---\ntitle: Broken\nslug: fixed-slug\naliases: [old-one]\ntags: x\n---\n"
          "## Part\nbody\n")
    write(clean, "orders/no-yaml.md", "---\ntitle: [unclosed\nsummary: s\n---\nbody\n")
    write(clean, "orders/sluggish.md", "---\ntitle: [unclosed\nslug: slow-one\n---\nbody\n")
    article(clean, "orders/linker.md", "Linker",
            "[a](/articles/fixed-slug) [b](broken.md) [c](/articles/no-yaml#part) [d](no-yaml.md)\n"
            "[e](/articles/slow-one) [f](/articles/old-one)\n[g](/articles/gone)\n",
            related="[fixed-slug, no-yaml, slow-one]")
    problems = found(clean)
    assert [p for p in problems if p[0] == "linker.md"] == [
        ("linker.md", 8, "link to a missing article: /articles/gone", "error")]
    assert {p[0] for p in problems} == {"linker.md", "broken.md", "no-yaml.md", "sluggish.md"}


def test_kb_check_reports_a_wrong_order_like_the_other_fields(runner, tmp_path):
    """`order:` that is not a whole number of 0 or more is an error on its line, named by its field."""
    root = tmp_path / "tree"
    article(root, "returns/policy.md", "Policy", order="first")
    article(root, "returns/refunds.md", "Refunds", order="-2")
    article(root, "returns/exchange.md", "Exchange", order="3")
    result = runner.invoke(args=["check", str(root)])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        f"{root / 'returns' / 'policy.md'}:4: order: must be a whole number (lower comes first), not 'first'",
        f"{root / 'returns' / 'refunds.md'}:4: order: must be 0 or more (lower comes first), not -2",
    ]
