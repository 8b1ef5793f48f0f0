"""The benchmarks still run (tiny settings): they are how we report numbers, so they must not rot."""
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench"


def test_engine_bench_runs_and_reruns_exactly_one_leaf(tmp_path):
    out = tmp_path / "engine.md"
    r = subprocess.run([sys.executable, str(BENCH / "engine.py"), "--nodes", "12", "--frames", "3",
                        "--size", "16", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    row = next(line for line in out.read_text().splitlines() if "tasks re-run" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "3" and cells[2].endswith("yes")


def test_quality_bench_quick_run_reports_flow_and_missing_nodes(tmp_path):
    out = tmp_path / "quality.md"
    r = subprocess.run([sys.executable, str(BENCH / "quality.py"), "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "FlowRAFT dis (classical baseline)" in text and "| missing |" in text
    dis = [line for line in text.splitlines() if "FlowRAFT dis" in line and "EPE non-occluded" in line][0]
    zero = [line for line in text.splitlines() if "zero flow" in line and "EPE non-occluded" in line][0]
    assert float(dis.split("|")[4]) < float(zero.split("|")[4])


def test_flow_speed_flop_count_extrapolates_exactly():
    """bench/flow_speed.py's GFLOP column: encoders once + the same update cost per iteration."""
    import importlib.util

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from celgraph.models.raft import raft_small
    spec = importlib.util.spec_from_file_location("flow_speed", BENCH / "flow_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = raft_small().eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, 3, 32, 48), torch.zeros(1, 3, 32, 48), iters=4, test_mode=True)
    assert abs(bench.raft_gflop(model, 45, 30, 4) - fc.get_total_flops() / 1e9) < 1e-9     # padded to 48×32


def test_reformat_bench_runs_on_a_small_frame(tmp_path):
    out = tmp_path / "reformat.md"
    env = {**__import__("os").environ, "CELGRAPH_REAL": str(tmp_path / "no-real")}
    r = subprocess.run([sys.executable, str(BENCH / "reformat.py"), "--size", "192x108", "--small", "46x26",
                        "--out", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| auto"))
    assert 15 < float(row.split("|")[2]) < 60
    assert "every id is one of the input's: True" in text
