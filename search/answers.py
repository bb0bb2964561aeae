"""The answer on top: the sentences of the best section that answer a query, taken as they are written.

Extractive only: the answer is one to three consecutive sentences (or one list item or table row) of the
section, never words of our own. Which sentences: those holding the most of the query's topic words,
weighted as the query weighs them; when the section matched by meaning alone, its first sentences, which
is where help articles put the answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from .analysis import FUNCTION_WORDS, stems
from .text import sentences

MOST_SENTENCES = 3
MOST_CHARS = 320  # about three lines: more is an article, not an answer
SHORT = 60  # a sentence this short goes on with the next units (the rows of a table it introduces); a table
# row or list item (no full stop) is an answer of its own


@dataclass(frozen=True)
class Answer:
    """The answer to a query: text of one section of one article, with where it comes from."""

    slug: str
    title: str
    anchor: str
    section: str  # the section's heading ("" for an article's introduction)
    url: str  # the deep link to the section
    text: str  # plain text, as written in the article
    score: float  # the article's dense score (cosine), or 1.0 for a query that is the article's own question
    revision: str  # the section's content revision: a vote on the answer is a vote on this text

    def record(self) -> dict[str, object]:
        """Return the answer as JSON-ready data."""
        return {"slug": self.slug, "anchor": self.anchor, "url": self.url, "text": self.text,
                "score": round(self.score, 4), "title": self.title, "section": self.section,
                "revision": self.revision}


def revision(heading: str, text: str) -> str:
    """Return a section's content revision: it changes when the section's heading or text does."""
    return hashlib.sha256(f"{heading}\x1f{text}".encode()).hexdigest()[:16]


def extract(text: str, terms: Mapping[str, float], words: Mapping[str, str]) -> str:
    """Return the sentences of a section's text that answer a query with these weighted index terms (weighted
    by what they tell, their idf: the sentence naming "PayPal" answers "paypal refund", not one saying "refund").

    ``text`` holds one unit a line (a paragraph, a list item, a table row); the answer's units are one a line.
    """
    topic = {t: w for t, w in terms.items() if words.get(t, t) not in FUNCTION_WORDS}
    units = [sentences(line) for line in text.splitlines() if line.strip()]
    if not units:
        return ""
    best, best_score = (0, 0), 0.0
    for u, unit in enumerate(units):
        for s, sentence in enumerate(unit):
            found = set(stems(sentence))
            score = sum(w for t, w in topic.items() if t in found)
            if score > best_score:
                best, best_score = (u, s), score
    unit, first = units[best[0]], best[1]
    chosen = [unit[first]]
    for sentence in unit[first + 1:]:  # the next sentences of the same paragraph, while short enough
        if len(chosen) >= MOST_SENTENCES or len(" ".join(chosen)) + len(sentence) > MOST_CHARS:
            break
        chosen.append(sentence)
    answer = " ".join(chosen)
    if len(answer) < SHORT and first == len(unit) - 1 and answer.endswith((".", ":")):
        # "All times are UK time." says little alone: the list or table that follows it is the answer.
        lines = [answer]
        for following in units[best[0] + 1:best[0] + 1 + MOST_SENTENCES]:
            line = " ".join(following)
            if len("\n".join(lines)) + len(line) > MOST_CHARS:
                break
            lines.append(line)
        answer = "\n".join(lines)
    if len(answer) > MOST_CHARS:  # one long sentence: cut at a word, and say so
        answer = answer[:MOST_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return answer
