"""Train the Sketch U-Net on synthetic colour frames: ``graph train sketch``.

Data (:func:`make_pool`): seeded frames, ``--anime`` (default 50 %) of them TV-anime frames —
make_clip frames restyled by :func:`celgraph.synth.animeframe.anime_style` (1-2 px colour-traced
outlines of varying weight, near-black parts, soft gradients, blurred plates: what real frames
such as Violet's look like) — and the rest, as in the first recipe (``--anime 0``), frames of
:func:`celgraph.synth.make_clip` (80 %: painted plate, 1-4 cel-shaded sprites; 456×256 to
1280×720, so outline widths of ≈ 1.6-3 px) and of :func:`celgraph.synth.make_lineart` (20 %:
flat-coloured items on paper, colour-traced lines), each degraded once by :func:`celgraph.synth.degrade_photo` with its default ranges (JPEG 40-95,
down/up-scaling ×0.5-1, blur σ 0-1, noise σ 0-5/255, lighting gradients, hue/saturation jitter),
15 % with screentone (strength 0.15-0.5), 10 % left clean. ``--dark`` (default 0; stage 3: 0.5)
gives that share of the clip and anime frames dark objects — bows, hair masses, ribbons, coats
whose outline is drawn barely darker than their fill, so the cue is the dark-to-light step
(:func:`celgraph.synth.darkobjects.add_dark_objects`). The target is the exact ink layer
(``lines``): shadow and highlight boundaries and the plate's painted detail lines are **not**
ink. From each frame, ``PATCH``² patches are cut around ink (55 %), around strong colour edges that
are not ink (30 %: the hard negatives) and at random (15 %), stored as uint8 shards
``POOL/shard_NNNNN.npz`` (resumable; default ``/work/scratch/sketch/pool`` or
``$CELGRAPH_SKETCH_POOL``). Training frame seeds start at :data:`POOL_SEED0`; validation (threshold
and checkpoint choice) uses :data:`VAL_SEEDS` (its anime frames given dark objects at the run's
``dark`` share, :func:`eval_frames`), the benchmark (bench/quality.py) seeds 300-307:
no seed is shared.

Training (:func:`train`): random ``crop``² crops with the 8 flips/rotations, loss = BCE on the soft
ink coverage (ink pixels × ``pos_weight``) + ``dice`` × soft Dice, AdamW, warm-up + cosine LR. A
batch depends only on (seed, step), so a resumed run continues exactly. ``OUT/last.pt`` is written
atomically every ``ckpt_every`` steps (model, optimiser, step, RNG, config); SIGTERM/Ctrl-C save
and exit (resume with ``--resume``). Every ``eval_every`` steps the model runs on the whole
validation frames and the **binarisation threshold maximising F1 within 1 px** is searched;
``OUT/best.pt`` keeps the best F1. At the end the best model is exported to safetensors with its
threshold in the header (``--export``; default ``OUT/sketch_unet.safetensors``), with the **weak
(hysteresis) threshold** of the Sketch node calibrated on the same validation frames by
:func:`best_weak_threshold` (``--calibrate-weak WEIGHTS`` adds it to an existing file).
``--init WEIGHTS`` starts from trained weights instead of random ones (fine-tuning).

    graph train sketch --anime 0 --steps 3000 --pool runs/pool1 --out runs/sketch1   # stage 1 of the bundled weights
    graph train sketch --init runs/sketch1/sketch_unet.safetensors --steps 1200 --lr 1e-3 \
        --pool-frames 400 --pool runs/pool2 --out runs/sketch2                        # stage 2 (MODEL_CARD)
    graph train sketch --init runs/sketch2/sketch_unet.safetensors --dark 0.5 ... --out runs/sketch3   # stage 3 (MODEL_CARD)
    graph train sketch --out runs/sketch --resume
    graph train sketch --eval-only celgraph/models/weights/sketch_unet.safetensors
    graph train sketch --calibrate-weak celgraph/models/weights/sketch_unet.safetensors
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import pool as _pool
from .loop import (EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, TRAINING_GROUP, Run, RunConfig, add_batch_arguments,
                   load_checkpoint,
                   add_run_arguments, config_from_args, descend, main_of, pool_run_settings)
from .loop import StopFlag, atomic_save  # noqa: F401 (re-exported: they were defined here)
from .loop import warmup_cosine_lr as lr_at

__all__ = ["TrainConfig", "sketch_frame", "eval_frames", "make_pool", "load_pool", "batch_tensors", "sketch_loss",
           "best_threshold", "best_weak_threshold", "calibrate_weak", "evaluate", "train", "export_weights", "add_sketch_train_parser", "main",
           "POOL_SEED0", "VAL_SEEDS", "SIZES"]

POOL_SEED0 = 2_000_000
ANIME = 0.5             # share of "anime" frames in the training pool (0: the first recipe)
DARK = 0.0              # share of clip/anime frames given dark objects (0: the recipes of stages 1-2)
VAL_SEEDS = tuple(range(700_000, 700_008))
DEFAULT_POOL = _pool.default_pool("sketch")
SIZES = ((456, 256), (640, 360), (960, 540), (1280, 720))
SIZE_P = (0.4, 0.2, 0.25, 0.15)
PATCH = 160


# ---------------------------------------------------------------- data

def degrade(color: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The training/benchmark degradation of a clean colour frame (see the module doc)."""
    from celgraph.synth import degrade_photo
    r = rng.random()
    if r < 0.10:
        return np.asarray(color, np.float32)
    tone = (0.15, 0.5) if r > 0.85 else None
    return degrade_photo(color, rng, screentone=tone)


def sketch_frame(seed: int, size: tuple[int, int] | None = None, source: str | None = None,
                 anime: float = ANIME, dark: float = DARK, dark_style: dict | None = None) -> dict:
    """One seeded sample: {"image": degraded colour H×W×3, "clean": clean colour, "lines": exact ink,
    "source": what drew it} (+ "objects": the dark objects' coverage, when it has some).

    ``source``: "clip" (a make_clip frame), "anime" (one restyled as a TV anime frame by
    :func:`celgraph.synth.animeframe.anime_style`) or "lineart" (a make_lineart page); None draws
    it: "anime" with probability ``anime``, else clip / lineart 80 / 20 (``anime`` 0 gives exactly
    the frames of the first recipe). With probability ``dark`` a clip or anime frame gets dark
    objects outlined by a line barely darker than their fill
    (:func:`celgraph.synth.darkobjects.add_dark_objects`, drawn before the degradation; its own
    generator, so ``dark`` 0 gives exactly the frames of the earlier recipes); then "source" ends
    in "+dark". ``dark_style``: keyword arguments for ``add_dark_objects`` (None: the training
    recipe's; the bench widens the fill and dims the frame)."""
    from celgraph.synth import make_clip, make_lineart
    from celgraph.synth.animeframe import anime_style
    rng = np.random.default_rng([seed, 0x5E7C])
    W, H = size or SIZES[int(rng.choice(len(SIZES), p=SIZE_P))]
    if source is None:
        u = rng.random()
        source = "anime" if u < anime else ("clip" if (u - anime) / (1.0 - anime) < 0.8 else "lineart")
    if source in ("clip", "anime"):
        clip = make_clip(seed, width=W, height=H, n_frames=2, flow=False)
        fr = clip.frames[int(rng.integers(2))]
        alpha = np.asarray(fr["alpha"], np.float32)
        if source == "anime":
            fr = anime_style(fr, np.random.default_rng([seed, 0xA17E]))
        color, lines, objects = fr["color"], fr["lines"], None
        rd = np.random.default_rng([seed, 0xDA4C])
        if dark > 0 and rd.random() < dark:
            from celgraph.synth.darkobjects import add_dark_objects
            sprite = alpha.sum(0) if alpha.ndim == 3 else alpha
            d = add_dark_objects(color, lines, sprite, rd, **(dark_style or {}))
            color, lines, source, objects = d["color"], d["lines"], source + "+dark", d["objects"]
    else:
        s = make_lineart(seed, W, H)
        color, lines, objects = s["color"], s["lines"], None
    out = {"image": degrade(color, rng), "clean": np.asarray(color, np.float32), "lines": np.asarray(lines, np.float32),
           "source": source}
    if objects is not None:
        out["objects"] = objects
    return out


def eval_frames(seeds=VAL_SEEDS, sizes=((456, 256), (960, 540)), anime: int = 4, dark: float = DARK) -> list[dict]:
    """Fixed held-out frames: each seed at each size (clip frames; the first seed of each size
    also as a make_lineart page), then the first ``anime`` seeds as "anime" frames at 1280×720,
    with dark objects at the training recipe's share ``dark`` (0: the frames of stages 1-2)."""
    out = []
    for W, H in sizes:
        for i, s in enumerate(seeds):
            out.append(sketch_frame(s, (W, H), "lineart" if i == 0 else "clip"))
    out += [sketch_frame(s, (1280, 720), "anime", dark=dark) for s in seeds[:anime]]
    return out


def _patch_corners(d: dict, rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    lines = d["lines"]
    H, W = lines.shape
    ink = np.argwhere(lines >= 0.5)
    gray = cv2.cvtColor(d["clean"], cv2.COLOR_RGB2GRAY)
    mag = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    near_ink = cv2.dilate((lines >= 0.2).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    edges = np.argwhere((mag > 0.15) & ~near_ink)
    out = []
    for _ in range(n):
        r = rng.random()
        if len(ink) and r < 0.55:
            y, x = ink[int(rng.integers(len(ink)))]
        elif len(edges) and r < 0.85:
            y, x = edges[int(rng.integers(len(edges)))]
        else:
            y, x = rng.integers(0, H), rng.integers(0, W)
        out.append((int(np.clip(y - PATCH // 2, 0, H - PATCH)), int(np.clip(x - PATCH // 2, 0, W - PATCH))))
    return out


def frame_patches(d: dict, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n PATCH² uint8 patches of a sample: "x" (degraded colour, N×P×P×3) and "y" (ink ×255)."""
    x = np.round(np.clip(d["image"], 0, 1) * 255).astype(np.uint8)
    y = np.round(np.clip(d["lines"], 0, 1) * 255).astype(np.uint8)
    cs = _patch_corners(d, rng, n)
    return {"x": np.stack([x[r:r + PATCH, c:c + PATCH] for r, c in cs]),
            "y": np.stack([y[r:r + PATCH, c:c + PATCH] for r, c in cs])}


def make_pool(pool: str | Path = DEFAULT_POOL, frames: int = 800, per_frame: int = 8, shard_frames: int = 50,
              seed0: int = POOL_SEED0, echo=print, anime: float = ANIME, dark: float = DARK) -> Path:
    """Write (or complete) a patch pool of ``frames`` frames × ``per_frame`` patches, in shards of
    ``shard_frames`` frames; existing shards are kept, so an interrupted run continues (with the
    same ``anime`` and ``dark`` shares: a pool folder holds one recipe)."""
    return _pool.write_pool(pool, frames, shard_frames, lambda f: frame_patches(
        sketch_frame(seed0 + f, anime=anime, dark=dark), np.random.default_rng([seed0 + f, 31]), per_frame), echo)


def load_pool(pool: str | Path) -> dict[str, np.ndarray]:
    return _pool.load_pool(pool, "run `graph train sketch --make-pool` first")


def batch_tensors(data: dict, idx: np.ndarray, crop: int, rng: np.random.Generator):
    """(x B×3×crop×crop float 0..1, y B×1×crop×crop ink coverage): random crops + D4 augmentation."""
    import torch
    xs, ys = [], []
    P = data["x"].shape[1]
    for i in idx:
        y0, x0 = (int(v) for v in rng.integers(0, P - crop + 1, 2))
        x = data["x"][i, y0:y0 + crop, x0:x0 + crop].transpose(2, 0, 1)
        y = data["y"][i, y0:y0 + crop, x0:x0 + crop][None]
        k = int(rng.integers(4))
        flip = rng.random() < 0.5
        x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k, axes=(1, 2))
        if flip:
            x, y = x[:, :, ::-1], y[:, :, ::-1]
        xs.append(np.ascontiguousarray(x))
        ys.append(np.ascontiguousarray(y))
    x = torch.from_numpy(np.stack(xs)).float().div_(255)
    y = torch.from_numpy(np.stack(ys)).float().div_(255)
    return x, y


def sketch_loss(logits, target, pos_weight: float = 3.0, dice: float = 0.5):
    """BCE on the soft ink coverage (ink-weighted) + ``dice`` × soft Dice."""
    import torch
    import torch.nn.functional as F
    w = 1.0 + (pos_weight - 1.0) * target
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=w, reduction="sum") / w.sum()
    p = torch.sigmoid(logits)
    d = 1.0 - (2 * (p * target).sum() + 1.0) / (p.sum() + target.sum() + 1.0)
    return bce + dice * d


THRESHOLDS = tuple(np.round(np.arange(0.15, 0.951, 0.05), 2))


def best_threshold(probs: list[np.ndarray], gts: list[np.ndarray], thresholds=THRESHOLDS) -> tuple[float, float, dict]:
    """(threshold, mean F1 within 1 px at it, {threshold: mean F1}) over frames."""
    from celgraph.synth import metrics
    table = {}
    for t in thresholds:
        table[float(t)] = float(np.mean([metrics.line_f1(p >= t, g >= 0.5) for p, g in zip(probs, gts)]))
    t = max(table, key=table.get)
    return t, table[t], table


WEAK_THRESHOLDS = tuple(np.round(np.arange(0.05, 0.451, 0.05), 2))
WEAK_SLACK = 0.005


def best_weak_threshold(probs: list[np.ndarray], gts: list[np.ndarray], threshold: float, anime: int = 4,
                        slack: float = WEAK_SLACK, weaks=WEAK_THRESHOLDS) -> tuple[float | None, dict]:
    """(weak threshold, {weak: (F1 all frames, F1 anime frames)}) for the Sketch node's hysteresis
    above ``threshold`` (:func:`celgraph.nodes.sketch.binarize`), F1 within 1 px.

    The rule: the weak threshold with the best F1 on the last ``anime`` frames (the TV-anime frames
    of :func:`eval_frames`, thin lines over soft shading: the frames hysteresis is for), among those
    that keep the F1 over all frames within ``slack`` of binarising at ``threshold`` alone; None
    when no weak threshold beats ``threshold`` alone on the anime frames (``anime`` 0: all frames
    stand for them)."""
    from celgraph.nodes.sketch import binarize
    from celgraph.synth import metrics

    def f1s(weak):
        f = [metrics.line_f1(binarize(p, threshold, weak), g >= 0.5) for p, g in zip(probs, gts)]
        return float(np.mean(f)), float(np.mean(f[-anime:] if anime else f))

    base_all, base_anime = f1s(None)
    table = {float(w): f1s(float(w)) for w in weaks if w < threshold}
    ok = {w: v for w, v in table.items() if v[0] >= base_all - slack and v[1] > base_anime}
    return (max(ok, key=lambda w: ok[w][1]) if ok else None), {None: (base_all, base_anime), **table}


def calibrate_weak(model, threshold: float, frames: list[dict] | None = None) -> tuple[float | None, dict]:
    """:func:`best_weak_threshold` of ``model`` on the validation frames (default :func:`eval_frames`)."""
    from celgraph.models.sketch_unet import predict
    frames = eval_frames() if frames is None else frames
    probs = [predict(model, d["image"], tile=None) for d in frames]
    anime = sum(d.get("source", "").startswith("anime") for d in frames)
    return best_weak_threshold(probs, [d["lines"] for d in frames], threshold, anime=anime)


def evaluate(model, frames: list[dict], threshold: float | None = None) -> dict:
    """F1 within 1 px and chamfer of a model on frames; ``threshold`` None: the best one."""
    from celgraph.models.sketch_unet import predict
    from celgraph.synth import metrics
    probs = [predict(model, d["image"], tile=None) for d in frames]
    gts = [d["lines"] for d in frames]
    t, f1, table = best_threshold(probs, gts) if threshold is None else (threshold, None, {})
    f1s = [metrics.line_f1(p >= t, g >= 0.5) for p, g in zip(probs, gts)]
    ch = [metrics.chamfer(p >= t, g >= 0.5) for p, g in zip(probs, gts)]
    return {"threshold": t, "f1": float(np.mean(f1s)), "chamfer": float(np.mean(ch)), "f1_by_threshold": table}


# ---------------------------------------------------------------- training

@dataclass
class TrainConfig(RunConfig):
    arch: str = "sketch_unet"
    steps: int = 3000
    batch: int = 12
    crop: int = 128
    lr: float = 2e-3
    wdecay: float = 1e-4
    pos_weight: float = 3.0
    dice: float = 0.5
    seed: int = 0
    pool: str = DEFAULT_POOL
    pool_frames: int = 800
    anime: float = ANIME
    dark: float = DARK
    init: str | None = None
    # run settings (may change on resume)
    out: str = "runs/sketch"
    ckpt_every: int = 100
    eval_every: int = 500
    log_every: int = 25
    threads: int = 1
    export: str | None = None


TRAJECTORY_FIELDS = ("arch", "steps", "batch", "crop", "lr", "wdecay", "pos_weight", "dice", "seed", "anime", "dark", "init")


def train(cfg: TrainConfig, resume: bool = False, echo=print, data: dict | None = None,
          val: list[dict] | None = None, stop_at: int | None = None) -> dict:
    """Run (or resume) a training run; returns a summary dict. ``data``/``val`` override the pool
    and the validation frames (tests)."""
    import torch
    from celgraph.models.sketch_unet import build, count_parameters
    run = Run(cfg, echo)
    torch.manual_seed(cfg.seed)
    model = build(cfg.arch)
    if cfg.init:                                  # fine-tune: start from these weights (resume overrides)
        from celgraph.models.sketch_unet import load_weights
        init, _ = load_weights(cfg.init)
        if init.widths != model.widths:
            raise ValueError(f"--init {cfg.init}: widths {init.widths} are not {cfg.arch}'s {model.widths}")
        model.load_state_dict(init.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.wdecay)
    run.begin(resume, {"model": model, "optimizer": opt}, {"params": count_parameters(model)}, best=-1.0,
              best_threshold=0.5)
    if data is None:
        data = run.load_pool(lambda *a, **k: make_pool(*a, anime=cfg.anime, dark=cfg.dark, **k), load_pool,
                             complete=_pool.count_shards(cfg.pool) * 50 >= cfg.pool_frames)
    if val is None:
        val = eval_frames(dark=cfg.dark)
    n = len(data["x"])

    def train_step(rng):
        x, y = batch_tensors(data, rng.integers(0, n, cfg.batch), cfg.crop, rng)
        return {"loss": descend(opt, sketch_loss(model(x), y, cfg.pos_weight, cfg.dice), clip=model.parameters())}

    def validate() -> dict:
        model.eval()
        r = evaluate(model, val)
        model.train()
        is_best = run.keep_best(r["f1"], model=model.state_dict(), step=run.step, f1=r["f1"], threshold=r["threshold"])
        if is_best:
            run.extra["best_threshold"] = r["threshold"]
        return {"f1": round(r["f1"], 4), "chamfer": round(r["chamfer"], 3), "threshold": r["threshold"], "best": is_best}

    model.train()
    run.loop(train_step, validate, [opt], lambda step: lr_at(step, cfg.steps, cfg.lr), stop_at=stop_at)
    return run.finish({"best_f1": run.best, "threshold": run.extra["best_threshold"]},
                      Path(cfg.export or run.out / f"{cfg.arch}.safetensors"),
                      lambda ck, path, meta: export_weights(ck, path, meta, frames=val))


def export_weights(checkpoint, path, metadata: dict | None = None, frames: list[dict] | None = None) -> Path:
    """best.pt → safetensors with the calibrated threshold, the weak (hysteresis) threshold
    calibrated on ``frames`` (default :func:`eval_frames`; :func:`calibrate_weak`), validation F1
    and config in the header."""
    from celgraph.models.sketch_unet import build, save_weights
    ck = load_checkpoint(checkpoint)
    model = build(ck["config"]["arch"])
    model.load_state_dict(ck["model"])
    model.eval()
    weak, _ = calibrate_weak(model, ck["threshold"], frames)
    meta = {"threshold": ck["threshold"], "weak_threshold": weak, "val_f1": round(ck["f1"], 4),
            "best_step": ck["step"], "config": ck["config"], **(metadata or {})}
    return save_weights(model, path, meta)


def weights_eval_frames(meta: dict) -> list[dict]:
    """The validation frames of the run that made a weights file (its header's ``config``):
    :func:`eval_frames` with that recipe's ``dark`` share."""
    return eval_frames(dark=float((meta.get("config") or {}).get("dark", DARK)))


def add_weak_threshold(path, frames: list[dict] | None = None) -> tuple[float | None, dict]:
    """Calibrate the weak threshold of an existing weights file at its stored threshold and write
    it into the file's header (atomically; the tensors are unchanged). Returns
    :func:`calibrate_weak`'s (weak, table); ``frames`` default: :func:`weights_eval_frames`."""
    from celgraph.models.sketch_unet import load_weights, save_weights
    model, meta = load_weights(path)
    weak, table = calibrate_weak(model, float(meta.get("threshold", 0.5)),
                                 weights_eval_frames(meta) if frames is None else frames)
    extra = {k: v for k, v in meta.items() if k not in ("format", "widths", "cin")}
    save_weights(model, path, {**extra, "weak_threshold": weak})
    return weak, table


# ---------------------------------------------------------------- command line

def add_sketch_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    d = TrainConfig()
    g = p.add_argument_group(TRAINING_GROUP)
    g.add_argument("--arch", choices=("sketch_unet", "sketch_unet_tiny"), default=None, help=f"network (default {d.arch})")
    add_batch_arguments(g, d, crop_help=f"training crop side in px, ≤ {PATCH}, a multiple of 32", lr_help="peak learning rate")
    g.add_argument("--pos-weight", type=float, default=None, help=f"BCE weight of ink pixels (default {d.pos_weight})")
    g.add_argument("--seed", type=int, default=None, help=f"seed of the weights and the batch stream (default {d.seed})")
    g.add_argument("--anime", type=float, default=None,
                   help=f"share of TV-anime-styled frames in a new pool (default {d.anime}; 0: the first recipe)")
    g.add_argument("--dark", type=float, default=None,
                   help=f"share of clip/anime frames given dark objects outlined by a line barely darker than "
                        f"their fill, in a new pool (default {d.dark}; stage 3 of the bundled weights: 0.5)")
    g.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from these Sketch .safetensors weights (fine-tuning) instead of random ones")
    r = p.add_argument_group("run")
    add_run_arguments(r, d, out_help="run folder: log.jsonl, last.pt, best.pt, weights", frames_help="frames in the pool",
                      export_help="final safetensors (default OUT/<arch>.safetensors)")
    r.add_argument("--eval-only", metavar="WEIGHTS", default=None,
                   help="train nothing: print F1/chamfer of WEIGHTS on the validation frames as JSON")
    r.add_argument("--calibrate-weak", metavar="WEIGHTS", default=None,
                   help="train nothing: calibrate the Sketch node's weak (hysteresis) threshold of WEIGHTS on "
                        "the validation frames, write it into WEIGHTS' header and print the F1 table as JSON")
    p.set_defaults(func=cmd_train_sketch)
    return p


def add_sketch_train_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sketch`` to the ``graph train`` sub-commands (``subparsers`` of the train parser)."""
    p = subparsers.add_parser("sketch", help="train the Sketch U-Net (colour → line art) on synthetic frames",
                              description=(__doc__ or "").split("\n\n")[0])
    return add_sketch_arguments(p)


def cmd_train_sketch(args) -> int:
    import torch
    weights = args.eval_only or args.calibrate_weak
    if weights and not Path(weights).is_file():
        print(f"error: no weights file {weights}", file=sys.stderr)
        return EXIT_USAGE
    if args.eval_only:
        from celgraph.models.sketch_unet import load_weights
        torch.set_num_threads(args.threads)
        model, meta = load_weights(args.eval_only)
        r = evaluate(model, weights_eval_frames(meta), meta.get("threshold"))
        print(json.dumps({k: v for k, v in r.items() if k != "f1_by_threshold"}, indent=2))
        return EXIT_OK
    if args.calibrate_weak:
        torch.set_num_threads(args.threads)
        weak, table = add_weak_threshold(args.calibrate_weak)
        print(json.dumps({"weak_threshold": weak, "f1_all_anime": {str(k): [round(v, 4) for v in f]
                                                                   for k, f in table.items()}}, indent=2))
        return EXIT_OK
    if args.make_pool:
        d = TrainConfig()
        make_pool(args.pool, frames=args.pool_frames, anime=d.anime if args.anime is None else args.anime,
                  dark=d.dark if args.dark is None else args.dark)
        return EXIT_OK
    cfg = config_from_args(TrainConfig, args, TRAJECTORY_FIELDS, pool_run_settings(args))
    if cfg is None:
        return EXIT_USAGE
    if cfg.crop > PATCH or cfg.crop % 32:
        print(f"error: --crop must be a multiple of 32 and at most {PATCH}", file=sys.stderr)
        return EXIT_USAGE
    res = train(cfg, resume=args.resume)
    return EXIT_CANCELLED if res.get("interrupted") else EXIT_OK


def main(argv=None) -> int:
    return main_of("celgraph.train.sketch", __doc__, add_sketch_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
