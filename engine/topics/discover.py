"""Discover the library's topics: cluster the clips' embeddings of the active model and name each
cluster from what its clips share.

k-means clusters each clip's S_va picture vector (``ClipTable.points`` says why not picture and
sound). Grouping: the SwAV prototypes when the active model was trained with the ``swav``
objective (each clip goes to the prototype its picture and sound score highest on together), else
spherical k-means with k chosen by the silhouette criterion (``cluster.py``) or given by the caller.
Names: see ``naming.py``; only the ``name_sample`` clips nearest each topic's centre are read for
the class names, so naming costs the same for 1k or 100k clips.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.errors import LibraryError
from engine.index.db import from_blob
from engine.models.prototypes import load_prototypes
from engine.search.moments import ClipHit, Moment, merge_hits
from engine.topics import naming
from engine.topics.cluster import cluster


@dataclass
class Topic:
    id: int
    name: str
    clips: int
    videos: int
    classes: list[str]
    sounds: list[str]
    words: list[str]
    clip_ids: list[int]       # nearest the topic's centre first
    moments: list[Moment] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        d["moments"] = [m.to_json() for m in self.moments]
        return d


@dataclass
class TopicSet:
    model_id: str
    method: str               # "swav prototypes" | "k-means"
    criterion: str            # how the number of topics was chosen
    clips: int
    seconds: float
    topics: list[Topic]

    def to_json(self) -> dict:
        return {"model_id": self.model_id, "method": self.method, "criterion": self.criterion,
                "clips": self.clips, "seconds": round(self.seconds, 3), "topics": [t.to_json() for t in self.topics]}


@dataclass
class ClipTable:
    ids: np.ndarray           # [N] clip ids
    video_ids: np.ndarray     # [N]
    starts: np.ndarray        # [N]
    ends: np.ndarray          # [N]
    video: np.ndarray         # [N, D] S_va video
    audio: np.ndarray         # [N, D] S_va audio, zero rows for silent clips
    paths: dict[int, str]     # video id -> path

    def points(self) -> np.ndarray:
        """What k-means clusters: the clips' S_va picture vectors. Picture and sound side by side
        was the first choice, but with mmv-base-v2's audio head it gave two topics at chance purity
        on the tune part of the shared media (0.20, against 0.93 for the picture alone); the
        sound still names the topics (captions) and SwAV prototypes still use both."""
        return self.video


def load_clips(db, model_id: str) -> ClipTable:
    """Every indexed clip of a present video with its S_va vectors under ``model_id``."""
    rows = db.conn.execute(
        "SELECT c.id, c.video_id, c.start, c.end, e.modality, e.vec FROM embeddings e "
        "JOIN clips c ON c.id = e.clip_id JOIN videos v ON v.id = c.video_id "
        "WHERE e.model_id = ? AND e.space = 'va' AND v.status = 'done' ORDER BY c.id", (model_id,)).fetchall()
    if not rows:
        raise LibraryError(f"no clip embeddings for model {model_id}; index some videos first")
    order: dict[int, int] = {}
    meta, vecs = [], {"video": {}, "audio": {}}
    for cid, vid, start, end, modality, blob in rows:
        if cid not in order:
            order[cid] = len(meta)
            meta.append((cid, vid, start, end))
        vecs[modality][order[cid]] = from_blob(blob, "float32")
    dim = len(next(iter(vecs["video"].values())))
    video, audio = np.zeros((len(meta), dim), np.float32), np.zeros((len(meta), dim), np.float32)
    for i, v in vecs["video"].items():
        video[i] = v
    for i, a in vecs["audio"].items():
        audio[i] = a
    m = np.array(meta, dtype=np.float64)
    paths = dict(db.conn.execute("SELECT id, path FROM videos WHERE status = 'done'").fetchall())
    return ClipTable(m[:, 0].astype(np.int64), m[:, 1].astype(np.int64), m[:, 2], m[:, 3], video, audio, paths)


def _prototype_labels(table: ClipTable, prototypes: np.ndarray) -> tuple[np.ndarray, str]:
    """Each clip's prototype (video and audio scores averaged); empty prototypes are dropped."""
    scores = table.video @ prototypes.T
    has_audio = np.abs(table.audio).sum(axis=1) > 0
    scores[has_audio] = 0.5 * (scores[has_audio] + table.audio[has_audio] @ prototypes.T)
    raw = scores.argmax(axis=1)
    used = np.unique(raw)
    labels = np.searchsorted(used, raw)
    return labels, f"{len(used)} of the model's {len(prototypes)} SwAV prototypes hold clips"


def group_clips(table: ClipTable, k: int | None, prototypes: np.ndarray | None,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(labels [N], closeness of each clip to its topic centre [N], method, criterion)."""
    x = table.points()
    if prototypes is not None and k is None:
        labels, criterion = _prototype_labels(table, prototypes)
        method = "swav prototypes"
    else:
        result = cluster(x, k, seed=seed)
        labels, criterion, method = result.labels, result.criterion, "k-means"
    centres = np.stack([x[labels == c].mean(axis=0) for c in range(labels.max() + 1)])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True) + 1e-12
    unit = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    return labels, (unit * centres[labels]).sum(axis=1), method, criterion


def discover_topics(lib, k: int | None = None, *, seed: int = 0, moments_per_topic: int = 24,
                    name_sample: int = 64) -> TopicSet:
    """The active model's topics of ``lib`` (anything with ``db``, ``active_model_id`` and
    ``paths.models_dir``), largest first."""
    if k is not None and k < 1:
        raise LibraryError("the number of topics must be at least 1")
    started = time.perf_counter()
    model_id = lib.active_model_id
    table = load_clips(lib.db, model_id)
    prototypes = load_prototypes(lib.paths.models_dir, model_id)
    labels, closeness, method, criterion = group_clips(table, k, prototypes, seed)
    members = [np.flatnonzero(labels == c) for c in range(labels.max() + 1)]
    members = [m[np.argsort(-closeness[m])] for m in members]
    namer = _Namer(lib.db, table, [m[:name_sample] for m in members])
    topics = []
    for c, rows in sorted(enumerate(members), key=lambda item: -len(item[1])):
        classes, sounds, words = namer.terms(c, rows)
        topic = Topic(len(topics), naming.topic_name(classes, sounds, words, f"topic {len(topics) + 1}"),
                      len(rows), len(np.unique(table.video_ids[rows])), classes, sounds, words,
                      [int(i) for i in table.ids[rows]])
        topic.moments = _moments(table, rows, closeness, moments_per_topic)
        topics.append(topic)
    return TopicSet(model_id, method, criterion, len(table.ids), time.perf_counter() - started, topics)


def _moments(table: ClipTable, rows: np.ndarray, closeness: np.ndarray, top: int) -> list[Moment]:
    """The topic's clips as moments (touching clips of one video merge), nearest the centre first."""
    hits = [ClipHit(int(table.ids[r]), int(table.video_ids[r]), float(table.starts[r]), float(table.ends[r]),
                    float(closeness[r])) for r in rows]
    return merge_hits(hits, table.paths, top_k=top, max_per_video=3, extend_within=1e9)


class _Namer:
    """Counts, once for the library, what each clip shows (ImageNet classes), and what is heard and
    said around it; then names each topic by its most distinctive terms."""

    def __init__(self, db, table: ClipTable, samples: list[np.ndarray]):
        self.table = table
        self.samples = samples
        self.class_probs = _class_probabilities(db, table, samples)
        self.class_names = _class_names()
        self.class_library = None
        if self.class_probs is not None and any(len(p) for p in self.class_probs):
            self.class_library = np.concatenate([p for p in self.class_probs if len(p)]).mean(axis=0)
        said, heard = _clip_transcript_terms(db, table)
        self.said, self.heard = said, heard
        self.said_all = Counter(t for terms in said.values() for t in terms)
        self.heard_all = Counter(t for terms in heard.values() for t in terms)

    def terms(self, c: int, rows: np.ndarray) -> tuple[list[str], list[str], list[str]]:
        n_all = len(self.table.ids)
        classes: list[str] = []
        if self.class_library is not None and len(self.class_probs[c]):
            classes = naming.top_classes(self.class_probs[c].mean(axis=0), self.class_library, self.class_names)
        heard = Counter(t for r in rows for t in self.heard.get(int(r), ()))
        said = Counter(t for r in rows for t in self.said.get(int(r), ()))
        sounds = naming.distinctive(heard, self.heard_all, len(rows), n_all, top=2)
        words = naming.distinctive(said, self.said_all, len(rows), n_all, top=3, min_count=2)
        return classes, sounds, words


def _class_names() -> list[str]:
    from engine.models.conse import imagenet_classes

    return [lemmas.split(",")[0].strip() for _, lemmas, _ in imagenet_classes()]


def _class_probabilities(db, table: ClipTable, samples: list[np.ndarray]) -> list[np.ndarray] | None:
    """Per topic [n_sample, 1000]: the frozen EfficientNet classifier (ConSE's) on the stored
    frame features of the sampled clips; None when the classifier cannot be read."""
    try:
        from engine.models.registry import imagenet_classifier

        weight, bias = (t.numpy() for t in imagenet_classifier())
    except Exception:  # naming degrades to sounds and words; topics still work
        return None
    dim = weight.shape[1]
    wanted = [int(i) for rows in samples for i in table.ids[rows]]
    feats: dict[int, np.ndarray] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        marks = ",".join("?" * len(part))
        for cid, n, blob in db.conn.execute(
                f"SELECT clip_id, n_frames, video FROM features WHERE clip_id IN ({marks})", part):
            feats[cid] = from_blob(blob, "float16", (n, dim)).astype(np.float32)
    if not feats:
        return None
    # One 2-D matrix product for every sampled frame (numpy's batched products, and many small
    # ones on a busy machine, are far slower); frames of a short clip are padded with its last.
    t = max(len(f) for f in feats.values())
    ids = list(feats)
    stacked = np.stack([np.concatenate([f, np.repeat(f[-1:], t - len(f), axis=0)]) for f in feats.values()])
    probs = naming.class_scores((stacked.reshape(-1, dim) @ np.ascontiguousarray(weight.T) + bias)
                                .reshape(len(ids), t, -1))
    row_of = {cid: i for i, cid in enumerate(ids)}
    return [probs[[row_of[int(c)] for c in table.ids[rows] if int(c) in row_of]] for rows in samples]


def _clip_transcript_terms(db, table: ClipTable) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    """Row -> terms said (keywords) and heard (captions) overlapping that clip."""
    spans: dict[tuple[int, str], list[tuple[float, float, str]]] = defaultdict(list)
    for vid, kind, start, end, text in db.conn.execute(
            "SELECT video_id, kind, start, end, text FROM transcripts WHERE kind IN ('said', 'heard')"):
        spans[(vid, kind)].append((start, end, text))
    said: dict[int, set[str]] = {}
    heard: dict[int, set[str]] = {}
    for r in range(len(table.ids)):
        vid, s, e = int(table.video_ids[r]), table.starts[r], table.ends[r]
        for kind, target, split in (("said", said, naming.keyword_terms), ("heard", heard, naming.caption_terms)):
            terms = set().union(*[split(t) for a, b, t in spans.get((vid, kind), ()) if a < e and b > s] or [set()])
            if terms:
                target[r] = terms
    return said, heard
