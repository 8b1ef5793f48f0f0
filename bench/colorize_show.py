"""Colorize `model` mode as the seed used it: trained on one show's own coloured frames, applied to
new line art of that show — and to another show (the seed's domain-shift failure).

    python bench/colorize_show.py [--steps 2400] [--work DIR]

A "show" here is six 16-frame synthetic cuts (`SynthClip` seeds 400-405, 456×256; each cut its own
cast over a painted plate). Frames 1-10 of every cut are the studio's finished frames: they are
written to PNG and go through `graph train colorize --frames` (Sketch turns each into a line-art /
colour pair, the seed's workflow). Frames 11-12 pick the checkpoint; frames 13-16 (poses the model
never saw) are the test. "Another show" is frames 13-16 of cuts 500-502 (other characters).
Test input: the cut's exact line art, no hints — the mode's selling point is colour with no
colourist in the loop. Scored through the engine (Colorize mode = model), against the bundled
synthetic weights: per-region colour accuracy over the sprites' flat regions (base, shadow,
highlight, pattern; CIEDE2000 < 10), PSNR over the visible sprites (the painted plate has no
lines to colour from). Training runs on 1 CPU thread (about 30 minutes). Writes
bench/results/colorize_show.md.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import celgraph as cg
from celgraph.synth import make_clip
from celgraph.synth.metrics import region_accuracy
from qualitybench.common import shown

SHOW, OTHER_SHOW = range(400, 406), range(500, 503)
TRAIN, VAL, TEST = range(0, 10), range(10, 12), range(12, 16)      # frame indices (0-based)
SIZE = (456, 256)


def write_frames(folder: Path, cuts, frames) -> list[str]:
    from celgraph.nodes.io import write_image
    paths = []
    for seed in cuts:
        clip = make_clip(seed, *SIZE, n_frames=16, flow=False)
        for f in frames:
            path = folder / f"cut{seed}.{f + 1:04d}.png"
            write_image(path, clip.frames[f]["color"])
            paths.append(str(path))
    return paths


def val_samples(cuts, frames) -> list[dict]:
    out = []
    for seed in cuts:
        clip = make_clip(seed, *SIZE, n_frames=16, flow=False)
        for f in frames:
            fr = clip.frames[f]
            h, w = fr["lines"].shape
            out.append({"lines": fr["lines"], "guide": np.zeros((h, w, 3), np.float32),
                        "mask": np.zeros((h, w), np.float32), "target": fr["color"]})
    return out


def score(engine, weights: str | None, cuts) -> tuple[int, int, float]:
    """(regions right, regions counted, mean sprite PSNR) of Colorize model mode on the test frames."""
    ok = total = 0
    psnr = []
    for seed in cuts:
        g = cg.Graph(frames="1-16")
        clip = g.add("SynthClip", name="clip", seed=seed, width=SIZE[0], height=SIZE[1])
        g.add("Colorize", name="col", mode="model", lines=clip["lines"], model_weights=weights or "")
        frames = [f + 1 for f in TEST]
        r = engine.run(g, targets=["col", "clip"], frames=frames)
        for f in frames:
            img = shown(r.value("col", "image", f))[:, :, :3]          # compared as displayed (sRGB)
            a, b = region_accuracy(img, shown(r.value("clip", "fill", f)), r.value("clip", "regions", f),
                                   r.value("clip", "lines", f))
            ok, total = ok + a, total + b
            sprite = r.value("clip", "objects", f) > 0
            err = np.mean((img[sprite] - shown(r.value("clip", "image", f))[:, :, :3][sprite]) ** 2)
            psnr.append(10 * np.log10(1.0 / max(err, 1e-10)))
    return ok, total, float(np.mean(psnr))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--per-frame", type=int, default=48, help="training patches per frame")
    ap.add_argument("--unguided", type=float, default=0.8, help="share of training pairs without hints")
    ap.add_argument("--work", default=None, help="keep the frames, pool and run here (default: a temp dir)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "colorize_show.md"))
    args = ap.parse_args(argv)
    import torch
    from celgraph.train import colorize as tc
    torch.set_num_threads(1)
    work = Path(args.work or tempfile.mkdtemp(prefix="celgraph-show-"))
    t0 = time.time()
    frames = write_frames(work / "frames", SHOW, TRAIN)
    tc.make_pool(work / "pool", show_frames=frames, per_frame=args.per_frame, unguided=args.unguided)
    pool_s = time.time() - t0
    cfg = tc.TrainConfig(steps=args.steps, pool=str(work / "pool"), pool_frames=len(frames),
                         out=str(work / "run"), eval_every=max(args.steps // 4, 1), ckpt_every=100,
                         export=str(work / "show_pix2pix.safetensors"))
    run = work / "run"
    tc.train(cfg, resume=(run / "last.pt").exists(), val=val_samples(SHOW, VAL))
    train_s = time.time() - t0 - pool_s
    engine = cg.Engine(work / "cache")
    rows = []
    for label, weights in (("trained on the show (line art only)", cfg.export),
                           ("bundled synthetic weights (line art only)", None)):
        for where, cuts in (("same show, unseen frames 13-16", SHOW), ("another show, frames 13-16", OTHER_SHOW)):
            ok, total, psnr = score(engine, weights, cuts)
            rows.append((label, where, f"{100 * ok / max(total, 1):.1f} % ({ok}/{total})", f"{psnr:.2f}"))
            print(rows[-1], file=sys.stderr)
    lines = ["| Colorize model | test frames | per-region colour accuracy (ΔE2000 < 10) | sprite PSNR (dB) |",
             "|---|---|---:|---:|"] + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    table = "\n".join(lines)
    print(table)
    header = (f"# bench/colorize_show.py\n\n`python bench/colorize_show.py --steps {args.steps} --per-frame {args.per_frame} --unguided {args.unguided}` — "
              f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, torch {torch.__version__}, 1 CPU thread. "
              f"Show: cuts {SHOW.start}-{SHOW.stop - 1}, {len(frames)} training frames (frames 1-10 of each cut) "
              f"turned into pairs by Sketch ({100 * args.unguided:.0f} % without hints), {args.per_frame} patches each; pool {pool_s:.0f} s, training "
              f"{args.steps} steps {train_s:.0f} s. Another show: cuts {OTHER_SHOW.start}-{OTHER_SHOW.stop - 1}. "
              "Input: exact line art, no hints.\n\n")
    Path(args.out).write_text(header + table + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
