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
# The words of a question that carry no topic: never marked in a snippet nor counted in choosing its
# sentences, a match on them alone is no match (SearchEngine._confident), and the answer is not chosen by
# them. The index keeps them (ranking is tuned with STOP, baked into every index), but a marked "how" or
# "my" tells the reader nothing. NLTK's English stop words (nltk.corpus.stopwords, 179 words) with
# whoosh's, "us" again kept.
FUNCTION_WORDS = STOP | frozenset("""
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him
    his himself she she's her hers herself it it's its itself they them their theirs themselves what which who
    whom this that that'll these those am is are was were be been being have has had having do does did doing a
    an the and but if or because as until while of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once here there when
    where why how all any both each few more most other some such no nor not only own same so than too very s t
    can will just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't
    doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't
    shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
""".split()) - {"us"}
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
