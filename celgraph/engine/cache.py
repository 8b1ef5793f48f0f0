"""The three cache tiers: loaded objects (models), a RAM cache bounded in bytes, and a
content-addressed disk store shared by processes.

Disk layout (one folder per task result, renamed into place atomically):

    <root>/objects/<key[:2]>/<key>/meta.json   sidecar: what made it (node type, version, params,
                                               frame, when, sizes) and the value tree
    <root>/objects/<key[:2]>/<key>/a0.npy ...  the arrays, memory-mapped read-only on load
    <root>/objects/<key[:2]>/<key>/has.<output> empty markers, only in an entry holding some of its
                                               task's outputs (none: the entry holds them all)
    <root>/tmp/                                entries being written (never read; what a killed
                                               process left is swept when a store opens)

A folder is either absent or complete: writers fill a private temp folder and `rename` it in;
if another process got there first, the loser's copy is discarded (same key → same content).
An entry holding some outputs only grows: storing outputs it lacks writes one entry with the union
(the old outputs and the new) and renames it over the old one.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np


# ---- values: freezing, sizing, and the array/JSON tree codec ----------------------------

def freeze(value: Any) -> Any:
    """Make every array in a value read-only (cached values are shared)."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, dict):
        for v in value.values():
            freeze(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            freeze(v)
    return value


def nbytes(value: Any, seen: set[int] | None = None) -> int:
    """Bytes a value holds; an array that appears twice in it (FlowRAFT's forward flow is also its
    bundle's +1) counts once."""
    seen = set() if seen is None else seen
    if isinstance(value, np.ndarray):
        if id(value) in seen:
            return 0
        seen.add(id(value))
        return value.nbytes
    if isinstance(value, dict):
        return sum(nbytes(v, seen) for v in value.values()) + 64
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v, seen) for v in value) + 64
    return 64


def _encode(value: Any, arrays: list[np.ndarray], index: dict[int, int] | None = None) -> Any:
    """The value's tree with its arrays replaced by indices into `arrays`; an array object that appears
    twice in the value is stored once and referenced twice (and loads as one array again)."""
    index = {} if index is None else index
    if isinstance(value, np.ndarray):
        if id(value) not in index:
            arrays.append(value)
            index[id(value)] = len(arrays) - 1
        return {"$array": index[id(value)]}
    if isinstance(value, dict):
        return {"$dict": [[k, _encode(v, arrays, index)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"$list": [_encode(v, arrays, index) for v in value]}
    if isinstance(value, np.generic):
        return {"$value": value.item()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"$value": value}
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _decode(tree: Any, load: Callable[[int], np.ndarray]) -> Any:
    if "$array" in tree:
        return load(tree["$array"])
    if "$dict" in tree:
        return {k: _decode(v, load) for k, v in tree["$dict"]}
    if "$list" in tree:
        return [_decode(v, load) for v in tree["$list"]]
    return tree["$value"]


# ---- object cache ------------------------------------------------------------------------

class ObjectCache:
    """Per-process cache of loaded models and other expensive objects; never written to disk."""

    def __init__(self):
        self._items: dict[Any, Any] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[Any, threading.Lock] = {}

    def get(self, key: Any, factory: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                return self._items[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:              # build each object once even when tasks race for it
            with self._lock:
                if key in self._items:
                    return self._items[key]
            obj = factory()
            with self._lock:
                self._items[key] = obj
            return obj

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# ---- RAM cache ---------------------------------------------------------------------------

class RamCache:
    """LRU cache of task results, bounded in bytes. Thread-safe."""

    def __init__(self, max_bytes: int = 2 << 30):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: str, value: Any) -> None:
        size = nbytes(value)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                _, (_, s) = self._items.popitem(last=False)
                self._bytes -= s

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    @property
    def bytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


# ---- disk store --------------------------------------------------------------------------

@dataclass
class EntryInfo:
    key: str
    bytes: int
    last_used: float
    meta: dict


def default_cache_dir() -> Path:
    env = os.environ.get("CELGRAPH_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "celgraph"


HELD = "has."          # an entry's marker file naming one output it holds (subset entries only)
_VANISHED = object()   # DiskStore._get: the entry's files went away while it was read

TMP_STALE_S = 600      # s: a temp entry nobody wrote to for this long belongs to a killed process


class DiskStore:
    """Content-addressed store of task results. Safe to share between processes."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._objects, self._tmp = str(self.objects), str(self.tmp)
        self._shards: set[str] = set()
        self.sweep_tmp()

    def sweep_tmp(self, max_age: float = TMP_STALE_S) -> int:
        """Remove what a killed writer left in tmp/ (entries being written, entries being deleted)
        untouched for `max_age` s; runs whenever a store is opened. Returns how many it removed."""
        now, n = time.time(), 0
        try:
            items = list(os.scandir(self._tmp))
        except OSError:
            return 0
        for t in items:
            try:
                if now - t.stat(follow_symlinks=False).st_mtime > max_age:
                    shutil.rmtree(t.path, ignore_errors=True) if t.is_dir(follow_symlinks=False) else os.unlink(t.path)
                    n += 1
            except OSError:
                pass
        return n

    def path(self, key: str) -> Path:
        return self.objects / key[:2] / key

    def locate(self, key: str, output: str, frame: int | None = None) -> tuple[str, Path] | None:
        """Where one output of an entry lies on disk, for clients that read the shared store
        directly: ("array", its .npy file) — at `frame`, for a clip task's {frame: value} output —
        or ("entry", the entry's folder) when the value is structured (a dict of arrays). None when
        the entry is not in the store. The one place outside `put`/`get` that knows the layout."""
        meta = self.meta(key)
        if meta is None:
            return None
        sub = dict(meta.get("value", {}).get("$dict", [])).get(output)
        if frame is not None and isinstance(sub, dict):
            sub = dict(sub.get("$dict", [])).get(frame)
        if isinstance(sub, dict) and "$array" in sub:
            return "array", self.path(key) / f"a{sub['$array']}.npy"
        return "entry", self.path(key)

    def __contains__(self, key: str) -> bool:
        return os.path.isfile(os.path.join(self._objects, key[:2], key, "meta.json"))

    def held(self, key: str) -> frozenset[str] | None | bool:
        """Which outputs an entry holds, from its file names alone (one directory read, no meta.json
        parsed: this is the planner's hit test): False when there is no entry, None when it holds
        every output of its task (and for entries that are not task outputs), else their names."""
        try:
            names = os.listdir(os.path.join(self._objects, key[:2], key))
        except OSError:
            return False
        if "meta.json" not in names:
            return False
        marks = frozenset(n[len(HELD):] for n in names if n.startswith(HELD))
        return marks or None

    def has(self, key: str, outputs) -> bool:
        """An entry holding every one of `outputs` (names) is stored."""
        held = self.held(key)
        return held is None or (held is not False and held.issuperset(outputs))

    def get(self, key: str) -> Any | None:
        """The stored value (arrays memory-mapped read-only), or None on a miss."""
        for _ in range(3):              # an entry replaced by a larger one while it was read: again
            value = self._get(key)
            if value is not _VANISHED:
                return value
        return None

    def _get(self, key: str) -> Any:
        folder = self.path(key)
        try:
            with open(folder / "meta.json", "rb") as f:
                meta = json.loads(f.read())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (json.JSONDecodeError, OSError):
            return None     # unreadable entry: treat as a miss; it will be rewritten
        try:
            loaded: dict[int, np.ndarray] = {}

            def load(i: int) -> np.ndarray:
                if i not in loaded:
                    loaded[i] = np.load(folder / f"a{i}.npy", mmap_mode="r")
                return loaded[i]
            value = _decode(meta["value"], load)
        except FileNotFoundError:
            return _VANISHED
        except (ValueError, OSError):
            return None
        try:
            os.utime(folder)                      # last-used time, for gc
        except OSError:
            pass
        return value

    def meta(self, key: str) -> dict | None:
        try:
            return json.loads((self.path(key) / "meta.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def put(self, key: str, value: Any, made_by: dict, replace: bool = False,
            partial: bool = False) -> None:
        """Write atomically: into tmp/, then rename into place. (os.path on this hot path: it
        runs once per computed task.)

        An existing entry is kept (same key → same content) unless `replace`: a side-effect node's
        value describes the world (the digest of the file Write just wrote), so its newest value
        must win over a stale one.

        `partial`: `value` is a dict holding some of its task's outputs (the ones wanted). The entry
        is marked with their names; where an entry with other outputs is stored already, the new
        one holds the union (and loses no output a concurrent reader may be about to load)."""
        shard = os.path.join(self._objects, key[:2])
        final = os.path.join(shard, key)
        if not replace:
            held = self.held(key)
            if held is not False:                       # stored: keep it unless it lacks one of ours
                if held is None or (partial and held.issuperset(value)):
                    return
                old = self.get(key) if partial else None
                if old is not None:
                    value = {**old, **value}            # the union; new values win (the same content)
                replace = True
        work = os.path.join(self._tmp, f"{key}.{uuid.uuid4().hex}")
        os.mkdir(work)
        try:
            if partial:
                for name in value:
                    open(os.path.join(work, HELD + name), "wb").close()
            arrays: list[np.ndarray] = []
            tree = _encode(value, arrays)
            size = 0
            for i, a in enumerate(arrays):
                np.save(os.path.join(work, f"a{i}.npy"), np.ascontiguousarray(a), allow_pickle=False)
                size += a.nbytes
            meta = {"key": key, "made_by": made_by, "created": time.time(), "bytes": size, "value": tree}
            with open(os.path.join(work, "meta.json"), "w") as f:
                f.write(json.dumps(meta, default=str))
            if shard not in self._shards:
                os.makedirs(shard, exist_ok=True)
                self._shards.add(shard)
            # replacing: readers see the old entry, then (for two renames' time) a miss, then the new
            trash = self._move_aside(key) if replace else None
            try:
                try:
                    os.rename(work, final)
                except FileNotFoundError:       # the shard folder was removed under us
                    os.makedirs(shard, exist_ok=True)
                    os.rename(work, final)
            except OSError:
                if not os.path.isfile(os.path.join(final, "meta.json")):
                    raise
                shutil.rmtree(work, ignore_errors=True)    # another process stored it first
            finally:
                if trash is not None:
                    shutil.rmtree(trash, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    def _move_aside(self, key: str) -> str | None:
        """Rename an entry into tmp/ (so readers never see a half-deleted one); its new path, or None."""
        trash = os.path.join(self._tmp, f"del.{key}.{uuid.uuid4().hex}")
        try:
            os.rename(os.path.join(self._objects, key[:2], key), trash)
        except OSError:
            return None
        return trash

    def delete(self, key: str) -> None:
        trash = self._move_aside(key)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def entries(self) -> list[EntryInfo]:
        out = []
        for shard in sorted(self.objects.iterdir()) if self.objects.exists() else []:
            for folder in shard.iterdir():
                try:
                    meta = json.loads((folder / "meta.json").read_text())
                    size = sum(f.stat().st_size for f in folder.iterdir())
                    out.append(EntryInfo(folder.name, size, folder.stat().st_mtime, meta))
                except (OSError, json.JSONDecodeError):
                    continue
        return out

    def du(self) -> tuple[int, int]:
        """(number of entries, bytes on disk)."""
        entries = self.entries()
        return len(entries), sum(e.bytes for e in entries)

    def clear(self) -> int:
        entries = self.entries()
        for e in entries:
            self.delete(e.key)
        return len(entries)

    def gc(self, max_bytes: int | None = None, older_than_s: float | None = None) -> tuple[int, int]:
        """Drop entries unused for longer than `older_than_s`, then least-recently-used ones until
        the store fits in `max_bytes`; also sweep abandoned temp folders. Returns (entries, bytes)."""
        now = time.time()
        self.sweep_tmp()
        entries = sorted(self.entries(), key=lambda e: e.last_used)
        total = sum(e.bytes for e in entries)
        removed = freed = 0
        for e in entries:
            stale = older_than_s is not None and now - e.last_used > older_than_s
            over = max_bytes is not None and total > max_bytes
            if not (stale or over):
                continue
            self.delete(e.key)
            total -= e.bytes
            removed += 1
            freed += e.bytes
        return removed, freed


DEFAULT_RAM_CACHE = "2G"      # graph run / graph serve --ram-cache default


def parse_size(text: str) -> int:
    """"500M", "20G", "1.5T", "4096" → bytes (binary units), for `gc(max_bytes=...)`."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise ValueError(f"cannot read size {text!r} (e.g. 500M, 20G)")
    return int(float(m[1]) * 1024 ** " kmgt".index(m[2] or " "))


def parse_age(text: str) -> float:
    """"12h", "30d", "2w", "90s" (a bare number is days) → seconds, for `gc(older_than_s=...)`."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([smhdw]?)\s*", text.lower())
    if not m:
        raise ValueError(f"cannot read age {text!r} (e.g. 12h, 30d)")
    return float(m[1]) * {"": 86400, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m[2]]
