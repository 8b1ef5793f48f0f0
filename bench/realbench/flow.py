"""The ``flow`` suite of bench/real.py: every FlowRAFT backend on real frames (Sintel, Violet).

Neither set has true flow (``sintel`` is RAFT's demo frames, without the Sintel benchmark's flow),
so each backend is scored by **photometric warp error**: frame t+1 warped back to frame t by the
t → t+1 flow (:func:`celgraph.synth.metrics.warp_back`), mean absolute difference from frame t
(per pixel the mean over R, G, B), in display values 0..1 (sRGB, what FlowRAFT computes on).
Pixels the flow cannot explain are left out by forward-backward consistency
(:func:`celgraph.synth.metrics.fb_consistent`: the t+1 → t flow must undo the t → t+1 flow, and
p + flow(p) must land inside the frame). Each method has its own such mask, so the table gives
the error on the method's own consistent pixels (with their share: a method that marks its hard
pixels inconsistent scores better there), on the pixels every flow method finds consistent (the
fair comparison, also used for zero flow) and on every pixel that lands inside the frame.

The backends are FlowRAFT's (:mod:`celgraph.nodes.flowpairs`), computed as the node does (the
frames converted to display values, the same functions and defaults): ``dis`` at its default
preset ``medium`` and at ``fine``, ``raft_small`` with the bundled toon weights at the iterations
they recommend, and ``raft`` with a user-supplied checkpoint — only when ``$CELGRAPH_RAFT_WEIGHTS``
names one (nothing is downloaded). Zero flow is the baseline. s / pair is one direction of one
pair, wall time on this (shared) machine.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from celgraph.models.flow_classical import dis_flow
from celgraph.models.flow_viz import flow_to_color, flow_wheel
from celgraph.nodes import flowpairs
from celgraph.synth import metrics

from .common import cell, load, table, write_sheet

SHEET = "flow_real_contact_sheet.png"
THREADS = 1                 # torch threads for RAFT: on the shared 2-core machine 2 threads ran 5× slower
VIOLET_STRIDE = 2           # every second pair of the 78-frame Violet shot (39 pairs), to keep the run short
ERROR_GAIN = 4.0            # contact sheet: an error of 0.25 shows as white


def frames(data: Path, name: str, quick: bool) -> list[Path]:
    """The consecutive frames of a set: all 10 of sintel, all 78 of violet (quick: 4 / 5)."""
    if name == "sintel":
        paths = sorted((data / "sintel").glob("frame_*.png"))
    else:
        paths = sorted((data / "violet" / "456x256").glob("*.png"))
    if len(paths) < 2:
        raise FileNotFoundError(f"{data / name}: expected consecutive frames (see its README)")
    return paths[:(4 if name == "sintel" else 5) if quick else None]


def pairs(paths: list[Path], name: str) -> list[tuple[Path, Path]]:
    """Consecutive pairs (t, t+1) of a set: every one of sintel, every VIOLET_STRIDE-th of violet."""
    step = VIOLET_STRIDE if name == "violet" else 1
    return [(paths[i], paths[i + 1]) for i in range(0, len(paths) - 1, step)]


def display(path: Path) -> np.ndarray:
    """A frame's file values 0..1, H×W×3: the sets are 8-bit sRGB PNGs, so these are the display
    values FlowRAFT computes on (a Read converts them to linear, FlowRAFT back to sRGB)."""
    return np.ascontiguousarray(load(path)[..., :3])


def methods() -> tuple[list[tuple[str, object]], list[str]]:
    """([(name, flow(img1, img2) -> H×W×2)], notes on backends that cannot run here)."""
    out = [("zero flow (baseline)", lambda a, b: np.zeros(a.shape[:2] + (2,), np.float32)),
           ("dis medium (FlowRAFT auto)", lambda a, b: dis_flow(a, b, "medium")),
           ("dis fine", lambda a, b: dis_flow(a, b, "fine"))]
    notes = []
    import torch
    from celgraph.models.raft import load_raft, raft_flow, recommended_iters
    torch.set_num_threads(THREADS)

    def raft(path: Path, label: str):
        model, variant = load_raft(path)
        iters = recommended_iters(path) or 12          # FlowRAFT's iters = 0
        out.append((f"{label}, {iters} iters", lambda a, b: raft_flow(model, a, b, iters=iters)))

    bundled = flowpairs.bundled_weights("raft_small")
    if bundled is not None and bundled.is_file():
        raft(bundled, "raft_small (bundled toon weights)")
    else:
        notes.append("raft_small: the bundled weights file is missing")
    user = os.environ.get("CELGRAPH_RAFT_WEIGHTS")
    if user and Path(user).is_file():
        raft(Path(user), f"raft ({Path(user).name})")
    else:
        notes.append("raft (RAFT-large or an official RAFT-small checkpoint): needs a user-supplied "
                     "checkpoint; none on this machine (set $CELGRAPH_RAFT_WEIGHTS to include one)")
    return out, notes


def score_set(pair_paths: list[tuple[Path, Path]], flows) -> dict:
    """Per method: s/pair (one direction) and the mean over pairs of the warp error on its own
    consistent pixels, their share, on the pixels every flow method finds consistent, and on every
    pixel landing inside the frame. Also keeps the middle pair's images for the contact sheet."""
    names = [n for n, _ in flows]
    acc = {n: {"own": [], "share": [], "common": [], "inside": [], "seconds": []} for n in names}
    middle = len(pair_paths) // 2
    sheet = None
    for i, (p1, p2) in enumerate(pair_paths):
        img1, img2 = display(p1), display(p2)
        fw, masks = {}, {}
        for name, fn in flows:
            t0 = time.perf_counter()
            fw[name] = np.asarray(fn(img1, img2), np.float32)
            acc[name]["seconds"].append(time.perf_counter() - t0)
            masks[name] = metrics.fb_consistent(fw[name], np.asarray(fn(img2, img1), np.float32))
        common = np.logical_and.reduce([masks[n] for n in names if not n.startswith("zero")])
        for n in names:
            a = acc[n]
            a["own"].append(metrics.photometric_error(img1, img2, fw[n], masks[n]))
            a["share"].append(float(masks[n].mean()))
            a["common"].append(metrics.photometric_error(img1, img2, fw[n], common))
            a["inside"].append(metrics.photometric_error(img1, img2, fw[n]))
        if i == middle:
            sheet = {"img1": img1, "img2": img2, "flows": fw, "masks": masks, "pair": (p1.name, p2.name)}
    res = {n: {k: _mean(v) for k, v in a.items()} for n, a in acc.items()}
    res["_pairs"] = len(pair_paths)
    res["_size"] = img1.shape[1::-1]
    res["_sheet"] = sheet
    return res


def _mean(values: list[float]) -> float:
    """Mean over the pairs that have a value (NaN: no pixel counted in that pair)."""
    v = np.asarray(values, np.float64)
    return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan")


# ---------------------------------------------------------------- contact sheet

def error_image(img1, img2, flow, mask) -> np.ndarray:
    """|frame t+1 warped back − frame t| (mean over channels) × ERROR_GAIN as grey; pixels outside
    ``mask`` (inconsistent or leaving the frame) tinted magenta."""
    err = np.abs(metrics.warp_back(img2, flow) - img1).mean(-1) * ERROR_GAIN
    out = np.repeat(np.clip(err, 0, 1)[..., None], 3, 2)
    out[~mask] = 0.6 * out[~mask] + 0.4 * np.float32([1.0, 0.0, 1.0])
    return out


def wheel_tile(shape) -> np.ndarray:
    """The flow colour wheel on white, in a tile of a frame's ``shape`` (H, W)."""
    h, w = shape
    side = min(h, w) * 3 // 4
    tile = np.ones((h, w, 3), np.float32)
    y, x = (h - side) // 2, (w - side) // 2
    tile[y:y + side, x:x + side] = flow_wheel(side)
    return tile


def contact_sheet(sets: dict, path: Path, width: int = 320) -> Path:
    """Per set two rows: frame t, frame t+1, each method's flow (one colour scale per set); then
    each method's warp error (zero flow first)."""
    rows = []
    for set_name, res in sets.items():
        s = res["_sheet"]
        names = list(s["flows"])
        moving = [n for n in names if not n.startswith("zero")]
        peak = max(float(np.percentile(np.hypot(*np.moveaxis(s["flows"][n], -1, 0)), 99)) for n in moving)
        a, b = s["pair"]
        top = [cell(s["img1"], f"{set_name} {a}", width), cell(s["img2"], f"t+1 {b}", width)]
        top += [cell(flow_to_color(s["flows"][n], max(peak, 1.0)), f"{n.split(' (')[0].split(',')[0]} flow", width)
                for n in moving]
        bottom = [cell(wheel_tile(s["img1"].shape[:2]), f"colour wheel: {max(peak, 1.0):.1f} px", width)]
        bottom += [cell(error_image(s["img1"], s["img2"], s["flows"][n], s["masks"][n]),
                        f"{n.split(' (')[0].split(',')[0]} error x{ERROR_GAIN:g}", width) for n in names]
        n_cols = max(len(top), len(bottom))
        for row in (top, bottom):
            row += [np.full_like(row[0], 255)] * (n_cols - len(row))
            rows.append(np.hstack(row))
    sheet = np.vstack(rows)
    return write_sheet(sheet, path)


# ---------------------------------------------------------------- the suite

def report(data: Path, docs: Path, quick: bool) -> str:
    flows, notes = methods()
    sets = {name: score_set(pairs(frames(data, name, quick), name), flows) for name in ("sintel", "violet")}
    sheet = contact_sheet(sets, docs / SHEET)
    head = ["set", "method", "s / pair", "error, own consistent px", "own consistent share",
            "error, common consistent px", "error, all px in frame"]
    rows = []
    for set_name, res in sets.items():
        w, h = res["_size"]
        for n, _ in flows:
            r = res[n]
            every = " (every 2nd)" if set_name == "violet" and VIOLET_STRIDE == 2 else ""
            rows.append([f"{set_name} ({res['_pairs']} pairs{every}, {w}×{h})", n, f"{r['seconds']:.3f}",
                         f"{r['own']:.4f}", f"{100 * r['share']:.1f} %", f"**{r['common']:.4f}**",
                         f"{r['inside']:.4f}"])
    return ("Photometric warp error (mean |frame t+1 warped back by the t→t+1 flow − frame t|, display "
            "values 0..1, mean over R, G, B and over pairs), on consecutive pairs. *Own consistent px*: "
            "the pixels where the method's backward flow undoes its forward flow (Sundaram et al.: "
            "α₁ 0.01, α₂ 0.5) and the flow lands inside the frame; *common*: the pixels every flow "
            "method finds consistent (the fair comparison; zero flow is scored there too); *all*: every "
            "pixel landing inside the frame. No ground-truth flow exists for either set, so no EPE.\n\n"
            + table(head, rows)
            + "\n\n" + "".join(f"- not run: {n}\n" for n in notes)
            + f"\nContact sheet: `docs/{sheet.name}` (the middle pair of each set: the frames, each "
              f"method's flow on one colour scale per set, and each warp error ×{ERROR_GAIN:g} in grey with "
              f"inconsistent pixels tinted magenta).\n")


def run(data: Path, docs: Path, quick: bool) -> str:
    return report(data, docs, quick)
