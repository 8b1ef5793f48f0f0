"""Colourisation: Colorize hint, reference and model modes through the engine."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

import celgraph as cg
from celgraph.synth import make_lineart, metrics

from .common import Row, fmt, has, is_quick, missing, shown, timed_run, write_sequence


COLOR_METRICS = ["per-region colour accuracy (ΔE2000 < 10)", "PSNR (dB)"]


def _lineart_pages(seeds, size):
    for seed in seeds:
        yield make_lineart(seed, *size)


def colorize_suite(cfg, engine) -> list[Row]:
    """Three studio workflows, each through the engine from files on disk:

    * hints: make_lineart pages (flat cel colours with shadows; exact line art) + one hint dot per
      line-enclosed region in its dominant colour (ColorHints), or one sloppy 14-px scribble per
      region that overshoots into the neighbour by up to 4 px; accuracy over the bucket-fill
      regions (shadows are not line-enclosed, so they count in PSNR, not in the accuracy);
    * reference: 16-frame SynthClips, the key (frame 1) coloured, frames 2-16 coloured from their
      exact line art; accuracy over every flat-colour region of the sprites (base, shadow,
      highlight, pattern), PSNR over the whole frame (plate included);
    * model: held-out pages, pix2pix with one hint per region (and without), beside the hint
      flat fill alone."""
    quick = is_quick(cfg)
    rows: list[Row] = []
    if not has("Colorize"):
        for mode in ("hints", "reference", "model"):
            rows += missing("colourisation (line art → colour)", f"Colorize {mode}", COLOR_METRICS)
        return rows
    tmp = Path(tempfile.mkdtemp(prefix="celgraph-colour-"))
    try:
        rows += _colorize_hints(engine, tmp, quick)
        rows += _colorize_reference(engine, tmp, quick)
        rows += _colorize_model(engine, tmp, quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _hint_graph(n, lines_pat, color_pat, hint_params, colorize_params):
    g = cg.Graph(frames=f"1-{n}")
    lines = g.add("Read", name="lines_file", path=lines_pat)
    color = g.add("Read", name="color_file", path=color_pat)
    ink = g.add("ToLineArt", name="ink", image=lines["image"], black=0.0, white=1.0)
    hints = g.add("ColorHints", name="hints", image=color["image"], lines=ink["lines"], **hint_params)
    g.add("Colorize", name="col", lines=ink["lines"], hints=hints["hints"], **colorize_params)
    return g


def _colorize_hints(engine, tmp: Path, quick: bool) -> list[Row]:
    size = (456, 256) if quick else (1920, 1080)
    seeds = [320] if quick else [320, 321, 322, 323]
    task = f"colourisation from hints ({len(seeds)} line-art pages {size[0]}×{size[1]})"
    pages = list(_lineart_pages(seeds, size))
    # the line art as paper-white images (what Read gives a user), the colours as the colourist's reference
    lines_pat = write_sequence(tmp, "hint_lines", [1.0 - p["lines"] for p in pages], "exr")
    color_pat = write_sequence(tmp, "hint_color", [p["fill"] for p in pages], "exr")
    rows = []
    variants = [("Colorize hints (one dot per region)", {}),
                ("Colorize hints (one sloppy scribble per region)", {"scribble": 14.0, "spill": 4.0, "radius": 2.0})]
    for label, hp in variants:
        g = _hint_graph(len(pages), lines_pat, color_pat, hp, {"line_color": "black"})
        r = engine.run(g, targets=["col"])
        ok = total = 0
        psnr = []
        for i, p in enumerate(pages, start=1):
            a, b = metrics.region_accuracy(shown(r.value("col", "fill", i)), p["fill"], p["regions"], p["lines"])
            ok, total = ok + a, total + b
            psnr.append(metrics.psnr(shown(r.value("col", "image", i))[:, :, :3], p["color"]))
        rows += [Row(task, label, COLOR_METRICS[0], f"{100 * ok / max(total, 1):.1f} %",
                     f"{ok}/{total} regions" + ("; goal ≥ 99 %" if "dot" in label else "")),
                 Row(task, label, "PSNR (dB)", fmt(np.mean(psnr), 2), "vs the colour page; shadows are not hinted")]
    # speed of the fill itself (hints already made): a fresh Colorize task on one frame
    g = _hint_graph(len(pages), lines_pat, color_pat, {}, {"line_color": "black"})
    engine.run(g, targets=["hints"], frames=[1])
    g2 = _hint_graph(len(pages), lines_pat, color_pat, {}, {"line_color": "trace"})   # new params: no cache hit
    _, sec = timed_run(engine, g2, ["col"], [1])
    rows.append(Row(task, "Colorize hints", f"s / frame {size[0]}×{size[1]}", fmt(sec, 2),
                    "through the engine, CPU" + ("" if quick else ", goal ≤ 1 s")))
    return rows


def _colorize_reference(engine, tmp: Path, quick: bool) -> list[Row]:
    n, seeds, (w, h) = (4, [330], (192, 112)) if quick else (16, [330, 331, 332, 333], (456, 256))
    task = f"colourisation from a coloured key ({len(seeds)} clips × {n} frames {w}×{h}, key = frame 1)"
    rows = []
    variants = [("Colorize reference (palette, chained flow)", {"match": "flow"}),
                ("Colorize reference (flat, chained flow)", {"match": "flow", "shading": "flat"}),
                ("Colorize reference (palette, direct flow to the key)", {"match": "flow", "chain": False}),
                ("Colorize reference (regions + flow cue, chained flow; the default)", {}),
                ("Colorize reference (regions alone, chained)", {"flow_cue": 0.0})]
    for label, params in variants:
        ok = total = 0
        psnr = []
        for seed in seeds:
            g = cg.Graph(frames=f"1-{n}")
            clip = g.add("SynthClip", name="clip", seed=seed, width=w, height=h)
            g.add("Colorize", name="col", mode="reference", lines=clip["lines"], reference=clip["image"], **params)
            r = engine.run(g)
            for f in range(2, n + 1):
                a, b = metrics.region_accuracy(shown(r.value("col", "fill", f)), shown(r.value("clip", "fill", f)),
                                       r.value("clip", "regions", f), r.value("clip", "lines", f))
                ok, total = ok + a, total + b
                psnr.append(metrics.psnr(shown(r.value("col", "image", f))[:, :, :3],
                                         shown(r.value("clip", "image", f))))
        rows += [Row(task, label, COLOR_METRICS[0], f"{100 * ok / max(total, 1):.1f} %",
                     f"{ok}/{total} sprite regions (base, shadow, highlight, pattern) over frames 2-{n}"),
                 Row(task, label, "PSNR (dB)", fmt(np.mean(psnr), 2), "whole frame, painted plate included")]
    return rows


def _colorize_model(engine, tmp: Path, quick: bool) -> list[Row]:
    from celgraph.nodes.color import bundled_weights
    size = (456, 256) if quick else (512, 288)
    seeds = [340] if quick else list(range(340, 348))
    task = f"colourisation by model ({len(seeds)} held-out line-art pages {size[0]}×{size[1]})"
    pages = list(_lineart_pages(seeds, size))
    lines_pat = write_sequence(tmp, "model_lines", [1.0 - p["lines"] for p in pages], "exr")
    color_pat = write_sequence(tmp, "model_color", [p["color"] for p in pages], "exr")
    rows = []
    variants = [("Colorize hints flat fill (one dot per region; reference)", {"line_color": "black"}, True),
                ("Colorize model (pix2pix + one dot per region)", {"mode": "model"}, True),
                ("Colorize model (pix2pix, line art only)", {"mode": "model"}, False)]
    for label, params, with_hints in variants:
        if params.get("mode") == "model" and bundled_weights() is None:
            rows += missing(task, label, COLOR_METRICS, "no bundled weights yet")
            continue
        g = _hint_graph(len(pages), lines_pat, color_pat, {}, params)
        if not with_hints:
            del g.nodes["col"].inputs["hints"]
        r = engine.run(g, targets=["col"])
        ok = total = 0
        psnr = []
        for i, p in enumerate(pages, start=1):
            img = shown(r.value("col", "image", i))[:, :, :3]
            a, b = metrics.region_accuracy(img, p["fill"], p["regions"], p["lines"])
            ok, total = ok + a, total + b
            psnr.append(metrics.psnr(img, p["color"]))
        rows += [Row(task, label, "PSNR (dB)", fmt(np.mean(psnr), 2), "vs the colour page (lines, shadows)"),
                 Row(task, label, COLOR_METRICS[0], f"{100 * ok / max(total, 1):.1f} %", f"{ok}/{total} regions")]
    return rows

