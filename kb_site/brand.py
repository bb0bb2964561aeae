"""The shop's brand from settings: logo, colour (with a shade for the dark scheme), shop link, footer links.

The colour reaches the pages as a small stylesheet of its own (``/brand.<hash>.css``, custom properties
only): the Content-Security-Policy allows no inline styles.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, send_file

from .caching import YEAR
from .config import ConfigError

LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".webp": "image/webp", ".jpg": "image/jpeg",
              ".jpeg": "image/jpeg"}
DARK_BACKGROUND = (0x14, 0x19, 0x17)  # --bg of the dark scheme in site.css
# The lightest backgrounds links sit on (--soft in each scheme): links must stay readable on them too.
LIGHT_SOFT, DARK_SOFT = (0xf4, 0xf6, 0xf5), (0x1f, 0x28, 0x25)
EXTENSION = "kb_brand"
HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

bp = Blueprint("brand", __name__)

RGB = tuple[int, int, int]


def parse_colour(text: str) -> RGB:
    found = HEX.match(text.strip())
    if not found:
        raise ValueError(text)
    digits = found[1] if len(found[1]) == 6 else "".join(c * 2 for c in found[1])
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def hex_colour(rgb: RGB) -> str:
    return "#" + "".join(f"{round(c):02x}" for c in rgb)


def luminance(rgb: RGB) -> float:
    """WCAG 2 relative luminance."""
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def mix(rgb: RGB, other: RGB, share: float) -> RGB:
    return tuple(round(c + (o - c) * share) for c, o in zip(rgb, other, strict=True))  # type: ignore[return-value]


def readable(rgb: RGB, against: RGB, towards: RGB, ratio: float = 4.5) -> RGB:
    """Return ``rgb`` moved towards ``towards`` just enough to reach ``ratio`` against ``against``."""
    for step in range(21):
        shade = mix(rgb, towards, step / 20)
        if contrast(shade, against) >= ratio:
            return shade
    return towards


@dataclass(frozen=True)
class Brand:
    """What the header, footer and stylesheet show of the shop."""

    colour: RGB
    logo: Path | None
    shop_name: str
    shop_url: str
    footer_links: tuple[tuple[str, str], ...]

    @property
    def css(self) -> str:
        white, black = (255, 255, 255), (0, 0, 0)
        light_link = readable(self.colour, LIGHT_SOFT, black)
        dark_link = readable(readable(self.colour, DARK_SOFT, white, 4.8), DARK_BACKGROUND, white, 4.8)
        dark = hex_colour(mix(self.colour, black, .25))
        return (f":root {{ --brand: {hex_colour(self.colour)}; --brand-dark: {dark};"
                f" --brand-soft: {hex_colour(mix(self.colour, white, .9))}; --link: {hex_colour(light_link)}; }}\n"
                f"@media (prefers-color-scheme: dark) {{ :root {{ --link: {hex_colour(dark_link)};"
                f" --brand-soft: {hex_colour(mix(self.colour, DARK_BACKGROUND, .8))}; }} }}\n")

    @property
    def css_hash(self) -> str:
        return hashlib.sha256(self.css.encode()).hexdigest()[:12]

    @property
    def logo_name(self) -> str | None:
        if self.logo is None:
            return None
        digest = hashlib.sha256(self.logo.read_bytes()).hexdigest()[:12]
        return f"logo.{digest}{self.logo.suffix.lower()}"


def _link(setting: str, label: str, url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if not (parts.scheme in ("http", "https") and parts.netloc) and not (url.startswith("/") and not parts.netloc):
        raise ConfigError(f"{setting}: {label!r} must link to an http(s) address or a path on this site, "
                          f"not {url!r}")
    return label, url


def _logo(app: Flask) -> Path | None:
    named = app.config["LOGO"]
    folders = [Path(app.instance_path), Path(app.config["ARTICLES_DIR"])]
    candidates = [f / named for f in folders] if named else [f / n for f in folders for n in ("logo.svg", "logo.png")]
    for path in candidates:
        if path.is_file():
            if path.suffix.lower() not in LOGO_TYPES:
                raise ConfigError(f"KB_LOGO: {path} is not an SVG, PNG, WebP or JPEG image")
            return path.resolve()
    if named:
        raise ConfigError(f"KB_LOGO: {named!r} is in neither the instance folder ({folders[0]}) nor the "
                          f"articles folder ({folders[1]})")
    return None


def load(app: Flask) -> Brand:
    """Read and check the brand settings: a bad colour, link or logo stops the start with a clear message."""
    try:
        colour = parse_colour(app.config["BRAND_COLOR"])
    except ValueError:
        raise ConfigError(f"KB_BRAND_COLOR must be a colour like #1f5f4a, not {app.config['BRAND_COLOR']!r}") \
            from None
    white = (255, 255, 255)
    if contrast(colour, white) < 4.5:
        darker = hex_colour(readable(colour, white, (0, 0, 0)))
        raise ConfigError(f"KB_BRAND_COLOR {app.config['BRAND_COLOR']} is too light for white text on buttons "
                          f"and the header (contrast {contrast(colour, white):.1f}:1, needs 4.5:1): "
                          f"try {darker}")
    raw = app.config["FOOTER_LINKS"].strip()
    try:
        links = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"KB_FOOTER_LINKS must be JSON, label to address ({exc})") from None
    if not isinstance(links, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in links.items()):
        raise ConfigError('KB_FOOTER_LINKS must be a JSON object of labels to addresses, like '
                          '{"Privacy": "https://shop.example.com/privacy"}')
    shop_url = app.config["SHOP_URL"].strip()
    if shop_url:
        _link("KB_SHOP_URL", "the shop", shop_url)
    return Brand(colour, _logo(app), app.config["SHOP_NAME"].strip(), shop_url,
                 tuple(_link("KB_FOOTER_LINKS", k, v) for k, v in links.items()))


def brand() -> Brand:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def _immutable(response: Response, current: bool) -> Response:
    response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable" if current else "public, max-age=60"
    return response


@bp.get("/brand.<digest>.css")
def stylesheet(digest: str) -> Response:
    """The brand's colours as custom properties."""
    shown = brand()
    return _immutable(Response(shown.css, mimetype="text/css"), digest == shown.css_hash)


@bp.get("/brand/<name>")
def logo(name: str) -> Response:
    """The logo, under a name carrying its fingerprint."""
    shown = brand()
    if shown.logo is None or not name.startswith("logo.") or Path(name).suffix.lower() != shown.logo.suffix.lower():
        abort(404)
    response = send_file(shown.logo, mimetype=LOGO_TYPES[shown.logo.suffix.lower()])
    if shown.logo.suffix.lower() == ".svg":  # opened directly, an SVG must not run scripts
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return _immutable(response, name == shown.logo_name)


def init_app(app: Flask) -> None:
    """Check the brand settings once and offer ``brand`` to every template."""
    app.extensions[EXTENSION] = load(app)
    app.register_blueprint(bp)
    app.add_template_global(brand, "brand")
