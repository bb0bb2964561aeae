"""Articles whose names are near a slug that names none: the "Did you mean" of a missing article's page.

A mistyped or made-up address (``retrun-polcy``, ``return-policies-2024``) is matched word by word against
the words naming each article (its slug, title and aliases). Each word is stemmed (``policies`` and
``policy`` are one word) and compared with difflib: an article's name is a handful of words, the site has
hundreds of articles, not millions, and a slug is not a question, so the search engine's ranking (which
weighs the article's body) would answer a different question than "which address did you mean". Two words
are the same when their stems match or difflib's ratio reaches ``SAME_WORD``; difflib's quick ratios skip
most of the vocabulary, and only the vocabulary is compared, so a miss costs little even for a large site.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from functools import lru_cache

from whoosh.lang.porter import stem as porter_stem

from .analysis import FUNCTION_WORDS

WORD = re.compile(r"[^\W_]+")
SAME_WORD = 0.8  # "retrun"/"return" 0.83, "polci"/"polici" 0.91; "gift"/"lift" 0.75 is another word
MIN_SHARE = 0.5  # of the slug's words an article's name must match to be suggested at all
NEAR_BEST = 0.75  # of the best article's score the others must reach: "Return policy", not every "return"
MAX_WORDS = 8  # a slug's first words are enough; a pasted sentence costs no more than these
MAX_WORD = 40


@lru_cache(maxsize=4096)
def _stem(word: str) -> str:
    return porter_stem(word)


def words(text: str) -> list[str]:
    """Return the stems of a slug's or title's words that name a topic: no function words, no single letters,
    no bare numbers (an old address's year or page id names nothing an article is about)."""
    found = []
    for word in WORD.findall(text.lower()):
        if word in FUNCTION_WORDS or word.isdigit() or not 2 <= len(word) <= MAX_WORD:  # "e" of "e-gift"
            continue
        found.append(_stem(word))
    return found


class NearNames:
    """The words naming each article, to find the articles a mistyped or made-up slug probably meant."""

    def __init__(self, names: Iterable[tuple[str, Iterable[str]]]):
        """``names``: each article's slug and the texts naming it (the slug itself, the title, aliases)."""
        self.names: dict[str, frozenset[str]] = {}
        self.having: dict[str, set[str]] = {}  # word -> slugs named with it
        for slug, texts in names:
            named = frozenset(w for text in texts for w in words(text))
            self.names[slug] = named
            for word in named:
                self.having.setdefault(word, set()).add(slug)
        self.vocabulary = sorted(self.having)

    def nearest(self, slug: str, limit: int = 3) -> list[str]:
        """Return up to ``limit`` slugs of articles whose names match most of ``slug``'s words, best first;
        none when no article's name is close."""
        asked = list(dict.fromkeys(words(slug[:400])))[:MAX_WORDS]
        if not asked:
            return []
        matched: dict[str, dict[str, float]] = {}  # slug -> asked word -> how alike the best word of its name is
        for word in asked:
            for known in difflib.get_close_matches(word, self.vocabulary, n=20, cutoff=SAME_WORD):
                alike = 1.0 if known == word else difflib.SequenceMatcher(None, word, known).ratio()
                for candidate in self.having[known]:
                    words_matched = matched.setdefault(candidate, {})
                    words_matched[word] = max(words_matched.get(word, 0.0), alike)
        scored: list[tuple[float, float, str]] = []
        for candidate, words_matched in matched.items():
            share = sum(words_matched.values()) / len(asked)
            # Between equals, the article with fewer other words: "Return policy" before "Returning a gift".
            precision = len(words_matched) / len(self.names[candidate])
            if share >= MIN_SHARE:
                scored.append((share, precision, candidate))
        if not scored:
            return []
        scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
        best = scored[0][0]
        return [candidate for share, _precision, candidate in scored if share >= best * NEAR_BEST][:limit]
