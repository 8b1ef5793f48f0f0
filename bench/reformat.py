"""Reformat down and back: how much of a frame survives the trip to decomposition size.

    python bench/reformat.py [--size 1920x1080] [--small 456x256] [--out bench/results/reformat.md]

A 1920×1080 procedural frame (celgraph.synth, seed 7: painted plate, outlined cel-shaded sprites)
goes through celgraph.Reformat to 456×256 (mode size) and back (mode reference, the frame as
reference); PSNR (RGB, peak 1) against the original, per filter. The regions of the same frame go
through ReformatLabels (nearest) and back: the share of pixels whose id comes back, and whether
every id is one of the input's. Where /work/shared/real/violet/1280x720 exists (real anime frames,
measurement only), its 8 frames make a second table at their own 1280×720 size.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from celgraph.colorspace import from_working, to_working  # noqa: E402
from celgraph.engine import registry  # noqa: E402
from celgraph.core.node import Context  # noqa: E402
from celgraph.graph import normalize_params  # noqa: E402
from celgraph.synth import make_clip  # noqa: E402

REAL = Path(os.environ.get("CELGRAPH_REAL", "/work/shared/real")) / "violet" / "1280x720"
FILTERS = [("auto (area down, lanczos up)", "auto", "auto"), ("area down, linear up", "area", "linear"),
           ("linear both ways", "linear", "linear"), ("lanczos both ways", "lanczos", "lanczos"),
           ("nearest both ways", "nearest", "nearest")]


def node(type_name, params, **inputs):
    t = registry.get(type_name)
    p, issues = normalize_params(t, params)
    assert not issues, issues
    raw = t().compute(Context("bench", t(), p, 1, [1], ROOT), **inputs)
    return {o.name: o.type.coerce(raw[o.name]) for o in t.outputs}


def round_trip(img, small, down, up):
    w, h = small
    lo = node("Reformat", {"mode": "size", "width": w, "height": h, "filter": down}, image=img)["image"]
    return node("Reformat", {"mode": "reference", "filter": up}, image=lo, reference=img)["image"]


def psnr(a, b):
    """PSNR of two scene-linear images as displayed (sRGB, peak 1)."""
    a, b = (from_working(np.asarray(x[..., :3], np.float32), "sRGB") for x in (a, b))
    mse = float(np.mean((np.asarray(a, np.float64) - b) ** 2))
    return 10 * np.log10(1.0 / mse) if mse > 0 else float("inf")


def parse_size(text):
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1920x1080", help="the synthetic frame's size")
    ap.add_argument("--small", default="456x256", help="the decomposition size")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "reformat.md"))
    a = ap.parse_args(argv)
    (W, H), small = parse_size(a.size), parse_size(a.small)

    t0 = time.perf_counter()
    clip = make_clip(7, width=W, height=H, n_frames=1, flow=False).to_dict()
    # scene-linear, as Read gives a frame to Reformat (the procedural colours are sRGB)
    frame = to_working(np.concatenate([clip["color"][0], np.ones((H, W, 1), np.float32)], axis=2), "sRGB")
    regions = clip["regions"][0]
    lines = [f"# Reformat down and back ({W}×{H} → {small[0]}×{small[1]} → {W}×{H})", "",
             f"`python bench/reformat.py --size {a.size} --small {a.small}` on {platform.machine()}, "
             f"Python {platform.python_version()}. Reformat filters scene-linear pixels (as Read gives them); "
             "PSNR over RGB as displayed (sRGB), peak 1, against the original frame.", "",
             f"## Procedural frame (celgraph.synth seed 7, {W}×{H}: plate, sprites, 1-3 px ink lines)", "",
             "| filter | PSNR dB | seconds (down + up) |", "|---|---|---|"]
    for label, down, up in FILTERS:
        t = time.perf_counter()
        back = round_trip(frame, small, down, up)
        lines.append(f"| {label} | {psnr(back, frame):.2f} | {time.perf_counter() - t:.3f} |")
    lo = node("ReformatLabels", {"mode": "size", "width": small[0], "height": small[1]}, labels=regions)["labels"]
    back = node("ReformatLabels", {"mode": "reference"}, labels=lo, reference=frame)["labels"]
    kept = float(np.mean(back == regions))
    subset = set(np.unique(back).tolist()) <= set(np.unique(regions).tolist())
    reach = int(np.ceil(max(W / small[0], H / small[1])))        # one small pixel, in full-size pixels
    edge = np.zeros(regions.shape, bool)
    edge[:, 1:] |= regions[:, 1:] != regions[:, :-1]
    edge[1:, :] |= regions[1:, :] != regions[:-1, :]
    near = cv2.dilate(edge.astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)) > 0
    misses = back != regions
    near_share = float(np.mean(near[misses])) if misses.any() else 1.0
    lines += ["", f"Regions through ReformatLabels (nearest) and back: dtype {back.dtype}, "
                  f"{100 * kept:.2f} % of pixels get their id back; {100 * near_share:.1f} % of the misses lie "
                  f"within {reach} px (one {small[0]}×{small[1]} pixel) of a region edge; every id is one of "
                  f"the input's: {subset}."]

    if REAL.is_dir():
        from celgraph.nodes.io import read_linear
        files = sorted(REAL.glob("*.png"))
        frames = [read_linear(f) for f in files]
        h, w = frames[0].shape[:2]
        lines += ["", f"## Real anime frames (violet, {len(files)} frames, {w}×{h} → {small[0]}×{small[1]} → "
                      f"{w}×{h}; measurement only)", "", "| filter | mean PSNR dB | min | max |", "|---|---|---|---|"]
        for label, down, up in FILTERS:
            scores = [psnr(round_trip(f, small, down, up), f) for f in frames]
            lines.append(f"| {label} | {np.mean(scores):.2f} | {min(scores):.2f} | {max(scores):.2f} |")
    lines += ["", f"Total {time.perf_counter() - t0:.1f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
