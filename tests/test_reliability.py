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
from celgraph.core.types import FileRef

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
    time.sleep(1.05)       # a time stamp would now differ from the recorded digest's file
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
    host = cgio.WRITER.split("-")[0]
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


# ---- 2. bounded frame ranges ------------------------------------------------------------------------

def test_a_huge_frame_range_is_a_bad_frames_error_that_allocates_nothing():
    import tracemalloc
    from celgraph.graph.frames import MAX_FRAMES, FrameRangeError, parse_frames
    assert len(parse_frames(f"1-{MAX_FRAMES}")) == MAX_FRAMES
    tracemalloc.start()
    try:
        for spec in (f"1-{MAX_FRAMES + 1}", "1-50000000", "1-999999999999999x1", "1-10," * 20_000,
                     list(range(MAX_FRAMES + 1))):
            with pytest.raises(FrameRangeError, match="at most"):
                parse_frames(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20          # the list above is the test's own (MAX_FRAMES ints); no range is built


def test_graph_validate_reports_a_huge_range_with_its_code(tmp_path, capsys):
    from celgraph.cli import main
    scene = tmp_path / "s.json"
    scene.write_text(json.dumps({"celgraph": 1, "frames": "1-50000000",
                                 "nodes": {"src": {"type": "test.Source"}}}))
    assert main(["validate", str(scene), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert [i["code"] for i in out["issues"]] == ["bad_frames"]


# ---- 6. the smaller items ---------------------------------------------------------------------------

def test_a_mid_sequence_frame_of_another_size_or_channel_count_fails_naming_file_and_frame(tmp_path):
    write_frames(tmp_path, "in.####.png", [1, 3])
    write_frames(tmp_path, "in.####.png", [2], size=(8, 10))
    cg.nodes.io.write_image(tmp_path / "in.0004.png", np.full((8, 8, 4), 0.5, np.float32))
    for frame, what in ((2, "10×8 with 3 channels"), (4, "8×8 with 4 channels")):
        g = cg.Graph(frames="1-4", base_dir=tmp_path)
        g.add("Write", name="w", image=g.add("Read", name="r", path="in.####.png")["image"], path="o.####.png")
        with pytest.raises(cg.NodeFailed) as e:
            cg.Engine(tmp_path / "cache").run(g, frames=[1, frame])
        assert e.value.node == "r" and e.value.frame == frame
        assert f"in.{frame:04d}.png is {what}" in str(e.value) and "in.0001.png" in str(e.value)
    assert not (tmp_path / "o.0002.png").exists() and not (tmp_path / "o.0004.png").exists()


def test_graph_run_refuses_workers_below_one_and_reads_a_ram_cache_size(tmp_path, monkeypatch, capsys):
    from celgraph.cli import main
    from celgraph.engine import cache
    scene = tmp_path / "s.json"
    scene.write_text(json.dumps({"celgraph": 1, "frames": "1-2", "nodes": {"src": {"type": "test.Source"}}}))
    for bad in ("-3", "0"):
        with pytest.raises(SystemExit) as e:
            main(["run", str(scene), "--workers", bad])
        assert e.value.code == 2
    assert "--workers: must be at least 1" in capsys.readouterr().err
    sizes = []
    real = cache.RamCache.__init__
    monkeypatch.setattr(cache.RamCache, "__init__", lambda self, n=2 << 30: (sizes.append(n), real(self, n))[1])
    assert main(["run", str(scene), "--cache-dir", str(tmp_path / "c"), "--ram-cache", "64M"]) == 0
    assert sizes == [64 << 20]


def test_a_scene_without_nodes_is_invalid(tmp_path):
    with pytest.raises(cg.GraphInvalid) as e:
        cg.Graph.from_dict({"celgraph": 1, "frames": "1"})
    assert [i.code for i in e.value.issues] == ["bad_scene"]


# ---- 4. weights-only checkpoints --------------------------------------------------------------------

class Payload:
    """What a crafted checkpoint holds: unpickling it creates a file (it could run anything)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def crafted(path: Path, marker: Path) -> Path:
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": {"steps": 1}, "step": 0, "model": {}, "evil": Payload(marker)}, path)
    return path


def test_graph_train_resume_refuses_a_crafted_checkpoint_without_running_it(tmp_path, capsys):
    from celgraph.cli import main
    for what in ("flow", "gapfill", "sketch", "colorize"):
        marker = tmp_path / f"ran-{what}"
        crafted(tmp_path / what / "last.pt", marker)
        assert main(["train", what, "--out", str(tmp_path / what), "--resume"]) == 2
        assert not marker.exists()
        assert "not a plain checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["flow", "gapfill", "sketch", "colorize"])
def test_export_weights_refuses_a_crafted_checkpoint_without_running_it(tmp_path, module):
    import importlib
    from celgraph.train.loop import CheckpointError
    marker = tmp_path / "ran"
    trainer = importlib.import_module(f"celgraph.train.{module}")
    with pytest.raises(CheckpointError, match="not a plain checkpoint"):
        trainer.export_weights(crafted(tmp_path / "best.pt", marker), tmp_path / "w.safetensors")
    assert not marker.exists() and not (tmp_path / "w.safetensors").exists()


def test_checkpoints_keep_the_config_as_json_and_load_weights_only(tmp_path):
    import torch
    from celgraph.train.loop import Run, load_checkpoint
    from celgraph.train.gapfill import TrainConfig
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=1)
    net = torch.nn.Linear(2, 2)
    run = Run(cfg, echo=lambda s: None)
    run.begin(False, {"model": net}, {}, best=0.0, threshold=np.float64(0.5))
    run.save_last()
    run.keep_best(np.float32(1.5), model=net.state_dict(), val=np.float64(0.25))
    raw = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert isinstance(raw["config"], str) and json.loads(raw["config"]) == cfg.to_dict()
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["config"] == cfg.to_dict() and best["val"] == 0.25


# ---- the service: 2, 3, 6 and 7 ---------------------------------------------------------------------

@pytest.fixture
def serve(tmp_path, monkeypatch):
    """start(**kw) → a GraphServer on loopback whose base folder is tmp_path/base; stopped after."""
    from celgraph.service.server import GraphServer
    monkeypatch.setenv("CELGRAPH_SHARED", str(tmp_path / "shared"))
    (tmp_path / "base").mkdir()
    servers = []

    def start(**kw):
        kw = {"port": 0, "cache_dir": tmp_path / "cache", "state_dir": tmp_path / "state",
              "base_dir": tmp_path / "base", "rpc_threads": 8, **kw}
        servers.append(GraphServer(**kw).start())
        return servers[-1]

    yield start
    for s in servers:
        s.stop(grace=2.0)


def client_of(server):
    from celgraph.service.client import Client
    return Client(server.address, timeout=20)


def src_scene(frames="1-2", **nodes) -> dict:
    return {"celgraph": 1, "frames": frames, "nodes": {"src": {"type": "test.Source"}, **nodes}}


def write_to(path: str) -> dict:
    return {"type": "Write", "inputs": {"image": "src.image"}, "params": {"path": path}}


def test_the_server_answers_a_huge_frame_range_with_bad_frames(serve):
    with client_of(serve()) as c:
        assert [i["code"] for i in c.validate(src_scene("1-50000000"))] == ["bad_frames"]
        assert [i["code"] for i in c.validate(src_scene(), frames="1-50000000")] == ["bad_frames"]


def test_job_labels_are_bounded_at_submit_and_listing_keeps_working(serve, tmp_path):
    from celgraph.service.jobs import MAX_LABEL
    server = serve()
    with client_of(server) as c:
        with pytest.raises(cg.GraphInvalid) as e:
            c.submit(src_scene(), label="x" * (1 << 20))
        assert [i.code for i in e.value.issues] == ["bad_label"]
        job = c.submit(src_scene(), label="y" * MAX_LABEL)
        c.wait(job, timeout=20)
        assert [j["label"] for j in c.jobs()] == ["y" * MAX_LABEL]
    server.stop()
    record = tmp_path / "state" / "jobs" / f"{job}.json"       # a record from before the bound
    rec = json.loads(record.read_text())
    record.write_text(json.dumps({**rec, "label": "z" * (1 << 20)}))
    with client_of(serve()) as c:
        assert [len(j["label"]) for j in c.jobs()] == [MAX_LABEL]


def test_gc_with_max_bytes_zero_or_below_needs_force_and_reads_need_sane_sizes(serve):
    from celgraph.service.client import ServiceError
    with client_of(serve()) as c:
        job = c.submit(src_scene())
        c.wait(job, timeout=20)
        entries = c.cache_du()["entries"]
        assert entries > 0
        for bad in (0, -1):
            with pytest.raises(ServiceError) as e:
                c.cache_gc(max_bytes=bad)
            assert e.value.code == "invalid_argument"
        assert c.cache_du()["entries"] == entries
        array = next(o["path"] for o in c.job(job)["outputs"] if o["kind"] == "array")
        with pytest.raises(ServiceError) as e:
            c.read_output(array, job_id=job, chunk_size=-1)
        assert e.value.code == "invalid_argument"
        assert c.cache_gc(max_bytes=0, force=True)["removed"] == entries
        assert c.cache_du()["entries"] == 0



# ---- 7. a server touches only the folders it is given ----------------------------------------------

def issue_codes(issues) -> list[tuple[str, str, str]]:
    return sorted((i["code"], i["node"], i["field"]) for i in issues)


def test_the_server_refuses_reads_and_writes_outside_its_folders_through_the_client(serve, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "plate.0001.png").write_bytes(b"not even an image")
    (tmp_path / "base" / "link").symlink_to(outside)                      # a folder inside leading out
    server = serve()
    with client_of(server) as c:
        assert set(c.server_info()["allowed_roots"]) == {str(tmp_path / "base"), str(tmp_path / "shared")}
        for node in ({"type": "Read", "params": {"path": "/etc/passwd"}},
                     {"type": "Read", "params": {"path": str(outside / "plate.####.png")}},
                     {"type": "Read", "params": {"path": "link/plate.####.png"}},
                     {"type": "Read", "params": {"path": "../outside/plate.####.png"}},
                     write_to(str(outside / "o.####.exr")), write_to("link/o.####.exr"),
                     {"type": "FlowRAFT", "inputs": {"image": "src.image"},
                      "params": {"backend": "raft", "weights": "/etc/passwd"}}):
            field = "weights" if node["type"] == "FlowRAFT" else "path"
            assert issue_codes(c.validate(src_scene("1", n=node))) == [("path_not_allowed", "n", field)], node
            with pytest.raises(cg.GraphInvalid) as e:
                c.submit(src_scene("1", n=node))
            assert [i.code for i in e.value.issues] == ["path_not_allowed"]
        with pytest.raises(cg.GraphInvalid) as e:
            c.submit(src_scene("1", n=write_to("o.####.exr")), base_dir=str(outside))
        assert [(i.code, i.field) for i in e.value.issues] == [("path_not_allowed", "path")]
        # the answer is the same whether the file outside exists or not
        there = c.validate(src_scene("1", n={"type": "Read", "params": {"path": "/etc/passwd"}}))
        absent = c.validate(src_scene("1", n={"type": "Read", "params": {"path": "/etc/no-such-file"}}))
        assert [i["message"].replace("passwd", "X") for i in there] == \
               [i["message"].replace("no-such-file", "X") for i in absent]
        # inside the base folder and the shared folder, everything works as before
        for path in ("out/o.####.png", str(tmp_path / "shared" / "run1" / "o.####.png")):
            job = c.submit(src_scene("1-2", n=write_to(path)))
            assert c.wait(job, timeout=20)["state"] == "succeeded"
        assert sorted(p.name for p in (tmp_path / "shared" / "run1").iterdir()) == ["o.0001.png", "o.0002.png"]
    assert list(outside.iterdir()) == [outside / "plate.0001.png"]


def test_allow_replaces_the_default_folders(serve, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    with client_of(serve(allow=[other])) as c:
        assert c.server_info()["allowed_roots"] == [str(other)]
        assert issue_codes(c.validate(src_scene("1", n=write_to("o.####.png")))) == [("path_not_allowed", "n", "path")]
        assert c.validate(src_scene("1", n=write_to(str(other / "o.####.png")))) == []


def test_a_folder_swapped_for_a_symlink_after_the_submit_is_refused_when_the_job_starts(serve, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    server = serve(max_jobs=1)
    with client_of(server) as c:
        blocker = c.submit({"celgraph": 1, "frames": "1-5", "nodes": {
            "src": {"type": "test.Source"},
            "slow": {"type": "test.Slow", "inputs": {"image": "src.image"}, "params": {"seconds": 0.2}}}})
        (tmp_path / "base" / "later").mkdir()
        job = c.submit(src_scene("1", n=write_to("later/o.####.png")))          # queued behind it
        (tmp_path / "base" / "later").rmdir()
        (tmp_path / "base" / "later").symlink_to(outside)
        c.wait(blocker, timeout=30)
        done = c.wait(job, timeout=30)
    assert done["state"] == "failed" and done["error"]["code"] == "graph_invalid"
    assert [i["code"] for i in done["error"]["issues"]] == ["path_not_allowed"]
    assert list(outside.iterdir()) == []


def test_graph_remote_gets_the_coded_refusal_and_graph_run_keeps_full_access(serve, tmp_path):
    import subprocess
    import sys
    script = Path(sys.executable).with_name("graph")
    graph = [str(script)] if script.is_file() else [sys.executable, "-m", "celgraph.cli"]
    outside = tmp_path / "outside"
    outside.mkdir()
    server = serve()
    for name, node in (("w.json", write_to(str(outside / "o.####.png"))),
                       ("r.json", {"type": "Read", "params": {"path": "/etc/passwd"}})):
        scene = tmp_path / "base" / name
        scene.write_text(json.dumps({"celgraph": 1, "frames": "1", "nodes": {
            "src": {"type": "test.Source"}, "n": node}}))
        for cmd in ("validate", "submit"):
            r = subprocess.run([*graph, "remote", "--address", server.address, cmd, str(scene)],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2, r.stderr
            line = json.loads(r.stdout.splitlines()[-1])
            assert [i["code"] for i in line["issues"]] == ["path_not_allowed"], line
    # `graph run` is the user's own process: no roots
    from celgraph.cli import main
    g = cg.Graph(frames="1")
    read = g.add("Read", name="r", path=str(write_frames(outside, "i.####.png", [1])[0]))
    g.add("Write", name="w", image=read["image"], path=str(outside / "o.####.png"))
    assert main(["run", str(g.save(tmp_path / "base" / "local.json")), "--cache-dir", str(tmp_path / "c2")]) == 0
    assert (outside / "o.0001.png").is_file()


def test_graph_serve_takes_allow_and_ram_cache_options(serve, tmp_path):
    from celgraph.cli import build_parser
    args = build_parser(["serve"]).parse_args(["serve", "--ram-cache", "64M", "--allow", "/a", "--allow", "/b"])
    assert args.ram_cache == 64 << 20 and args.allow == ["/a", "/b"]
    server = serve(ram_bytes=args.ram_cache, allow=[tmp_path / "base"])
    assert server.engine.ram.max_bytes == 64 << 20
    assert server.manager.access.roots == [str(tmp_path / "base")]
