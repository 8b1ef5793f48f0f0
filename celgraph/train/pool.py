"""Patch pools: the training patches of a trainer, cut once and stored as uint8 shards.

A pool is a folder of ``shard_NNNNN.npz`` files, each holding the patches of ``shard_frames``
consecutive frames under the same array names (``deg``/``gt``/``flags`` for GapFill, ``x``/``y``
for Sketch, ...). Shards are written atomically and never rewritten, so an interrupted
:func:`write_pool` continues where it stopped, and a trainer can read a pool that another process
is still writing (:func:`count_shards`).
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from celgraph.core.atomic import atomic_path
from celgraph.engine.cache import default_cache_dir

__all__ = ["write_pool", "load_pool", "count_shards", "concat", "default_pool"]


def default_pool(name: str) -> str:
    """Where ``graph train NAME`` keeps its patch pool unless told: ``$CELGRAPH_<NAME>_POOL``, else
    ``train/NAME/pool`` under celgraph's cache folder (``$CELGRAPH_CACHE``, default ~/.cache/celgraph)."""
    from_env = os.environ.get(f"CELGRAPH_{name.upper()}_POOL")
    if from_env:
        return from_env
    return str(default_cache_dir() / "train" / name / "pool")


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Patch dicts with the same array names → one dict, each array concatenated along N."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _save_npz(path: Path, arrays: dict) -> None:
    with atomic_path(path) as tmp:                # keeps the .npz suffix, so numpy adds none
        np.savez(tmp, **arrays)


def write_pool(pool: str | Path, frames: int, shard_frames: int, frame_patches: Callable[[int], dict],
               echo=print) -> Path:
    """Write the shards of ``frames`` frames that are not there yet; ``frame_patches(f)`` gives the
    patches of frame ``f`` (0-based; it seeds everything it draws from ``f``, so a shard's content
    does not depend on which shards already exist)."""
    pool = Path(pool)
    pool.mkdir(parents=True, exist_ok=True)
    n_shards = math.ceil(frames / shard_frames)
    t0 = time.time()
    for sh in range(n_shards):
        path = pool / f"shard_{sh:05d}.npz"
        if path.exists():
            continue
        parts = [frame_patches(f) for f in range(sh * shard_frames, min((sh + 1) * shard_frames, frames))]
        _save_npz(path, concat(parts))
        echo(f"pool shard {sh + 1}/{n_shards} ({time.time() - t0:.0f} s)")
    return pool


def load_pool(pool: str | Path, missing_hint: str) -> dict[str, np.ndarray]:
    """All shards of ``pool`` in order, concatenated; FileNotFoundError ending in ``missing_hint``
    when there are none."""
    shards = sorted(Path(pool).glob("shard_*.npz"))
    if not shards:
        raise FileNotFoundError(f"no patch pool in {pool}: {missing_hint}")
    return concat([dict(np.load(s)) for s in shards])


def count_shards(pool: str | Path) -> int:
    return len(list(Path(pool).glob("shard_*.npz")))
