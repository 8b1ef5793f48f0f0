"""The settings of a process that computes tasks: its thread budget and its memory allocator.

Thread budget. OpenCV, torch, OpenImageIO and OpenMP each start a pool as wide as the machine in
every process.
N tasks running at once (N local threads, or N Dask worker processes on one machine) then ask
for N × cores threads; `thread_budget` shares the cores out instead (cores ÷ tasks at once, at
least 1) and `apply_thread_budget` sets it on every pool the process has, plus the OMP/MKL/
OpenBLAS variables for libraries that start later.

Allocator. Dask's nanny starts worker processes with MALLOC_TRIM_THRESHOLD_=65536. Setting any
malloc threshold switches off glibc's adaptive mmap threshold, so every array over 128 kB is a
fresh mmap, zero-filled page by page on first touch and unmapped again when freed. On bench/cluster.py
that tripled a worker's page faults (642 000 against 201 000 for the same 96 tasks) and doubled its
system time. `keep_freed_memory` puts back what glibc's adaptive rule settles on (arrays up to
32 MB from the heap, freed memory kept for reuse); it is a no-op where glibc is not the C library.

Huge pages for torch. Arrays over 32 MB are fresh mmaps whatever the threshold, so a network's
full-resolution activations (Sketch's U-Net at 1920×1080: ≈ 450 MB of them per frame) are
zero-filled 4 kB page by page on every frame: ≈ 115 000 page faults, a third of its CPU time.
Importing this module sets torch's ``THP_MEM_ALLOC_ENABLE=1`` (unless the variable is set already:
``0`` turns it off), so torch puts its allocations of 2 MB and more on transparent huge pages
(``madvise``; 512× fewer faults). torch reads the variable once, at its first allocation, so it
counts in a process that imports celgraph before it allocates a tensor (`graph`, the service,
Dask workers, the benchmarks); elsewhere it changes nothing. Results are unchanged (the same
arithmetic on memory aligned to 2 MB instead of 64 bytes); where the kernel has THP off, so is this.

Waiting threads sleep. torch's OpenMP threads (GNU libgomp) spin ≈ 3 ms for work between parallel
regions by default. On a machine shared with other jobs (ours: 2 cores, ≈ 5 jobs), a thread
spinning for a partner the kernel has descheduled burns the core the partner needs. The Sketch
U-Net at 1920×1080 on torch's 2 threads, at load 3-3.5, 5 rounds taking turns (median of the
rounds' means): 1.41 s as torch starts, 0.65 s with ``OMP_WAIT_POLICY=passive``, 0.76 s with
``GOMP_SPINCOUNT=10000``, 0.63 s on 1 thread. Importing this module sets ``OMP_WAIT_POLICY=passive``
unless it is set (OpenMP reads it when torch loads it, so this too counts where celgraph is
imported before torch). Results are unchanged: the threads split the work the same way. On an idle
machine a sleeping thread wakes a little later than a spinning one (not measured here: this
machine is never idle); ``OMP_WAIT_POLICY=active`` gives torch's default back.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import cv2

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3          # mallopt parameters (glibc malloc.h)
MMAP_THRESHOLD = 32 << 20                              # glibc's adaptive maximum on 64-bit
TORCH_HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"               # torch (c10): allocations ≥ 2 MB on huge pages

OMP_WAIT_POLICY = "OMP_WAIT_POLICY"                      # OpenMP: idle threads spin (active) or sleep (passive)

os.environ.setdefault(TORCH_HUGE_PAGES, "1")             # before torch allocates (see the module doc)
os.environ.setdefault(OMP_WAIT_POLICY, "passive")        # before torch loads OpenMP (see the module doc)


def cores() -> int:
    """CPUs this process may run on (its affinity mask, so a container's or taskset's limit counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def thread_budget(tasks_at_once: int, n_cores: int | None = None) -> int:
    """Threads each of `tasks_at_once` concurrent tasks on this machine may use."""
    return max(1, (n_cores or cores()) // max(1, tasks_at_once))


def thread_counts() -> dict[str, int | str | None]:
    """What this process's pools are set to now (tests and benchmarks ask workers for this)."""
    import OpenImageIO as oiio
    torch = sys.modules.get("torch")
    return {"opencv": cv2.getNumThreads(), "torch": torch.get_num_threads() if torch else None,
            "oiio": oiio.get_int_attribute("threads"), **{v: os.environ.get(v) for v in THREAD_VARIABLES}}


def apply_thread_budget(n: int, pools: tuple[str, ...] = ("opencv", "torch", "oiio", "openmp")) -> dict:
    """Set these pools to n threads: OpenCV's, torch's (if loaded; torch reads OMP_NUM_THREADS
    when it loads), OpenImageIO's and the OMP/MKL/OpenBLAS variables. Returns the previous
    settings, for `restore_threads`."""
    import OpenImageIO as oiio
    previous = thread_counts()
    if "opencv" in pools:
        cv2.setNumThreads(n)
    if "oiio" in pools:
        oiio.attribute("threads", n)
    torch = sys.modules.get("torch")
    if "torch" in pools and torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if "openmp" in pools:
        for v in THREAD_VARIABLES:
            os.environ[v] = str(n)
    return previous


def restore_threads(previous: dict) -> None:
    import OpenImageIO as oiio
    cv2.setNumThreads(previous["opencv"])
    if oiio.get_int_attribute("threads") != previous["oiio"]:
        oiio.attribute("threads", previous["oiio"])
    torch = sys.modules.get("torch")
    if torch is not None and previous["torch"] and torch.get_num_threads() != previous["torch"]:
        torch.set_num_threads(previous["torch"])
    for v in THREAD_VARIABLES:
        if previous[v] is None:
            os.environ.pop(v, None)
        else:
            os.environ[v] = previous[v]


def keep_freed_memory() -> bool:
    """Large arrays from the heap and freed memory kept for reuse (see the module doc). True if set."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):      # not glibc (musl, macOS, Windows)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD))
