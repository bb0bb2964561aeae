"""Text analysis shared by indexing, querying and highlighting: one tokenizer, one set of rules."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from whoosh.analysis import STOP_WORDS, Token, Tokenizer
from whoosh.lang.porter import stem as porter_stem

MAX_QUERY_CHARS = 1000  # longer input (a pasted e-mail) is cut: its start carries the question

# "us" is a country to a shop, not a stop word.
STOP = frozenset(STOP_WORDS - {"us"})
# The words of a question that carry no topic (the stop list of NLTK's English corpus, which the index
# keeps: "how" and "my" are in articles' text, and whoosh's shorter list is baked into every index): a match
# on them alone is no match, and they are never highlighted.
FUNCTION_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
""".split())
# Words and codes: "TH-45-GRN", "e-mail", "3.5mm", "don't".
TOKEN_RE = r"\w+(?:['’\-_./]\w+)*"
SPLIT_RE = re.compile(r"['’\-_./]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MD_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_NOISE_RE = re.compile(r"<[^>]+>|^\s*(?:[-*+]|\d+\.)\s+|[*_`#>|~]+", re.MULTILINE)


class ShopAnalyzer(Tokenizer):
    """Words and codes, lowercased, stop words out, Porter-stemmed: in one pass over the text.

    The same as ``RegexTokenizer | CompoundFilter | LowercaseFilter | StopFilter |
    StemFilter`` (the tests hold it to that chain) but faster,
    which matters for indexing and for highlighting every result's snippet.
    A hyphenated or dotted token is emitted as its parts and then whole
    (``TH-45-GRN`` → ``th``, ``45``, ``grn``, ``th45grn``) so both forms match.
    """

    def __init__(self, stem: bool = True):
        self.stem = stem

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShopAnalyzer) and other.stem == self.stem

    def __hash__(self) -> int:
        return hash((ShopAnalyzer, self.stem))

    def __call__(self, value: str, positions: bool = False, chars: bool = False, keeporiginal: bool = False,
                 removestops: bool = True, start_pos: int = 0, start_char: int = 0, tokenize: bool = True,
                 mode: str = "", **kwargs: Any) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        stem = self.stem
        for number, match in enumerate(TOKEN_PATTERN.finditer(value)):
            text = match.group(0)
            if SPLIT_RE.search(text):
                pieces, offset = [], 0
                for part in SPLIT_RE.split(text):
                    if part:
                        offset = text.index(part, offset)
                        pieces.append((part, offset, offset + len(part)))
                        offset += len(part)
                pieces.append(("".join(p[0] for p in pieces), 0, len(text)))
            else:
                pieces = [(text, 0, len(text))]
            for piece, begin, end in pieces:
                if not piece:  # "_" or "--" alone: nothing to index
                    continue
                word = piece.lower()
                stopped = stem and word in STOP
                if stopped and removestops:
                    continue
                token.text = _stem(word) if stem and not stopped else word
                token.stopped = stopped
                token.boost = 1.0
                if keeporiginal:
                    token.original = piece
                if positions:
                    token.pos = start_pos + number
                if chars:
                    token.startchar = start_char + match.start() + begin
                    token.endchar = start_char + match.start() + end
                yield token


TOKEN_PATTERN = re.compile(TOKEN_RE, re.UNICODE)
WORD_PATTERN = re.compile(r"[^\W\d_]+")
_stem = lru_cache(maxsize=200_000)(porter_stem)


def word_analyzer() -> ShopAnalyzer:
    """Return the analyzer for unstemmed words (vocabulary and spelling)."""
    return ShopAnalyzer(stem=False)


def stem_analyzer() -> ShopAnalyzer:
    """Return the analyzer every searched field uses: words, lowercase, stop words out, stems."""
    return ShopAnalyzer()


def markdown_text(markdown: str) -> str:
    """Return Markdown as plain text for indexing: link text kept, targets and markup dropped."""
    return _MD_NOISE_RE.sub(" ", _MD_LINK_RE.sub(r"\1", markdown))


ANALYZER = ShopAnalyzer()


def stems(text: str) -> list[str]:
    """Return the index terms of a text."""
    return [t.text for t in ANALYZER(text)]


def clean_query(text: str) -> str:
    """Return a query cut to a safe size, normalised, without control characters."""
    text = unicodedata.normalize("NFKC", text[: MAX_QUERY_CHARS * 4])[:MAX_QUERY_CHARS]
    return " ".join(_CONTROL_RE.sub(" ", text).split())
