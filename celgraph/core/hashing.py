"""Cache keys: SHA-256 over canonical JSON. Never node names, so equal sub-graphs share entries."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

import numpy as np

KEY_SCHEMA = 1   # bump when the key recipe itself changes


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"not JSON-serialisable in a cache key: {type(o).__name__}")


def canonical_json(obj: Any) -> str:
    """Stable text for hashing: sorted keys, no whitespace, no NaN, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_default)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def node_signature(type_id: str, version: int, params: dict) -> str:
    """Hash of what a node instance is, independent of frame and inputs (one per node per plan)."""
    return sha256_text(canonical_json({"schema": KEY_SCHEMA, "type": type_id, "version": version,
                                       "params": params}))


def task_key_from(signature: str, inputs: dict, frame, external) -> str:
    """The key of one task, from its node signature.

    inputs: input name → list of (upstream task key, output name, frame) references, or None for
    an unconnected optional input. frame: the frame (per-frame task) or the clip's frame list.
    external: the node's JSON-able fingerprint of what it reads from outside (file digests).
    The text hashed is unambiguous: names are identifiers, keys are hex, frames are integers.
    """
    parts = [signature, canonical_json(frame), canonical_json(external)]
    for name, refs in inputs.items():
        if refs is None:
            parts.append(f"{name}=-")
        else:
            parts.append(f"{name}=" + ",".join(f"{k}:{o}:{f}" for k, o, f in refs))
    return sha256_text("|".join(parts))


def task_key(type_id: str, version: int, params: dict, inputs: dict, frame, external) -> str:
    """SHA-256 key of a task: node type, version, normalised params, the keys of the input values
    it reads, its frame and its external fingerprint — never node names."""
    return task_key_from(node_signature(type_id, version, params), inputs, frame, external)


_digest_memo: dict[tuple, str] = {}
_digest_lock = threading.Lock()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, memoised per process on (path, size, mtime_ns, ctime_ns, inode)."""
    st = os.stat(path)
    sig = (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _digest_lock:
        hit = _digest_memo.get(sig)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _digest_lock:
        _digest_memo[sig] = digest
    return digest
