"""The benchmarks still run (tiny settings): they are how we report numbers, so they must not rot."""
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).parent.parent / "bench"


def test_engine_bench_runs_and_reruns_exactly_one_leaf(tmp_path):
    out = tmp_path / "engine.md"
    r = subprocess.run([sys.executable, str(BENCH / "engine.py"), "--nodes", "12", "--frames", "3",
                        "--size", "16", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    row = next(line for line in out.read_text().splitlines() if "tasks re-run" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "3" and cells[2].endswith("yes")


def test_plan_speed_bench_runs(tmp_path):
    out = tmp_path / "plan.md"
    r = subprocess.run([sys.executable, str(BENCH / "plan_speed.py"), "--nodes", "12", "--frames", "3",
                        "--repeats", "1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "| resolve + plan (no cache) |" in out.read_text() and "36 tasks" in out.read_text()


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


def test_reliability_bench_shows_outputs_that_settle(tmp_path):
    out = tmp_path / "reliability.md"
    r = subprocess.run([sys.executable, str(BENCH / "reliability.py"), "--settle-only", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = {cells[0]: cells[1:] for line in out.read_text().splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    assert rows["`--check` a second later"] == ["0", "10"]
    assert rows["o.0002.exr deleted"] == ["0", "1"] and rows["next run"] == ["0", "0"]


def _realbench(suite: str):
    """A suite module of bench/real.py (bench/ is not a package on the path)."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(f"realbench.{suite}")
    finally:
        sys.path.remove(str(BENCH))


def test_real_sketch_pair_is_split_at_its_opaque_area_and_scored_within_2px():
    """A hand-made Anime2Sketch pair: a transparent margin, input | drawing, captions in the corners."""
    sk = _realbench("sketch")
    h, w = 40, 50
    rgba = np.zeros((h + 6, 2 * w + 9, 4), np.float32)        # transparent margin: bottom 6, right 9
    rgba[:h, :2 * w] = 1.0
    rgba[:h, 10, :3] = 0.0                                     # input: a vertical stroke at x 10
    rgba[:h, w + 12, :3] = 0.2                                 # drawing: its line at x 12 (2 px off), ink 0.8
    rgba[h - 3:h, 2 * w - 6:2 * w, :3] = 0.0                   # drawing's caption (bottom-right corner)
    inp, ink, valid = sk.split_pair(rgba)
    assert inp.shape == (h, w, 3) and ink.shape == valid.shape == (h, w)
    assert np.allclose(ink[:, 12], 0.8) and not valid[h - 1, w - 1] and valid[0, w - 1] and valid[h - 1, 0]
    truth = ink >= sk.TRUTH_INK
    pred = inp[..., 0] < 0.5                                   # the input's stroke, 2 px from the drawing's
    assert sk.masked_prf(pred, truth, valid) == (1.0, 1.0, 1.0)               # within 2 px: all found
    assert sk.masked_prf(pred, truth, valid, tol=1.0)[2] == 0.0               # not within 1 px
    extra = pred.copy()
    extra[:, 30] = True                                        # a stroke the drawing does not have
    p, r, f = sk.masked_prf(extra, truth, valid)
    assert r == 1.0 and abs(p - 0.5) < 1e-9 and abs(f - 2 / 3) < 1e-9
    caption = pred.copy()
    caption[h - 2, w - 4:] = True                              # ink in the caption box is not counted
    assert sk.masked_prf(caption, truth, valid) == (1.0, 1.0, 1.0)


def test_dark_outline_is_the_edge_of_dark_paint_next_to_light_and_its_recall_counts_ink_within_3px():
    """A dark square on light paint, and one on mid-grey paint: only the first has an outline."""
    sk = _realbench("sketch")
    img = np.full((80, 160, 3), 0.8, np.float32)
    img[20:60, 20:60] = 0.1                                      # 40×40 dark square on light paint
    img[:, 100:] = 0.4                                           # mid-grey: neither dark nor lighter paint
    img[20:60, 110:150] = 0.05                                   # dark on mid-grey: not counted
    edge = sk.dark_outline(img, (0, 80, 0, 160))
    ys, xs = np.nonzero(edge)
    assert edge.sum() > 100 and xs.max() < 62 and ys.min() >= 18 and ys.max() <= 61
    assert not sk.dark_outline(img, (0, 80, 70, 160)).any()      # the box leaves the first square out
    ink = np.zeros((80, 160), bool)
    ink[18:62, 18] = ink[18:62, 61] = True                       # its left and right sides drawn, 1-2 px off
    assert abs(sk.outline_recall(ink, edge) - 0.5) < 0.06
    ink[18, 18:62] = ink[61, 18:62] = True
    assert sk.outline_recall(ink, edge) == 1.0


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


def test_real_flow_suite_scores_a_known_pan_at_zero_and_zero_flow_above_it(tmp_path):
    """Three frames of a picture whose content moves 2 px left per frame: the true flow (−2, 0)
    warps each next frame back exactly; zero flow does not; a flow its backward flow does not undo
    is left out."""
    import cv2
    fl = _realbench("flow")
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((32, 60, 3)).astype(np.float32), (0, 0), 1.5)
    big = (big - big.min()) / (big.max() - big.min())
    paths = []
    for t in range(3):
        p = tmp_path / f"{t:03d}.png"
        cv2.imwrite(str(p), (big[:, 10 + 2 * t:50 + 2 * t, ::-1] * 255).round().astype(np.uint8))
        paths.append(p)
    pairs = list(zip(paths[:-1], paths[1:]))

    def const(dx):
        return lambda a, b: np.broadcast_to(np.float32([dx, 0]), a.shape[:2] + (2,)).copy()

    def true(a, b):                 # −2 forwards, +2 backwards
        return const(-2 if _later(a, b) else 2)(a, b)

    res = fl.score_set(pairs, [("zero flow (baseline)", const(0)), ("true", true)])
    assert res["_pairs"] == 2 and tuple(res["_size"]) == (40, 32)
    t, z = res["true"], res["zero flow (baseline)"]
    assert t["own"] < 1e-6 and t["common"] < 1e-6 and t["share"] == pytest.approx(38 / 40)   # 2 columns leave
    assert z["share"] == 1.0 and z["common"] > 0.02 and z["inside"] > 0.02
    res = fl.score_set(pairs, [("true", true), ("one way", const(-2))])   # backwards it says −2 too
    assert res["one way"]["share"] == 0.0 and np.isnan(res["one way"]["own"])
    assert np.isnan(res["true"]["common"])          # nothing is consistent for every method


def _later(a, b):
    """Whether ``b`` is the later frame of the test's pan (its content 2 px further left)."""
    return float(np.abs(a[:, 2:] - b[:, :-2]).mean()) < float(np.abs(b[:, 2:] - a[:, :-2]).mean())


def test_a_run_of_some_clips_replaces_only_those_clips_rows():
    sys.path.insert(0, str(BENCH))
    from qualitybench.common import Row, merge_rows
    old = [Row("sprites (clip a)", "m", "psnr", "1", ""), Row("sprites (clip b)", "m", "psnr", "2", ""),
           Row("flow (clip a)", "m", "epe", "3", "")]
    new = [Row("sprites (clip b)", "m", "psnr", "9", "")]
    assert [r.value for r in merge_rows(old, new, whole_task=True)] == ["1", "9", "3"]
    assert [r.value for r in merge_rows(old, new)] == ["9", "3"]             # the whole family by default
