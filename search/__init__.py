"""Hybrid search over help articles: whoosh BM25F and sentence embeddings, fused into one ranking.

A plain library: it never imports Flask or kb_site.
"""

from .articles import Article, ArticleError, InvalidArticle, Section
from .broken import BrokenFile
from .build import BuildReport, build_index
from .embeddings import Embedder, EmbedderUnavailable, SentenceTransformerEmbedder, choose_embedder
from .engine import Hit, NotLoaded, QueryError, SearchConfig, SearchEngine, SearchResults
from .errors import InvalidArgument, SearchError
from .folder import Category, Corpus, OutsideFolder, load_categories, load_corpus
from .generation import Doc, Generation, IndexCorrupt
from .library import Library
from .onnx import OnnxEmbedder
from .store import IndexMissing

__all__ = [
    "Article", "ArticleError", "BrokenFile", "BuildReport", "Category", "Corpus", "Doc", "Embedder",
    "EmbedderUnavailable", "Generation", "Hit", "IndexCorrupt", "IndexMissing", "InvalidArgument", "InvalidArticle",
    "Library", "NotLoaded", "OnnxEmbedder", "OutsideFolder", "QueryError", "SearchConfig", "SearchEngine",
    "SearchError", "SearchResults", "Section", "SentenceTransformerEmbedder", "build_index", "choose_embedder",
    "load_categories", "load_corpus",
]
