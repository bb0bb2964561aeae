"""Category icons: the built-in set inlined as SVG, editors' own SVG files made safe, and what kb check says."""

from __future__ import annotations

import dataclasses
import fnmatch
import textwrap
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from flask import render_template_string
from markupsafe import Markup

from kb_site.icons import category_icon
from search import icons
from search.check import check_articles
from search.folder import Category, IconProblem, load_categories
from tests.conftest import make_site

ROOT = Path(__file__).parent.parent
SVG = "{http://www.w3.org/2000/svg}"
ALLOWED = {"svg", "g", "path", "circle", "ellipse", "rect", "line", "polyline", "polygon", "title"}
GEOMETRY = {"d", "cx", "cy", "r", "rx", "ry", "x", "y", "x1", "y1", "x2", "y2", "points", "width", "height",
            "viewBox", "fill", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin", "transform",
            "fill-rule", "opacity", "fill-opacity", "stroke-opacity"}
ROOT_ONLY = {"class", "aria-hidden", "focusable"}

SQUARE = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect x="2" y="2" width="12" height="12"/></svg>'

MALICIOUS = """\
<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet href="https://evil.example/x.css"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="32" height="32"
     onload="alert('onload')" style="background:url(https://evil.example/t.gif)">
  <script>alert('script')</script>
  <style>path { fill: url(https://evil.example/p.gif) }</style>
  <title>Parcel &lt;img src=x onerror=steal()&gt;</title>
  <foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml">
    <iframe src="javascript:alert('fo')"></iframe></div></foreignObject>
  <a xlink:href="javascript:alert('link')"><circle cx="5" cy="5" r="5"/></a>
  <use href="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=" xlink:href="https://evil.example/s.svg#x"/>
  <image href="https://evil.example/track.png" width="1" height="1"/>
  <path d="M4 4h24v24H4z" onclick="alert('click')" fill="url(javascript:alert('fill'))" stroke="#123456"
        transform="translate(1,1)"/>
  <g onmouseover="alert('g')"><line x1="0" y1="0" x2="32" y2="32" stroke-width="2"/></g>
</svg>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE svg [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<svg xmlns="http://www.w3.org/2000/svg"><title>&lol9;</title></svg>
"""


def write(root: Path, rel: str, text: str | bytes) -> Path:
    """Write a file (dedented text, or bytes) under root and return its path."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def tree(root: Path, icon: str | None, files: dict[str, str | bytes] | None = None) -> Path:
    """A valid one-article category 'returns' whose _category.yml declares ``icon`` (a YAML value), plus files."""
    write(root, "returns/policy.md", "---\ntitle: Policy\nsummary: What you can return.\n---\nText.\n")
    write(root, "returns/_category.yml", "title: Returns\norder: 3\n" + (f"icon: {icon}\n" if icon else ""))
    for rel, content in (files or {}).items():
        write(root, rel, content)
    return root


def loaded(root: Path) -> tuple[Category, list[IconProblem]]:
    """Return the 'returns' category of root and the icon problems found loading it."""
    problems: list = []
    return load_categories(root, problems=problems)["returns"], problems


def found(root: Path) -> list[tuple[str, int, str, str]]:
    """Return kb check's problems under root as (file name, line, message, severity)."""
    return [(p.path.name, p.line, p.message, p.severity) for p in check_articles(root)]


def assert_only_allowed(svg: str) -> ET.Element:
    """Parse inline SVG and assert it holds only allowlisted elements and attributes; return its root."""
    root = ET.fromstring(svg)
    for element in root.iter():
        assert element.tag.removeprefix(SVG) in ALLOWED, element.tag
        extra = ROOT_ONLY if element is root else set()
        assert set(element.attrib) <= GEOMETRY | extra, (element.tag, element.attrib)
        for value in element.attrib.values():
            assert "url(" not in value and "javascript" not in value.lower()
    return root


# The built-in set


def test_the_built_in_set_has_the_icons_a_shop_needs():
    """About twenty Lucide icons ship, under Lucide's names, with Lucide's licence next to them."""
    names = icons.builtin_names()
    assert len(names) >= 20
    assert {"truck", "package", "undo-2", "credit-card", "user", "tag", "message-circle", "ruler", "gift", "shield",
            "circle-help", "store", "leaf", "settings", "lock", "mail", "phone", "clock", "box",
            "refresh-cw"} <= set(names)
    assert icons.DEFAULT_ICON in names
    licence = (Path(icons.__file__).parent / "lucide" / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("ISC License") and "Lucide" in licence


@pytest.mark.parametrize("name", icons.builtin_names())
def test_each_built_in_icon_renders_inline_hidden_and_in_the_text_colour(name):
    """category_icon gives Markup: one inline <svg>, 24 by 24, aria-hidden, not focusable, stroked currentColor."""
    svg = category_icon(Category("c", "C", icon=name))
    assert isinstance(svg, Markup) and svg.startswith("<svg ") and svg.count("<svg") == 1
    root = assert_only_allowed(str(svg))
    assert root.get("aria-hidden") == "true" and root.get("focusable") == "false"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("24", "24", "0 0 24 24")
    assert root.get("stroke") == "currentColor" and root.get("fill") == "none"
    assert "class=\"icon\"" in svg and len(root) > 0  # shapes to draw, a class for CSS to size it


def test_a_category_without_a_usable_icon_gets_the_default():
    """No icon, an unknown name (from an old index), or no category at all: the default icon."""
    default = icons.builtin_svg(icons.DEFAULT_ICON)
    assert category_icon(Category("c", "C")) == default
    assert category_icon(Category("c", "C", icon="no-such-icon")) == default
    assert category_icon(None) == default
    assert category_icon(Category("c", "C", icon="truck")) != default
    with pytest.raises(icons.UnknownIcon):
        icons.builtin_svg("no-such-icon")


def test_templates_call_category_icon_and_get_unescaped_svg(bare_app):
    """create_app registers the Jinja global; autoescaping leaves its markup alone."""
    with bare_app.test_request_context():
        html = render_template_string("<span>{{ category_icon(category) }}</span>",
                                      category=Category("shipping", "Shipping", icon="truck"))
    assert html == f"<span>{icons.builtin_svg('truck')}</span>"
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and "&lt;" not in html


def test_the_icons_are_package_data_of_a_wheel():
    """pyproject's package data names every vendored icon and the licence, so an install has them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["search.icons"]
    folder = ROOT / "search" / "icons"
    shipped = sorted(p.relative_to(folder).as_posix() for p in (folder / "lucide").iterdir())
    assert shipped and all(any(fnmatch.fnmatch(f, pattern) for pattern in patterns) for f in shipped)


def test_every_bundled_category_declares_a_built_in_icon():
    """The bundled categories each name an icon of the set, and loading them finds no icon problem."""
    problems: list = []
    categories = load_categories(ROOT / "articles", problems=problems)
    assert problems == []
    assert categories and all(c.icon in icons.builtin_names() for c in categories.values())
    assert len({c.icon for c in categories.values()}) == len(categories)  # each its own


# Editors' SVG files: sanitised


def test_a_malicious_svg_comes_out_clean_and_says_what_was_dropped():
    """Scripts, styles, handlers, links, foreignObject, images, url() paints and stylesheets all go; shapes stay."""
    clean = icons.sanitise_svg(MALICIOUS.encode())
    root = assert_only_allowed(clean.svg)
    for bad in ("script", "alert", "javascript", "evil.example", "foreignObject", "href", "style", "onload",
                "onclick", "<img", "<image", "<use", "<a "):
        assert bad not in clean.svg, bad
    assert [e.tag.removeprefix(SVG) for e in root.iter()] == ["svg", "title", "path", "g", "line"]
    assert root.find(f"{SVG}title").text == "Parcel <img src=x onerror=steal()>"  # text, escaped in markup
    assert "&lt;img" in clean.svg
    assert root.find(f"{SVG}path").attrib == {"d": "M4 4h24v24H4z", "stroke": "#123456", "transform": "translate(1,1)"}
    assert (root.get("width"), root.get("viewBox"), root.get("fill")) == ("24", "0 0 32 32", "currentColor")
    assert set(clean.dropped) == {
        "<?xml-stylesheet?>", "onload", "style", "<script>", "<style>", "<foreignObject>", "<a>", "<use>", "<image>",
        "onclick", "fill=\"url(javascript:alert('fill'))\"", "onmouseover"}


def test_cleaning_is_idempotent_and_what_the_index_holds_is_cleaned_again():
    """A clean SVG cleans to itself; a tampered icon_svg in the index is cleaned before it is inlined."""
    clean = icons.sanitise_svg(MALICIOUS.encode()).svg
    assert icons.sanitise_svg(clean.encode()) == icons.CleanSvg(clean)
    tampered = Category("c", "C", icon="own.svg", icon_svg='<svg onload="alert(1)"><script>alert(2)</script>'
                                                           '<circle r="2"/></svg>')
    shown = category_icon(tampered)
    assert "alert" not in shown and "<circle" in shown
    broken = Category("c", "C", icon="own.svg", icon_svg="<svg><oops")
    assert category_icon(broken) == icons.builtin_svg(icons.DEFAULT_ICON)


@pytest.mark.parametrize("document", [
    pytest.param(BILLION_LAUGHS, id="billion-laughs"),
    pytest.param('<!DOCTYPE svg [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
                 '<svg xmlns="http://www.w3.org/2000/svg"><title>&secret;</title></svg>', id="external-entity"),
    pytest.param('<!DOCTYPE svg [<!ENTITY % remote SYSTEM "https://evil.example/x.dtd"> %remote;]>'
                 '<svg xmlns="http://www.w3.org/2000/svg"/>', id="parameter-entity"),
    pytest.param('<!DOCTYPE svg SYSTEM "https://evil.example/x.dtd">'
                 '<svg xmlns="http://www.w3.org/2000/svg"><title>&defined-elsewhere;</title></svg>',
                 id="entity-from-external-dtd"),
])
def test_entities_are_refused(document):
    """Any entity declaration or use makes the file unusable: nothing expands, nothing is fetched or read."""
    with pytest.raises(icons.InvalidSvg, match="entities"):
        icons.sanitise_svg(document.encode())


@pytest.mark.parametrize(("document", "words"), [
    ("<svg><path d='M0 0'></svg>", "not valid XML: mismatched tag"),
    ("<html><svg/></html>", "its root element is <html>"),
    ("", "not valid XML"),
    ("<svg>&nbsp;</svg>", "not valid XML: undefined entity"),
])
def test_what_is_not_an_svg_is_refused(document, words):
    """Broken XML, another kind of document, or an HTML entity: refused, with what is wrong."""
    with pytest.raises(icons.InvalidSvg, match=words):
        icons.sanitise_svg(document.encode())


def test_a_plain_doctype_is_allowed():
    """The DOCTYPE old editors write (no entities, nothing fetched) does not stop an icon."""
    doc = ('<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
           '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">' + SQUARE)
    assert "<rect" in icons.sanitise_svg(doc.encode()).svg


def test_an_svg_over_the_size_limit_is_refused_unread(tmp_path):
    """A file over MAX_SVG_BYTES is refused saying its size; one just under it is used."""
    padding = icons.MAX_SVG_BYTES - len(SQUARE) - len("<!---->")
    fits = write(tmp_path, "fits.svg", SQUARE + "<!--" + "x" * padding + "-->")
    assert fits.stat().st_size == icons.MAX_SVG_BYTES and "<rect" in icons.read_svg(fits).svg
    big = write(tmp_path, "big.svg", SQUARE + "<!--" + "x" * (padding + 1) + "-->")
    with pytest.raises(icons.InvalidSvg, match=f"is {icons.MAX_SVG_BYTES + 1:,} bytes, over the"):
        icons.read_svg(big)
    with pytest.raises(icons.InvalidSvg, match="over the"):
        icons.sanitise_svg(big.read_bytes())


# Categories declaring icons, and what kb check says


def test_a_category_uses_a_built_in_icon_by_name(tmp_path):
    """`icon: truck` is the built-in truck."""
    category, problems = loaded(tree(tmp_path, "truck"))
    assert (category.icon, category.icon_svg, problems) == ("truck", "", [])
    assert category_icon(category) == icons.builtin_svg("truck")


def test_a_category_uses_its_own_svg_sanitised(tmp_path):
    """`icon: own.svg` is that file, cleaned once at load and kept in the category (and so in the index)."""
    category, problems = loaded(tree(tmp_path, "own.svg", {"returns/own.svg": SQUARE}))
    assert problems == [] and category.icon == "own.svg"
    assert "<rect" in category.icon_svg and 'aria-hidden="true"' in category.icon_svg
    again = Category(**dataclasses.asdict(category))  # as the index stores and reads it
    assert category_icon(again) == category.icon_svg


def test_an_unsafe_svg_is_a_warning_naming_what_was_dropped(tmp_path):
    """A file with a script is used without it; kb check warns on the file, listing what was dropped."""
    root = tree(tmp_path, "own.svg", {"returns/own.svg": MALICIOUS})
    category, _ = loaded(root)
    assert "<path" in category.icon_svg and "alert" not in category.icon_svg
    [(name, line, message, severity)] = found(root)
    assert (name, line, severity) == ("own.svg", 1, "warning")
    assert message.startswith("left out of the inline icon, as unsafe or not needed: <?xml-stylesheet?>, onload, "
                              "style, <script>, <style>,")


@pytest.mark.parametrize(("icon", "files", "where", "line", "words"), [
    pytest.param("trucks", {}, "_category.yml", 3, "icon: no built-in icon is called 'trucks'; name an .svg file "
                 "beside _category.yml, or one of: box, circle-help, clock, credit-card,", id="unknown-name"),
    pytest.param("[truck]", {}, "_category.yml", 3, "icon: must be the name of a built-in icon or of an .svg file "
                 "beside _category.yml, not list", id="wrong-type"),
    pytest.param("gone.svg", {}, "_category.yml", 3, "icon: no file 'gone.svg' beside _category.yml",
                 id="missing-file"),
    pytest.param("../orders/x.svg", {"orders/x.svg": SQUARE}, "_category.yml", 3,
                 "icon: '../orders/x.svg' must be an .svg file in the category's own folder", id="other-folder"),
    pytest.param("own.svg", {"returns/own.svg": "<svg>\n<path d='M0 0'>\n</svg>"}, "own.svg", 3,
                 "not used as the category's icon (the default is shown): it is not valid XML: mismatched tag",
                 id="invalid-xml"),
    pytest.param("own.svg", {"returns/own.svg": BILLION_LAUGHS}, "own.svg", 2,
                 "not used as the category's icon (the default is shown): it declares or uses XML entities",
                 id="entities"),
    pytest.param("own.svg", {"returns/own.svg": SQUARE + " " * icons.MAX_SVG_BYTES}, "own.svg", 1,
                 f"not used as the category's icon (the default is shown): it is {len(SQUARE) + 20_000:,} bytes",
                 id="too-large"),
])
def test_an_icon_that_cannot_be_shown_is_an_error_and_the_default_is_used(tmp_path, icon, files, where, line, words):
    """Each problem is an error on the icon line of _category.yml, or on the SVG file; the category still loads."""
    root = tree(tmp_path, icon, files)
    category, problems = loaded(root)
    assert category.title == "Returns" and category_icon(category) == icons.builtin_svg(icons.DEFAULT_ICON)
    assert [p.path.name for p in problems] == [where]
    [(name, at, message, severity)] = found(root)
    assert (name, at, severity) == (where, line, "error")
    assert message.startswith(words), message


def test_an_icon_symlinked_from_outside_the_folder_is_refused(tmp_path):
    """An SVG beside _category.yml that is a link out of the articles folder is never read."""
    outside = write(tmp_path, "outside/secret.svg", SQUARE)
    root = tree(tmp_path / "tree", "own.svg")
    (root / "returns" / "own.svg").symlink_to(outside)
    category, _ = loaded(root)
    assert category.icon_svg == ""
    assert [m for _, _, m, _ in found(root) if m.startswith("icon:")] == [
        f"icon: 'own.svg' points outside the articles folder, to {outside}"]


def test_kb_check_reports_an_unknown_icon_with_the_known_names(runner, tmp_path):
    """`kb check` prints the unknown icon as file:line: icon: ... with every built-in name, and fails."""
    root = tree(tmp_path / "tree", "lorry")
    result = runner.invoke(args=["check", str(root)])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        f"{root / 'returns' / '_category.yml'}:3: icon: no built-in icon is called 'lorry'; name an .svg file beside "
        f"_category.yml, or one of: {', '.join(icons.builtin_names())}"]
    assert "1 error, 0 warnings" in result.output


def test_the_site_shows_an_editors_icon_from_the_index(tmp_path, corpus, fake_embedder):
    """Built into the index and read back by the site, a category's own icon is inlined, cleaned."""
    write(corpus, "returns/_category.yml", "title: Returns\nicon: own.svg\n")
    write(corpus, "returns/own.svg", MALICIOUS)
    app = make_site(tmp_path, corpus, fake_embedder)
    try:
        from kb_site.views import library

        with app.test_request_context():
            category = library().category("returns")
            html = render_template_string("{{ category_icon(c) }}", c=category)
        assert category is not None and category.icon == "own.svg"
        assert html == category.icon_svg and "<path" in html and "alert" not in html
    finally:
        app.extensions["kb_db"].engine.dispose()
