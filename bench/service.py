"""Service benchmark: `graph serve` on loopback, driven by the Python client.

Measures, against a server in its own process (so client and server do not share a GIL):
  * submit → first event latency (the job's `job_queued` event on a WatchJob opened right after
    SubmitJob returns), and submit → `run_started` / → `job_finished` for a one-task job.
    Goal (issue #8): submit → first event ≤ 20 ms.
  * events per second: live (one job of many small tasks, watched while it runs) and replayed (the
    same job's log streamed again from seq 0).
  * 8 concurrent clients (threads, one channel each) submitting and watching jobs: wall time, jobs/s,
    events/s, latency under load, and lost events (every stream must be seq 1..n with no gap).

    python bench/service.py [--jobs 50] [--frames 400] [--clients 8] [--jobs-per-client 4] [--out FILE]

Writes bench/results/service.md. The server registers a `bench.Tick` node type (a per-frame
no-op that reports progress a few times), so the numbers measure the service, not node compute.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _register_bench_nodes() -> None:
    import numpy as np
    from celgraph.engine import Image, Int, NodeType, Out, register, registry

    class Tick(NodeType):
        """A per-frame no-op image that reports progress `steps` times."""
        id, category = "bench.Tick", "Bench"
        outputs = [Out("image", Image)]
        params = [Int("steps", 2, min=0, max=1000), Int("salt", 0)]

        def compute(self, ctx):
            for i in range(ctx.params.steps):
                ctx.progress(i + 1, ctx.params.steps)
            return {"image": np.zeros((4, 4, 1), np.float32)}

    if registry.get(Tick.id) is None:
        register(Tick)


def serve_main(argv: list[str]) -> int:
    """`python bench/service.py --serve ARGS...`: a server with bench.Tick registered."""
    _register_bench_nodes()
    from celgraph.cli import main
    return main(["serve", *argv])


def tick_scene(frames: str, steps: int = 2, salt: int = 0) -> dict:
    return {"celgraph": 1, "frames": frames, "nodes": {"t": {"type": "bench.Tick", "params": {"steps": steps,
                                                                                             "salt": salt}}}}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def one_job(client, scene, no_cache=True) -> dict:
    """Submit, watch; the times (from the submit call) of the first event, run_started, job_finished."""
    t0 = time.perf_counter()
    job_id = client.submit(scene, no_cache=no_cache)
    t_submit = time.perf_counter() - t0
    marks, seqs = {}, []
    for ev in client.watch(job_id, timeout=120):
        now = time.perf_counter() - t0
        seqs.append(ev["seq"])
        marks.setdefault("first", now)
        marks.setdefault(ev["kind"], now)
    return {"submit": t_submit, "first": marks["first"], "run_started": marks.get("run_started", float("nan")),
            "finished": marks["job_finished"], "events": len(seqs),
            "gapless": seqs == list(range(1, len(seqs) + 1)), "job_id": job_id}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        return serve_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=50, help="sequential one-task jobs for the latency rows")
    ap.add_argument("--frames", type=int, default=400, help="tasks in the events/s job")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--jobs-per-client", type=int, default=4)
    ap.add_argument("--client-frames", type=int, default=20, help="tasks per job of the concurrent clients")
    ap.add_argument("--max-jobs", type=int, default=4, help="the server's --max-jobs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "service.md")
    args = ap.parse_args()

    from celgraph.service.client import Client
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    tmp = Path(tempfile.mkdtemp(prefix="celgraph-bench-service-"))
    env = {k: v for k, v in os.environ.items() if k != "CELGRAPH_TOKEN"}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", "--port", "0",
                             "--cache-dir", str(tmp / "cache"), "--state-dir", str(tmp / "state"),
                             "--base-dir", str(tmp), "--max-jobs", str(args.max_jobs), "--log-level", "error"],
                            stdout=subprocess.PIPE, text=True, env=env)
    rows: list[tuple[str, str, str]] = []
    try:
        address = json.loads(proc.stdout.readline())["address"]
        with Client(address, timeout=30) as c:
            for i in range(5):                                    # warm up channel, imports, pools
                one_job(c, tick_scene("1", salt=i))
            lat = [one_job(c, tick_scene("1", salt=i)) for i in range(args.jobs)]
            first = [r["first"] for r in lat]
            rows += [
                ("submit RTT (SubmitJob returns)", f"p50 {ms(statistics.median([r['submit'] for r in lat]))}, "
                                                   f"p95 {ms(pct([r['submit'] for r in lat], .95))}", ""),
                ("submit → first event (job_queued)", f"p50 {ms(statistics.median(first))}, p95 {ms(pct(first, .95))}",
                 f"≤ 20 ms: {'yes' if statistics.median(first) <= 0.020 else 'NO'}"),
                ("submit → run_started", f"p50 {ms(statistics.median([r['run_started'] for r in lat]))}, "
                                         f"p95 {ms(pct([r['run_started'] for r in lat], .95))}", ""),
                ("submit → job_finished (1 task)", f"p50 {ms(statistics.median([r['finished'] for r in lat]))}, "
                                                   f"p95 {ms(pct([r['finished'] for r in lat], .95))}", ""),
            ]
            # events per second: live, then replayed from the job's log
            big = one_job(c, tick_scene(f"1-{args.frames}", steps=2))
            live = big["events"] / max(big["finished"] - big["first"], 1e-9)
            t0 = time.perf_counter()
            replay = sum(1 for _ in c.watch(big["job_id"], timeout=120))
            replay_rate = replay / (time.perf_counter() - t0)
            rows += [("events/s, live (one job, %d tasks, %d events)" % (args.frames, big["events"]),
                      f"{live:,.0f}/s", "no gap: " + ("yes" if big["gapless"] else "NO")),
                     ("events/s, replay of a finished job", f"{replay_rate:,.0f}/s", "")]

        # N concurrent clients
        results: list[dict] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def client_thread(k: int) -> None:
            try:
                with Client(address, timeout=30) as cc:
                    cc.health()                   # connect first: measure jobs, not TCP set-up
                    try:
                        start.wait(30)
                    except threading.BrokenBarrierError:
                        pass
                    for j in range(args.jobs_per_client):
                        r = one_job(cc, tick_scene(f"1-{args.client_frames}", salt=1000 * k + j))
                        with lock:
                            results.append(r)
            except BaseException as e:      # noqa: BLE001 — reported
                errors.append(e)

        start = threading.Barrier(args.clients + 1)
        threads = [threading.Thread(target=client_thread, args=(k,)) for k in range(args.clients)]
        for t in threads:
            t.start()
        try:
            start.wait(30)
        except threading.BrokenBarrierError:
            pass
        t0 = time.perf_counter()
        for t in threads:
            t.join(300)
        wall = time.perf_counter() - t0
        n_jobs = len(results)
        n_events = sum(r["events"] for r in results)
        lost = sum(1 for r in results if not r["gapless"]) + len(errors)
        cf = [r["first"] for r in results] or [float("nan")]
        rows += [
            (f"{args.clients} concurrent clients × {args.jobs_per_client} jobs × {args.client_frames} tasks",
             f"{n_jobs} jobs in {wall:.2f} s = {n_jobs / wall:.1f} jobs/s, {n_events / wall:,.0f} events/s", ""),
            ("  submit → first event under load", f"p50 {ms(statistics.median(cf))}, p95 {ms(pct(cf, .95))}", ""),
            ("  streams with a gap or error (lost events)", str(lost), f"= 0: {'yes' if lost == 0 else 'NO'}"),
        ]
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.stdout.close()
        shutil.rmtree(tmp, ignore_errors=True)

    load = ", load average %.1f at the start" % load0 if load0 is not None else ""
    head = (f"# bench/service.py\n\n`python bench/service.py` on {platform.machine()}, {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores{load}; server in its own process on loopback "
            f"(`graph serve --max-jobs {args.max_jobs}`), Python client (`celgraph.service.client`). Jobs run "
            "`bench.Tick` (a per-frame no-op with 2 progress reports) with `no_cache`, so this measures the "
            "service and the engine's scheduling, not node compute.\n\n")
    width = max(len(r[0]) for r in rows)
    table = [f"| {'measure':<{width}} | value | goal |", f"|{'-' * (width + 2)}|---|---|"]
    table += [f"| {r[0]:<{width}} | {r[1]} | {r[2]} |" for r in rows]
    text = head + "\n".join(table) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
