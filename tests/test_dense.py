"""Dense retrieval without a model: the passages an article yields, and scoring hand-made vectors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from search.articles import Article, parse_article
from search.dense import KIND_CHUNK, KIND_QUESTION, KIND_TITLE, DenseIndex, Passage, passages
from search.dense import MAX_CHUNK_WORDS as CHUNK_WORDS
from search.generation import Generation


def make(text: str, name: str = "t.md") -> Article:
    """Parse a dedented article text."""
    return parse_article(textwrap.dedent(text), Path(name))


TRACK = """\
    ---
    title: Track your order
    summary: Find your parcel.
    questions: [where is my package, late parcel]
    ---
    Every order gets a tracking number.

    ## Find it
    Open the [dispatch email](/articles/emails) now.
    """


def test_passages_are_title_then_questions_then_prefixed_chunks():
    """Title (with summary) comes first, then each question, then section chunks prefixed by title and heading."""
    assert passages(make(TRACK)) == [
        Passage(KIND_TITLE, -1, "Track your order. Find your parcel."),
        Passage(KIND_QUESTION, -1, "where is my package"),
        Passage(KIND_QUESTION, -1, "late parcel"),
        Passage(KIND_CHUNK, 0, "Track your order. Every order gets a tracking number."),
        Passage(KIND_CHUNK, 1, "Track your order. Find it. Open the dispatch email now."),
    ]


def test_long_sections_split_into_bounded_chunks():
    """A long section becomes several chunks of at most CHUNK_WORDS words that keep every word in order."""
    words = [f"w{i}" for i in range(CHUNK_WORDS * 3 + 50)]
    sentences = " ".join(" ".join(words[i:i + 7]) + "." for i in range(0, len(words), 7))
    article = make(f"---\ntitle: Sizes\n---\n## Chart\n{sentences}\n")
    prefix = "Sizes. Chart. "
    chunks = [p.text for p in passages(article) if p.kind == KIND_CHUNK]
    assert len(chunks) >= 4
    assert all(c.startswith(prefix) and len(c.removeprefix(prefix).split()) <= CHUNK_WORDS for c in chunks)
    assert " ".join(c.removeprefix(prefix) for c in chunks).replace(".", "").split() == words


def test_one_long_sentence_is_cut_at_the_word_limit():
    """A run of words with no sentence end is cut into equal pieces of at most CHUNK_WORDS words."""
    article = make(f"---\ntitle: T\n---\n{'word ' * (CHUNK_WORDS * 2 + 1)}\n")
    counts = [len(p.text.split()) - 1 for p in passages(article) if p.kind == KIND_CHUNK]
    assert counts == [101, 101, 99]


@pytest.mark.parametrize(("body", "section"), [("", -1), ("## Only a heading\n", 0)])
def test_every_article_gets_a_chunk(body, section):
    """An article with no body text still yields one chunk (its title) so every article has a section score."""
    found = passages(make(f"---\ntitle: Gift cards\n---\n{body}"))
    assert found[0] == Passage(KIND_TITLE, -1, "Gift cards")
    assert [p for p in found if p.kind == KIND_CHUNK] == [Passage(KIND_CHUNK, section, "Gift cards")]


# Three articles: rows of titles/questions first, then chunks, with the chunk's section index.
OWNERS = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
KINDS = np.array([KIND_TITLE, KIND_QUESTION, KIND_CHUNK, KIND_CHUNK,
                  KIND_TITLE, KIND_CHUNK,
                  KIND_TITLE, KIND_QUESTION, KIND_QUESTION, KIND_CHUNK, KIND_CHUNK, KIND_CHUNK])
SECTIONS = np.array([-1, -1, 0, 1, -1, -1, -1, -1, -1, 0, 2, 3])


def expected_scores(passage_scores: np.ndarray, title_weight: float) -> list[float]:
    """Blend each article's best title/question and best chunk score the slow, obvious way."""
    out = []
    for doc in range(OWNERS.max() + 1):
        mine = OWNERS == doc
        title = passage_scores[mine & (KINDS != KIND_CHUNK)].max()
        chunk = passage_scores[mine & (KINDS == KIND_CHUNK)].max()
        out.append(title_weight * title + (1 - title_weight) * chunk)
    return out


def random_index(seed: int = 0, dim: int = 8, title_weight: float = 0.3) -> DenseIndex:
    """A DenseIndex over the layout above with seeded random unit vectors."""
    vectors = np.random.default_rng(seed).normal(size=(len(OWNERS), dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return DenseIndex(vectors, OWNERS, KINDS, SECTIONS, title_weight=title_weight)


def test_scores_blend_best_title_and_best_chunk():
    """Each article scores title_weight * best title/question + (1 - title_weight) * best chunk."""
    index = DenseIndex(np.eye(len(OWNERS)), OWNERS, KINDS, SECTIONS, title_weight=0.3)
    passage_scores = np.array([0.2, 0.6, 0.1, 0.5, 0.9, 0.0, -0.1, 0.3, 0.2, 0.4, 0.8, 0.7], dtype=np.float32)
    np.testing.assert_allclose(index.scores(passage_scores), [0.3 * 0.6 + 0.7 * 0.5, 0.3 * 0.9 + 0.7 * 0.0,
                                                             0.3 * 0.3 + 0.7 * 0.8], rtol=1e-6)


@pytest.mark.parametrize("title_weight", [0.0, 0.3, 1.0])
def test_scores_match_reference_on_random_vectors(title_weight):
    """With random unit vectors and query, scores equal the straightforward per-article computation."""
    index = random_index(title_weight=title_weight)
    query = np.random.default_rng(1).normal(size=8)
    query /= np.linalg.norm(query)
    passage_scores = index.passage_scores(query)
    np.testing.assert_allclose(passage_scores, index.vectors @ query, rtol=1e-5)
    np.testing.assert_allclose(index.scores(passage_scores), expected_scores(passage_scores, title_weight),
                               rtol=1e-5, atol=1e-6)


def test_best_section_is_the_section_of_the_best_chunk():
    """best_section ignores title and question rows and returns the best chunk's section index."""
    index = random_index()
    passage_scores = np.zeros(len(OWNERS), dtype=np.float32)
    passage_scores[[0, 1, 7]] = 5.0  # strong titles and questions must not count
    passage_scores[[3, 5, 10]] = [0.5, 0.1, 0.9]
    assert [index.best_section(passage_scores, doc) for doc in range(3)] == [1, -1, 2]


def test_empty_index_scores_nothing():
    """An index with no passages returns an empty score array."""
    index = DenseIndex(np.zeros((0, 4)), np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros(0, np.int32))
    assert index.n_docs == 0 and index.scores(np.zeros(0, np.float32)).shape == (0,)


def test_build_arrays_groups_passages_by_article():
    """build_arrays lists every passage with its article number, kind and section, article by article."""
    articles = [make(TRACK), make("---\ntitle: Gift cards\n---\n")]
    texts, owners, kinds, sections = DenseIndex.build_arrays(articles)
    assert texts == [p.text for a in articles for p in passages(a)]
    assert owners.tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert kinds.tolist() == [KIND_TITLE, KIND_QUESTION, KIND_QUESTION, KIND_CHUNK, KIND_CHUNK, KIND_TITLE,
                              KIND_CHUNK]
    assert sections.tolist() == [-1, -1, -1, 0, 1, -1, -1]
    index = DenseIndex(np.eye(len(texts)), owners, kinds, sections)
    assert index.n_docs == 2


def test_save_load_round_trip(tmp_path):
    """A saved index loads with the same arrays and gives the same scores."""
    index = random_index(seed=5)
    generation = Generation(tmp_path)
    with generation.vector_writer(*index.vectors.shape) as write:
        write(index.vectors)
    generation.write_passages(owners=index.owners, kinds=index.kinds, sections=index.sections,
                              keys=np.zeros(len(index.owners), "S16"))
    loaded = generation.dense(title_weight=0.3)
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
    for name in ("owners", "kinds", "sections"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(index, name))
    query = np.random.default_rng(2).normal(size=8).astype(np.float32)
    passage_scores = index.passage_scores(query)
    np.testing.assert_array_equal(loaded.scores(loaded.passage_scores(query)), index.scores(passage_scores))
    assert loaded.best_section(passage_scores, 2) == index.best_section(passage_scores, 2)
