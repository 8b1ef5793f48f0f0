"""Issue 17 reliability checks, measured through the real command line and a real server.

1. Outputs that settle: a Read → four Writes (EXR, PNG, TIFF, DPX) scene run with `graph run`,
   again a second later with `--check`, then with one EXR frame deleted, then once more.
2. A huge frame range ("1-50000000"): `graph validate` (exit code, peak memory) and a
   `graph serve` process answering ValidateGraph for it (its peak memory before and after).

    python bench/reliability.py [--out bench/results/reliability.md]

Writes bench/results/reliability.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GRAPH = None             # set in main: this interpreter's `graph`
FORMATS = ("exr", "png", "tif", "dpx")


def graph_command(python: str) -> list[str]:
    script = Path(python).with_name("graph")
    return [str(script)] if script.is_file() else [python, "-m", "celgraph.cli"]


def graph(*args, cwd, cmd=None) -> tuple[int, str]:
    r = subprocess.run([*(cmd or GRAPH), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)
    return r.returncode, r.stderr


def computed(stderr: str) -> str:
    m = re.search(r"(\d+) computed, (\d+) cached", stderr)
    return m[1] if m else "-"


def settle(work: Path, cmd=None) -> list[tuple[str, str, str]]:
    from celgraph.nodes.io import write_image
    work.mkdir()
    for f in (1, 2):
        write_image(work / f"in.{f:04d}.png", np.random.default_rng(f).random((64, 96, 3), dtype=np.float32))
    nodes = {"read": {"type": "Read", "params": {"path": "in.####.png"}}}
    for ext in FORMATS:
        nodes[f"w_{ext}"] = {"type": "Write", "inputs": {"image": "read.image"}, "params": {"path": f"out/o.####.{ext}"}}
    (work / "scene.json").write_text(json.dumps({"celgraph": 1, "frames": "1-2", "nodes": nodes}))
    cache = ["--cache-dir", work / "cache"]
    rows = []
    rc, err = graph("run", "scene.json", *cache, cwd=work, cmd=cmd)
    rows.append(("first run", str(rc), computed(err)))
    time.sleep(1.1)                     # a DateTime stamp would now differ
    rc, err = graph("run", "scene.json", "--check", *cache, cwd=work, cmd=cmd)
    rows.append(("`--check` a second later", str(rc), computed(err)))
    rc, err = graph("run", "scene.json", *cache, cwd=work, cmd=cmd)
    rows.append(("plain re-run", str(rc), computed(err)))
    (work / "out" / "o.0002.exr").unlink()
    rc, err = graph("run", "scene.json", *cache, cwd=work, cmd=cmd)
    rows.append(("o.0002.exr deleted", str(rc), computed(err)))
    rc, err = graph("run", "scene.json", *cache, cwd=work, cmd=cmd)
    rows.append(("next run", str(rc), computed(err)))
    return rows


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def huge_range(work: Path) -> list[tuple[str, str, str, str]]:
    scene = {"celgraph": 1, "frames": "1-50000000", "nodes": {"r": {"type": "Read", "params": {"path": "in.####.png"}}}}
    (work / "huge.json").write_text(json.dumps(scene))
    code = ("import resource, sys; from celgraph.cli import main; rc = main(['validate', 'huge.json', '--json']); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t
    issues = json.loads(r.stdout.splitlines()[-1])["issues"] if r.stdout.strip() else []
    rows = [("`graph validate`", str(r.returncode), ",".join(i["code"] for i in issues),
             f"{int(r.stderr.split()[-1]) / 1024:.0f} MB peak, {seconds:.1f} s")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELGRAPH_")}
    proc = subprocess.Popen([*GRAPH, "serve", "--port", "0", "--cache-dir", work / "scache", "--state-dir",
                             work / "state", "--base-dir", work, "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=work)
    try:
        info = json.loads(proc.stdout.readline())
        from celgraph.service.client import Client
        with Client(info["address"], timeout=60) as c:
            c.server_info()
            before = peak_mb(proc.pid)
            t = time.perf_counter()
            got = c.validate(scene)
            seconds = time.perf_counter() - t
            after = peak_mb(proc.pid)
        rows.append(("ValidateGraph on `graph serve`", "OK", ",".join(i["code"] for i in got),
                     f"{before:.0f} → {after:.0f} MB peak, {seconds * 1000:.0f} ms"))
    finally:
        proc.terminate()
        proc.wait(30)
    return rows


def _version(python: str) -> str:
    r = subprocess.run([python, "-c", "import celgraph, subprocess, os; d = os.path.dirname(celgraph.__file__); "
                        "print(subprocess.run(['git', '-C', d, 'log', '-1', '--format=%h'], capture_output=True, "
                        "text=True).stdout.strip() or celgraph.__version__)"], capture_output=True, text=True,
                       cwd=tempfile.gettempdir())       # not this checkout's folder: its celgraph would win
    return f"celgraph at {r.stdout.strip() or '?'}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "reliability.md"))
    p.add_argument("--settle-only", action="store_true",
                   help="skip the huge range (an unbounded celgraph would allocate gigabytes there)")
    p.add_argument("--baseline-python", metavar="PY",
                   help="also run part 1 with another celgraph install (e.g. main's .venv/bin/python)")
    args = p.parse_args(argv)
    global GRAPH
    GRAPH = graph_command(sys.executable)
    with tempfile.TemporaryDirectory() as d:
        rows1 = settle(Path(d) / "now")
        base = settle(Path(d) / "base", graph_command(args.baseline_python)) if args.baseline_python else None
        rows2 = [] if args.settle_only else huge_range(Path(d))
    lines = ["# Reliability (issue 17)", "",
             f"`python bench/reliability.py` on {platform.machine()}, Python {platform.python_version()}, "
             f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}.", "",
             "## Outputs settle: Read → Write EXR, PNG, TIFF, DPX (2 frames; 10 tasks)", "",
             *((f"Baseline: `{args.baseline_python}` ({_version(args.baseline_python)}).", "") if base else ()),
             "| run | exit | computed |" + (" baseline exit | baseline computed |" if base else ""),
             "|---|---|---|" + ("---|---|" if base else ""),
             *(f"| {a} | {b} | {c} |" + (f" {base[i][1]} | {base[i][2]} |" if base else "")
               for i, (a, b, c) in enumerate(rows1)), "",
             "`--check` recomputes every task (its count is the tasks compared) and exits 1 on any difference.", "",
             "## A 50-million-frame range", "",
             "Cost: the peak resident memory of the process (for `graph validate`, with Python's start and the",
             "node types' import) and the wall time.", "",
             "| where | exit / status | issues | cost |", "|---|---|---|---|",
             *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows2), ""]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
