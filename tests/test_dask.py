"""The Dask executor on a real LocalCluster of two worker processes, and farm chunking."""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import celgraph as cg

distributed = pytest.importorskip("distributed")
PLUGINS = str(Path(__file__).parent / "plugins")


@pytest.fixture(scope="module")
def dask_executor():
    # worker processes inherit these: they import the test node types like a studio's own nodes
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [PLUGINS, os.environ.get("PYTHONPATH")]))
    os.environ["CELGRAPH_NODE_MODULES"] = "acme_nodes"
    sys.path.insert(0, PLUGINS)
    cg.registry._loaded_entry_points = False
    cg.registry.load_entry_points()
    from celgraph.engine.distributed import DaskExecutor
    ex = DaskExecutor(n_workers=2)
    yield ex
    ex.close()
    os.environ.pop("CELGRAPH_NODE_MODULES", None)


def scene(tmp_path, frames="1-6", sleep=0.0):
    g = cg.Graph(frames=frames, base_dir=tmp_path)
    clip = g.add("SynthClip", name="clip", seed=11, width=96, height=64, sprites=2)
    blur = g.add("Blur", name="blur", image=clip["image"], size=1.5)
    src = blur
    if sleep:
        src = g.add("acme.Sleep", name="sleep", image=blur["image"], seconds=sleep)
    g.add("Write", name="out", image=src["image"], path="out/frame.####.exr", bit_depth="float")
    return g


def outputs(folder: Path) -> dict[str, np.ndarray]:
    from celgraph.nodes.io import read_image
    return {p.name: read_image(p) for p in sorted((folder / "out").glob("*.exr"))}


def test_dask_outputs_equal_the_local_executor(dask_executor, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    cg.Engine(local / "cache").run(scene(local))
    events = []
    r = cg.Engine(remote / "cache").run(scene(remote), executor=dask_executor, on_event=events.append)
    assert r.status == "succeeded" and r.computed == 1 + 6 + 6
    a, b = outputs(local), outputs(remote)
    assert list(a) == list(b) and len(a) == 6
    assert all(np.array_equal(a[k], b[k]) for k in a)
    kinds = [e.kind for e in events]
    assert kinds.count("task_started") == kinds.count("task_finished") == 13
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    for key in {e.key for e in events if e.kind == "task_finished"}:   # started before finished
        ks = [e.kind for e in events if e.key == key and e.kind in ("task_started", "task_finished")]
        assert ks == ["task_started", "task_finished"]


def _torch_threads() -> int:
    import torch
    return torch.get_num_threads()


def test_each_worker_process_computes_with_its_share_of_the_cores(dask_executor, tmp_path):
    from celgraph.engine.workerenv import thread_budget, thread_counts
    cg.Engine(tmp_path / "cache").run(scene(tmp_path, frames="1-4"), executor=dask_executor)
    share = thread_budget(2)                       # two worker processes on this machine's cores
    counts = dask_executor.client.run(thread_counts)
    assert len(counts) == 2
    for c in counts.values():
        assert c["opencv"] == c["oiio"] == share
        assert c["OMP_NUM_THREADS"] == c["MKL_NUM_THREADS"] == c["OPENBLAS_NUM_THREADS"] == str(share)
    # torch loaded after the first task (a model node) starts with the same share
    assert set(dask_executor.client.run(_torch_threads).values()) == {share}


def test_a_warm_cache_makes_the_distributed_rerun_skip_the_work(dask_executor, tmp_path):
    engine = cg.Engine(tmp_path / "cache")
    engine.run(scene(tmp_path), executor=dask_executor)
    r = engine.run(scene(tmp_path), executor=dask_executor)
    assert r.computed == 0 and r.cached == 6


def test_a_node_failure_names_node_and_frame(dask_executor, tmp_path):
    g = cg.Graph(frames="1-2", base_dir=tmp_path)
    g.add("Read", name="r", path="broken.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(cg.NodeFailed, match="node 'r'"):
        cg.Engine(tmp_path / "cache").run(g, executor=dask_executor)


def test_killing_a_worker_mid_run_still_completes(dask_executor, tmp_path):
    client = dask_executor.client
    engine = cg.Engine(tmp_path / "cache")
    g = scene(tmp_path, frames="1-8", sleep=0.6)
    killed = []

    def kill_one(ev):
        if ev.kind == "task_started" and ev.node == "sleep" and not killed:
            killed.append(ev.frame)
            worker = next(iter(client.scheduler_info()["workers"]))
            threading.Thread(target=lambda: client.run(os._exit, 1, workers=[worker]), daemon=True).start()
    r = engine.run(g, executor=dask_executor, on_event=kill_one)
    assert killed and r.status == "succeeded"
    local = tmp_path / "local"
    cg.Engine(local / "cache").run(scene(local, frames="1-8", sleep=0.01))
    a, b = outputs(local), outputs(tmp_path)
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    client.wait_for_workers(2, timeout=60)


def test_cancelling_a_distributed_run(dask_executor, tmp_path):
    token = cg.CancelToken()
    g = scene(tmp_path, frames="1-8", sleep=2.0)

    def cancel_on_first_sleep(ev):
        if ev.kind == "task_started" and ev.node == "sleep":
            token.cancel()
    r = cg.Engine(tmp_path / "cache").run(g, executor=dask_executor, cancel=token,
                                          on_event=cancel_on_first_sleep, raise_on_error=False)
    assert r.status == "cancelled"
    time.sleep(1.5)                       # running tasks stop at their next progress poll
    leftovers = [p for p in (tmp_path / "out").glob("*")] if (tmp_path / "out").exists() else []
    assert all(p.suffix == ".exr" and not p.name.startswith(".") for p in leftovers)


def test_a_gpu_node_without_gpu_workers_fails_early(dask_executor, tmp_path):
    from celgraph.engine import Image, NodeType, Out, register, registry

    class NeedsGPU(NodeType):
        id, category, device = "test.NeedsGPU", "Test", "cuda"
        outputs = [Out("image", Image)]
    if registry.get(NeedsGPU.id) is None:
        register(NeedsGPU)
    g = cg.Graph(frames="1")
    g.add("test.NeedsGPU", name="gpu")
    with pytest.raises(cg.CelgraphError, match="needs a GPU but no Dask worker"):
        cg.Engine(tmp_path / "cache").run(g, executor=dask_executor)


def test_a_store_the_workers_cannot_see_is_refused(dask_executor, tmp_path, monkeypatch):
    from celgraph.engine import distributed as dist
    monkeypatch.setattr(dist.DaskExecutor, "check_store", lambda self, root: dist.DaskExecutor.check_store(
        self, root) if False else (_ for _ in ()).throw(cg.CelgraphError("cannot see")))
    with pytest.raises(cg.CelgraphError, match="cannot see"):
        cg.Engine(tmp_path / "cache").run(scene(tmp_path), executor=dask_executor)


def test_probe_reports_a_missing_token_file(tmp_path):
    from celgraph.engine.distributed import _probe_store
    (tmp_path / "tmp").mkdir()
    assert "cannot see" in _probe_store(str(tmp_path), "nothing-here")
    (tmp_path / "tmp" / "probe-abc").write_text("x")
    assert _probe_store(str(tmp_path), "abc") is None


def test_dask_workers_compute_and_store_only_the_wanted_outputs(dask_executor, tmp_path):
    """GapFill skips its preview and `added` when only its lines are read; a later request for the
    preview grows the entry; each run gets the values it asks for, equal to the local executor's."""
    g = cg.Graph(frames="1-3", base_dir=tmp_path)
    clip = g.add("SynthClip", name="clip", seed=11, width=96, height=64, sprites=2)
    ink = g.add("ToLineArt", name="ink", image=clip["image"])
    g.add("GapFill", name="gap", lines=ink["lines"], method="classical")
    engine = cg.Engine(tmp_path / "cache")
    r = engine.run(g, targets=["gap.lines"], executor=dask_executor)
    key = r.plan.tasks[("gap", 2)].key
    assert r.status == "succeeded" and engine.store.held(key) == {"lines"}
    local = cg.Engine(tmp_path / "local").run(g, targets=["gap"])
    assert np.array_equal(r.value("gap", "lines", 2), local.value("gap", "lines", 2))
    r2 = engine.run(g, targets=["gap.preview"], executor=dask_executor)
    assert r2.computed == 3 and engine.store.held(key) == {"lines", "preview"}
    assert np.array_equal(r2.value("gap", "preview", 2), local.value("gap", "preview", 2))
    assert engine.run(g, targets=["gap.lines", "gap.preview"], executor=dask_executor).computed == 0


def test_two_chunked_runs_in_parallel_equal_one_run(tmp_path):
    graph_cli = str(Path(sys.executable).with_name("graph"))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    for d in ("one", "two"):
        scene(tmp_path / d, frames="1-8").save(tmp_path / d / "scene.json")
    env = {**os.environ, "CELGRAPH_CACHE": str(tmp_path / "cache-one")}
    subprocess.run([graph_cli, "run", str(tmp_path / "one" / "scene.json")], check=True, env=env,
                   capture_output=True)
    env2 = {**os.environ, "CELGRAPH_CACHE": str(tmp_path / "cache-two")}
    plan = json.loads(subprocess.run([graph_cli, "plan", str(tmp_path / "two" / "scene.json"), "--chunk", "4"],
                                     check=True, capture_output=True, text=True, env=env2).stdout)
    jobs = {j["id"]: j for j in plan["jobs"]}
    assert set(jobs) == {"clip", "frames-1-4", "frames-5-8"}
    assert jobs["frames-1-4"]["depends"] == ["clip"]
    assert all(j["command"][:2] == ["graph", "run"] for j in jobs.values())
    command = {k: [graph_cli, *j["command"][1:]] for k, j in jobs.items()}     # `graph` is on a farm's PATH
    subprocess.run(command["clip"], check=True, env=env2, capture_output=True)
    procs = [subprocess.Popen(command[j], env=env2, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for j in ("frames-1-4", "frames-5-8")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    a, b = outputs(tmp_path / "one"), outputs(tmp_path / "two")
    assert list(a) == list(b) and len(a) == 8 and all(np.array_equal(a[k], b[k]) for k in a)


def test_cli_runs_on_a_local_dask_cluster(tmp_path):
    graph_cli = str(Path(sys.executable).with_name("graph"))
    scene(tmp_path, frames="1-3").save(tmp_path / "scene.json")
    r = subprocess.run([graph_cli, "run", str(tmp_path / "scene.json"), "--executor", "dask-local", "--workers", "2",
                        "--cache-dir", str(tmp_path / "cache"), "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[-1]["kind"] == "run_finished" and events[-1]["data"]["computed"] == 7
    assert len(outputs(tmp_path)) == 3


def test_cli_dask_without_scheduler_is_a_clear_error(tmp_path):
    graph_cli = str(Path(sys.executable).with_name("graph"))
    scene(tmp_path, frames="1").save(tmp_path / "scene.json")
    r = subprocess.run([graph_cli, "run", str(tmp_path / "scene.json"), "--executor", "dask"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "--scheduler" in r.stderr


def test_the_server_runs_jobs_on_the_dask_executor(dask_executor, tmp_path):
    from celgraph.service.client import Client
    from celgraph.service.server import GraphServer
    server = GraphServer(port=0, cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", base_dir=tmp_path,
                         executor=dask_executor).start()
    try:
        with Client(server.address, timeout=30) as c:
            job = c.wait(c.submit(scene(tmp_path, frames="1-3").to_dict()), timeout=120)
        assert job["state"] == "succeeded", job
        local = tmp_path / "local"
        cg.Engine(local / "cache").run(scene(local, frames="1-3"))
        a, b = outputs(local), outputs(tmp_path)
        assert list(a) == list(b) and len(a) == 3 and all(np.array_equal(a[k], b[k]) for k in a)
    finally:
        server.stop(grace=2.0)
