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
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, after_this_request, current_app, request, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.http import is_resource_modified

from .search_service import service
from .security import secure_headers

PRIVATE = "private, no-store"
YEAR = 365 * 24 * 3600
FINGERPRINT = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{12})(?P<ext>\.[A-Za-z0-9]+)$")
# Settings that change what public pages show: part of the release, so changing one changes every ETag.
PAGE_SETTINGS = ("SITE_NAME", "SHOP_NAME", "SHOP_URL", "LOGO", "BRAND_COLOR", "FOOTER_LINKS", "BASE_URL",
                 "SUPPORT_PHONE", "SUPPORT_HOURS", "SUPPORT_CHAT_URL")
EXTENSION = "kb_caching"
# The views whose pages are the same for every visitor (their error pages too: a missing article's 404).
PUBLIC_ENDPOINTS = frozenset({"help.home", "help.category", "help.article", "help.sitemap"})


@dataclass
class Stored:
    """A public page as this process last answered it."""

    tag: str  # the ETag, unquoted
    generation: str  # of the index it was rendered from
    until: float  # monotonic time after which the event loop no longer answers it without Flask
    body: bytes
    headers: list[tuple[bytes, bytes]]  # of the 200, as Flask sent them (security headers included)
    not_modified: list[tuple[bytes, bytes]]  # of a 304: ETag, Last-Modified, Cache-Control


class PageCache:
    """Recently rendered public pages by path and query, bounded in total size.

    Flask renders a page once a tag (``public_page``); ``kb serve``'s event loop answers a page it holds,
    without a thread or Flask (``FastPages``), while it is fresh: rendered from the index generation still
    open and less than ``min(KB_PAGE_CACHE_SECONDS, 30)`` seconds ago, so a vote shows as soon as it would
    have through Flask (tallies are read once a minute).
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.pages: OrderedDict[tuple[str, bytes], Stored] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, bytes]) -> Stored | None:
        with self.lock:
            stored = self.pages.get(key)
            if stored is not None:
                self.pages.move_to_end(key)
            return stored

    def put(self, key: tuple[str, bytes], stored: Stored) -> None:
        if len(stored.body) > self.max_bytes // 4:
            return
        with self.lock:
            old = self.pages.pop(key, None)
            self.size += len(stored.body) - (len(old.body) if old is not None else 0)
            self.pages[key] = stored
            while self.size > self.max_bytes:
                _, dropped = self.pages.popitem(last=False)
                self.size -= len(dropped.body)


def matches(if_none_match: bytes, tag: str) -> bool:
    """Whether an If-None-Match header names ``tag`` (weak or strong, in a list, or ``*``)."""
    wanted = tag.encode()
    for item in if_none_match.split(b","):
        item = item.strip()
        if item == b"*" or item.removeprefix(b"W/").strip(b'"') == wanted:
            return True
    return False


class FastPages:
    """ASGI middleware: answer fresh public pages from the page cache in the event loop, else the app."""

    def __init__(self, app: Any, flask_app: Flask):
        self.app = app
        self.caching: Caching = flask_app.extensions[EXTENSION]
        self.service = flask_app.extensions["kb_search"]

    def answer(self, path: str, query: bytes, if_none_match: bytes | None) -> tuple[int, list, bytes] | None:
        stored = self.caching.cache.get((path, query))
        if stored is None or time.monotonic() > stored.until:
            return None
        try:
            if self.service.engine().generation != stored.generation:
                return None
        except Exception:  # no index, or a broken one: Flask answers (and explains) it
            return None
        if if_none_match is not None and matches(if_none_match, stored.tag):
            return 304, stored.not_modified, b""
        return 200, stored.headers, stored.body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            condition = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
            found = self.answer(scope["path"], scope["query_string"], condition)
            if found is not None:
                status, headers, body = found
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


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

    The ETag covers the release, the index generation, the address and ``parts`` (what else the page shows
    that can change, such as its vote tally); rendering is skipped for a conditional request that matches.
    """
    engine = service().engine()
    tag = hashlib.sha256("\0".join([caching().release(), engine.generation, request.full_path,
                                    *map(str, parts)]).encode()).hexdigest()[:24]
    seconds = current_app.config["PAGE_CACHE_SECONDS"]
    cache_control = f"public, max-age={seconds}, stale-while-revalidate={seconds * 10}"
    if not is_resource_modified(request.environ, etag=tag, last_modified=engine.published):
        response = Response(status=304)
    else:
        key = (request.path, request.query_string)
        stored = caching().cache.get(key)
        response = Response(stored.body if stored is not None and stored.tag == tag else render(),
                            mimetype=mimetype)
        response.set_etag(tag)
        response.last_modified = engine.published
        response.headers["Cache-Control"] = cache_control

        @after_this_request
        def _store(sent: Response) -> Response:  # once every header is set: the fast path replays them all
            if sent.status_code == 200 and "Set-Cookie" not in sent.headers:
                secure_headers(sent)  # the app's own hooks run after this one: the headers they add, now
                headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in sent.headers.items()]
                kept = {b"etag", b"last-modified", b"cache-control"}
                caching().cache.put(key, Stored(tag, engine.generation, time.monotonic() + min(seconds, 30),
                                                sent.get_data(), headers, [h for h in headers if h[0] in kept]))
            return sent

        return response
    response.set_etag(tag)
    response.last_modified = engine.published
    response.headers["Cache-Control"] = cache_control
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

