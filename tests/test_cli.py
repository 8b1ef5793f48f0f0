"""The `graph` command, end to end: the installed console script in a subprocess, on small scenes.

Only built-in node types exist in the subprocess (the test.* types live in this process)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import celgraph as cg
from celgraph.engine import DiskStore
from celgraph.nodes.io import read_image, read_linear, write_image

from conftest import write_frames

_SCRIPT = Path(sys.executable).with_name("graph")
GRAPH = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "celgraph.cli"]

EVENT_KINDS = {"run_started", "task_cached", "task_started", "task_progress", "task_finished", "task_failed",
               "run_finished"}


# ---- helpers ---------------------------------------------------------------------------------

def _env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env["CELGRAPH_CACHE"] = str(tmp_path / "default-cache")     # never the user's cache
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def graph(tmp_path):
    """graph(*args) → CompletedProcess of the console script, run in tmp_path."""
    def run(*args, timeout=60):
        return subprocess.run([*GRAPH, *map(str, args)], cwd=tmp_path, env=_env(tmp_path), text=True,
                              capture_output=True, timeout=timeout)
    return run


def _sigint_default() -> None:
    # a test run started in the background (`pytest &` from a script) has SIGINT ignored, and a
    # child inherits that: Python then installs no Ctrl-C handler and the signal the tests send is lost
    signal.signal(signal.SIGINT, signal.default_int_handler)


def popen(tmp_path: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([*GRAPH, *map(str, args)], cwd=tmp_path, env=_env(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_sigint_default)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def finished(stdout: str) -> dict:
    last = events(stdout)[-1]
    assert last["kind"] == "run_finished"
    return last["data"]


def write_scene(folder: Path, frames="1-3", blur=1.0, read_path="in/in.####.png",
                write_path="out/out.####.png", **extra_nodes) -> Path:
    nodes = {
        "read": {"type": "Read", "params": {"path": read_path}},
        "blur": {"type": "Blur", "inputs": {"image": "read.image"}, "params": {"size": blur}},
        "write": {"type": "Write", "inputs": {"image": "blur.image"}, "params": {"path": write_path}},
        **extra_nodes,
    }
    path = folder / "scene.json"
    path.write_text(json.dumps({"celgraph": 1, "frames": frames, "nodes": nodes}, indent=2))
    return path


@pytest.fixture
def scene(tmp_path) -> Path:
    """in/in.0001-0003.png → Blur → out/out.####.png, frames 1-3."""
    write_frames(tmp_path / "in")
    return write_scene(tmp_path)


def outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def task_keys(scene_path: Path, cache: Path) -> dict:
    plan = cg.Engine(cache).plan(cg.Graph.load(scene_path), use_cache=False)
    return {tid: t.key for tid, t in plan.tasks.items()}


# ---- graph run -------------------------------------------------------------------------------

def test_run_exits_0_and_writes_every_frame(graph, tmp_path, scene):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    assert outputs(tmp_path / "out") == ["out.0001.png", "out.0002.png", "out.0003.png"]
    assert "9 computed" in r.stderr


def test_run_output_is_the_blurred_input(graph, tmp_path):
    write_image(tmp_path / "in" / "in.0001.png", np.eye(16, dtype=np.float32)[:, :, None].repeat(3, 2))
    scene = write_scene(tmp_path, frames="1", blur=2.0)
    assert graph("run", scene, "--cache-dir", tmp_path / "cache").returncode == 0
    g = cg.Graph.load(scene)
    expected = cg.Engine(tmp_path / "other-cache").evaluate(g, "blur.image", 1)
    # half an 8-bit sRGB step, times the sRGB → linear slope (at most 2.3)
    np.testing.assert_allclose(read_linear(tmp_path / "out" / "out.0001.png"), expected, atol=2.3 * 0.5 / 255)


def test_second_run_computes_nothing(graph, tmp_path, scene):
    assert finished(graph("run", scene, "--cache-dir", tmp_path / "cache", "--json").stdout)["computed"] == 9
    second = finished(graph("run", scene, "--cache-dir", tmp_path / "cache", "--json").stdout)
    assert second == {"status": "succeeded", "computed": 0, "cached": 3}


def test_second_run_rewrites_no_output_file(graph, tmp_path, scene):
    graph("run", scene, "--cache-dir", tmp_path / "cache")
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    assert graph("run", scene, "--cache-dir", tmp_path / "cache").returncode == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == before


def test_frames_option_renders_only_those_frames(graph, tmp_path, scene):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--frames", "2-3", "--json")
    assert r.returncode == 0, r.stderr
    assert outputs(tmp_path / "out") == ["out.0002.png", "out.0003.png"]
    assert finished(r.stdout)["computed"] == 6
    assert events(r.stdout)[0]["data"]["frames"] == [2, 3]


def test_targets_option_computes_only_the_named_nodes_and_what_they_read(graph, tmp_path, scene):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--targets", "blur", "--json")
    assert r.returncode == 0, r.stderr
    assert {(e["node"], e["frame"]) for e in events(r.stdout) if e["kind"] == "task_finished"} == \
        {(n, f) for n in ("read", "blur") for f in (1, 2, 3)}
    assert not (tmp_path / "out").exists()


def test_unknown_target_exits_2(graph, tmp_path, scene):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--targets", "nobody")
    assert r.returncode == 2
    assert "unknown_target" in r.stderr and "nobody" in r.stderr


def test_no_cache_recomputes_everything_and_leaves_the_cache_dir_as_it_was(graph, tmp_path, scene):
    cache = tmp_path / "cache"
    graph("run", scene, "--cache-dir", cache)
    before = tree(cache)
    entries = DiskStore(cache).du()[0]
    r = graph("run", scene, "--cache-dir", cache, "--no-cache", "--json")
    assert r.returncode == 0, r.stderr
    assert finished(r.stdout)["computed"] == 9
    assert DiskStore(cache).du()[0] == entries == 9
    assert tree(cache) == before


def test_no_cache_creates_no_cache_dir(graph, tmp_path, scene):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--no-cache")
    assert r.returncode == 0, r.stderr
    assert outputs(tmp_path / "out") == ["out.0001.png", "out.0002.png", "out.0003.png"]
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "default-cache").exists()


def test_workers_1_runs_one_task_at_a_time(graph, tmp_path, scene):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--workers", "1", "--json")
    assert r.returncode == 0, r.stderr
    running = peak = 0
    for e in events(r.stdout):
        running += {"task_started": 1, "task_finished": -1}.get(e["kind"], 0)
        peak = max(peak, running)
    assert peak == 1
    assert outputs(tmp_path / "out") == ["out.0001.png", "out.0002.png", "out.0003.png"]


def test_json_prints_one_event_object_per_line_with_increasing_seq(graph, tmp_path, scene):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    evs = [json.loads(line) for line in lines]
    assert all(isinstance(e, dict) for e in evs)
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    assert evs[0]["kind"] == "run_started" and evs[-1]["kind"] == "run_finished"
    assert {e["kind"] for e in evs} <= EVENT_KINDS
    assert evs[0]["data"]["compute"] == 9
    assert sum(e["kind"] == "task_finished" for e in evs) == 9
    assert evs[-1]["data"]["status"] == "succeeded"


def test_json_lists_cache_hits_as_task_cached_events(graph, tmp_path, scene):
    graph("run", scene, "--cache-dir", tmp_path / "cache")
    evs = events(graph("run", scene, "--cache-dir", tmp_path / "cache", "--json").stdout)
    assert [e["kind"] for e in evs] == ["run_started", "task_cached", "task_cached", "task_cached",
                                        "run_finished"]
    assert {(e["node"], e["frame"]) for e in evs if e["kind"] == "task_cached"} == \
        {("write", 1), ("write", 2), ("write", 3)}


def test_deleted_output_is_rewritten_by_the_next_run(graph, tmp_path, scene):
    graph("run", scene, "--cache-dir", tmp_path / "cache")
    (tmp_path / "out" / "out.0002.png").unlink()
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--json")
    assert [(e["node"], e["frame"]) for e in events(r.stdout) if e["kind"] == "task_finished"] == [("write", 2)]
    assert outputs(tmp_path / "out") == ["out.0001.png", "out.0002.png", "out.0003.png"]


@pytest.mark.parametrize("frames", ["3-1", "abc", "1-", "", "1-3x0"])
def test_bad_frames_text_exits_2(graph, tmp_path, scene, frames):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--frames", frames)
    assert r.returncode == 2
    assert "frames" in r.stderr
    assert not (tmp_path / "out").exists()


def test_bad_frames_with_json_prints_a_bad_frames_issue(graph, tmp_path, scene):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--frames", "abc", "--json")
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert out["valid"] is False
    assert [(i["code"], i["field"]) for i in out["issues"]] == [("bad_frames", "frames")]


def test_frames_outside_the_scene_exit_2_with_bad_frames(graph, tmp_path, scene):
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--frames", "3-5")
    assert r.returncode == 2
    assert "bad_frames" in r.stderr
    assert not (tmp_path / "out").exists()


def test_run_of_an_invalid_scene_exits_2_and_writes_nothing(graph, tmp_path):
    write_frames(tmp_path / "in")
    scene = write_scene(tmp_path, blur=-1.0)
    r = graph("run", scene, "--cache-dir", tmp_path / "cache")
    assert r.returncode == 2
    assert "[param_out_of_range] blur.size" in r.stderr
    assert not (tmp_path / "out").exists()
    assert DiskStore(tmp_path / "cache").du()[0] == 0


def test_run_of_an_invalid_scene_with_json_prints_the_issues(graph, tmp_path):
    scene = write_scene(tmp_path)                         # no input files
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--json")
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert out["valid"] is False
    assert [(i["code"], i["node"]) for i in out["issues"]] == [("file_not_found", "read")]


def test_run_of_a_missing_scene_file_exits_2(graph, tmp_path):
    r = graph("run", tmp_path / "nope.json", "--cache-dir", tmp_path / "cache")
    assert r.returncode == 2
    assert "file_not_found" in r.stderr


# ---- runtime failures --------------------------------------------------------------------------

@pytest.fixture
def corrupt_scene(tmp_path) -> Path:
    write_frames(tmp_path / "in")
    (tmp_path / "in" / "in.0002.png").write_bytes(b"not a png at all")
    return write_scene(tmp_path)


def test_a_node_failing_at_runtime_exits_1_naming_the_node_and_frame(graph, tmp_path, corrupt_scene):
    r = graph("run", corrupt_scene, "--cache-dir", tmp_path / "cache", "--workers", "1")
    assert r.returncode == 1
    assert re.search(r"node 'read' \(celgraph\.Read\) failed at frame 2", r.stderr), r.stderr
    assert "in.0002.png" in r.stderr


def test_a_failed_frame_has_no_output_file_and_no_cache_entry(graph, tmp_path, corrupt_scene):
    cache = tmp_path / "cache"
    graph("run", corrupt_scene, "--cache-dir", cache, "--workers", "1")
    assert "out.0002.png" not in outputs(tmp_path / "out")
    assert all(re.fullmatch(r"out\.000[13]\.png", n) for n in outputs(tmp_path / "out"))
    keys, store = task_keys(corrupt_scene, cache), DiskStore(cache)
    for node in ("read", "blur", "write"):
        assert keys[(node, 2)] not in store, node
    assert list(store.tmp.iterdir()) == []


def test_a_failure_with_json_reports_a_task_failed_event(graph, tmp_path, corrupt_scene):
    r = graph("run", corrupt_scene, "--cache-dir", tmp_path / "cache", "--json")
    assert r.returncode == 1
    evs = events(r.stdout)
    failed = [e for e in evs if e["kind"] == "task_failed"]
    assert len(failed) == 1
    assert failed[0]["data"]["node"] == "read" and failed[0]["data"]["frame"] == 2
    assert failed[0]["data"]["type"] == "celgraph.Read"
    assert evs[-1]["data"]["status"] == "failed"


def test_after_fixing_the_input_the_next_run_completes_the_missing_frame(graph, tmp_path, corrupt_scene):
    graph("run", corrupt_scene, "--cache-dir", tmp_path / "cache")
    write_frames(tmp_path / "in", frames=[2])
    r = graph("run", corrupt_scene, "--cache-dir", tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    assert outputs(tmp_path / "out") == ["out.0001.png", "out.0002.png", "out.0003.png"]


# ---- graph validate --------------------------------------------------------------------------

def test_validate_a_valid_scene_exits_0(graph, tmp_path, scene):
    r = graph("validate", scene)
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout
    rj = graph("validate", scene, "--json")
    assert rj.returncode == 0
    assert json.loads(rj.stdout) == {"valid": True, "issues": []}


MANY_PROBLEMS = {
    "ghost": {"type": "NoSuchNode"},                                                      # unknown_type
    "blur2": {"type": "Blur"},                                                            # missing_input
    "blur3": {"type": "Blur", "inputs": {"image": "nobody.image"}},                       # unknown_node
    "blur4": {"type": "Blur", "inputs": {"image": "noperiod"}},                           # bad_link
    "merge": {"type": "Merge", "inputs": {"a": "read.nope", "b": "read.image"}},          # unknown_output
    "grade": {"type": "Grade", "inputs": {"image": "write.file"}, "params": {"lift": 1}},  # type_mismatch,
    "c1": {"type": "Blur", "inputs": {"image": "c2.image"}},                              # unknown_param
    "c2": {"type": "Blur", "inputs": {"image": "c1.image"}},                              # cycle
}
MANY_CODES = {"file_not_found", "param_out_of_range", "unknown_type", "missing_input", "unknown_node", "bad_link",
              "unknown_output", "type_mismatch", "unknown_param", "cycle"}


@pytest.fixture
def bad_scene(tmp_path) -> Path:
    # read: no such files (file_not_found); blur: size 500 > max (param_out_of_range)
    return write_scene(tmp_path, blur=500.0, read_path="missing/in.####.png", **MANY_PROBLEMS)


def test_validate_lists_every_problem_with_its_code(graph, bad_scene):
    r = graph("validate", bad_scene)
    assert r.returncode == 2
    found = set(re.findall(r"\[(\w+)\]", r.stderr))
    assert found == MANY_CODES
    for node in ("read", "blur", "ghost", "blur2", "blur3", "blur4", "merge", "grade"):
        assert f"] {node}" in r.stderr, node


def test_validate_json_lists_every_problem_with_its_code_and_node(graph, bad_scene):
    r = graph("validate", bad_scene, "--json")
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert out["valid"] is False
    assert {i["code"] for i in out["issues"]} == MANY_CODES
    assert {"code": "param_out_of_range", "node": "blur", "field": "size"}.items() <= \
        next(i for i in out["issues"] if i["node"] == "blur").items()
    assert all(set(i) >= {"code", "message", "node", "field"} for i in out["issues"])


@pytest.mark.parametrize("text, code", [
    ("{not json", "bad_scene"),
    (json.dumps({"celgraph": 2, "nodes": {}}), "bad_version"),
    (json.dumps({"celgraph": 1, "frames": "9-1", "nodes": {}}), "bad_frames"),
])
def test_validate_reports_broken_scene_files(graph, tmp_path, text, code):
    (tmp_path / "scene.json").write_text(text)
    r = graph("validate", tmp_path / "scene.json", "--json")
    assert r.returncode == 2
    assert [i["code"] for i in json.loads(r.stdout)["issues"]] == [code]


# ---- graph nodes -----------------------------------------------------------------------------

def test_nodes_lists_every_built_in_type(graph):
    r = graph("nodes")
    assert r.returncode == 0
    names = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert {"Read", "Write", "Blur", "Grade", "Merge", "ToLineArt"} <= names


def test_nodes_describes_one_type(graph):
    r = graph("nodes", "Read")
    assert r.returncode == 0
    assert r.stdout.startswith("Read (celgraph.Read v2, IO")
    for text in ("path", "missing", "offset", "one of ['error', 'hold', 'black']", "default 'error'"):
        assert text in r.stdout, text


def test_nodes_json_describes_every_param_with_default_and_choices(graph):
    r = graph("nodes", "--json")
    assert r.returncode == 0
    types = json.loads(r.stdout)
    by_name = {t["name"]: t for t in types}
    assert {"Read", "Write", "Blur", "Grade", "Merge", "ToLineArt"} <= set(by_name)
    for t in types:
        for p in t["params"]:
            assert "default" in p, (t["name"], p["name"])
            if p["kind"] == "choice":
                assert p["default"] in p["choices"], (t["name"], p["name"])
    read = {p["name"]: p for p in by_name["Read"]["params"]}
    assert read["missing"]["choices"] == ["error", "hold", "black"]
    assert read["offset"]["default"] == 0
    blur = {p["name"]: p for p in by_name["Blur"]["params"]}
    assert (blur["size"]["default"], blur["size"]["min"], blur["size"]["max"]) == (2.0, 0.0, 200.0)
    assert by_name["Write"]["side_effect"] is True


def test_nodes_json_for_one_type_is_its_descriptor(graph):
    r = graph("nodes", "Merge", "--json")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["id"] == "celgraph.Merge"
    assert [i["name"] for i in d["inputs"]] == ["a", "b"]


def test_nodes_of_an_unknown_type_exits_2(graph):
    r = graph("nodes", "NoSuchNode")
    assert r.returncode == 2
    assert "NoSuchNode" in r.stderr


# ---- graph cache -----------------------------------------------------------------------------

@pytest.fixture
def filled_cache(graph, tmp_path, scene) -> Path:
    cache = tmp_path / "cache"
    assert graph("run", scene, "--cache-dir", cache).returncode == 0
    return cache


def test_cache_du_json_counts_entries_and_bytes(graph, filled_cache):
    r = graph("cache", "du", "--cache-dir", filled_cache, "--json")
    assert r.returncode == 0
    du = json.loads(r.stdout)
    assert du["entries"] == 9
    assert du["bytes"] == DiskStore(filled_cache).du()[1] > 0
    assert Path(du["root"]) == filled_cache.resolve()


def test_cache_du_text(graph, filled_cache):
    r = graph("cache", "du", "--cache-dir", filled_cache)
    assert r.returncode == 0
    assert "9 entries" in r.stdout


def test_cache_ls_lists_each_entry_with_what_made_it(graph, filled_cache):
    rows = events(graph("cache", "ls", "--cache-dir", filled_cache, "--json").stdout)
    assert sorted((row["type"], row["node"], row["frame"]) for row in rows) == sorted(
        (f"celgraph.{t.title()}", t, f) for t in ("read", "blur", "write") for f in (1, 2, 3))
    assert all(row["bytes"] > 0 and len(row["key"]) == 64 for row in rows)
    text = graph("cache", "ls", "--cache-dir", filled_cache).stdout.splitlines()
    assert len(text) == 9
    assert any("celgraph.Blur (blur@2)" in line for line in text)


def test_cache_clear_removes_every_entry(graph, filled_cache):
    r = graph("cache", "clear", "--cache-dir", filled_cache)
    assert r.returncode == 0
    assert "removed 9 entries" in r.stdout
    assert DiskStore(filled_cache).du() == (0, 0)


def test_cache_clear_json(graph, filled_cache):
    r = graph("cache", "clear", "--cache-dir", filled_cache, "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"root": str(filled_cache.resolve()), "removed": 9}


def test_cache_gc_json_reports_entries_and_bytes_freed(graph, filled_cache):
    size = DiskStore(filled_cache).du()[1]
    r = graph("cache", "gc", "--cache-dir", filled_cache, "--max-size", "0", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"root": str(filled_cache.resolve()), "removed": 9, "bytes": size}


def test_cache_gc_max_size_0_removes_everything(graph, filled_cache):
    r = graph("cache", "gc", "--cache-dir", filled_cache, "--max-size", "0")
    assert r.returncode == 0
    assert "removed 9 entries" in r.stdout
    assert DiskStore(filled_cache).du() == (0, 0)


def test_cache_gc_with_a_roomy_max_size_removes_nothing(graph, filled_cache):
    assert graph("cache", "gc", "--cache-dir", filled_cache, "--max-size", "1G").returncode == 0
    assert DiskStore(filled_cache).du()[0] == 9


def test_cache_gc_older_than_removes_only_entries_unused_for_that_long(graph, filled_cache):
    store = DiskStore(filled_cache)
    old = [e.key for e in store.entries()][:2]
    two_days_ago = time.time() - 2 * 86400
    for key in old:
        os.utime(store.path(key), (two_days_ago, two_days_ago))
    r = graph("cache", "gc", "--cache-dir", filled_cache, "--older-than", "1d")
    assert r.returncode == 0
    assert "removed 2 entries" in r.stdout
    left = {e.key for e in store.entries()}
    assert len(left) == 7 and not left & set(old)


def test_cache_gc_without_a_limit_exits_2(graph, filled_cache):
    r = graph("cache", "gc", "--cache-dir", filled_cache)
    assert r.returncode == 2
    assert DiskStore(filled_cache).du()[0] == 9


def test_cache_gc_with_an_unreadable_size_exits_2(graph, filled_cache):
    assert graph("cache", "gc", "--cache-dir", filled_cache, "--max-size", "lots").returncode == 2
    assert DiskStore(filled_cache).du()[0] == 9


def test_a_cleared_cache_makes_the_next_run_compute_again(graph, tmp_path, filled_cache, scene):
    graph("cache", "clear", "--cache-dir", filled_cache)
    assert finished(graph("run", scene, "--cache-dir", filled_cache, "--json").stdout)["computed"] == 9


# ---- several processes, cancellation ----------------------------------------------------------

def test_two_processes_sharing_a_cache_dir_both_succeed_with_the_same_outputs(tmp_path):
    write_frames(tmp_path / "in", frames=range(1, 13), size=(192, 192))
    scene = write_scene(tmp_path, frames="1-12", blur=20.0)
    cache = tmp_path / "cache"
    procs = [popen(tmp_path, "run", scene, "--cache-dir", cache, "--json") for _ in range(2)]
    results = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert finished(out)["status"] == "succeeded"
    assert outputs(tmp_path / "out") == [f"out.{f:04d}.png" for f in range(1, 13)]
    reference = cg.Engine(tmp_path / "reference-cache").run(cg.Graph.load(scene), targets=["blur"])
    for f in range(1, 13):
        np.testing.assert_allclose(read_linear(tmp_path / "out" / f"out.{f:04d}.png"),
                                   reference.value("blur", "image", f), atol=2.3 * 0.5 / 255)
    store = DiskStore(cache)
    assert store.du()[0] == 36                 # one entry per task, however the two raced
    assert list(store.tmp.iterdir()) == []


def big_scene(tmp_path: Path, frames="1-400") -> Path:
    """A single 384² still read on every frame, heavily blurred: ~0.1 s of work per frame. Many
    frames, so that the run is still going when a test that was slow to read its first event (a
    loaded machine) sends the signal; a cancelled run never does them all."""
    still = np.random.default_rng(1).random((384, 384, 3), dtype=np.float32)
    write_image(tmp_path / "still.png", still)
    return write_scene(tmp_path, frames=frames, blur=60.0, read_path="still.png")


def wait_for_first_task(proc: subprocess.Popen) -> list[str]:
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if json.loads(line)["kind"] == "task_finished":
            return lines
    raise AssertionError("the run ended before any task finished: " + proc.stderr.read())


def assert_only_complete_outputs(folder: Path, n_frames: int) -> list[str]:
    names = outputs(folder)
    assert all(re.fullmatch(r"out\.\d{4}\.png", n) for n in names), names    # no temp files
    for n in names:
        assert read_image(folder / n).shape == (384, 384, 3)
    assert len(names) < n_frames, "the run was not interrupted"
    return names


def test_ctrl_c_cancels_with_exit_130_and_leaves_only_complete_outputs(tmp_path):
    scene = big_scene(tmp_path)
    proc = popen(tmp_path, "run", scene, "--cache-dir", tmp_path / "cache", "--json", "--workers", "1")
    try:
        lines = wait_for_first_task(proc)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    evs = events("".join(lines) + rest)
    assert evs[-1]["kind"] == "run_finished" and evs[-1]["data"]["status"] == "cancelled"
    assert_only_complete_outputs(tmp_path / "out", 400)
    assert list(DiskStore(tmp_path / "cache").tmp.iterdir()) == []


def test_sigterm_cancels_with_exit_130(tmp_path):
    scene = big_scene(tmp_path)
    proc = popen(tmp_path, "run", scene, "--cache-dir", tmp_path / "cache", "--json", "--workers", "1")
    try:
        wait_for_first_task(proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert_only_complete_outputs(tmp_path / "out", 400)


def test_a_cancelled_run_resumes_from_its_cache(tmp_path, graph):
    scene = big_scene(tmp_path, frames="1-40")
    proc = popen(tmp_path, "run", scene, "--cache-dir", tmp_path / "cache", "--json", "--workers", "1")
    try:
        wait_for_first_task(proc)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    done_before = sum(e["kind"] == "task_finished" for e in events(rest)) + 1
    r = graph("run", scene, "--cache-dir", tmp_path / "cache", "--json")
    assert r.returncode == 0, r.stderr
    assert finished(r.stdout)["computed"] == 120 - done_before
    assert outputs(tmp_path / "out") == [f"out.{f:04d}.png" for f in range(1, 41)]


def test_run_targets_name_outputs_and_only_those_are_stored(graph, tmp_path):
    write_frames(tmp_path / "in", frames=range(1, 3), size=(24, 32))
    path = write_scene(tmp_path, frames="1-2", ink={"type": "ToLineArt", "inputs": {"image": "read.image"}},
                       gap={"type": "GapFill", "inputs": {"lines": "ink.lines"}, "params": {"method": "classical"}})
    r = graph("run", path, "--targets", "gap.lines", "--cache-dir", tmp_path / "c", "--json")
    assert r.returncode == 0, r.stderr
    assert finished(r.stdout)["computed"] == 6                      # read, ink, gap × 2 frames; not blur/write
    store = DiskStore(tmp_path / "c")
    gap = [e for e in store.entries() if e.meta["made_by"].get("node") == "gap"]
    assert len(gap) == 2 and all(store.held(e.key) == {"lines"} for e in gap)
    r = graph("run", path, "--targets", "gap", "--cache-dir", tmp_path / "c", "--check", "--json")
    assert r.returncode == 0, r.stderr                               # compared on the lines it holds
    r = graph("run", path, "--targets", "gap.lines,ink", "--cache-dir", tmp_path / "c", "--json")
    assert r.returncode == 0 and finished(r.stdout)["computed"] == 0
    r = graph("run", path, "--targets", "gap.nope", "--cache-dir", tmp_path / "c")
    assert r.returncode == 2 and "no output 'nope'" in r.stdout + r.stderr
