"""Symlinks never reach outside the articles folder: not published, not served, reported by kb index and kb check."""

from __future__ import annotations

from pathlib import Path

import pytest

from search import SearchEngine, build_index
from search.check import check_articles
from tests.conftest import make_site

ARTICLE = "---\ntitle: {title}\nsummary: About {title}.\n---\n\n{body}\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the articles: an article, an image and a category file that must never be published."""
    folder = tmp_path / "outside"
    (folder / "more").mkdir(parents=True)
    (folder / "leak.md").write_text(ARTICLE.format(title="Leaked secrets", body="Secret word xylophonic."))
    (folder / "more" / "walked.md").write_text(ARTICLE.format(title="Walked in", body="Outside words zebrafish."))
    (folder / "secret.png").write_bytes(b"\x89PNG outside")
    (folder / "_category.yml").write_text("title: Taken from outside\n")
    return folder


@pytest.fixture
def linked(corpus: Path, outside: Path) -> Path:
    """The corpus with links out (an article, a folder, an image, a category file) and links that stay inside."""
    (corpus / "orders" / "leak.md").symlink_to(outside / "leak.md")
    (corpus / "elsewhere").symlink_to(outside / "more", target_is_directory=True)
    (corpus / "products" / "images").mkdir()
    (corpus / "products" / "images" / "passwd.png").symlink_to("/etc/passwd")
    (corpus / "products" / "images" / "secret.png").symlink_to(outside / "secret.png")
    (corpus / "products" / "ext").symlink_to(outside, target_is_directory=True)
    (corpus / "returns" / "_category.yml").symlink_to(outside / "_category.yml")
    # Inside the folder: a shared article and image kept under _shared/, published through links.
    (corpus / "_shared").mkdir()
    (corpus / "_shared" / "faq.md").write_text(ARTICLE.format(title="Shared FAQ", body="Answers about quokkas."))
    (corpus / "_shared" / "logo.png").write_bytes(b"\x89PNG inside")
    (corpus / "shipping" / "faq.md").symlink_to("../_shared/faq.md")
    (corpus / "products" / "images" / "logo.png").symlink_to("../../_shared/logo.png")
    return corpus


def test_build_refuses_everything_that_points_outside(linked, outside, tmp_path, fake_embedder):
    """kb index leaves out an article, folder and category file that resolve outside, naming each and its target."""
    report = build_index(linked, tmp_path / "ix", fake_embedder)
    engine = SearchEngine(tmp_path / "ix", fake_embedder, pages=True)
    library = engine.library
    assert "leak" not in library.articles and "walked" not in library.articles
    assert engine.search("xylophonic", mode="lexical").total == 0
    assert engine.search("zebrafish", mode="lexical").total == 0
    assert library.category("returns").title == "Returns"  # not the outside file's title
    assert library.articles["faq"].title == "Shared FAQ"  # a link that stays inside is published
    messages = {e.path: str(e) for e in report.errors}
    assert set(messages) == {"orders/leak.md", "elsewhere", "products/images/passwd.png",
                             "products/images/secret.png", "products/ext", "returns/_category.yml"}
    assert f"points outside the articles folder, to {outside / 'leak.md'}" in messages["orders/leak.md"]
    assert f"to {outside / 'more'}" in messages["elsewhere"] and "to /etc/passwd" in messages[
        "products/images/passwd.png"]
    assert {e.path for e in library.errors} == set(messages)  # recorded in the generation for the dashboard


def test_kb_check_reports_links_out(linked, outside, runner):
    """kb check names every file or folder that points outside, and where it points; inside links pass."""
    problems = [p for p in check_articles(linked) if p.severity == "error"]
    assert sorted((p.path.relative_to(linked).as_posix(), p.message) for p in problems) == [
        ("elsewhere", f"points outside the articles folder, to {outside / 'more'}"),
        ("orders/leak.md", f"points outside the articles folder, to {outside / 'leak.md'}"),
        ("products/ext", f"points outside the articles folder, to {outside}"),
        ("products/images/passwd.png", "points outside the articles folder, to /etc/passwd"),
        ("products/images/secret.png", f"points outside the articles folder, to {outside / 'secret.png'}"),
        ("returns/_category.yml", f"points outside the articles folder, to {outside / '_category.yml'}"),
    ]
    result = runner.invoke(args=["check", str(linked)])
    assert result.exit_code == 1 and f"{linked / 'orders' / 'leak.md'}:1: points outside" in result.stdout


def test_image_links_out_are_reported_where_an_article_uses_them(tmp_path, outside):
    """An article showing an image that resolves outside is told so on its line."""
    root = tmp_path / "tree"
    (root / "a" / "img").mkdir(parents=True)
    (root / "a" / "img" / "s.png").symlink_to(outside / "secret.png")
    (root / "a" / "page.md").write_text(ARTICLE.format(title="Page", body="![s](img/s.png)"))
    assert [(p.path.name, p.line, p.message) for p in check_articles(root)] == [
        ("s.png", 1, f"points outside the articles folder, to {outside / 'secret.png'}"),
        ("page.md", 6, f"image points outside the articles folder: img/s.png (to {outside / 'secret.png'})"),
    ]


def test_media_never_follows_a_link_out(linked, tmp_path, fake_embedder):
    """/media answers 404 for any image that resolves outside the folder; links inside still serve."""
    client = make_site(tmp_path, linked, fake_embedder).test_client()
    for url in ("/media/products/images/passwd.png", "/media/products/images/secret.png",
                "/media/products/ext/secret.png", "/media/elsewhere/../products/images/passwd.png"):
        with client.get(url) as response:
            assert response.status_code == 404, url
            assert b"root:" not in response.data and b"outside" not in response.data
    with client.get("/media/products/images/logo.png") as response:
        assert response.status_code == 200 and response.data == b"\x89PNG inside"
    assert client.get("/articles/leak").status_code == 404
    assert "quokkas" in client.get("/articles/faq").get_data(as_text=True)


def test_articles_folder_that_is_itself_a_link_works(tmp_path, corpus, fake_embedder):
    """The folder is compared by its real path: a site whose articles folder is a symlink publishes as usual."""
    link = tmp_path / "current-articles"
    link.symlink_to(corpus, target_is_directory=True)
    report = build_index(link, tmp_path / "ix", fake_embedder)
    assert report.articles == 12 and report.errors == ()
    assert check_articles(link) == [p for p in check_articles(corpus)]
