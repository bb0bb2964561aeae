"""Every setting once: its name, default and help. Read from ``KB_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search import fusion
from search.engine import SearchConfig


@dataclass(frozen=True)
class Setting:
    """One configuration key; the environment variable is ``KB_`` + name."""

    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return f"KB_{self.name}"


SETTINGS: tuple[Setting, ...] = (
    Setting("INSTANCE_DIR", "./instance",
            "Folder for the site's own data: search index, embedding cache, database, secret key."),
    Setting("SITE_NAME", "Northwind Outfitters Help Centre", "Name shown in page titles and the header."),
    Setting("BASE_URL", "",
            "Public address of the site (`https://help.example.com`) for canonical links and the sitemap; "
            "empty means the address of each request."),
    Setting("DATABASE_URL", "",
            "SQLAlchemy database URL; empty means SQLite in `<instance>/kb.sqlite3`. PostgreSQL: "
            "`postgresql://user@host/dbname` (driven by psycopg 3)."),
    Setting("SECRET_KEY", "",
            "Key that signs sessions and CSRF tokens; empty means one generated once into "
            "`<instance>/secret_key`."),
    Setting("RELOAD_INTERVAL", 2.0,
            "Seconds between checks of the articles folder by `kb serve`; changed articles are re-indexed "
            "and shown without a restart. 0 turns watching off (an index built elsewhere is still picked up)."),
    Setting("PAGE_SIZE", 10, "Search results a page."),
    Setting("RATELIMIT_STORAGE_URI", "memory://",
            "Where rate-limit counters live: `memory://` (each process its own) or `redis://host:6379` "
            "(shared by every process and machine)."),
    Setting("RATELIMIT_SEARCH", "120 per minute", "Searches (page and API) a client may make."),
    Setting("RATELIMIT_VOTES", "30 per minute", "Feedback votes a client may send."),
    Setting("MAX_CONTENT_LENGTH", 65536, "Largest request body accepted, in bytes; larger ones get 413."),
    Setting("PROXY_COUNT", 0,
            "Reverse proxies in front of the site whose `X-Forwarded-*` headers are trusted (for client "
            "addresses in rate limits, and https links)."),
    Setting("VISIT_MINUTES", 30, "Minutes of inactivity after which a visitor's next request starts a new visit."),
    Setting("ARTICLES_DIR", "./articles", "Folder of Markdown articles to publish and index."),
    Setting("INDEX_DIR", "", "Folder of the search index; empty means `<instance>/index`."),
    Setting("EMBEDDING_MODEL", "",
            "sentence-transformers model folder; empty means the packaged all-MiniLM-L6-v2, "
            "`none` turns semantic search off (lexical only)."),
    Setting("EMBEDDING_PRECISION", "auto",
            "`float32`, `bfloat16`, or `auto` (bfloat16 where the CPU has native support)."),
    Setting("EMBEDDING_THREADS", 0, "Torch threads for encoding; 0 lets torch decide."),
    Setting("LEXICAL_WEIGHT", fusion.DEFAULT_LEXICAL_WEIGHT,
            "Share of the normalised BM25F score in the hybrid score (the rest is semantic)."),
    Setting("TITLE_WEIGHT", SearchConfig.title_weight,
            "Share of the best title/question match in an article's semantic score (the rest is its "
            "best section)."),
    Setting("FUSION_POOL", fusion.DEFAULT_POOL,
            "How many top scores of each retriever set the range of min-max normalisation."),
    Setting("DENSE_SPREAD", fusion.DEFAULT_DENSE_SPREAD,
            "Least range of semantic scores stretched to the full scale, so flat scores stay flat."),
    Setting("MIN_DENSE_SCORE", SearchConfig.min_dense_score,
            "Least cosine similarity for an article with no matching word to count as a result."),
)


def defaults() -> dict[str, Any]:
    """Return every setting's default, keyed by config name."""
    return {s.name: s.default for s in SETTINGS}


def search_config(config: dict[str, Any]) -> SearchConfig:
    """Return the search engine settings from a Flask config."""
    return SearchConfig(
        lexical_weight=float(config["LEXICAL_WEIGHT"]),
        title_weight=float(config["TITLE_WEIGHT"]),
        pool=int(config["FUSION_POOL"]),
        dense_spread=float(config["DENSE_SPREAD"]),
        min_dense_score=float(config["MIN_DENSE_SCORE"]),
    )
