"""Pages a CDN may keep: public pages are the same bytes for every visitor, validated by an ETag.

Home, category and article pages (and the sitemap) hold nothing of the visitor: no CSRF token, no vote, no
flashed message, and they never touch the session (which would add ``Vary: Cookie`` and a cookie). What is
the visitor's own comes from ``GET /visitor.json`` (``kb_site.views.feedback``). So each such page is
``Cache-Control: public, max-age=KB_PAGE_CACHE_SECONDS, stale-while-revalidate`` with an ``ETag`` made of
the release (code, templates, assets, settings), the index generation and the page's own figures (its
votes), and ``Last-Modified`` of the generation: a revalidation answers ``304`` without rendering.

Each process also keeps the bytes it rendered for a tag (``PageCache``): a CDN in front multiplies what one
origin serves, and the origin does not render the same article twice for the same tag.

Every other response (search, contact, staff, the API, forms) is ``private, no-store`` unless its view says
otherwise; static assets are fingerprinted (``site.<hash>.css``) and kept a year.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from flask import Flask, Response, current_app, request, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.http import is_resource_modified

from .search_service import service

PRIVATE = "private, no-store"
YEAR = 365 * 24 * 3600
FINGERPRINT = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{12})(?P<ext>\.[A-Za-z0-9]+)$")
# Settings that change what public pages show: part of the release, so changing one changes every ETag.
PAGE_SETTINGS = ("SITE_NAME", "SHOP_NAME", "SHOP_URL", "LOGO", "BRAND_COLOR", "FOOTER_LINKS", "BASE_URL",
                 "SUPPORT_PHONE", "SUPPORT_HOURS", "SUPPORT_CHAT_URL")
EXTENSION = "kb_caching"
# The views whose pages are the same for every visitor (their error pages too: a missing article's 404).
PUBLIC_ENDPOINTS = frozenset({"help.home", "help.category", "help.article", "help.sitemap"})


class PageCache:
    """The bytes of recently rendered public pages, by (path, ETag), bounded in total size."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.pages: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self.lock:
            body = self.pages.get(key)
            if body is not None:
                self.pages.move_to_end(key)
            return body

    def put(self, key: tuple[str, str], body: bytes) -> None:
        if len(body) > self.max_bytes // 4:
            return
        with self.lock:
            old = self.pages.pop(key, None)
            self.size += len(body) - (len(old) if old is not None else 0)
            self.pages[key] = body
            while self.size > self.max_bytes:
                _, dropped = self.pages.popitem(last=False)
                self.size -= len(dropped)


class Assets:
    """Fingerprints of the files in the static folder: ``css/site.css`` is linked as ``css/site.<hash>.css``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._known: dict[str, tuple[float, str]] = {}  # path -> (mtime, hash): an edited file gets a new one
        self.lock = threading.Lock()

    def digest(self, filename: str) -> str:
        path = self.folder / filename
        mtime = path.stat().st_mtime
        with self.lock:
            known = self._known.get(filename)
            if known is None or known[0] != mtime:
                known = self._known[filename] = (mtime, hashlib.sha256(path.read_bytes()).hexdigest()[:12])
            return known[1]

    def url_name(self, filename: str) -> str:
        """Return ``filename`` with its content's fingerprint before the extension."""
        stem, dot, ext = filename.rpartition(".")
        return f"{stem}.{self.digest(filename)}.{ext}" if dot else filename

    def release(self) -> str:
        """Return a digest of every static file: part of each public page's ETag."""
        files = sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())
        return hashlib.sha256("".join(f"{f}:{self.digest(f)}" for f in files).encode()).hexdigest()[:12]


def _templates_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


class Caching:
    """One application's release digest, assets and page cache."""

    def __init__(self, app: Flask):
        self.app = app
        self.assets = Assets(Path(app.static_folder or "static"))
        self.cache = PageCache(int(app.config["PAGE_CACHE_MB"] * 2**20))
        self._release: str | None = None

    def release(self) -> str:
        """The code, templates, static files and page settings this process serves, as one digest."""
        if self._release is None or self.app.debug:
            from importlib.metadata import PackageNotFoundError, version

            try:
                code = version("kb-site")
            except PackageNotFoundError:
                code = "source"
            settings = "\0".join(str(self.app.config.get(name, "")) for name in PAGE_SETTINGS)
            parts = [code, _templates_digest(Path(self.app.root_path).parent / "templates"),
                     self.assets.release(), settings]
            self._release = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
        return self._release


def caching() -> Caching:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def asset_url(filename: str) -> str:
    """Return the fingerprinted URL of a static file (a Jinja global: ``asset('css/site.css')``)."""
    return f"{request.script_root}/static/{caching().assets.url_name(filename)}"


def private_page() -> bool:
    """Whether this request's page is the visitor's own (it may carry their CSRF token): a Jinja global."""
    return request.endpoint is not None and request.endpoint not in PUBLIC_ENDPOINTS


def public_page(render: Callable[[], str], parts: Iterable[object] = (), mimetype: str = "text/html") -> Response:
    """Answer a public page: ``304`` when the client's copy is current, else the page (rendered once a tag).

    The ETag covers the release, the index generation and ``parts`` (what else the page shows that can
    change, such as its vote tally); rendering is skipped for a conditional request that matches.
    """
    engine = service().engine()
    tag = hashlib.sha256("\0".join([caching().release(), engine.generation, request.full_path, *map(str, parts)]).encode()) \
        .hexdigest()[:24]
    modified = engine.published
    seconds = current_app.config["PAGE_CACHE_SECONDS"]
    if not is_resource_modified(request.environ, etag=tag, last_modified=modified):
        response = Response(status=304)
    else:
        key = (request.full_path, tag)
        body = caching().cache.get(key)
        if body is None:
            body = render().encode()
            caching().cache.put(key, body)
        response = Response(body, mimetype=mimetype)
    response.set_etag(tag)
    response.last_modified = modified
    response.headers["Cache-Control"] = f"public, max-age={seconds}, stale-while-revalidate={seconds * 10}"
    return response


def _static(filename: str) -> Response:
    """Serve a static file; its fingerprinted name is kept a year, its plain name a minute."""
    folder = caching().assets.folder
    found = FINGERPRINT.match(filename)
    plain = f"{found['stem']}{found['ext']}" if found else filename
    try:
        current = caching().assets.digest(plain) if found else None
    except OSError:
        raise NotFound() from None
    response = send_from_directory(folder, plain, max_age=YEAR if found and found["hash"] == current else 60)
    if found and found["hash"] == current:
        response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    return response


def init_app(app: Flask) -> None:
    """Fingerprinted assets, the page cache, and ``private, no-store`` for every page not made public."""
    app.extensions[EXTENSION] = Caching(app)
    app.view_functions["static"] = _static
    app.add_template_global(asset_url, "asset")
    app.add_template_global(private_page)

    @app.after_request
    def _private_by_default(response: Response) -> Response:
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = PRIVATE
        return response

