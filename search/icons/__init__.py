"""Category icons as SVG markup to inline in a page: a built-in set, and editors' own files made safe.

The built-in set is a selection of Lucide's icons (https://lucide.dev, ISC licence, see ``lucide/LICENSE``),
copied unchanged from the npm package ``lucide-static`` 1.62.0 into ``lucide/``: one file per icon, named as
Lucide names it. An editor's SVG is parsed with the standard library's expat parser and rebuilt from an allowlist
of shape elements and geometric or presentation attributes; everything else is dropped (and said so), and a
file that declares entities, is not XML, is not an ``<svg>`` or is too large is refused.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from pyexpat import ExpatError, ParserCreate, errors

from ..errors import SearchError


class InvalidSvg(SearchError, ValueError):
    """An SVG that cannot be inlined at all: too large, not XML, not an ``<svg>``, or declaring entities."""

    def __init__(self, message: str, *, line: int = 1):
        self.message = message
        self.line = line
        super().__init__(message)


class UnknownIcon(SearchError, LookupError):
    """A name that is not one of the built-in icons."""


DEFAULT_ICON = "circle-help"  # for a category that declares no icon, or one that cannot be shown
MAX_SVG_BYTES = 20_000  # an icon is a few hundred bytes; anything much larger is not an icon
LUCIDE_VERSION = "1.62.0"

SVG_NS = "http://www.w3.org/2000/svg"
_PREFIXES = {"http://www.w3.org/1999/xlink": "xlink", "http://www.w3.org/XML/1998/namespace": "xml",
             "http://www.inkscape.org/namespaces/inkscape": "inkscape",
             "http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd": "sodipodi"}
_ELEMENTS = frozenset({"svg", "g", "path", "circle", "ellipse", "rect", "line", "polyline", "polygon", "title"})

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_LENGTH = re.compile(rf"{_NUMBER}(?:px|%)?")
_NUMBERS = re.compile(r"[\d\s.,eE+-]*")
_PATH_DATA = re.compile(r"[MmZzLlHhVvCcSsQqTtAa\d\s.,eE+-]*")
_TRANSFORM = re.compile(r"(?:\s*(?:matrix|translate|scale|rotate|skewX|skewY)\s*\([\d\s.,eE+-]*\)\s*,?)*\s*")
# Colours only: no url(), so a paint can never point at another document or at a script.
_PAINT = re.compile(r"none|currentColor|transparent|#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,30}|(?:rgba?|hsla?)\([\d\s.,%]+\)")
_ATTRIBUTES: dict[str, re.Pattern[str]] = {
    "d": _PATH_DATA, "points": _NUMBERS, "viewBox": _NUMBERS, "transform": _TRANSFORM,
    "fill": _PAINT, "stroke": _PAINT,
    "stroke-linecap": re.compile(r"butt|round|square"),
    "stroke-linejoin": re.compile(r"miter|round|bevel|arcs|miter-clip"),
    "fill-rule": re.compile(r"nonzero|evenodd"),
    **{name: _LENGTH for name in ("cx", "cy", "r", "rx", "ry", "x", "y", "x1", "y1", "x2", "y2", "width", "height",
                                  "stroke-width", "opacity", "fill-opacity", "stroke-opacity")},
}
_SIZE = re.compile(rf"({_NUMBER})(?:px)?")
# Dropped without a word: names and hooks editors' tools write that change nothing in how the icon looks.
_BOOKKEEPING = re.compile(r"id|class|version|baseProfile|role|focusable|aria-[a-z]+|data-[\w.-]+|xml:space")


@dataclass(frozen=True)
class CleanSvg:
    """An SVG rebuilt from what is safe to inline, and what was dropped from it (as ``<script>``, ``onload``)."""

    svg: str
    dropped: tuple[str, ...] = ()


def _name(qualified: str) -> tuple[str, str]:
    """Split expat's ``uri local`` name into (namespace, local name)."""
    uri, _, local = qualified.rpartition(" ")
    return uri, local


def _shown(uri: str, local: str) -> str:
    """Return a name as the file spells it when its namespace is a well-known one (``xlink:href``)."""
    prefix = _PREFIXES.get(uri)
    return f"{prefix}:{local}" if prefix else local


class _Cleaner:
    """Expat's handlers, writing the allowed elements and attributes out again as they are read."""

    def __init__(self, css_class: str):
        self.css_class = css_class
        self.out: list[str] = []
        self.open: list[str] = []  # the kept elements open around the current one
        self.skipping = 0  # depth inside a dropped element: all of it goes
        self.dropped: dict[str, None] = {}  # ordered and unique
        self.seen_root = False

    def drop(self, what: str) -> None:
        self.dropped.setdefault(what)

    def start(self, qualified: str, attributes: dict[str, str]) -> None:
        uri, local = _name(qualified)
        if not self.seen_root:
            self.seen_root = True
            if local != "svg" or uri not in ("", SVG_NS):
                raise InvalidSvg(f"is not an SVG image: its root element is <{local}>, not <svg>")
        elif self.skipping or local not in _ELEMENTS or uri not in ("", SVG_NS):
            if not self.skipping:
                self.drop(f"<{local}>")
            self.skipping += 1
            return
        kept: dict[str, str] = {}
        for key, value in attributes.items():
            space, attribute = _name(key)
            pattern = None if space else _ATTRIBUTES.get(attribute)
            if pattern is not None and pattern.fullmatch(value.strip()):
                kept[attribute] = value.strip()
            elif pattern is not None:
                self.drop(f'{attribute}="{value[:40]}"')
            elif not _BOOKKEEPING.fullmatch(_shown(space, attribute)):
                self.drop(_shown(space, attribute))
        if not self.open:
            kept = self.root(kept)
        self.out.append(f"<{local}" + "".join(f' {k}="{html.escape(v)}"' for k, v in kept.items()) + ">")
        self.open.append(local)

    def root(self, kept: dict[str, str]) -> dict[str, str]:
        """Return the outer ``<svg>``'s attributes: 24 by 24 (CSS may size it), scaled by its viewBox, and
        hidden from assistive technology (a category's title says what it is)."""
        width, height = (_SIZE.fullmatch(kept.pop(k, "")) for k in ("width", "height"))
        view_box = kept.pop("viewBox", "")
        if not view_box:
            view_box = f"0 0 {width.group(1)} {height.group(1)}" if width and height else "0 0 24 24"
        # Black, SVG's default fill, would ignore the theme: what the file leaves unpainted takes the text colour.
        kept.setdefault("fill", "currentColor")
        return {"xmlns": SVG_NS, "width": "24", "height": "24", "viewBox": view_box, **kept,
                "class": self.css_class, "aria-hidden": "true", "focusable": "false"}

    def end(self, qualified: str) -> None:
        if self.skipping:
            self.skipping -= 1
            return
        self.out.append(f"</{self.open.pop()}>")

    def text(self, data: str) -> None:
        if not self.skipping and self.open and self.open[-1] == "title":
            self.out.append(html.escape(data, quote=False))

    def instruction(self, target: str, data: str) -> None:
        self.drop(f"<?{target}?>")


def _refuse_entities(*_args: object) -> None:
    raise InvalidSvg("declares or uses XML entities, which an icon may not (they can expand without end or read "
                     "other files)")


def _refuse_external(_context: str, _base: str | None, _system: str | None, _public: str | None) -> int:
    _refuse_entities()
    return 0


def _refuse_doctype(_name: str, _system: str | None, _public: str | None, internal_subset: int) -> None:
    if internal_subset:  # a plain <!DOCTYPE svg PUBLIC ...> (old editors write one) declares nothing
        _refuse_entities()


def sanitise_svg(data: bytes, *, css_class: str = "icon") -> CleanSvg:
    """Return the SVG rebuilt from its allowed elements and attributes; raise InvalidSvg if it cannot be used."""
    if len(data) > MAX_SVG_BYTES:
        raise InvalidSvg(f"is {len(data):,} bytes, over the {MAX_SVG_BYTES:,} an icon may have")
    cleaner = _Cleaner(css_class)
    parser = ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entities
    parser.UnparsedEntityDeclHandler = _refuse_entities
    parser.ExternalEntityRefHandler = _refuse_external
    parser.SkippedEntityHandler = _refuse_entities
    parser.StartElementHandler = cleaner.start
    parser.EndElementHandler = cleaner.end
    parser.CharacterDataHandler = cleaner.text
    parser.ProcessingInstructionHandler = cleaner.instruction
    try:
        parser.Parse(data, True)
    except ExpatError as exc:
        raise InvalidSvg(f"is not valid XML: {errors.messages[exc.code]}", line=exc.lineno) from None
    except InvalidSvg as exc:
        exc.line = parser.CurrentLineNumber
        raise
    if not cleaner.seen_root:
        raise InvalidSvg("is not an SVG image: it has no <svg> element")
    return CleanSvg("".join(cleaner.out), tuple(cleaner.dropped))


def read_svg(path: Path) -> CleanSvg:
    """Read and sanitise an SVG file (a file over ``MAX_SVG_BYTES`` is refused unread); OSError if unreadable."""
    with path.open("rb") as file:
        data = file.read(MAX_SVG_BYTES + 1)
        if len(data) > MAX_SVG_BYTES:
            size = max(path.stat().st_size, len(data))
            raise InvalidSvg(f"is {size:,} bytes, over the {MAX_SVG_BYTES:,} an icon may have")
    return sanitise_svg(data)


@cache
def builtin_names() -> tuple[str, ...]:
    """Return the names of the built-in icons, sorted."""
    folder = resources.files(__name__).joinpath("lucide")
    return tuple(sorted(f.name.removesuffix(".svg") for f in folder.iterdir() if f.name.endswith(".svg")))


@cache
def builtin_svg(name: str) -> str:
    """Return a built-in icon's inline SVG; raise UnknownIcon for a name not in ``builtin_names()``."""
    if name not in builtin_names():
        raise UnknownIcon(f"no built-in icon is called '{name}'")
    return sanitise_svg(resources.files(__name__).joinpath("lucide", f"{name}.svg").read_bytes()).svg


@lru_cache(maxsize=256)
def _cleaned(svg: str) -> str:
    try:
        return sanitise_svg(svg.encode()).svg
    except InvalidSvg:
        return ""


def inline_icon(name: str = "", svg: str = "") -> str:
    """Return the SVG markup to inline for a category's icon: its own SVG, else the built-in ``name``, else the
    default icon.

    ``svg`` (from the index) is cleaned again here, so what a page inlines never depends on trusting a file.
    """
    own = _cleaned(svg) if svg else ""
    return own or builtin_svg(name if name in builtin_names() else DEFAULT_ICON)
