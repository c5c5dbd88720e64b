"""Names for topics from what their clips share: ImageNet classes (the ConSE bridge's classifier on
the stored frame features), sound captions ("heard") and transcript keywords ("said").

Every source is ranked by *distinctiveness*, not frequency: a term's score in a topic is
n_t * log(share_t / share_library) (the topic's contribution to the KL divergence from the
library), so a class or caption that every topic shares ("music") does not name them all.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

_STOPWORDS = (
    "a about after again all also am an and any are as at be because been before being but by can could did do "
    "does doing down during each few for from further get got had has have having he her here hers him his how i "
    "if in into is it its just know like me more most my no nor not now of off on once one only or other our out "
    "over own really right same she should so some such than that the their them then there these they this those "
    "through to too under until up very was we well were what when where which while who why will with would yeah "
    "you your oh okay ok go going gonna let lets thing things see look"
)
STOPWORDS = frozenset(_STOPWORDS.split(" "))
WORD = re.compile(r"[a-z][a-z'-]{2,}")


def distinctive(topic_counts: Counter, library_counts: Counter, topic_n: int, library_n: int,
                top: int = 3, min_count: int = 1) -> list[str]:
    """The ``top`` terms most over-represented in the topic (n_t * log lift), lift > 1 only."""
    scored = []
    for term, n in topic_counts.items():
        if n < min_count or library_counts[term] == 0:
            continue
        lift = (n / max(topic_n, 1)) / (library_counts[term] / max(library_n, 1))
        if lift > 1.0 or topic_n >= library_n:  # a single topic: plain frequency
            scored.append((n * math.log(max(lift, 1.0 + 1e-9)), n, term))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    return [t for _, _, t in scored[:top]]


def caption_terms(text: str) -> set[str]:
    """A sound caption as one term: '(Dog barking)' -> 'dog barking'."""
    t = re.sub(r"[\[\]()*♪]", " ", text.lower())
    t = " ".join(t.split()).strip(" .,!?")
    return {t} if t else set()


def keyword_terms(text: str) -> set[str]:
    return {w.strip("'-") for w in WORD.findall(text.lower()) if w.strip("'-") not in STOPWORDS}


def class_scores(frame_logits: np.ndarray) -> np.ndarray:
    """[N, T, 1000] logits -> [N, 1000] class probabilities averaged over frames."""
    z = frame_logits - frame_logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return p.mean(axis=1)


def top_classes(topic_probs: np.ndarray, library_probs: np.ndarray, names: list[str], top: int = 2,
                floor: float = 0.02) -> list[str]:
    """Classes with the highest p_t * log(p_t / p_lib) among those the topic gives >= ``floor``."""
    score = topic_probs * np.log((topic_probs + 1e-9) / (library_probs + 1e-9))
    score[topic_probs < floor] = -np.inf
    order = [int(i) for i in np.argsort(-score) if np.isfinite(score[i])]
    if not order:  # nothing clears the floor: fall back to the topic's most probable class
        order = [int(np.argmax(topic_probs))]
    out: list[str] = []
    for i in order:
        if names[i] not in out:
            out.append(names[i])
        if len(out) == top:
            break
    return out


def topic_name(classes: Iterable[str], sounds: Iterable[str], words: Iterable[str], fallback: str) -> str:
    parts = [*list(classes)[:1], *list(sounds)[:1], *[f"“{w}”" for w in list(words)[:1]]]
    return " · ".join(parts) if parts else fallback
