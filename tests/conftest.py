"""Shared fixtures: a fixture corpus, the real model (once a session), a fake embedder, the app."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb_site import create_app
from search import SearchEngine, SentenceTransformerEmbedder, build_index
from tests.fakes import HashingEmbedder

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus"


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded once for the whole session."""
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder) -> Path:
    """An index over the fixture corpus built with the real model, shared by read-only tests."""
    index = tmp_path_factory.mktemp("real-index")
    build_index(CORPUS, index, real_embedder)
    return index


@pytest.fixture(scope="session")
def real_engine(real_index: Path, real_embedder: SentenceTransformerEmbedder) -> SearchEngine:
    return SearchEngine(real_index, real_embedder)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private, writable copy of the fixture corpus."""
    target = tmp_path / "articles"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def app(tmp_path: Path, corpus: Path, fake_embedder: HashingEmbedder):
    """The application on a temporary instance folder, the corpus copy and the fake embedder."""
    return create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "ARTICLES_DIR": str(corpus),
                       "EMBEDDER": fake_embedder, "TESTING": True})


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
