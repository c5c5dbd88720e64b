"""HNSW indexes (hnswlib), one per (model id, space, modality); labels are clip ids.

They are a cache of SQLite, which holds every vector, and they can never be silently stale:

- clip ids are never reused (``clips.id`` is AUTOINCREMENT), so an id always means one vector;
- SQLite keeps a per-model *generation*, bumped by triggers in the very transaction that inserts or
  deletes an embedding, and an *epoch*, bumped when a vector is rewritten under an existing id;
- each index is a manifest (``<space>_<modality>.json``, the commit point) naming a data file and
  the generation and epoch it reflects. At open, an equal generation means the file is exact; a
  different one is repaired incrementally (missing ids added, gone ids marked deleted, their slots
  reused by later additions); a different epoch, a missing, unreadable or truncated file is rebuilt
  from SQLite. Each repair is logged.

Saves write a data file with a name unique to the process, fsync it, then atomically replace the
manifest and fsync the folder, so two processes saving at once never collide and a crash leaves
either the old or the new index. When deleted slots exceed a quarter of the index it is compacted
(rebuilt from SQLite) on save.

A library of a million clips has HNSW files of gigabytes: rewriting them because one video was
added is not acceptable. So a save after a small change writes only a *delta* file (the vectors
added and the ids deleted since the saved base, in one file with a process-unique name, fsynced)
and a manifest naming both; open loads the base and replays the delta (deleted ids marked, added
vectors inserted into free slots). Once the delta passes DELTA_SHARE of the base, the next save
folds it in by writing a new base. The delta is written whole each time, never appended, so the
crash guarantees are the data file's: the manifest names either the old pair or the new one.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import threading
import time
import uuid
import zipfile
from pathlib import Path

import hnswlib
import numpy as np

from engine.errors import DiskFullError, LibraryError

log = logging.getLogger(__name__)

# Every (space, modality) that has vectors and an HNSW file per model: the one list (indexer, re-projection).
SPACE_MODALITIES = (("va", "video"), ("va", "audio"), ("vat", "video"), ("vat", "audio"))
MANIFEST_FORMAT = 1
COMPACT_SHARE = 0.25
COMPACT_MIN = 64
DELTA_SHARE = 0.05  # a delta above this share of the base's elements is folded into a new base
UNKNOWN = -1
_SAVE_LOCK = threading.Lock()  # one save at a time per process, so its leftovers are always superseded


def ef_for(k: int) -> int:
    """HNSW search breadth for ``k`` neighbours. At a million clustered clips, recall@10 of a
    300-candidate query against exact search was 0.978-0.986 at ef 316 (k + 16) and 0.996 at 600,
    for 0.2 ms more per query (bench/bench_million.py)."""
    return max(128, 2 * k)


def index_path(ann_dir: Path, model_id: str, space: str, modality: str) -> Path:
    """The index's manifest: the file whose atomic replacement commits a save."""
    return ann_dir / model_id / f"{space}_{modality}.json"


class AnnIndex:
    """A growable cosine HNSW index over L2-normalised vectors, with deleted-slot reuse.

    ``gen``/``epoch`` say which SQLite state the index reflects (UNKNOWN when not known)."""

    def __init__(self, dim: int, capacity: int = 1024, ef_construction: int = 200, m: int = 16):
        self.dim = dim
        self._lock = threading.Lock()
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.init_index(max_elements=max(capacity, 16), ef_construction=ef_construction, M=m,
                               allow_replace_deleted=True)
        self._index.set_ef(128)
        self._deleted: set[int] = set()  # labels marked deleted (``_evicted`` of them since reused)
        self._evicted = 0
        self._data_name: str | None = None  # the saved data file this index equals (None: not saved)
        self._start_delta(None, [])
        self.gen = UNKNOWN
        self.epoch = UNKNOWN

    def __len__(self) -> int:
        return self.live_count

    @property
    def live_count(self) -> int:
        return self._index.get_current_count() - self.deleted_count

    @property
    def deleted_count(self) -> int:
        """Slots holding a deleted vector (free for reuse)."""
        return len(self._deleted) - self._evicted

    def _start_delta(self, base: str | None, base_deleted) -> None:
        """A new base: ``base`` is its data file, ``base_deleted`` the labels deleted in it."""
        self._base_name, self._base_deleted = base, sorted(int(i) for i in base_deleted)
        self._base_count = self._index.get_current_count()
        self._delta_added: set[int] = set()     # labels added since the base (live ones)
        self._delta_deleted: set[int] = set()   # labels of the base deleted since

    @property
    def delta_size(self) -> int:
        return len(self._delta_added) + len(self._delta_deleted)

    def _prune_deleted(self) -> set[int]:
        """Forget deleted labels whose slot a later addition reused (hnswlib does not say which)."""
        if self._evicted:
            self._deleted &= set(self._index.get_ids_list())
            self._evicted = 0
        return self._deleted

    def ids(self) -> np.ndarray:
        """Live labels (deleted ones excluded)."""
        all_ids = np.asarray(self._index.get_ids_list(), dtype=np.int64)
        if not self._prune_deleted():
            return all_ids
        return np.setdiff1d(all_ids, np.fromiter(self._deleted, np.int64), assume_unique=True)

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[1] != self.dim:
            raise LibraryError(f"vector dim {vecs.shape[-1]} != index dim {self.dim}")
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            if self._deleted.intersection(ids.tolist()):  # an id added again: revive its slot first
                for label in self._prune_deleted().intersection(ids.tolist()):
                    self._index.unmark_deleted(label)
                    self._deleted.discard(label)
            free = self.deleted_count
            need = self._index.get_current_count() + max(0, len(ids) - free)
            if need > self._index.get_max_elements():
                self._index.resize_index(max(need, 2 * self._index.get_max_elements()))
            self._index.add_items(vecs, ids, replace_deleted=True)
            self._evicted += min(len(ids), free)
            self._data_name = None
            for label in ids.tolist():
                if label in self._delta_deleted:   # a base label revived (ids are never reused)
                    self._delta_deleted.discard(label)
                else:
                    self._delta_added.add(label)

    def remove(self, ids) -> int:
        """Mark clip ids deleted (their slots are reused by later additions); returns how many."""
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        present = set(self._index.get_ids_list())
        n = 0
        with self._lock:
            self._prune_deleted()
            for label in ids:
                if label in present and label not in self._deleted:
                    self._index.mark_deleted(label)
                    self._deleted.add(label)
                    self._data_name = None
                    if label in self._delta_added:
                        self._delta_added.discard(label)
                    else:
                        self._delta_deleted.add(label)
                    n += 1
        return n

    def follow(self, removed, ids, vecs, gen_before: int, gen_after: int) -> None:
        """Apply one committed change (engine.index.store.Written) without a rebuild; the index
        stays exact only if it was exact before it, else the next save re-syncs it."""
        self.remove(removed)
        if vecs is not None and len(ids):
            self.add(np.asarray(ids, np.int64), vecs)
        self.gen = gen_after if self.gen == gen_before else UNKNOWN

    def query(self, vec: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (clip ids, cosine similarities), best first."""
        n = self.live_count
        if n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        k = min(k, n)
        q = np.asarray(vec, np.float32).reshape(1, -1)
        with self._lock:
            self._index.set_ef(ef_for(k))
            try:
                labels, dists = self._index.knn_query(q, k=k)
            except RuntimeError:  # the graph could not reach k live elements
                labels, dists = self._index.knn_query(q, k=max(1, k // 2))
        return labels[0].astype(np.int64), (1.0 - dists[0]).astype(np.float32)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self._index.get_items(np.asarray(ids, np.int64)), np.float32).reshape(-1, self.dim)

    def needs_compaction(self) -> bool:
        deleted = self.deleted_count
        return deleted >= COMPACT_MIN and deleted > COMPACT_SHARE * self._index.get_current_count()

    # ---- files ---------------------------------------------------------------------------
    def save(self, path: Path, gen: int | None = None, epoch: int | None = None) -> None:
        """Commit the index by replacing the manifest ``path``: after a small change only a delta
        file is written beside the saved base, else a whole new data file; either is written under
        a process-unique name and fsynced first. ``gen``/``epoch`` default to the index's own."""
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.stem
        gen, epoch = self.gen if gen is None else gen, self.epoch if epoch is None else epoch
        saved = self._data_name
        if saved is not None and all(path.with_name(n).exists() for n in saved.split("+")):
            # Same vectors as the files already saved (only the generation moved, e.g. videos went
            # into other indexes): a new manifest suffices, not gigabytes of HNSW again.
            data, _, delta = saved.partition("+")
            with _SAVE_LOCK:
                self._commit(path, self._manifest(path, data, delta or None, gen, epoch), stem)
            return
        unique = f"{stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with _SAVE_LOCK:
            if self._delta_fits(path):
                self._save_delta(path, stem, path.with_name(f"{unique}.delta"), gen, epoch)
            else:
                self._save_base(path, stem, path.with_name(f"{unique}.hnsw"), gen, epoch)

    def _delta_fits(self, path: Path) -> bool:
        return (self._base_name is not None and path.with_name(self._base_name).exists()
                and self.delta_size <= DELTA_SHARE * self._base_count)

    def _manifest(self, path: Path, data: str, delta: str | None, gen: int, epoch: int) -> dict:
        manifest = {"format": MANIFEST_FORMAT, "data": data, "dim": self.dim, "gen": gen, "epoch": epoch,
                    "deleted": self._base_deleted if data == self._base_name else sorted(self._prune_deleted()),
                    "size": path.with_name(data).stat().st_size}
        if delta:
            manifest.update(delta=delta, delta_size=path.with_name(delta).stat().st_size)
        return manifest

    def _save_base(self, path: Path, stem: str, data: Path, gen: int, epoch: int) -> None:
        """The whole graph as a new base (the delta folded in)."""
        def write() -> dict:
            with self._lock:
                self._index.save_index(str(data))
            _fsync_file(data)
            deleted = sorted(self._prune_deleted())
            self._start_delta(data.name, deleted)
            return self._manifest(path, data.name, None, gen, epoch)

        self._write_and_commit(path, stem, data, write)

    def _save_delta(self, path: Path, stem: str, delta: Path, gen: int, epoch: int) -> None:
        """Only what changed since the base: added labels with their vectors, deleted base labels."""
        def write() -> dict:
            with self._lock:
                added = np.fromiter(sorted(self._delta_added), np.int64, len(self._delta_added))
                vecs = (np.asarray(self._index.get_items(added), np.float32).reshape(-1, self.dim) if len(added)
                        else np.zeros((0, self.dim), np.float32))
            deleted = np.fromiter(sorted(self._delta_deleted), np.int64, len(self._delta_deleted))
            fd = os.open(delta, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, added=added, vectors=vecs, deleted=deleted)
                f.flush()
                os.fsync(f.fileno())
            return self._manifest(path, self._base_name, delta.name, gen, epoch)

        self._write_and_commit(path, stem, delta, write)

    def _write_and_commit(self, path: Path, stem: str, written: Path, write) -> None:
        """Run ``write`` (which writes ``written`` and returns the manifest), then commit it; on any
        failure the new file goes and the previous manifest stays."""
        try:
            manifest = write()
            write_atomic(path, json.dumps(manifest).encode())
        except BaseException as exc:
            _unlink_quietly(written)
            if isinstance(exc, (OSError, RuntimeError)) and _disk_full(exc, path.parent):
                raise DiskFullError(f"the disk holding the library is full (saving index {path.name})") from exc
            raise
        self._committed(manifest, path, stem)

    def _commit(self, path: Path, manifest: dict, stem: str) -> None:
        try:
            write_atomic(path, json.dumps(manifest).encode())
        except OSError as exc:
            if _disk_full(exc, path.parent):
                raise DiskFullError(f"the disk holding the library is full (saving index {path.name})") from exc
            raise
        self._committed(manifest, path, stem)

    def _committed(self, manifest: dict, path: Path, stem: str) -> None:
        self.gen, self.epoch = manifest["gen"], manifest["epoch"]
        self._data_name = manifest["data"] + ("+" + manifest["delta"] if "delta" in manifest else "")
        _remove_leftovers(path, stem, keep=self._data_name.split("+"))

    @classmethod
    def load(cls, path: Path, dim: int) -> AnnIndex:
        """Load from a manifest (the base, then its delta replayed); LibraryError says why when the
        files are missing or damaged."""
        try:
            manifest = json.loads(path.read_text())
            data = path.with_name(manifest["data"])
            if manifest.get("format") != MANIFEST_FORMAT or manifest.get("dim") != dim:
                raise LibraryError(f"index {path.name} has another format or width")
            if data.stat().st_size != manifest["size"]:
                raise LibraryError(f"index data {data.name} is truncated or was changed")
            delta = _read_delta(path.with_name(manifest["delta"]), manifest["delta_size"], dim) \
                if "delta" in manifest else None
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise LibraryError(f"cannot read index {path}: {exc}") from exc
        self = cls.__new__(cls)
        self.dim, self._lock = dim, threading.Lock()
        self._index = hnswlib.Index(space="ip", dim=dim)
        try:
            self._index.load_index(str(data), allow_replace_deleted=True)
        except (RuntimeError, OSError, MemoryError) as exc:
            raise LibraryError(f"cannot read index {data}: {exc}") from exc
        self._index.set_ef(128)
        self._deleted = {int(i) for i in manifest.get("deleted", [])}
        self._evicted = 0
        self._start_delta(data.name, self._deleted)
        if delta is not None:
            added, vecs, deleted = delta
            self.remove(deleted)
            self.add(added, vecs)
        self._data_name = data.name + ("+" + manifest["delta"] if delta is not None else "")
        self.gen, self.epoch = int(manifest["gen"]), int(manifest["epoch"])
        return self

    @classmethod
    def build(cls, ids: np.ndarray, vecs: np.ndarray, dim: int) -> AnnIndex:
        index = cls(dim, capacity=max(1024, int(len(ids) * 1.3)))
        index.add(ids, vecs)
        return index


def _read_delta(path: Path, size: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(added labels, their vectors, deleted labels) of a delta file, checked against the manifest."""
    if path.stat().st_size != size:
        raise LibraryError(f"index delta {path.name} is truncated or was changed")
    with np.load(path, allow_pickle=False) as z:
        added, vecs, deleted = z["added"].astype(np.int64), z["vectors"].astype(np.float32), z["deleted"]
    if vecs.shape != (len(added), dim):
        raise LibraryError(f"index delta {path.name} does not fit the index")
    return added, vecs, deleted.astype(np.int64)


# ---- SQLite side ----------------------------------------------------------------------------
def db_state(conn, model_id: str) -> tuple[int, int]:
    """(generation, epoch) of a model's vectors in SQLite; (0, 0) before any vector was written."""
    row = conn.execute("SELECT gen, epoch FROM ann_state WHERE model_id=?", (model_id,)).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def db_ids(conn, model_id: str, space: str, modality: str) -> np.ndarray:
    """Clip ids with a vector in one index (read from the covering index, not the vectors)."""
    rows = conn.execute("SELECT clip_id FROM embeddings WHERE model_id=? AND space=? AND modality=?",
                        (model_id, space, modality)).fetchall()
    return np.fromiter((r[0] for r in rows), np.int64, len(rows))


def db_vectors(conn, model_id: str, space: str, modality: str,
               only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(clip ids, vectors) stored in SQLite for one index, optionally only for ``only`` ids."""
    sql = "SELECT clip_id, vec FROM embeddings WHERE model_id=? AND space=? AND modality=?"
    if only is None:
        rows = conn.execute(sql, (model_id, space, modality)).fetchall()
    else:
        rows = []
        wanted = [int(i) for i in only]
        for s in range(0, len(wanted), 900):
            part = wanted[s:s + 900]
            rows += conn.execute(sql + f" AND clip_id IN ({','.join('?' * len(part))})",
                                 (model_id, space, modality, *part)).fetchall()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    return (np.asarray([r[0] for r in rows], np.int64),
            np.stack([np.frombuffer(r[1], np.float32) for r in rows]))


class _Snapshot:
    """A read transaction, so the generation and the ids read belong to one database state."""

    def __init__(self, conn):
        self.conn, self.own = conn, not conn.in_transaction

    def __enter__(self):
        if self.own:
            self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, *exc):
        if self.own and self.conn.in_transaction:
            self.conn.execute("COMMIT")


def rebuild_index(conn, model_id: str, space: str, modality: str, dim: int) -> AnnIndex:
    """A fresh index of every vector SQLite holds for (model, space, modality)."""
    with _Snapshot(conn):
        gen, epoch = db_state(conn, model_id)
        ids, vecs = db_vectors(conn, model_id, space, modality)
    index = AnnIndex.build(ids, vecs, dim) if len(ids) else AnnIndex(dim)
    index.gen, index.epoch = gen, epoch
    return index


def sync_index(conn, index: AnnIndex, model_id: str, space: str, modality: str) -> AnnIndex:
    """Bring ``index`` in line with SQLite: nothing to do when the generation matches; otherwise
    add the missing ids and mark gone ones deleted. Returns a rebuilt index when the epoch moved."""
    with _Snapshot(conn):
        gen, epoch = db_state(conn, model_id)
        if index.gen == gen and index.epoch == epoch:
            return index
        if index.epoch != epoch:
            return rebuild_index(conn, model_id, space, modality, index.dim)
        want = db_ids(conn, model_id, space, modality)
        have = index.ids()
        gone = np.setdiff1d(have, want, assume_unique=True)
        new = np.setdiff1d(want, have, assume_unique=True)
        ids, vecs = db_vectors(conn, model_id, space, modality, only=new) if len(new) else (new, None)
    index.remove(gone)
    if len(ids):
        index.add(ids, vecs)
    index.gen = gen
    if len(gone) or len(new):
        log.info("index %s/%s_%s brought up to date: %d added, %d removed", model_id, space, modality,
                 len(new), len(gone))
    return index


def open_index(conn, ann_dir: Path, model_id: str, space: str, modality: str, dim: int,
               save: bool = True) -> AnnIndex:
    """Load the index and bring it in line with SQLite; a missing, damaged or stale file is rebuilt
    (with a warning) and, with ``save``, written back."""
    path = index_path(ann_dir, model_id, space, modality)
    index, reason = None, None
    if path.exists():
        try:
            index = AnnIndex.load(path, dim)
        except LibraryError as exc:
            reason = str(exc)
    elif any(path.parent.glob(f"{space}_{modality}*.hnsw")):
        reason = "an index from an older version (no manifest)"
    if index is not None and index.epoch != db_state(conn, model_id)[1]:
        index, reason = None, "vectors were rewritten since it was saved"
    if index is None:
        if reason:
            log.warning("rebuilding index %s/%s_%s from the database: %s", model_id, space, modality, reason)
        index = rebuild_index(conn, model_id, space, modality, dim)
        changed = True
    else:
        before = index.gen
        index = sync_index(conn, index, model_id, space, modality)
        changed = index.gen != before
    if save and changed:
        try:
            index = save_index(conn, index, path, model_id, space, modality)
        except (OSError, LibraryError) as exc:  # a full disk must not stop searches: the index in memory is right
            log.warning("could not save the repaired index %s: %s", path.name, exc)
    return index


def save_index(conn, index: AnnIndex, path: Path, model_id: str, space: str, modality: str) -> AnnIndex:
    """Sync with SQLite, compact when many slots are deleted, and save; returns the saved index."""
    index = sync_index(conn, index, model_id, space, modality)
    if index.needs_compaction():
        log.info("compacting index %s/%s_%s (%d deleted slots)", model_id, space, modality, index.deleted_count)
        index = rebuild_index(conn, model_id, space, modality, index.dim)
    index.save(path)
    return index


# ---- file helpers ---------------------------------------------------------------------------
def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # not possible on every platform
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a process-unique temporary file, fsynced, then renamed."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def _disk_full(exc: BaseException, folder: Path) -> bool:
    """hnswlib reports a failed write as a bare RuntimeError: ask the filesystem."""
    if getattr(exc, "errno", None) == errno.ENOSPC:
        return True
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


_OWNED = re.compile(r"\.(\d+)-[0-9a-f]{8}\.(hnsw|delta|tmp)$")


def _remove_leftovers(path: Path, stem: str, keep: list[str]) -> None:
    """Delete files this index no longer uses: older saves, pre-manifest files, and temporary files
    of dead processes. Another live process's recent file may be about to be committed, so it
    stays, and so does whatever the manifest names now (another process may have committed since)."""
    try:
        current = json.loads(path.read_text())
        keep = {*keep, path.name, current.get("data", ""), current.get("delta", "")}
    except (OSError, ValueError, AttributeError):
        keep = {*keep, path.name}
    for f in path.parent.glob(f"{stem}.*"):
        if f.name in keep:
            continue
        owner = _OWNED.search(f.name)
        if owner is None:
            if f.name == f"{stem}.hnsw" or f.suffix == ".tmp":  # pre-manifest file or old tmp name
                _unlink_quietly(f)
            continue
        pid = int(owner.group(1))
        try:
            recent = time.time() - f.stat().st_mtime < 600
        except OSError:
            continue
        if pid == os.getpid() or not _pid_alive(pid) or not recent:
            _unlink_quietly(f)
