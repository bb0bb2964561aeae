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
