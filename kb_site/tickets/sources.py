"""Where a ticket came from, as staff read it: the contact form stores ``article:<slug>``, ``search:<query>`` or
``page:<referrer>`` (kb_site.views.contact) in ``Ticket.source``; this says which article that is today."""

from __future__ import annotations

from dataclasses import dataclass

from search import Library


@dataclass(frozen=True)
class CameFrom:
    """A ticket's origin: ``kind`` is article, search, page or other (text stored some other way)."""

    kind: str
    text: str  # the article's current title, the query, the address, or the stored text
    slug: str | None = None  # the article's current slug; None when no article answers to the stored one
    stored: str | None = None  # the slug as stored, when it differs from the current one or is gone


def came_from(source: str | None, library: Library) -> CameFrom | None:
    """Return where a ticket came from: an article (followed through renames), a search, a page; None if unknown."""
    if not source:
        return None
    kind, _, value = source.partition(":")
    if kind == "article" and value:
        slug = library.resolve(value)
        if slug is None:
            return CameFrom("article", value, None, value)
        return CameFrom("article", library.articles[slug].title, slug, None if slug == value else value)
    if kind == "search" and value.strip():
        return CameFrom("search", value)
    if kind == "page" and value:
        return CameFrom("page", value)
    return CameFrom("other", source)
