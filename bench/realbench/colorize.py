"""Colorize ``reference`` mode on real production line art (``paintbucket``, BasicPBC's test set).

* **Known motion**: each key frame's line art and colours (``gt/``) moved by seeded similarities
  (rotation ±20°, scale 0.85-1.15, shift ±6 %) plus a mild smooth warp (a 4×4 random field,
  cubic-interpolated, 0.6 % of the width); the truth is the moved ``gt``. The moved line art is
  re-binarised (coverage ≥ 0.2, low enough that resampling opens no gap in the 1-px lines), since production line art is aliased, and the key frame's edge
  is drawn into it as a line (what lies beyond the key's edge is unknown and not scored). Region
  accuracy: a region of the moved key (at least ``MIN_PX`` paper pixels in view) is right when
  most of its paper pixels have the key's colour for it (transparent regions: no colour);
  pixel accuracy: painted, non-line pixels of the right colour.
* **Real consecutive frames**: ``laughing_girl`` 0001-0003 from key 0000, ``smoke_explosion``
  00000-00025 from key 00026 — a contact sheet in ``docs/`` and the share of regions marked unsure.
* The older flow-based method (``match = flow``, the default flow backend) beside the new one.
* **A show-trained model** (the seed's workflow): pix2pix trained on Violet frames 000-059
  (``graph train colorize --frames ...``: line art from Sketch → the frames), scored on 060-077
  (PSNR of the frame, the lines included) beside ``reference`` mode from key frame 059 and beside
  the bundled weights, all on line art from the Sketch node. The show-trained weights are a
  measurement, never shipped: their path comes from ``$CELGRAPH_VIOLET_COLORIZE`` (the rows say so
  when it is not set).

Everything runs through the engine from files on disk (Read → ToLineArt → Colorize); its Image outputs are
scene-linear and are turned back into sRGB (the files' space) before scoring and in the sheets. The line art
is closed, so ``close_gaps`` is 0.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import celgraph as cg
from celgraph.colorspace import from_working
from celgraph.models import hintfill as hf
from celgraph.nodes.io import write_image
from celgraph.synth import metrics

from .common import load, table

MIN_PX = 10
SETS = {"laughing_girl": ("0000", 4), "smoke_explosion": ("00026", 5)}
METHODS = [("regions + flow cue (default)", {}),
           ("regions alone", {"flow_cue": 0.0}),
           ("flow (the older method)", {"match": "flow"})]


def known_motion(img: np.ndarray, seed: int, interp: int) -> tuple[np.ndarray, np.ndarray]:
    """(img moved by the seed's similarity + smooth warp, mask of pixels that come from inside the
    frame). Output pixel q samples the source at S⁻¹(q) + w(q)."""
    H, W = img.shape[:2]
    rng = np.random.default_rng(seed)
    angle, scale = rng.uniform(-20, 20), rng.uniform(0.85, 1.15)
    shift = rng.uniform(-0.06, 0.06, 2) * W
    m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, scale)
    m[:, 2] += shift
    mi = cv2.invertAffineTransform(m)
    x, y = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    field = rng.normal(0, 1, (2, 4, 4)).astype(np.float32)
    amp = 0.006 * W
    sx = mi[0, 0] * x + mi[0, 1] * y + mi[0, 2] + cv2.resize(field[0], (W, H), interpolation=cv2.INTER_CUBIC) * amp
    sy = mi[1, 0] * x + mi[1, 1] * y + mi[1, 2] + cv2.resize(field[1], (W, H), interpolation=cv2.INTER_CUBIC) * amp
    sx, sy = sx.astype(np.float32), sy.astype(np.float32)
    out = cv2.remap(img, sx, sy, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = (sx >= 0) & (sx <= W - 1) & (sy >= 0) & (sy <= H - 1)
    return out, valid


def moved_pair(line_rgba: np.ndarray, gt: np.ndarray, seed: int):
    """The moved line art (ink, binary, with the key's edge drawn), the moved truth colours (RGBA),
    the moved key region ids and the in-view mask."""
    ink, valid = known_motion(np.ascontiguousarray(line_rgba[:, :, 3]), seed, cv2.INTER_LINEAR)
    edge = cv2.morphologyEx(valid.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    ink = ((ink >= 0.2) | edge).astype(np.float32)
    truth, _ = known_motion(np.ascontiguousarray(gt), seed, cv2.INTER_NEAREST)
    key_seg = hf.segment(line_rgba[:, :, 3], 0.5, 0.0)
    regions, _ = known_motion(np.where(key_seg.ink, 0, key_seg.labels).astype(np.float32), seed, cv2.INTER_NEAREST)
    return ink, truth, regions.astype(np.int64), valid


def score(fill: np.ndarray, truth: np.ndarray, regions: np.ndarray, ink: np.ndarray, valid: np.ndarray):
    """(regions right, regions, painted pixels right, painted pixels)."""
    paper = (ink < 0.5) & valid & (regions > 0)
    painted = truth[:, :, 3] >= 0.5
    a = fill[:, :, 3]
    rgb = fill[:, :, :3] / np.maximum(a, 1e-6)[:, :, None]
    ok = np.where(painted, (a >= 0.5) & (np.abs(rgb - truth[:, :, :3]).max(-1) < 0.02), a < 0.5)
    ids = regions[paper]
    n = int(regions.max()) + 1
    size = np.bincount(ids, minlength=n)
    right = np.bincount(ids, weights=ok[paper], minlength=n)
    counted = size >= MIN_PX
    return (int((right[counted] > 0.5 * size[counted]).sum()), int(counted.sum()),
            int(ok[paper & painted].sum()), int((paper & painted).sum()))


def _shown(img: np.ndarray) -> np.ndarray:
    """An engine Image (scene-linear) in display values (sRGB), as the files and the truth are."""
    return from_working(img, "sRGB")


def _over_white(rgba: np.ndarray) -> np.ndarray:
    rgba = np.asarray(rgba, np.float32)
    if rgba.shape[2] == 3:
        return rgba
    return rgba[:, :, :3] + (1 - rgba[:, :, 3:])          # premultiplied over white


def _graph(frames: str, lines_pat: str, key_path: str, key: int, params: dict) -> cg.Graph:
    g = cg.Graph(frames=frames)
    lines = g.add("Read", name="lines_file", path=lines_pat)
    ink = g.add("ToLineArt", name="ink", image=lines["image"])
    ref = g.add("Read", name="key_file", path=key_path)
    g.add("Colorize", name="col", mode="reference", lines=ink["lines"], reference=ref["image"],
          key_frames=[key], close_gaps=0.0, **params)
    return g


def _known_motion(data: Path, tmp: Path, engine, quick: bool):
    seeds = [0] if quick else [0, 1, 2, 3]
    rows, times = [], {}
    per_seed = {}
    for name, (key_file, digits) in SETS.items():
        line = load(data / "paintbucket" / name / "line" / f"{key_file}.png")
        gt = load(data / "paintbucket" / name / "gt" / f"{key_file}.png")
        folder = tmp / f"km_{name}"
        pat = str(folder / "lines.####.png")
        write_image(folder / "lines.0001.png", np.repeat(1 - line[:, :, 3:], 3, 2))     # frame 1: the key
        truths = {}
        for i, seed in enumerate(seeds, start=2):
            ink, truth, regions, valid = moved_pair(line, gt, seed)
            write_image(folder / f"lines.{i:04d}.png", np.repeat(1 - ink[:, :, None], 3, 2))
            truths[i] = (seed, truth, regions, ink, valid)
        key_path = str(data / "paintbucket" / name / "gt" / f"{key_file}.png")
        frames = f"1-{len(seeds) + 1}"
        engine.run(_graph(frames, pat, key_path, 1, {}), targets=["ink", "key_file"])
        for label, params in METHODS:                 # each moved frame is its own warp of the key: no chain
            g = _graph(frames, pat, key_path, 1, {**params, "chain": False})
            engine.run(g, targets=["col"], frames=[1], workers=1)   # the key frame first: not timed (it
            t0, c0 = time.perf_counter(), time.process_time()         # also loads the method's modules)
            r = engine.run(g, targets=["col"], frames=list(truths), workers=1)
            sec = (time.perf_counter() - t0) / len(seeds)
            cpu = (time.process_time() - c0) / len(seeds)
            totals = np.zeros(4, np.int64)
            for i, (seed, truth, regions, ink, valid) in truths.items():
                s = np.array(score(_shown(r.value("col", "fill", i)), truth, regions, ink, valid))
                totals += s
                per_seed.setdefault((name, label), []).append((seed, s))
            rows.append([name, label, f"{100 * totals[0] / totals[1]:.1f} % ({totals[0]}/{totals[1]})",
                         f"{100 * totals[2] / totals[3]:.2f} %",
                         f"{min(100 * s[0] / s[1] for _, s in per_seed[(name, label)]):.2f} %",
                         f"{min(100 * s[2] / s[3] for _, s in per_seed[(name, label)]):.2f} %",
                         f"{sec:.2f} s / {cpu:.2f} s"])
            times[(name, label)] = sec
    return rows, per_seed, times


def _real_frames(data: Path, tmp: Path, engine, docs: Path, quick: bool):
    cases = {"laughing_girl": ("0000", [1, 2, 3], "####"),
             "smoke_explosion": ("00026", list(range(0, 26, 5 if quick else 1)), "#####")}
    methods = METHODS if not quick else METHODS[:1]
    rows, sheet_rows = [], []
    for name, (key_file, frames, pat) in cases.items():
        key = int(key_file)
        folder = data / "paintbucket" / name
        lines_pat = str(folder / "line" / f"{pat}.png")
        key_path = str(folder / "gt" / f"{key_file}.png")
        frame_list = ",".join(str(f) for f in sorted(frames + [key]))
        for label, params in methods:                 # consecutive frames: chained (the default)
            g = _graph(frame_list, lines_pat, key_path, key, params)
            r = engine.run(g, targets=["col"], workers=1)
            unsure = empty = total = 0
            tiles = []
            for f in frames:
                regions, u = r.value("col", "regions", f), r.value("col", "unsure", f)
                alpha = r.value("col", "fill", f)[:, :, 3]
                ids, cnt = np.unique(regions, return_counts=True)
                big = ids[cnt >= 20]
                flagged = np.unique(regions[u > 0.5])
                unpainted = np.unique(regions[(u > 0.5) & (alpha < 0.5)])
                unsure += int(np.isin(big, flagged).sum())
                empty += int(np.isin(big, unpainted).sum())
                total += len(big)
                tiles.append((f, _shown(r.value("col", "image", f)), u))
            rows.append([name, label, f"{len(frames)} frames from key {key_file}",
                         f"{100 * unsure / max(total, 1):.1f} % ({unsure}/{total})",
                         f"{100 * empty / max(total, 1):.1f} % ({empty})"])
            if label != METHODS[1][0] or name == "laughing_girl":
                sheet_rows.append((f"{name}, {label}", load(Path(key_path)), tiles))
    sheet = contact_sheet(sheet_rows)
    docs.mkdir(parents=True, exist_ok=True)
    out = docs / "colorize_real.png"
    write_image(out if not quick else Path(tempfile.gettempdir()) / "colorize_real_quick.png", sheet)
    return rows


VIOLET_TRAIN, VIOLET_KEY, VIOLET_TEST = (0, 59), 59, (60, 77)


def _violet(data: Path, engine, docs: Path, quick: bool):
    """Rows (method, PSNR mean, min, max) on Violet 060-077, and the contact sheet's rows."""
    folder = data / "violet" / "456x256"
    test = list(range(VIOLET_TEST[0], VIOLET_TEST[1] + 1, 4 if quick else 1))
    trained = os.environ.get("CELGRAPH_VIOLET_COLORIZE", "")
    g = cg.Graph(frames=",".join(str(f) for f in [VIOLET_KEY] + test))
    frames = g.add("Read", name="frames", path=str(folder / "###.png"))
    sketch = g.add("Sketch", name="sketch", image=frames["image"])
    methods = [(f"reference mode from key frame {VIOLET_KEY:03d} (default settings)", "ref",
                dict(mode="reference", reference=frames["image"], key_frames=[VIOLET_KEY])),
               ("model mode, bundled synthetic weights (line art only)", "bundled", dict(mode="model"))]
    if trained:
        methods.insert(1, (f"model mode, trained on Violet {VIOLET_TRAIN[0]:03d}-{VIOLET_TRAIN[1]:03d} "
                           "(line art only)", "show", dict(mode="model", model_weights=trained)))
    for _, name, params in methods:
        g.add("Colorize", name=name, lines=sketch["lines"], **params)
    r = engine.run(g, targets=[name for _, name, _ in methods], frames=test, workers=1)
    rows, sheet = [], [("Violet: the frames (truth)", None, [(f, _shown(r.value("frames", "image", f)), None) for f in test])]
    for label, name, _ in methods:
        scores = []
        tiles = []
        for f in test:
            truth = _over_white(_shown(r.value("frames", "image", f)))
            out = _over_white(_shown(r.value(name, "image", f)))
            scores.append(metrics.psnr(np.clip(out, 0, 1), np.clip(truth[:, :, :3], 0, 1)))
            tiles.append((f, _shown(r.value(name, "image", f)), None))
        rows.append([label, f"{np.mean(scores):.2f}", f"{min(scores):.2f}", f"{max(scores):.2f}"])
        sheet.append((f"Violet: {label}", None, tiles))
    if not trained:
        rows.insert(1, ["model mode, trained on Violet (not run: set $CELGRAPH_VIOLET_COLORIZE)", "—", "—", "—"])
        return rows, sheet, ""
    from celgraph.models.safetensors_io import read_metadata
    meta = read_metadata(trained, "celgraph.pix2pix", "Colorize pix2pix")
    cfg = meta.get("config", {})
    note = (f"Show-trained weights: {meta.get('step', '?')} steps of a {cfg.get('steps', '?')}-step schedule "
            f"({cfg.get('arch', '?')}, batch {cfg.get('batch', '?')}, crop {cfg.get('crop', '?')}), from "
            f"`graph train colorize --frames 'violet/456x256/0[0-5][0-9].png' --unguided 0.8`; "
            "a measurement, never shipped or committed.")
    return rows, sheet, note


def contact_sheet(sheet_rows, tile: int = 300, per_row: int = 7, aspect: float = 1.0) -> np.ndarray:
    """Rows of tiles (``tile`` wide, ``tile / aspect`` high): the key's colours (when the row has a
    key), then each frame coloured; unsure regions hatched magenta (their colour still shows),
    regions nothing matched (left transparent) on a grey checker (tiles with an unsure mask)."""
    size = (tile, int(round(tile / aspect)))
    lines_out = []
    for title, key_img, tiles in sheet_rows:
        room = per_row - (key_img is not None)
        chosen = tiles if len(tiles) <= room else [tiles[i] for i in np.linspace(0, len(tiles) - 1, room).astype(int)]
        row = [] if key_img is None else [_tile(_over_white(key_img), size, "key")]
        for f, img, unsure in chosen:
            rgb = _over_white(img)
            if unsure is not None:
                h, w = unsure.shape
                yy, xx = np.mgrid[0:h, 0:w]
                step = max(8, w // 60)
                empty = (img[:, :, 3] < 0.5) & (unsure > 0.5)       # nothing matched: a grey checker
                rgb[empty & (((xx // step) + (yy // step)) % 2 == 0)] = 0.8
                hatch = (unsure > 0.5) & ((xx + yy) % (2 * step) < max(2, w // 300))
                rgb[hatch] = (1.0, 0.0, 1.0)
            row.append(_tile(rgb, size, str(f)))
        while len(row) < per_row:
            row.append(np.full((size[1], size[0], 3), 255, np.uint8))
        strip = np.concatenate(row, 1)
        band = np.full((22, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(band, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        lines_out += [band, strip]
    return np.concatenate(lines_out, 0).astype(np.float32) / 255


def _tile(rgb: np.ndarray, size: tuple[int, int], label: str) -> np.ndarray:
    w, h = size
    t = cv2.resize(np.ascontiguousarray(rgb[:, :, :3]), (w, h), interpolation=cv2.INTER_AREA)
    t = (np.clip(t, 0, 1) * 255 + 0.5).astype(np.uint8)
    cv2.putText(t, label, (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (50, 50, 50), 1, cv2.LINE_AA)
    cv2.rectangle(t, (0, 0), (w - 1, h - 1), (180, 180, 180), 1)
    return t


def run(data: Path, docs: Path, quick: bool) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="celgraph-realcolor-"))
    try:
        engine = cg.Engine(cache_dir=tmp / "cache")
        km_rows, per_seed, times = _known_motion(data, tmp, engine, quick)
        print(table(["key frame", "method", "regions", "pixels", "worst r", "worst p", "time"], km_rows), flush=True)
        real_rows = _real_frames(data, tmp, engine, docs, quick)
        violet_rows, violet_sheet, violet_note = _violet(data, engine, docs, quick)
        sheet = contact_sheet(violet_sheet, tile=228, per_row=7, aspect=456 / 256)
        write_image(docs / "colorize_violet.png" if not quick else Path(tempfile.gettempdir()) / "colorize_violet_quick.png",
                    sheet)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seeds_txt = "; ".join(
        f"{name} {label.split(' ')[0]}: " + ", ".join(f"seed {sd} {s[0]}/{s[1]} regions, {100 * s[2] / s[3]:.2f} % pixels"
                                                     for sd, s in v)
        for (name, label), v in per_seed.items() if label == METHODS[0][0])
    out = ["### Known motion (key frame moved by a seeded similarity + mild smooth warp)", "",
           table(["key frame", "method", "regions right (all seeds)", "painted pixels right",
                  "worst seed, regions", "worst seed, pixels", "time per frame (wall / CPU)"], km_rows), "",
           f"Per seed (regions / painted pixels): {seeds_txt}.", "",
           f"A region counts when at least {MIN_PX} of its paper pixels are in view. Time per frame: the "
           "Colorize task through the engine with one worker over the moved frames (both segmentations, "
           "flow, matching, fill, the colour conversions at the node's boundary and the cache writes; the "
           "key frame is coloured first and not timed, so the modules' one-time imports are not counted), "
           "laughing_girl is 1600², smoke_explosion 1000²; wall clock on this 2-core machine shared with "
           "other jobs, and the process's CPU seconds (all threads).", "",
           "### Real consecutive frames", "",
           table(["clip", "method", "frames", "regions marked unsure (≥ 20 px)", "of which left unpainted (no match)"],
                 real_rows), "",
           "Contact sheet: `docs/colorize_real.png` (key colours first, then frames; unsure regions hatched "
           "magenta over their colour; regions nothing matched are left transparent, shown on a grey checker).", "",
           f"### A show-trained model: Violet, trained on frames {VIOLET_TRAIN[0]:03d}-{VIOLET_TRAIN[1]:03d}, "
           f"scored on {VIOLET_TEST[0]:03d}-{VIOLET_TEST[1]:03d}", "",
           table(["Colorize on Sketch's line art of each frame", "PSNR (dB), mean", "min", "max"], violet_rows), "",
           "PSNR of the coloured frame (lines included, over white) against the real frame, 456×256. "
           "Contact sheet: `docs/colorize_violet.png` (the frames, then each method). " + violet_note]
    return "\n".join(out)
