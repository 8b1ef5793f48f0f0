"""core/atomic.py: every writer's temp-file + rename, with a unique temp name."""
import threading

import pytest

from celgraph.core.atomic import atomic_path, atomic_write, write_bytes, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = write_text(tmp_path / "scene.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.json"]


def test_temp_names_are_unique_and_keep_the_extension(tmp_path):
    with atomic_path(tmp_path / "a.exr") as t1, atomic_path(tmp_path / "a.exr") as t2:
        assert t1 != t2 and t1.suffix == t2.suffix == ".exr" and t1.parent == tmp_path
        t1.write_bytes(b"1")
        t2.write_bytes(b"2")
    assert (tmp_path / "a.exr").read_bytes() in (b"1", b"2")
    assert [p.name for p in tmp_path.iterdir()] == ["a.exr"]


def test_concurrent_writers_of_one_path_never_mix_their_bytes(tmp_path):
    target = tmp_path / "sub" / "out.bin"           # missing folders are created
    payloads = [bytes([i]) * 100_000 for i in range(8)]
    threads = [threading.Thread(target=write_bytes, args=(target, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in payloads
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]
