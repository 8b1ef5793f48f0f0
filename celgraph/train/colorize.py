"""Train the Colorize pix2pix model: ``graph train colorize``.

Two data sources:

* **synthetic** (default; what the bundled weights were trained on): seeded
  :func:`celgraph.synth.make_lineart` pages (512×288 to 768×432: flat cel colours, crescent
  shadows, black / colour-traced lines) — the target is the page's ``color``. The input line art
  is what Colorize meets in production (the DLS-2021 lesson, ``/shared/reference/lines_and_color.md``
  §4.4): the exact ink (60 %) or XDoG lines of the page degraded by ``degrade_photo`` (40 %; or
  the Sketch network's lines when ``--sketch-weights`` is given). The colour guide is what the
  node feeds the model: one hint dot per region sampled from the target
  (:func:`celgraph.models.hintfill.sample_hints`, 0-50 % of the regions dropped), flat-filled over
  the input line art by :func:`celgraph.models.hintfill.fill_from_hints`; 20 % of the samples get
  no guide at all.
* **a show's own frames** (``--frames 'shots/*/color.*.png'``): each coloured frame becomes a pair
  through the Sketch node's network (its lines as input, the frame as target) — the seed's
  workflow — with the same guides.

``PATCH``² patches (uint8) are stored as shards ``POOL/shard_NNNNN.npz`` (default
``$CELGRAPH_COLORIZE_POOL``, else ``train/colorize/pool`` in the cache folder). Training: random ``crop``²
crops + flips, pix2pix losses — G: BCE-GAN(D(A, G(A)), real) + λ·L1(G(A), B) with λ = 100;
D: ½·[BCE(D(A, B), real) + BCE(D(A, G(A)), fake)] — Adam 2e-4, β = (0.5, 0.999), constant LR then
linear decay to 0 over the second half (pix2pix's schedule). The GAN weight defaults to 0.1, not
pix2pix's 1: on the synthetic pages a full-weight GAN lowered the held-out PSNR as training went
on (see MODEL_CARD); ``--gan-weight 0`` trains L1 only.
Resumable (``OUT/last.pt`` every ``ckpt_every`` steps, SIGTERM/Ctrl-C save and exit); validation
PSNR on held-out synthetic pages (:data:`VAL_SEEDS`) every ``eval_every`` steps keeps
``OUT/best.pt``; the best generator is exported to safetensors (``--export``; default
``OUT/colorize_pix2pix.safetensors``).

    graph train colorize --steps 1200 --out runs/colorize
    graph train colorize --frames 'show/ep01/color.*.png' --pool runs/show_pool --out runs/show
"""
from __future__ import annotations

import argparse
import glob
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import pool as _pool
from .loop import (EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, TRAINING_GROUP, Run, RunConfig, add_batch_arguments,
                   load_checkpoint,
                   add_run_arguments, config_from_args, descend, main_of, pool_run_settings)

__all__ = ["TrainConfig", "colorize_sample", "val_samples", "sample_patches", "make_pool", "load_pool", "batch_tensors", "train",
           "generator_loss", "discriminator_loss", "evaluate", "export_weights", "add_colorize_train_parser", "main",
           "POOL_SEED0", "VAL_SEEDS"]

POOL_SEED0 = 3_000_000
VAL_SEEDS = tuple(range(710_000, 710_006))
DEFAULT_POOL = _pool.default_pool("colorize")
SIZES = ((512, 288), (640, 360), (768, 432))
PATCH = 160


# ---------------------------------------------------------------- data

def input_lines(color: np.ndarray, gt_lines: np.ndarray | None, rng: np.random.Generator, sketch=None) -> np.ndarray:
    """Line art as Colorize meets it: the exact ink (60 % when known), else lines extracted from the
    degraded colour — by the Sketch network when given, else by XDoG."""
    if gt_lines is not None and rng.random() < 0.6:
        return np.asarray(gt_lines, np.float32)
    from celgraph.synth import degrade_photo
    img = degrade_photo(color, rng)
    if sketch is not None:
        from celgraph.models.sketch_unet import predict
        return predict(sketch, img, tile=None)
    from celgraph.models.xdog import xdog
    from celgraph.nodes.sketch import Sketch
    d = {p.name: p.default for p in Sketch.params}
    return xdog(img, sigma=d["xdog_sigma"], k=d["xdog_k"], p=d["xdog_p"], epsilon=d["xdog_epsilon"], phi=d["xdog_phi"])


def guide_for(color: np.ndarray, gt_lines: np.ndarray, lines: np.ndarray, rng: np.random.Generator,
              p_none: float = 0.2, drop: tuple[float, float] = (0.0, 0.5)) -> tuple[np.ndarray, np.ndarray]:
    """(guide H×W×3, mask H×W): hint dots from the target, flat-filled over ``lines`` as the node
    does; (zeros, zeros) with probability ``p_none``."""
    from celgraph.models import hintfill as hf
    H, W = lines.shape
    if rng.random() < p_none:
        return np.zeros((H, W, 3), np.float32), np.zeros((H, W), np.float32)
    hints = hf.sample_hints(color, gt_lines, seed=int(rng.integers(2**31)), drop=float(rng.uniform(*drop)))
    r = hf.fill_from_hints(hf.segment(lines), hints, "transparent")
    return r["fill"].astype(np.float32), r["alpha"].astype(np.float32)


def colorize_sample(seed: int, size: tuple[int, int] | None = None, sketch=None, guide: bool | None = None) -> dict:
    """One synthetic training/validation sample: {"lines", "guide", "mask", "target"}.
    ``guide`` True/False forces a one-hint-per-region guide / none (validation)."""
    from celgraph.synth import make_lineart
    rng = np.random.default_rng([seed, 0xC010])
    W, H = size or SIZES[int(rng.integers(len(SIZES)))]
    s = make_lineart(seed, W, H)
    color, gt = s["color"], s["lines"]
    lines = input_lines(color, gt, rng, sketch)
    if guide is None:
        g, m = guide_for(color, gt, lines, rng)
    elif guide:
        g, m = guide_for(color, gt, lines, rng, p_none=0.0, drop=(0.0, 0.0))
    else:
        g, m = np.zeros((H, W, 3), np.float32), np.zeros((H, W), np.float32)
    return {"lines": lines, "guide": g, "mask": m, "target": np.asarray(color, np.float32)}


def frame_sample(path: str, rng: np.random.Generator, sketch, unguided: float = 0.2) -> dict:
    """A show's coloured frame turned into a pair by the Sketch network; a share ``unguided`` of
    the samples get no hint guide (raise it for a model meant to colour line art alone)."""
    from celgraph.models.sketch_unet import predict
    from celgraph.nodes.io import read_image
    img = np.asarray(read_image(path), np.float32)
    color = img[:, :, :3] if img.shape[2] >= 3 else np.repeat(img[:, :, :1], 3, axis=2)
    lines = predict(sketch, color, tile=None)
    g, m = guide_for(color, (lines >= 0.5).astype(np.float32), lines, rng, p_none=unguided)
    return {"lines": lines, "guide": g, "mask": m, "target": color}


def val_samples(guide: bool = True, size=(512, 288)) -> list[dict]:
    """Held-out synthetic pages with the exact ink and a one-hint-per-region guide (or none)."""
    out = []
    for s in VAL_SEEDS:
        rng = np.random.default_rng([s, 1])
        from celgraph.synth import make_lineart
        page = make_lineart(s, *size)
        g, m = guide_for(page["color"], page["lines"], page["lines"], rng, p_none=0.0 if guide else 1.0,
                         drop=(0.0, 0.0))
        out.append({"lines": page["lines"], "guide": g, "mask": m, "target": page["color"]})
    return out


def _u8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def sample_patches(d: dict, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n PATCH² uint8 patches: "lines" N×P×P, "guide" N×P×P×3, "mask" N×P×P, "target" N×P×P×3."""
    H, W = d["lines"].shape
    ink = np.argwhere(d["lines"] >= 0.5)
    out = {k: [] for k in ("lines", "guide", "mask", "target")}
    for _ in range(n):
        if len(ink) and rng.random() < 0.8:
            y, x = ink[int(rng.integers(len(ink)))]
        else:
            y, x = rng.integers(0, H), rng.integers(0, W)
        r, c = int(np.clip(y - PATCH // 2, 0, H - PATCH)), int(np.clip(x - PATCH // 2, 0, W - PATCH))
        for k in out:
            out[k].append(_u8(d[k][r:r + PATCH, c:c + PATCH]))
    return {k: np.stack(v) for k, v in out.items()}


def make_pool(pool: str | Path = DEFAULT_POOL, frames: int = 400, per_frame: int = 8, shard_frames: int = 50,
              seed0: int = POOL_SEED0, sketch_weights: str | None = None, show_frames: list[str] | None = None,
              echo=print, unguided: float = 0.2) -> Path:
    """Write (or complete) a patch pool; synthetic pages unless ``show_frames`` lists image files
    (of which a share ``unguided`` is stored without a hint guide)."""
    sketch = None
    if sketch_weights or show_frames:
        from celgraph.models.sketch_unet import fuse_batchnorm, load_weights
        from celgraph.nodes.sketch import bundled_weights
        path = sketch_weights or bundled_weights()
        if path is None:
            raise FileNotFoundError("turning a show's frames into pairs needs Sketch weights (--sketch-weights)")
        sketch = fuse_batchnorm(load_weights(path)[0])
    if show_frames:
        frames = len(show_frames)

    def patches(f: int) -> dict:
        rng = np.random.default_rng([seed0 + f, 37])
        d = (frame_sample(show_frames[f], rng, sketch, unguided) if show_frames
             else colorize_sample(seed0 + f, sketch=sketch))
        return sample_patches(d, rng, per_frame)

    return _pool.write_pool(pool, frames, shard_frames, patches, echo)


def load_pool(pool: str | Path) -> dict[str, np.ndarray]:
    return _pool.load_pool(pool, "run `graph train colorize --make-pool` first")


def batch_tensors(data: dict, idx: np.ndarray, crop: int, rng: np.random.Generator):
    """(A B×5×crop×crop network input, B B×3×crop×crop target in −1..1): random crops + flips."""
    import torch
    from celgraph.models.pix2pix import make_input
    xs, ys = [], []
    P = data["lines"].shape[1]
    for i in idx:
        r, c = (int(v) for v in rng.integers(0, P - crop + 1, 2))
        sl = (i, slice(r, r + crop), slice(c, c + crop))
        lines = data["lines"][sl].astype(np.float32) / 255
        guide = data["guide"][sl].astype(np.float32) / 255
        mask = data["mask"][sl].astype(np.float32) / 255
        target = data["target"][sl].astype(np.float32) / 255
        x = make_input(lines, guide, mask)
        y = target.transpose(2, 0, 1) * 2 - 1
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, :, ::-1]
        if rng.random() < 0.5:
            x, y = x[:, ::-1], y[:, ::-1]
        xs.append(np.ascontiguousarray(x))
        ys.append(np.ascontiguousarray(y))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def generator_loss(D, a, fake, real, l1_weight: float = 100.0, gan_weight: float = 1.0):
    """(total, l1): gan_weight·BCE(D(A, G(A)), real) + l1_weight·L1(G(A), B)."""
    import torch
    import torch.nn.functional as F
    l1 = F.l1_loss(fake, real)
    total = l1_weight * l1
    if gan_weight:
        logits = D(a, fake)
        total = total + gan_weight * F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    return total, l1


def discriminator_loss(D, a, fake, real):
    import torch
    import torch.nn.functional as F
    lr, lf = D(a, real), D(a, fake.detach())
    return 0.5 * (F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) +
                  F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)))


def evaluate(G, samples: list[dict]) -> dict:
    """Mean PSNR (dB) of the generator on samples, beside the flat fill (guide + black lines)."""
    from celgraph.models.pix2pix import colorize
    from celgraph.synth import metrics
    model, flat = [], []
    for d in samples:
        out = colorize(G, d["lines"], d["guide"], d["mask"])
        model.append(metrics.psnr(out, d["target"]))
        ink = np.clip(d["lines"], 0, 1)[:, :, None]
        base = d["guide"] * d["mask"][:, :, None] + (1 - d["mask"][:, :, None])     # unguided: white
        flat.append(metrics.psnr((1 - ink) * base, d["target"]))
    return {"psnr": float(np.mean(model)), "flat_fill_psnr": float(np.mean(flat))}


# ---------------------------------------------------------------- training

@dataclass
class TrainConfig(RunConfig):
    arch: str = "pix2pix_small"
    steps: int = 1200
    batch: int = 6
    crop: int = 128
    lr: float = 2e-4
    l1_weight: float = 100.0
    gan_weight: float = 0.1
    d_layers: int = 3
    ndf: int = 32
    seed: int = 0
    pool: str = DEFAULT_POOL
    pool_frames: int = 400
    # run settings (may change on resume)
    out: str = "runs/colorize"
    ckpt_every: int = 100
    eval_every: int = 500
    log_every: int = 25
    threads: int = 1
    export: str | None = None


TRAJECTORY_FIELDS = ("arch", "steps", "batch", "crop", "lr", "l1_weight", "gan_weight", "d_layers", "ndf", "seed")


def lr_at(step: int, steps: int, lr: float) -> float:
    """pix2pix: constant for the first half, then linear decay to 0."""
    half = steps // 2
    return lr if step < half else lr * max(0.0, 1.0 - (step - half) / max(steps - half, 1))


def train(cfg: TrainConfig, resume: bool = False, echo=print, data: dict | None = None, val: list[dict] | None = None,
          stop_at: int | None = None) -> dict:
    """Run (or resume) a training run; returns a summary dict (with "l1" — the L1 loss per logged
    window — for tests). ``data``/``val`` override the pool and the validation pages."""
    import torch
    from celgraph.models.pix2pix import build_discriminator, build_generator, count_parameters, init_weights
    run = Run(cfg, echo)
    torch.manual_seed(cfg.seed)
    G = init_weights(build_generator(cfg.arch))
    D = init_weights(build_discriminator(cfg.ndf, cfg.d_layers))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    run.begin(resume, {"G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d},
              {"params_g": count_parameters(G), "params_d": count_parameters(D)}, best=-float("inf"))
    if data is None:
        data = run.load_pool(make_pool, load_pool, complete=_pool.count_shards(cfg.pool) * 50 >= cfg.pool_frames)
    if val is None:
        val = val_samples()
    n = len(data["lines"])

    def train_step(rng):
        a, b = batch_tensors(data, rng.integers(0, n, cfg.batch), cfg.crop, rng)
        fake = G(a)
        d = None
        if cfg.gan_weight:
            d = descend(opt_d, discriminator_loss(D, a, fake, b))
            for p in D.parameters():
                p.requires_grad_(False)
        loss_g, l1 = generator_loss(D, a, fake, b, cfg.l1_weight, cfg.gan_weight)
        g = descend(opt_g, loss_g)
        for p in D.parameters():
            p.requires_grad_(True)
        l1 = float(l1.detach())
        return {"l1": l1, "gan_g": g - cfg.l1_weight * l1, "d": d}

    def validate() -> dict:
        r = evaluate(G, val)
        G.train()
        best = run.keep_best(r["psnr"], G=G.state_dict(), step=run.step, psnr=r["psnr"])
        return {"psnr": round(r["psnr"], 3), "flat_fill_psnr": round(r["flat_fill_psnr"], 3), "best": best}

    G.train()
    D.train()
    run.loop(train_step, validate, [opt_g, opt_d], lambda step: lr_at(step, cfg.steps, cfg.lr),
             metrics=("l1", "gan_g", "d"), stop_at=stop_at)
    summary = run.finish({"best_psnr": run.best}, Path(cfg.export or run.out / "colorize_pix2pix.safetensors"),
                         export_weights)
    summary["l1"] = [h["l1"] for h in run.history]
    return summary


def export_weights(checkpoint, path, metadata: dict | None = None) -> Path:
    from celgraph.models.pix2pix import build_generator, save_weights
    ck = load_checkpoint(checkpoint)
    G = build_generator(ck["config"]["arch"])
    G.load_state_dict(ck["G"])
    meta = {"val_psnr": round(ck["psnr"], 3), "best_step": ck["step"], "config": ck["config"], **(metadata or {})}
    return save_weights(G, path, meta)


# ---------------------------------------------------------------- command line

def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_colorize_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    d = TrainConfig()
    g = p.add_argument_group(TRAINING_GROUP)
    g.add_argument("--arch", choices=("pix2pix_small", "pix2pix_tiny"), default=None, help=f"generator (default {d.arch})")
    add_batch_arguments(g, d, crop_help=f"crop side, a multiple of 64, ≤ {PATCH}", lr_help="Adam learning rate")
    g.add_argument("--l1-weight", type=float, default=None, help=f"λ of the L1 term (default {d.l1_weight})")
    g.add_argument("--gan-weight", type=float, default=None, help=f"weight of the GAN term; 0 = L1 only (default {d.gan_weight})")
    g.add_argument("--seed", type=int, default=None, help=f"seed (default {d.seed})")
    r = p.add_argument_group("data and run")
    r.add_argument("--frames", default=None, metavar="GLOB",
                   help="train on a show's coloured frames (image files) turned into pairs by Sketch, not synthetic pages")
    r.add_argument("--sketch-weights", default=None, help="Sketch network for the pairs (default: bundled)")
    r.add_argument("--unguided", type=_share, default=0.2, metavar="SHARE",
                   help="with --frames: share of the pairs without a hint guide; raise it (e.g. 0.8) for a model "
                        "that colours the show's line art with no hints (default 0.2)")
    add_run_arguments(r, d, out_help="run folder", frames_help="synthetic pages in the pool",
                      export_help="final safetensors (default OUT/colorize_pix2pix.safetensors)")
    p.set_defaults(func=cmd_train_colorize)
    return p


def add_colorize_train_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``colorize`` to the ``graph train`` sub-commands (``subparsers`` of the train parser)."""
    p = subparsers.add_parser("colorize", help="train the Colorize pix2pix model (synthetic pages or a show's frames)",
                              description=(__doc__ or "").split("\n\n")[0])
    return add_colorize_arguments(p)


def cmd_train_colorize(args) -> int:
    show = sorted(glob.glob(args.frames)) if args.frames else None
    if args.frames and not show:
        print(f"error: no files match {args.frames}", file=sys.stderr)
        return EXIT_USAGE
    if args.make_pool or show:
        make_pool(args.pool, frames=args.pool_frames, sketch_weights=args.sketch_weights, show_frames=show,
                  unguided=args.unguided)
        if args.make_pool:
            return EXIT_OK
    settings = pool_run_settings(args)
    if show:
        settings["pool_frames"] = len(show)
    cfg = config_from_args(TrainConfig, args, TRAJECTORY_FIELDS, settings)
    if cfg is None:
        return EXIT_USAGE
    if cfg.crop > PATCH or cfg.crop % 64:
        print(f"error: --crop must be a multiple of 64 and at most {PATCH}", file=sys.stderr)
        return EXIT_USAGE
    res = train(cfg, resume=args.resume)
    return EXIT_CANCELLED if res.get("interrupted") else EXIT_OK


def main(argv=None) -> int:
    return main_of("celgraph.train.colorize", __doc__, add_colorize_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
