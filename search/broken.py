"""Files a build could not take as they are now: recorded in each generation, shown to editors and in /readyz."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BrokenFile:
    """One problem of a file in the articles folder, since when it is there, and what the site serves instead.

    An article whose new revision does not parse keeps its last good version on the site: ``slug`` is the
    article still served and ``served`` the modification time of that version. A file that never parsed (or
    was refused) is left out: ``served`` is None.
    """

    path: str  # relative to the articles folder, as editors know it
    line: int
    field: str | None
    message: str
    since: dt.datetime  # when a build first found this file broken; kept while it stays broken
    slug: str | None = None  # the article's slug, when it is known
    served: dt.datetime | None = None

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.path}:{self.line}: {where}{self.message} ({self.outcome})"

    @property
    def outcome(self) -> str:
        """Say what the site does about it: serves the last good version, or leaves the file out."""
        if self.served is not None:
            return f"still serving the version of {self.served:%Y-%m-%d %H:%M} UTC"
        if Path(self.path).name == "_category.yml":
            return "the categories of the last good build are kept"
        if self.path == "_search.yml":
            return "the synonyms and pins of the last good build are kept"
        return "left out of the index"

    def record(self) -> dict[str, Any]:
        """Return the problem as JSON-ready data (as stored in the generation and shown by /readyz)."""
        return {"file": self.path, "line": self.line, "field": self.field, "message": self.message,
                "since": self.since.isoformat(), "slug": self.slug,
                "serving": self.served.isoformat() if self.served else None}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> BrokenFile:
        """Rebuild a problem from ``record`` data."""
        return cls(data["file"], data["line"], data["field"], data["message"], dt.datetime.fromisoformat(
            data["since"]), data["slug"], dt.datetime.fromisoformat(data["serving"]) if data["serving"] else None)

