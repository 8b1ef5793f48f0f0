"""The cache tiers on their own: disk store atomicity and gc, RAM bounds, object cache."""
import json
import threading

import numpy as np
import pytest

from celgraph.engine import DiskStore, ObjectCache, RamCache
from celgraph.core.hashing import canonical_json, file_digest, task_key


def test_store_round_trips_arrays_nested_dicts_and_frame_keyed_values(tmp_path):
    store = DiskStore(tmp_path)
    value = {"image": np.arange(12, dtype=np.float32).reshape(2, 2, 3),
             "per_frame": {1: np.ones(3), 2: np.zeros(3)},
             "file": {"path": "/x.exr", "bytes": 10, "ok": True}}
    store.put("ab" * 32, value, {"type": "t"})
    got = store.get("ab" * 32)
    assert np.array_equal(got["image"], value["image"])
    assert set(got["per_frame"]) == {1, 2}            # int keys survive
    assert got["file"] == value["file"]
    assert not got["image"].flags.writeable


def test_an_array_a_value_holds_twice_is_stored_and_counted_once(tmp_path):
    """FlowRAFT's forward flow is also its bundle's +1: one file, one array after loading, one count."""
    from celgraph.engine.cache import nbytes
    flow = np.ones((4, 5, 2), np.float32)
    value = {"forward": flow, "bundle": {1: flow, 3: np.zeros((4, 5, 2), np.float32)}}
    store = DiskStore(tmp_path)
    store.put("ef" * 32, value, {"type": "t"})
    assert len(list(store.path("ef" * 32).glob("a*.npy"))) == 2
    got = store.get("ef" * 32)
    assert got["forward"] is got["bundle"][1] and np.array_equal(got["forward"], flow)
    assert nbytes(value) == 2 * flow.nbytes + 2 * 64


def test_store_writes_a_sidecar_naming_what_made_the_entry(tmp_path):
    store = DiskStore(tmp_path)
    store.put("cd" * 32, {"x": np.zeros(2)}, {"type": "celgraph.Blur", "version": 1, "frame": 4})
    meta = json.loads((store.path("cd" * 32) / "meta.json").read_text())
    assert meta["made_by"] == {"type": "celgraph.Blur", "version": 1, "frame": 4}
    assert meta["bytes"] == 16 and meta["key"] == "cd" * 32


def test_a_failed_write_leaves_no_entry_and_no_temp_folder(tmp_path):
    store = DiskStore(tmp_path)
    with pytest.raises(TypeError):
        store.put("ef" * 32, {"x": np.zeros(2), "bad": object()}, {})
    assert "ef" * 32 not in store
    assert list(store.tmp.iterdir()) == []


def test_a_half_written_entry_is_never_visible(tmp_path):
    store = DiskStore(tmp_path)
    folder = store.path("12" * 32)
    folder.mkdir(parents=True)
    (folder / "a0.npy").write_bytes(b"partial")          # no meta.json: not an entry
    assert "12" * 32 not in store and store.get("12" * 32) is None


def test_concurrent_writers_of_one_key_both_succeed(tmp_path):
    store = DiskStore(tmp_path)
    errors = []

    def put():
        try:
            for _ in range(20):
                store.put("34" * 32, {"x": np.ones(1000)}, {})
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)
    threads = [threading.Thread(target=put) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and np.array_equal(store.get("34" * 32)["x"], np.ones(1000))


def test_du_ls_clear(tmp_path):
    store = DiskStore(tmp_path)
    for i in range(3):
        store.put(f"{i:02d}" * 32, {"x": np.zeros(100)}, {"type": "t"})
    n, size = store.du()
    assert n == 3 and size > 3 * 800
    assert {e.key for e in store.entries()} == {f"{i:02d}" * 32 for i in range(3)}
    assert store.clear() == 3 and store.du() == (0, 0)


def test_gc_drops_least_recently_used_first(tmp_path):
    import os
    import time
    store = DiskStore(tmp_path)
    keys = [f"{i:02d}" * 32 for i in range(3)]
    for i, k in enumerate(keys):
        store.put(k, {"x": np.zeros(1000)}, {})
        t = time.time() - 1000 + i * 100
        os.utime(store.path(k), (t, t))
    store.get(keys[0])                                      # now the most recently used
    per_entry = max(e.bytes for e in store.entries())     # sidecars differ by a byte or two
    removed, _ = store.gc(max_bytes=2 * per_entry)
    assert removed == 1 and keys[1] not in store and keys[0] in store and keys[2] in store


def test_gc_older_than(tmp_path):
    import os
    import time
    store = DiskStore(tmp_path)
    store.put("aa" * 32, {"x": np.zeros(1)}, {})
    store.put("bb" * 32, {"x": np.zeros(1)}, {})
    old = time.time() - 40 * 86400
    os.utime(store.path("aa" * 32), (old, old))
    assert store.gc(older_than_s=30 * 86400)[0] == 1
    assert "aa" * 32 not in store and "bb" * 32 in store


def test_ram_cache_is_bounded_in_bytes_and_evicts_lru():
    ram = RamCache(max_bytes=3 * 8000 + 500)
    for k in "abc":
        ram.put(k, {"x": np.zeros(1000)})
    ram.get("a")
    ram.put("d", {"x": np.zeros(1000)})
    assert "b" not in ram and all(k in ram for k in "acd")
    assert ram.bytes <= ram.max_bytes


def test_ram_cache_skips_values_larger_than_itself():
    ram = RamCache(max_bytes=100)
    ram.put("big", np.zeros(1000))
    assert "big" not in ram and ram.bytes == 0


def test_object_cache_builds_each_object_once_under_contention():
    cache = ObjectCache()
    built = []

    def factory():
        built.append(1)
        return object()
    objs = []
    threads = [threading.Thread(target=lambda: objs.append(cache.get(("model", "w"), factory))) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(built) == 1 and len({id(o) for o in objs}) == 1


def test_canonical_json_is_order_independent_and_rejects_nan():
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1})
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_task_key_changes_with_every_ingredient():
    base = dict(type_id="t", version=1, params={"a": 1}, inputs={"i": [["k", "o", 1]]}, frame=1, external=None)
    k = task_key(**base)
    for field, other in [("type_id", "u"), ("version", 2), ("params", {"a": 2}),
                         ("inputs", {"i": [["k2", "o", 1]]}), ("frame", 2), ("external", {"sha": "x"})]:
        assert task_key(**{**base, field: other}) != k
    assert len(k) == 64


def test_file_digest_follows_content(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"one")
    d1 = file_digest(p)
    p.write_bytes(b"two")
    assert file_digest(p) != d1


def test_locate_names_the_npy_of_an_output_and_the_folder_of_a_structured_one(tmp_path):
    import numpy as np

    from celgraph.engine.cache import DiskStore
    store = DiskStore(tmp_path)
    value = {"image": np.zeros((2, 2), np.float32), "clip": {1: np.ones(3), 2: np.full(3, 2.0)},
             "sprites": {"plate": np.zeros(2), "layers": np.ones(2)}}
    store.put("k" * 64, value, {"type": "t"})
    kind, path = store.locate("k" * 64, "image")
    assert kind == "array" and np.array_equal(np.load(path), value["image"])
    kind, path = store.locate("k" * 64, "clip", 2)
    assert kind == "array" and np.array_equal(np.load(path), value["clip"][2])
    assert store.locate("k" * 64, "sprites") == ("entry", store.path("k" * 64))
    assert store.locate("0" * 64, "image") is None


def test_gc_sizes_and_ages_read_as_the_cli_takes_them():
    from celgraph.engine.cache import parse_age, parse_size
    assert parse_size("500M") == 500 << 20 and parse_size("20G") == 20 << 30 and parse_size("1.5KiB") == 1536
    assert parse_age("12h") == 12 * 3600 and parse_age("30") == 30 * 86400 and parse_age("2w") == 14 * 86400
    for bad, parse in (("lots", parse_size), ("1y", parse_age)):
        with pytest.raises(ValueError, match="cannot read"):
            parse(bad)
