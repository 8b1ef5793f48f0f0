"""The settings of a computing process (engine/workerenv.py): thread budget and allocator."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import celgraph as cg
from celgraph.engine import Image, NodeType, Out, register, registry
from celgraph.engine import workerenv


class OpenCVThreads(NodeType):
    """An image whose one value is the size of OpenCV's pool while the task ran."""
    id, category = "test.OpenCVThreads", "Test"
    outputs = [Out("image", Image)]

    def compute(self, ctx):
        return np.full((2, 2, 3), float(cv2.getNumThreads()), np.float32)


if registry.get(OpenCVThreads.id) is None:
    register(OpenCVThreads)


def test_the_budget_shares_the_cores_among_tasks_at_once():
    assert workerenv.thread_budget(2, n_cores=8) == 4
    assert workerenv.thread_budget(3, n_cores=8) == 2
    assert workerenv.thread_budget(16, n_cores=8) == 1
    assert workerenv.thread_budget(1, n_cores=2) == 2


def test_local_threads_share_opencvs_pool_and_give_it_back(tmp_path, monkeypatch):
    monkeypatch.setattr(workerenv, "cores", lambda: 8)
    before = cv2.getNumThreads()
    g = cg.Graph(frames="1-4")
    g.add("test.OpenCVThreads", name="n")
    r = cg.Engine(tmp_path / "cache").run(g, workers=4)
    assert {float(r.value("n", "image", f)[0, 0, 0]) for f in range(1, 5)} == {2.0}     # 8 cores ÷ 4 threads
    assert cv2.getNumThreads() == before


def test_a_lone_task_keeps_opencvs_whole_pool(tmp_path):
    before = cv2.getNumThreads()
    g = cg.Graph(frames="1")
    g.add("test.OpenCVThreads", name="n")
    r = cg.Engine(tmp_path / "cache").run(g, workers=4)
    assert float(r.value("n", "image", 1)[0, 0, 0]) == before


def test_an_explicit_thread_budget_sets_every_pool_for_the_run_and_gives_it_back(tmp_path, monkeypatch):
    for v in workerenv.THREAD_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    before = workerenv.thread_counts()
    g = cg.Graph(frames="1-2")
    g.add("test.OpenCVThreads", name="n")
    r = cg.Engine(tmp_path / "cache").run(g, workers=1, threads=1)         # the serial, one-core run
    assert {float(r.value("n", "image", f)[0, 0, 0]) for f in (1, 2)} == {1.0}
    assert workerenv.thread_counts() == before
    with pytest.raises(ValueError, match="threads"):
        cg.Engine(tmp_path / "cache").run(g, workers=1, threads=0)


def test_graph_run_threads_option_reaches_the_tasks(tmp_path):
    from celgraph.cli import main
    scene = tmp_path / "s.json"
    g = cg.Graph(frames="1")
    g.add("test.OpenCVThreads", name="n")
    g.save(scene)
    assert main(["run", str(scene), "--workers", "1", "--threads", "1", "--cache-dir", str(tmp_path / "c")]) == 0
    assert float(cg.Engine(tmp_path / "c").evaluate(cg.Graph.load(scene), "n.image", 1)[0, 0, 0]) == 1.0
    assert main(["run", str(scene), "--threads", "1", "--executor", "dask-local"]) == 2      # not Dask's setting


def test_apply_and_restore_thread_budget(monkeypatch):
    for v in workerenv.THREAD_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    before = workerenv.thread_counts()
    previous = workerenv.apply_thread_budget(1)
    try:
        now = workerenv.thread_counts()
        assert now["opencv"] == now["oiio"] == 1 and all(now[v] == "1" for v in workerenv.THREAD_VARIABLES)
    finally:
        workerenv.restore_threads(previous)
    assert workerenv.thread_counts() == before


ALLOCATE = """
import resource, sys, numpy as np
from celgraph.engine import workerenv
if sys.argv[1] == "keep":
    assert workerenv.keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    a = np.ones((512, 256), np.float32)             # 512 kB (below a huge page), freed at the next round
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_freed_arrays_are_reused_under_dasks_malloc_setting():
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536: each 8 MB array is then a
    # fresh mmap, 128 page faults; with keep_freed_memory the heap keeps and reuses it
    env = {"MALLOC_TRIM_THRESHOLD_": "65536", "PATH": "/usr/bin:/bin"}
    faults = {how: int(subprocess.run([sys.executable, "-c", ALLOCATE, how], env=env, capture_output=True,
                                      text=True, check=True).stdout) for how in ("as-is", "keep")}
    assert faults["as-is"] > 100 * 100
    assert faults["keep"] < faults["as-is"] / 4


TORCH_FAULTS = """
import resource, sys
if sys.argv[1] == "celgraph first":
    import celgraph                                  # sets torch's huge-page variable unless it is set
import torch
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    a = torch.ones(16 << 20)                         # 64 MB: a fresh mmap each round, touched whole
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _torch_faults(how: str, **env) -> int:
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", **env}
    return int(subprocess.run([sys.executable, "-c", TORCH_FAULTS, how], env=env, capture_output=True, text=True,
                              check=True).stdout)


def _env_after_import(name: str, **env) -> str:
    code = f"import os, celgraph; print(os.environ.get({name!r}))"
    return subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, check=True).stdout.strip()


def test_importing_celgraph_asks_torch_for_huge_pages_unless_the_variable_is_set():
    assert _env_after_import("THP_MEM_ALLOC_ENABLE") == "1"
    assert _env_after_import("THP_MEM_ALLOC_ENABLE", THP_MEM_ALLOC_ENABLE="0") == "0"     # the user's choice stands


def test_importing_celgraph_lets_idle_openmp_threads_sleep_unless_the_variable_is_set():
    assert _env_after_import("OMP_WAIT_POLICY") == "passive"
    assert _env_after_import("OMP_WAIT_POLICY", OMP_WAIT_POLICY="active") == "active"


def _thp_setting(name: str) -> str:
    """The kernel's transparent-huge-page setting in force ("always", "madvise", "never"; "" off Linux)."""
    path = f"/sys/kernel/mm/transparent_hugepage/{name}"
    if not os.path.exists(path):
        return ""
    text = open(path).read()
    return text[text.index("[") + 1:text.index("]")] if "[" in text else ""


def test_torch_arrays_on_huge_pages_fault_far_less():
    plain = _torch_faults("celgraph first", THP_MEM_ALLOC_ENABLE="0")
    huge = _torch_faults("celgraph first")
    assert huge <= plain * 1.1 + 1000                             # never worse, whatever the kernel does
    if _thp_setting("enabled") == "madvise" and _thp_setting("defrag") in ("always", "defer+madvise", "madvise"):
        # the kernel gives huge pages to the regions torch asks for, at once: the variable is what counts
        assert plain > 10 * 16000 * 0.9                           # 4 kB pages: ≈ 16 000 faults per 64 MB
        assert huge < plain / 10
