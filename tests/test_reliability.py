"""Issue 17: outputs that settle, bounded inputs, weights-only resumes, no stray files, and a
server that touches only the folders it is given. One regression test (at least) per item."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

import celgraph as cg
from celgraph.engine import NodeType, Out, String, register, registry
from celgraph.engine.cache import DiskStore
from celgraph.engine.types import FileRef

from conftest import write_frames


# ---- 1. outputs that settle ------------------------------------------------------------------------

FORMATS = ("exr", "png", "tif", "dpx")


def four_writes(folder: Path) -> cg.Graph:
    write_frames(folder, "in.####.png", range(1, 3))
    g = cg.Graph(frames="1-2", base_dir=folder)
    r = g.add("Read", name="read", path="in.####.png")
    for ext in FORMATS:
        g.add("Write", name=f"w_{ext}", image=r["image"], path=f"out/o.####.{ext}")
    return g


@pytest.mark.parametrize("ext", FORMATS)
def test_written_files_carry_no_time_stamp(tmp_path, ext):
    path = tmp_path / f"x.{ext}"
    cg.nodes.io.write_image(path, np.full((4, 4, 3), 0.5, np.float32))
    spec = oiio.ImageInput.open(str(path)).spec()
    assert spec.getattribute("DateTime") is None


def test_check_passes_on_exr_png_tiff_and_dpx_writes_run_twice(tmp_path):
    g = four_writes(tmp_path)
    assert cg.Engine(tmp_path / "cache").run(g).computed == 2 + 2 * len(FORMATS)
    time.sleep(1.05)       # OpenImageIO's DateTime stamp has one-second resolution
    result = cg.Engine(tmp_path / "cache").run(g, check=True)      # raises on any difference
    assert result.status == "succeeded"
    assert cg.Engine(tmp_path / "cache").run(g).computed == 0


def test_a_deleted_exr_frame_is_rewritten_once_then_settles(tmp_path):
    g = four_writes(tmp_path)
    cg.Engine(tmp_path / "cache").run(g)
    (tmp_path / "out" / "o.0002.exr").unlink()
    assert cg.Engine(tmp_path / "cache").run(g).computed == 1
    assert cg.Engine(tmp_path / "cache").run(g).computed == 0


class Stamp(NodeType):
    """A side-effect node whose file differs on every write (a counter): what an EXR with a
    DateTime stamp was."""
    id, version, category = "test.Stamp", 1, "Test"
    outputs = [Out("file", FileRef)]
    params = [String("path", "")]
    side_effect = True
    deterministic = False
    writes = 0

    def verify(self, ctx, outputs):
        p = Path(outputs["file"]["path"])
        return p.is_file() and p.read_text() == outputs["file"]["sha256"]

    def compute(self, ctx):
        Stamp.writes += 1
        p = ctx.resolve(ctx.params.path)
        p.write_text(str(Stamp.writes))
        return {"file": {"path": str(p), "sha256": str(Stamp.writes), "bytes": p.stat().st_size}}


if registry.get("test.Stamp") is None:
    register(Stamp)


def test_a_side_effect_value_replaces_its_stale_cache_entry(tmp_path):
    g = cg.Graph(frames="1", base_dir=tmp_path)
    g.add("test.Stamp", name="s", path="stamp.txt")
    cg.Engine(tmp_path / "cache").run(g)
    (tmp_path / "stamp.txt").unlink()
    assert cg.Engine(tmp_path / "cache").run(g).computed == 1     # rewritten with new content...
    assert cg.Engine(tmp_path / "cache").run(g).computed == 0     # ...which the store now records


def test_store_put_keeps_an_entry_unless_told_to_replace_it(tmp_path):
    store = DiskStore(tmp_path)
    store.put("ab" * 32, {"v": 1}, {"type": "t"})
    store.put("ab" * 32, {"v": 2}, {"type": "t"})
    assert store.get("ab" * 32) == {"v": 1}
    store.put("ab" * 32, {"v": 3}, {"type": "t"}, replace=True)
    assert store.get("ab" * 32) == {"v": 3}
    assert list(store.tmp.iterdir()) == []


# ---- 5. no stray temp files -------------------------------------------------------------------------

def dead_pid() -> int:
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_write_sweeps_the_temp_files_killed_writes_left_and_nothing_else(tmp_path):
    from celgraph.nodes import io as cgio
    write_frames(tmp_path, "in.####.png", [1])
    out = tmp_path / "out"
    out.mkdir()
    host = cgio._WRITER.split("-")[0]
    old = time.time() - 2 * cgio.STALE_TEMP_S
    stale = [out / f".o.0001.{host}-{dead_pid()}-0123abcd.tmp.exr",      # our naming, writer gone
             out / ".o.0007.89abcdef.tmp.exr"]                            # an older version's, long untouched
    kept = [out / f".o.0002.{host}-1-0123abcd.tmp.exr",                   # a live writer's (pid 1)
            out / ".o.0003.89abcdef.tmp.exr",                             # recent: may be someone's write
            out / ".other.0001.89abcdef.tmp.exr",                         # another Write's pattern
            out / "notes.0001.tmp.exr"]                                   # not hidden: not ours
    for p in stale + kept:
        p.write_bytes(b"half an image")
    os.utime(stale[1], (old, old))
    os.utime(kept[2], (old, old))
    g = cg.Graph(frames="1", base_dir=tmp_path)
    g.add("Write", name="w", image=g.add("Read", name="r", path="in.####.png")["image"], path="out/o.####.exr")
    cg.Engine(tmp_path / "cache").run(g)
    left = sorted(p.name for p in out.iterdir())
    assert left == sorted(["o.0001.exr", *(p.name for p in kept)])


def test_opening_a_store_sweeps_temp_entries_a_killed_process_left(tmp_path):
    from celgraph.engine.cache import TMP_STALE_S
    store = DiskStore(tmp_path)
    abandoned, fresh = store.tmp / ("ab" * 32 + ".dead"), store.tmp / ("cd" * 32 + ".live")
    for d in (abandoned, fresh):
        d.mkdir()
        (d / "a0.npy").write_bytes(b"x")
    old = time.time() - 2 * TMP_STALE_S
    os.utime(abandoned, (old, old))
    DiskStore(tmp_path)
    assert [p.name for p in store.tmp.iterdir()] == [fresh.name]
