"""Has this library been brought up to the packaged heads of this version? (No torch.)

A new version of the packaged heads gets a new base model id (``<config>-v<heads_version>``); the
stored backbone features stay valid, so a library indexed under older heads only needs its clips
re-projected once (engine.train.models.embed_missing). The meta key records the base model id the
library was last brought up to, so a query checks one row instead of scanning the clips.
"""

from __future__ import annotations

from engine.index.db import get_meta, set_meta, transaction

META_KEY = "packaged_model"


def needs_catch_up(lib) -> bool:
    """True when the library may hold clips without vectors of the current packaged heads."""
    if get_meta(lib.db, META_KEY) == lib.base_model_id:
        return False
    has_clips = lib.db.conn.execute("SELECT 1 FROM features LIMIT 1").fetchone() is not None
    if not has_clips:
        mark_caught_up(lib)
    return has_clips


def mark_caught_up(lib) -> None:
    with transaction(lib.db):
        set_meta(lib.db, META_KEY, lib.base_model_id)


def is_older_base(model_name: str, base_model_id: str, model_id: str) -> bool:
    """A packaged base model id of this config with another heads version (no checkpoint)."""
    prefix = f"{model_name}-v"
    return model_id.startswith(prefix) and model_id != base_model_id and model_id[len(prefix):].isdigit()
