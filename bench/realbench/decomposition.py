"""The ``decomposition`` suite of bench/real.py: the whole Violet cut through the decomposition nodes.

``violet/456x256`` frames 0-77 (``--quick``: 0-15) → FlowRAFT → WarmupAlpha → WarmupHomography →
SpriteLearn, `cpu` preset (``$CELGRAPH_REAL_THREADS`` torch threads, default 1), for N = 2 (plate + the girl) and N = 3. There is no truth;
the scores are:

* composite PSNR per frame (SpriteLearn.composite against the frame): mean and min over the cut;
* alpha temporal stability: the sprites' alpha of frame t carried to t+1 by their own transforms
  (frame t+1 pixel → canvas → frame t) against the alpha of t+1, mean absolute difference and IoU
  of alpha ≥ ½ (pixels whose source falls outside frame t left out); the warm-up labels (WarmupAlpha)
  are scored the same way beside it;
* wall time per stage (flow, warm-up alpha, transforms, sprites) on this shared machine;
* full-size delivery: the 8 frames of ``violet/1280x720`` (000, 010, … 070) delivered at 1280×720 from
  the working-size result (models.decompose.fullsize: alphas upsampled along the frame's edges,
  colours from the full-size frames, transforms in full-size pixels), composite PSNR against those
  frames, beside the working-size composite upsampled bicubically (what scaling the layers gives);
* a contact sheet per N, ``docs/decompose_violet_n<N>.png``: frames 0, 25, 50, 77 (quick: 0, 5, 10,
  15), each row the frame, the plate, and each sprite on grey. Look for the girl in the plate.
  Beside it, ``docs/decompose_violet_n<N>_1280.png``: the full-size plate beside its frame, at half
  size (frames 0, 30, 50): look for her there too.

``$CELGRAPH_REAL_REVOTE`` (margins in px, comma-separated; default none) adds, per N, a run with
SpriteLearn's opt-in ``plate_revote`` at each margin (the plate rebuilt from the learnt alphas; its
sheet ``docs/decompose_violet_n<N>_revote.png``), beside the preset's rows.

The engine's disk cache is ``$CELGRAPH_REAL_CACHE`` when set (a killed run resumes from its
checkpoints and cached stages there), else a temporary folder.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import celgraph as cg
from celgraph.colorspace import from_working
from celgraph.core.atomic import write_text
from celgraph.models.decompose import fullsize
from celgraph.synth import metrics

from .common import load, table, write_sheet


def shown(image: np.ndarray) -> np.ndarray:
    """An Image value (scene-linear) as displayed (sRGB), like the files."""
    return from_working(np.asarray(image, np.float32), "sRGB")

OBJECTS = (2, 3)
SHEET_FRAMES = (0, 25, 50, 77)
FULL_FRAMES = tuple(range(0, 78, 10))
FULL_SHEET_FRAMES = (0, 30, 50)
GREY = 48.0 / 255.0
THREADS = int(os.environ.get("CELGRAPH_REAL_THREADS", "1"))      # torch threads per optimising node


def stability(alpha: np.ndarray, transforms: np.ndarray) -> tuple[float, float]:
    """(mean |alpha carried from t to t+1 − alpha t+1|, mean IoU of alpha ≥ ½) over t and over sprites
    k ≥ 1. alpha: T×N×H×W; transforms T×N×3×3 (frame pixel → canvas)."""
    T, n, h, w = alpha.shape
    diffs, ious = [], []
    for t in range(T - 1):
        for k in range(1, n):
            M = np.linalg.inv(transforms[t, k]) @ transforms[t + 1, k]        # frame t+1 pixel → frame t pixel
            carried = cv2.warpPerspective(alpha[t, k].astype(np.float32), M, (w, h),
                                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=-1.0)
            inside = carried >= 0
            if not inside.any():
                continue
            diffs.append(float(np.abs(carried - alpha[t + 1, k])[inside].mean()))
            a, b = (carried >= 0.5) & inside, (alpha[t + 1, k] >= 0.5) & inside
            if a.any() or b.any():
                ious.append(metrics.iou(a, b))
    return float(np.mean(diffs)), float(np.mean(ious)) if ious else float("nan")


def _on_grey(rgb: np.ndarray, a: np.ndarray) -> np.ndarray:
    return rgb * a[..., None] + GREY * (1.0 - a[..., None])


def contact_sheet(path: Path, rows: list[list[np.ndarray]]) -> Path:
    """Rows of equally sized RGB panels (0..1) → one PNG, written under a temporary name then renamed."""
    sheet = np.vstack([np.hstack(r) for r in rows])
    sheet = (np.clip(sheet, 0, 1) * 255 + 0.5).astype(np.uint8)
    return write_sheet(sheet, path)


def _timings(cache: Path | None) -> dict:
    f = None if cache is None else cache / "realbench-decomposition-times.json"
    return json.loads(f.read_text()) if f is not None and f.is_file() else {}


def measure(data: Path, docs: Path, n: int, frames: list[int], engine: cg.Engine, cache: Path | None = None,
            revote: float = 0.0) -> dict:
    """One decomposition of the cut with N = n objects; prints its numbers as soon as they are known.
    A stage found in a kept cache (``$CELGRAPH_REAL_CACHE``) reports the time recorded when this suite
    computed it there, or None. ``revote`` > 0: SpriteLearn's opt-in ``plate_revote`` (the suite's
    table uses the preset, 0; the sheet is then ``decompose_violet_n{n}_revote.png``)."""
    g = cg.Graph(frames=f"{frames[0]}-{frames[-1]}")
    r_ = g.add("Read", name="read", path=str(data / "violet" / "456x256" / "###.png"))
    fl = g.add("FlowRAFT", name="flow", image=r_["image"])
    a = g.add("WarmupAlpha", name="alpha", image=r_["image"], bundle=fl["bundle"], objects=n, preset="cpu",
              threads=THREADS)
    hm = g.add("WarmupHomography", name="homo", image=r_["image"], labels=a["labels"], bundle=fl["bundle"],
               objects=n)
    g.add("SpriteLearn", name="sprites", image=r_["image"], labels=a["labels"], transforms=hm["transforms"],
          preset="cpu", threads=THREADS, plate_revote=revote)
    seconds = {}
    variant = f" revote {revote:g}" if revote else ""
    for node in ("flow", "alpha", "homo", "sprites"):
        t0 = time.perf_counter()                       # each stage once; the ones before it are cached
        res = engine.run(g, targets=[node])
        key = f"{node}{'' if node == 'flow' else f' N={n}'}{variant if node == 'sprites' else ''} " \
              f"frames {frames[0]}-{frames[-1]}"
        times = _timings(cache)
        if res.computed and cache is not None:
            times[key] = time.perf_counter() - t0
            write_text(cache / "realbench-decomposition-times.json", json.dumps(times, indent=1))
        seconds[node] = times.get(key) if cache is not None else time.perf_counter() - t0
        print(f"decomposition N={n}: {node} {seconds[node]} s ({'computed' if res.computed else 'cached'})",
              file=sys.stderr, flush=True)
    r = engine.run(g, targets=["read", "alpha", "sprites"])
    # everything in display sRGB, as the files are and as the nodes learn (Image values are scene-linear)
    img = np.stack([shown(np.asarray(r.value("read", "image", f))[..., :3]) for f in frames])
    comp = np.stack([shown(r.value("sprites", "composite", f)) for f in frames])
    sp = [r.value("sprites", "sprites", f) for f in frames]             # Sprites hold sRGB
    plate = np.stack([s["plate"] for s in sp])
    alpha = np.stack([s["alpha"] for s in sp])
    tr = np.stack([s["transforms"] for s in sp])
    labels = np.stack([r.value("alpha", "labels", f) for f in frames])
    per_frame = [metrics.psnr(comp[i], img[i]) for i in range(len(frames))]
    onehot = np.stack([labels == k for k in range(n)], 1).astype(np.float32)
    out = {"n": n, "revote": revote, "psnr": per_frame, "seconds": seconds, "stability": stability(alpha, tr),
           "stability_labels": stability(onehot, tr),
           "plate_share": float(alpha[:, 0].mean())}
    # full-size delivery on the frames that exist at 1280×720
    idx = [i for i, f in enumerate(frames) if f in FULL_FRAMES and (data / "violet" / "1280x720" / f"{f:03d}.png").is_file()]
    if idx:
        big = [load(data / "violet" / "1280x720" / f"{frames[i]:03d}.png")[..., :3] for i in idx]
        t0 = time.perf_counter()
        d = fullsize.deliver(big, alpha[idx], plate[idx], tr[idx])
        out["full_seconds"] = time.perf_counter() - t0
        full_comp = fullsize.composite(d["layers"])
        out["full_psnr"] = [metrics.psnr(full_comp[j], big[j]) for j in range(len(idx))]
        out["full_upscaled_psnr"] = [metrics.psnr(np.clip(cv2.resize(comp[i], big[0].shape[1::-1],
                                                                      interpolation=cv2.INTER_CUBIC), 0, 1), big[j])
                                     for j, i in enumerate(idx)]
        out["work_psnr_same_frames"] = [per_frame[i] for i in idx]
        out["full_size"] = f"{big[0].shape[1]}×{big[0].shape[0]}"
        # the full-size plate beside its frame, half size: frames 0, 30, 50 (the first three delivered if none is)
        shown_full = [j for j, i in enumerate(idx) if frames[i] in FULL_SHEET_FRAMES] or list(range(min(3, len(idx))))
        half = lambda x: cv2.resize(np.ascontiguousarray(x, np.float32), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        out["full_sheet"] = contact_sheet(docs / f"decompose_violet_n{n}_{big[0].shape[1]}{'_revote' if revote else ''}.png",
                                          [[half(big[j]), half(d["plate"][j])] for j in shown_full])
    picks = [f for f in SHEET_FRAMES if f in frames] if len(frames) >= 78 else frames[::5][:4]
    rows = []
    for f in picks:
        i = frames.index(f)
        rows.append([img[i], plate[i]] + [_on_grey(img[i], alpha[i, k]) for k in range(1, n)])
    out["sheet"] = contact_sheet(docs / f"decompose_violet_n{n}{'_revote' if revote else ''}.png", rows)
    out["sheet_frames"] = picks
    print(f"decomposition N={n}: {summary(out)}", file=sys.stderr, flush=True)
    return out


def summary(m: dict) -> str:
    s = (f"composite PSNR mean {np.mean(m['psnr']):.2f} min {np.min(m['psnr']):.2f}; stability |Δα| "
         f"{m['stability'][0]:.4f} IoU {m['stability'][1]:.3f} (labels {m['stability_labels'][0]:.4f} / "
         f"{m['stability_labels'][1]:.3f}); times " + ", ".join(f"{k} {_s(v)} s" for k, v in m["seconds"].items()))
    if "full_psnr" in m:
        s += f"; full size {np.mean(m['full_psnr']):.2f} dB (upscaled {np.mean(m['full_upscaled_psnr']):.2f})"
    return s


def _s(seconds) -> str:
    return "cached" if seconds is None else f"{seconds:.0f}"


def run(data: Path, out_dir: Path, quick: bool) -> str:
    frames = list(range(16)) if quick else list(range(78))
    objects = tuple(int(x) for x in os.environ.get("CELGRAPH_REAL_OBJECTS", ",".join(map(str, OBJECTS))).split(","))
    cache = os.environ.get("CELGRAPH_REAL_CACHE")
    tmp = None if cache else tempfile.mkdtemp(prefix="celgraph-real-decomp-")
    try:
        engine = cg.Engine(Path(cache or tmp))
        revotes = [float(x) for x in os.environ.get("CELGRAPH_REAL_REVOTE", "").split(",") if x.strip()]
        results = [measure(data, out_dir, n, frames, engine, Path(cache) if cache else None, revote=r)
                   for n in objects for r in [0.0, *revotes]]
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for m in results:
        method = f"N = {m['n']}, `cpu` preset" + (f" + plate_revote {m['revote']:g}" if m["revote"] else "")
        rows += [[method, "composite PSNR (dB), mean / min over frames",
                  f"{np.mean(m['psnr']):.2f} / {np.min(m['psnr']):.2f}"],
                 [method, "alpha stability t→t+1 (sprites): mean abs Δα / IoU",
                  f"{m['stability'][0]:.4f} / {m['stability'][1]:.3f}"],
                 *([] if m["revote"] else [[f"N = {m['n']}, warm-up labels as alpha (baseline)",
                                            "label stability t→t+1: mean abs Δ / IoU",
                                            f"{m['stability_labels'][0]:.4f} / {m['stability_labels'][1]:.3f}"]]),
                 [method, "wall time (s): flow / warm-up alpha / transforms / sprites",
                  " / ".join(_s(m['seconds'][k]) for k in ("flow", "alpha", "homo", "sprites"))]]
        if "full_psnr" in m:
            rows += [[f"{method}, delivered at {m['full_size']}",
                      f"composite PSNR (dB) on the {len(m['full_psnr'])} full-size frames, mean / min",
                      f"{np.mean(m['full_psnr']):.2f} / {np.min(m['full_psnr']):.2f}"],
                     *([] if m["revote"] else [[f"{method}, working-size composite upscaled (bicubic; baseline)",
                                                "composite PSNR (dB) on the same frames, mean / min",
                                                f"{np.mean(m['full_upscaled_psnr']):.2f} / "
                                                f"{np.min(m['full_upscaled_psnr']):.2f}"]]),
                     [f"{method}, at the working size", "composite PSNR (dB) on the same frames (456×256)",
                      f"{np.mean(m['work_psnr_same_frames']):.2f}"],
                     [f"{method}, delivered at {m['full_size']}", "delivery time (s)", f"{m['full_seconds']:.0f}"]]
    n_frames = len(frames)
    notes = [f"`violet/456x256` frames {frames[0]}-{frames[-1]} ({n_frames} frames), one decomposition per N; "
             f"times on a 2-core machine shared with other jobs (1-minute load average "
             f"{os.getloadavg()[0]:.0f} when this table was written, our processes at nice 10), {THREADS} torch thread(s) "
             "per optimising node. A stage found in the kept "
             "cache ($CELGRAPH_REAL_CACHE) shows the time recorded when this suite computed it. The full-size "
             "plate is the full-size frame only where its pixels can stand for the plate (the sprites leave them to "
             "the background, and they lie clear of the sprites or match the working-size plate: "
             "fullsize.plate_trust), elsewhere the other delivered frames' such pixels or the working-size plate, "
             "upsampled; so the full-size composite measures how the layers line up with the frames and, like the "
             "working-size one, where the decomposition errs."]
    for m in results:
        variant = f", plate_revote {m['revote']:g}" if m["revote"] else ""
        full_sheet = f"; the full-size plate beside its frame, half size: `docs/{m['full_sheet'].name}`" \
            if "full_sheet" in m else ""
        notes.append(f"N = {m['n']}{variant}: contact sheet `docs/{m['sheet'].name}` (frames {', '.join(map(str, m['sheet_frames']))}:"
                     f" frame | plate | sprites on grey){full_sheet}. Per-frame composite PSNR: "
                     + " ".join(f"{p:.1f}" for p in m["psnr"]) + ".")
    return table(["method", "metric", "value"], rows) + "\n\n" + "\n\n".join(notes) + "\n"
