"""Train the GapFill networks on synthetic line art: ``graph train gapfill``.

Data (:func:`make_pool`): half the frames (:data:`GENGA_SHARE`) are studio-style drawings of
:func:`celgraph.synth.genga.make_genga` (1-px aliased genga, pen, pencil; dense strands, folds,
junctions, trace lines, sheet notes) with gaps cut along strokes and at junctions by
:func:`celgraph.synth.gaps.cut_gaps` (their free stroke ends are the open-end mask); the other half
are seeded :func:`celgraph.synth.make_lineart` frames at 1920×1080,
1280×720 and 960×540 (line widths ≈ 1.5-5 px, like the benchmark's 1080p frames), degraded by
:func:`celgraph.synth.degrade_lines` with the full degradation set — arc-length cuts of 1-12 px
(round caps, 40 % tapered ends), junction shortfalls, 20 % of frames with 1-2 FillLineGaps-style
1-px eraser lines, 8 % identity frames, and the open strokes (hair, speed lines, hatching) that
must stay open. From each frame, 256² patches are cut around gaps (most), around open stroke
ends and at random ink; each stores the degraded ink, the clean ink, the endpoint map of the
degraded ink (:func:`celgraph.models.autoclose.endpoint_map`, as the node computes it) and the
open-end mask. Pools are written as shards ``POOL/shard_NNNNN.npz`` (resumable; default
``$CELGRAPH_GAPFILL_POOL``, else ``train/gapfill/pool`` in the cache folder) with their recipe in
``POOL/recipe.json``. Frame seeds start at :data:`POOL_SEED0`; the benchmark uses seeds 200-211,
validation :data:`VAL_SEEDS`. ``--genga-share`` (a recorded field of the run) sets the share of
studio-style frames in the pool and the validation patches and ``--endpoints`` the rule of the
endpoint-map input; ``--genga-share 0 --endpoints 7e02ecf`` draws the patches of commit 7e02ecf,
the recipe of the bundled weights.

Training (:func:`train`): random crops (default 192²) with the 8 flips/rotations; the target is
the **ink to add** (clean ink ≥ 0.5 where the degraded ink < 0.5); the loss is class-balanced BCE
(``pos_weight``) + soft Dice on that target, over paper pixels only (input ink is kept by OR, so
its prediction does not matter), ignoring a 1-px band around the gaps (antialiasing). AdamW,
one-cycle LR (warm-up 3 %, cosine decay). A batch depends only on (seed, step), so a resumed run
continues exactly. ``OUT/last.pt`` is written atomically every ``ckpt_every`` steps with the
model, optimiser, scheduler, RNG states, step and config; ``OUT/best.pt`` holds the model with the
lowest validation loss (fixed patches of held-out frames); SIGTERM/Ctrl-C save and exit. While
the pool is still being written (``--make-pool`` in another process), new shards join at each
checkpoint; batches then depend on (seed, step) only once the pool is complete. At the
end the best model is exported to safetensors (``--export``; default
``OUT/gapfill_<variant>.safetensors``). A run on a complete pool, on one thread, is reproducible bit
for bit: the "final" record and the weights' header carry ``tensors_sha256`` (a digest of the
tensors alone; the file's own hash also covers the header's training time and run folder), and
``graph train gapfill --digest FILE`` prints it for any GapFill weights file.

    python -m celgraph.train.gapfill --variant gap_unet --steps 6000 --batch 8 --crop 192 --out runs/gapfill
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from celgraph.core.atomic import write_text
from celgraph.models import autoclose
from celgraph.models.autoclose import endpoint_map, find_endpoints
from celgraph.models.gapfill import build, count_parameters, in_channels, save_weights

from . import pool as _pool
from .loop import (EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, TRAINING_GROUP, Run, RunConfig, add_batch_arguments,
                   load_checkpoint,
                   add_run_arguments, config_from_args, descend, main_of, pool_run_settings, warmup_cosine_lr)

__all__ = ["TrainConfig", "make_pool", "load_pool", "make_inputs", "gap_loss", "train", "add_gapfill_train_parser",
           "tensors_sha256", "main", "POOL_SEED0", "VAL_SEEDS", "GENGA_SHARE"]

POOL_SEED0 = 1_000_000
VAL_SEEDS = (900_000, 900_001, 900_002, 900_003)
DEFAULT_POOL = _pool.default_pool("gapfill")
SIZES = ((1920, 1080), (1280, 720), (960, 540))
GENGA_SHARE = 0.5      # share of training frames drawn in the studio styles of celgraph.synth.genga
ENDPOINT_RULES = ("node", "7e02ecf")   # the endpoint map as the node computes it now; as commit 7e02ecf did
PATCH = 256


# ---------------------------------------------------------------- data

def degraded_frame(seed: int, size: tuple[int, int] | None = None, threshold: float = 0.5,
                   genga_share: float = GENGA_SHARE, endpoints: str = "node") -> dict:
    """One seeded training frame with its endpoint map: with probability ``genga_share`` a
    studio-style drawing (celgraph.synth.genga: genga / pen / pencil) with gaps cut along strokes
    and at junctions (celgraph.synth.gaps.cut_gaps), else make_lineart + degrade_lines (full set).
    ``endpoints``: "node" (autoclose.find_endpoints, as the GapFill node computes the map) or
    "7e02ecf" (:func:`endpoints_7e02ecf`, the rule the bundled weights' pool was made with)."""
    from celgraph.synth import degrade_lines, make_lineart
    if endpoints not in ENDPOINT_RULES:
        raise ValueError(f"endpoints must be one of {ENDPOINT_RULES}, got {endpoints!r}")
    rng = np.random.default_rng([seed, 17])
    W, H = size or SIZES[int(rng.choice(len(SIZES), p=[0.45, 0.35, 0.2]))]
    # share 0 draws nothing here, so its frames are those of the bundled weights' recipe (7e02ecf)
    if genga_share > 0 and rng.random() < genga_share:
        d = genga_frame(seed, W, H, rng)
    else:
        sample = make_lineart(seed, W, H, with_color=False)
        d = degrade_lines(sample, rng, max_gap=12, min_gap=1, n_cuts=(2, 10), n_short=(1, 6), p_taper=0.4,
                          n_erase=int(rng.integers(1, 3)) if rng.random() < 0.2 else 0, p_identity=0.08)
    ink = d["lines"] >= threshold
    eps = endpoints_7e02ecf(ink) if endpoints == "7e02ecf" else find_endpoints(ink)
    d["endpoints"] = endpoint_map(d["lines"].shape, eps)
    d["eps"] = eps
    return d


def endpoints_7e02ecf(ink: np.ndarray, walk: int = 12) -> list[autoclose.Endpoint]:
    """Stroke ends of a binary ink mask by the rule of commit 7e02ecf's autoclose, which made the
    bundled GapUNet's endpoint maps (kept here, frozen, so that recipe can be redrawn): the width
    at an end is 2 × the median distance-transform value along the walk − 1 (autoclose now measures
    ink area ÷ skeleton length), and a branch that reaches a junction in fewer than max(2, width)
    pixels is a spur. The skeleton and the walk are autoclose's (unchanged since)."""
    sk = autoclose.skeletonize(ink)
    dist = cv2.distanceTransform(ink.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    nb = autoclose._neighbour_count(sk)
    out = []
    for y, x in zip(*(v.tolist() for v in np.nonzero(sk & (nb == 1)))):
        path = autoclose._walk(sk, nb, y, x, walk)
        py, px = np.array(path, np.float64).T
        half = float(np.median(dist[py.astype(int), px.astype(int)]))
        width = max(2.0 * half - 1.0, 1.0)
        if nb[path[-1]] >= 3 and len(path) - 1 < max(2.0, width):
            continue  # spur
        if len(path) < 2:
            continue
        vy, vx = y - float(py[1:].mean()), x - float(px[1:].mean())
        n = math.hypot(vy, vx)
        if n < 1e-6:
            continue
        out.append(autoclose.Endpoint(y, x, vy / n, vx / n, width, len(path) - 1))
    return out


def genga_frame(seed: int, W: int, H: int, rng: np.random.Generator) -> dict:
    """A studio-style drawing with cut gaps, in :func:`degrade_lines`' dict shape (lines, gt,
    gap_mask, gaps with centres, open_mask around the free stroke ends, open_ends)."""
    from celgraph.synth.gaps import cut_gaps
    from celgraph.synth.genga import make_genga
    g = make_genga(seed, W, H)
    c = cut_gaps(g["ink"], rng, max_gap=12, per_px=float(rng.uniform(250, 600)), coverage=g["lines"])
    open_mask = np.zeros((H, W), np.uint8)
    for x, y, w in c["free_ends"]:
        cv2.circle(open_mask, (x, y), int(round(max(3.0, 2 * w))), 1, -1)
    return dict(lines=c["lines"], gt=c["gt"], gap_mask=c["gap_mask"],
                gaps=[{"center": list(k["center"])} for k in c["cuts"]], open_mask=open_mask.astype(bool),
                open_ends=[(x, y, 0.0, 0.0, w / 2) for x, y, w in c["free_ends"]])


def _patch_centres(d: dict, rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    H, W = d["lines"].shape
    out = []
    gaps = [g["center"] for g in d["gaps"]]
    opens = [(o[0], o[1]) for o in d.get("open_ends", [])]
    ink = np.argwhere(d["gt"] >= 0.5)
    for k in range(n):
        r = rng.random()
        if gaps and r < 0.7:
            x, y = gaps[int(rng.integers(len(gaps)))]
            x, y = x + rng.uniform(-90, 90), y + rng.uniform(-90, 90)
        elif opens and r < 0.85:
            x, y = opens[int(rng.integers(len(opens)))]
            x, y = x + rng.uniform(-90, 90), y + rng.uniform(-90, 90)
        elif len(ink) and r < 0.97:
            y, x = ink[int(rng.integers(len(ink)))]
        else:
            x, y = rng.uniform(0, W), rng.uniform(0, H)
        out.append((int(np.clip(y - PATCH // 2, 0, H - PATCH)), int(np.clip(x - PATCH // 2, 0, W - PATCH))))
    return out


def frame_patches(d: dict, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n 256² patches of a degraded frame: deg, gt (uint8 coverage ×255), flags (bit0 endpoint
    map, bit1 open-end mask)."""
    flags = (d["endpoints"] > 0).astype(np.uint8) | ((d["open_mask"] > 0).astype(np.uint8) << 1)
    deg = np.round(d["lines"] * 255).astype(np.uint8)
    gt = np.round(d["gt"] * 255).astype(np.uint8)
    cs = _patch_centres(d, rng, n)
    return {"deg": np.stack([deg[y:y + PATCH, x:x + PATCH] for y, x in cs]),
            "gt": np.stack([gt[y:y + PATCH, x:x + PATCH] for y, x in cs]),
            "flags": np.stack([flags[y:y + PATCH, x:x + PATCH] for y, x in cs])}


def make_pool(pool: str | Path = DEFAULT_POOL, frames: int = 520, per_frame: int = 14, shard_frames: int = 20,
              seed0: int = POOL_SEED0, echo=print, genga_share: float = GENGA_SHARE, endpoints: str = "node") -> Path:
    """Write (or complete) a patch pool: ``frames`` frames, ``per_frame`` patches each, in shards of
    ``shard_frames`` frames. Existing shards are kept, so an interrupted run continues.
    ``genga_share``: share of studio-style frames, ``endpoints``: the endpoint-map rule (0 and
    "7e02ecf" = the recipe of the bundled weights). The recipe is kept in ``POOL/recipe.json``;
    completing a pool with another recipe is refused."""
    recipe = {"genga_share": float(genga_share), "endpoints": endpoints, "seed0": seed0, "per_frame": per_frame,
              "shard_frames": shard_frames}
    check_pool_recipe(pool, genga_share, endpoints, recipe)
    if not (Path(pool) / RECIPE_FILE).exists() and _pool.count_shards(pool) == 0:    # never guess an old pool's
        Path(pool).mkdir(parents=True, exist_ok=True)
        write_text(Path(pool) / RECIPE_FILE, json.dumps(recipe, indent=2))
    return _pool.write_pool(pool, frames, shard_frames, lambda f: frame_patches(
        degraded_frame(seed0 + f, genga_share=genga_share, endpoints=endpoints), np.random.default_rng([seed0 + f, 23]),
        per_frame), echo)


RECIPE_FILE = "recipe.json"


def pool_recipe(pool: str | Path) -> dict | None:
    """The recipe a pool was written with (``POOL/recipe.json``), None for a pool that has none."""
    path = Path(pool) / RECIPE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def check_pool_recipe(pool: str | Path, genga_share: float, endpoints: str, recipe: dict | None = None) -> None:
    """ValueError when ``pool`` holds patches of another recipe than ``genga_share``, ``endpoints``
    (and ``recipe``)."""
    have = pool_recipe(pool)
    if have is None:
        return
    want = {"genga_share": float(genga_share), "endpoints": endpoints, **(recipe or {})}
    diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
    if diff:
        raise ValueError(f"patch pool {pool} was written with another recipe (pool, asked): {diff}; "
                         f"use another --pool or the pool's --genga-share")


def load_pool(pool: str | Path) -> dict[str, np.ndarray]:
    return _pool.load_pool(pool, "run `graph train gapfill --make-pool` first (or let training make one)")


def val_patches(per_frame: int = 16, genga_share: float = GENGA_SHARE, endpoints: str = "node") -> dict[str, np.ndarray]:
    """The fixed validation patches of the held-out frames :data:`VAL_SEEDS`, drawn with the
    training recipe's ``genga_share`` and ``endpoints``."""
    return _pool.concat([frame_patches(degraded_frame(s, (1280, 720), genga_share=genga_share, endpoints=endpoints),
                                       np.random.default_rng([s, 29]), per_frame) for s in VAL_SEEDS])


def make_inputs(deg: np.ndarray, endpoints: np.ndarray | None, channels: int) -> np.ndarray:
    """Network input stack (C×H×W float32) from ink coverage and the endpoint map."""
    x = [np.asarray(deg, np.float32)]
    if channels >= 2:
        x.append(np.asarray(endpoints, np.float32))
    return np.stack(x)


def batch_tensors(data: dict, idx: np.ndarray, crop: int, rng: np.random.Generator | None, channels: int,
                  outside: float = 0.0):
    """(x B×C×crop×crop, target B×1×…, weight B×1×…) for pool patches ``idx``; random crop and
    D4 augmentation when ``rng`` is given, else the centre crop. The 1-px band around the ink to
    add is ignored (its antialiased fringe is neither ink nor paper), except its paper clearly
    outside the true stroke (clean coverage < 0.25), weighted ``outside``: ink painted beside the
    erased stroke, which widens the closure (0 = ignored, the recipe of the bundled weights)."""
    xs, ts, ws = [], [], []
    for i in idx:
        o = (PATCH - crop) // 2
        y0 = x0 = o
        if rng is not None:
            y0, x0 = (int(v) for v in rng.integers(0, PATCH - crop + 1, 2))
        deg = data["deg"][i, y0:y0 + crop, x0:x0 + crop].astype(np.float32) / 255
        gt = data["gt"][i, y0:y0 + crop, x0:x0 + crop].astype(np.float32) / 255
        ep = (data["flags"][i, y0:y0 + crop, x0:x0 + crop] & 1).astype(np.float32)
        target = ((gt >= 0.5) & (deg < 0.5)).astype(np.uint8)
        band = cv2.dilate(target, np.ones((3, 3), np.uint8)) > target
        weight = ((deg < 0.5) & ~band).astype(np.float32)
        if outside:
            weight += np.float32(outside) * ((deg < 0.5) & band & (gt < 0.25))
        stack = np.concatenate([make_inputs(deg, ep, channels), target[None].astype(np.float32), weight[None]])
        if rng is not None:
            k = int(rng.integers(4))
            stack = np.rot90(stack, k, axes=(1, 2))
            if rng.random() < 0.5:
                stack = stack[:, :, ::-1]
        stack = np.ascontiguousarray(stack)
        xs.append(stack[:channels])
        ts.append(stack[channels:channels + 1])
        ws.append(stack[channels + 1:])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts)), torch.from_numpy(np.stack(ws))


def gap_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, pos_weight: float = 10.0,
             dice: float = 0.5) -> torch.Tensor:
    """Class-balanced BCE (positives × pos_weight) + ``dice`` × soft Dice, over weighted pixels."""
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight,
                                             pos_weight=torch.tensor(pos_weight, dtype=logits.dtype),
                                             reduction="sum") / weight.sum().clamp_min(1.0)
    p = torch.sigmoid(logits) * weight
    inter = (p * target).sum()
    d = 1.0 - (2 * inter + 1.0) / (p.sum() + (target * weight).sum() + 1.0)
    return bce + dice * d


# ---------------------------------------------------------------- training

@dataclass
class TrainConfig(RunConfig):
    variant: str = "gap_unet"          # gap_unet (ours) or lite (FillLineGaps LightUNet, logits of ink to add)
    steps: int = 6000
    batch: int = 8
    crop: int = 192
    lr: float = 2e-3
    wdecay: float = 1e-4
    pos_weight: float = 10.0
    dice: float = 0.5
    outside: float = 0.0                # loss weight of paper beside the erased stroke (batch_tensors)
    seed: int = 0
    init: str | None = None             # start from these weights (a GapFill safetensors file), e.g. a fine-tune
    genga_share: float = GENGA_SHARE    # data recipe: share of studio-style frames (pool and validation); 0 = 7e02ecf's
    endpoints: str = "node"             # data recipe: endpoint-map rule, "node" or "7e02ecf" (ENDPOINT_RULES)
    pool: str = DEFAULT_POOL
    pool_frames: int = 520
    # run settings (may change on resume)
    out: str = "runs/gapfill"
    ckpt_every: int = 100
    eval_every: int = 500
    log_every: int = 25
    threads: int = 1
    export: str | None = None


TRAJECTORY_FIELDS = ("variant", "steps", "batch", "crop", "lr", "wdecay", "pos_weight", "dice", "outside", "seed",
                     "init", "genga_share", "endpoints")


def train(cfg: TrainConfig, resume: bool = False, echo=print, data: dict | None = None,
          val: dict | None = None, stop_at: int | None = None) -> dict:
    """Run (or resume) a training run; returns a summary dict. ``data``/``val`` override the pool
    and the validation patches (tests).

    On one thread (the default) a run is reproducible bit for bit: the weights depend only on the
    config and a complete pool (torch's deterministic algorithms are on while it runs); the summary
    and the weights' header carry :func:`tensors_sha256` of the exported weights."""
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        return _train(cfg, resume, echo, data, val, stop_at)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def _train(cfg: TrainConfig, resume: bool, echo, data: dict | None, val: dict | None, stop_at: int | None) -> dict:
    run = Run(cfg, echo)
    torch.manual_seed(cfg.seed)
    model = build(cfg.variant)
    if cfg.init and not resume:
        from celgraph.models.gapfill import load_weights
        start, _ = load_weights(cfg.init)
        if type(start) is not type(model):
            raise ValueError(f"--init {cfg.init}: holds a {type(start).__name__}, not the {cfg.variant} variant")
        model.load_state_dict(start.state_dict())
        model.train()
    ch = in_channels(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.wdecay)
    run.begin(resume, {"model": model, "optimizer": opt}, {"params": count_parameters(model)}, best=float("inf"))
    growing = data is None
    if data is None:
        check_pool_recipe(cfg.pool, cfg.genga_share, cfg.endpoints)
        data = run.load_pool(lambda pool, **kw: make_pool(pool, genga_share=cfg.genga_share, endpoints=cfg.endpoints,
                                                          **kw), load_pool,
                             complete=_pool.count_shards(cfg.pool) > 0)
    if val is None:
        val = val_patches(genga_share=cfg.genga_share, endpoints=cfg.endpoints)
    n = len(data["deg"])
    n_shards = _pool.count_shards(cfg.pool) if growing else 0

    def train_step(rng):
        x, t, w = batch_tensors(data, rng.integers(0, n, cfg.batch), cfg.crop, rng, ch, cfg.outside)
        return {"loss": descend(opt, gap_loss(model(x), t, w, cfg.pos_weight, cfg.dice), clip=model.parameters())}

    def validate() -> dict:
        model.eval()
        losses = []
        with torch.no_grad():
            for k in range(0, len(val["deg"]), 16):
                x, t, w = batch_tensors(val, np.arange(k, min(k + 16, len(val["deg"]))), min(cfg.crop * 4 // 3 // 8 * 8, PATCH),
                                        None, ch, cfg.outside)
                losses.append(float(gap_loss(model(x), t, w, cfg.pos_weight, cfg.dice)))
        model.train()
        v = float(np.mean(losses))
        best = run.keep_best(v, lower_is_better=True, model=model.state_dict(), step=run.step, val=v)
        return {"val_loss": v, "best": best}

    def grow_pool():
        nonlocal data, n, n_shards
        if growing and _pool.count_shards(cfg.pool) > n_shards:
            data = load_pool(cfg.pool)      # a pool still being written: new shards join here
            n, n_shards = len(data["deg"]), _pool.count_shards(cfg.pool)
            run.record("pool", patches=n, step=run.step)

    model.train()
    run.loop(train_step, validate, [opt], lambda step: warmup_cosine_lr(step, cfg.steps, cfg.lr), stop_at=stop_at,
             on_checkpoint=grow_pool)
    return run.finish({"best_val": run.best}, Path(cfg.export or run.out / f"gapfill_{cfg.variant}.safetensors"),
                      export_weights, config=cfg.to_dict())


def export_weights(checkpoint, path, metadata: dict | None = None) -> dict:
    """Write the model of ``checkpoint`` as a GapFill safetensors file; returns its
    ``tensors_sha256`` (also kept in the file's header)."""
    ck = load_checkpoint(checkpoint)
    model = build(ck["config"]["variant"])
    model.load_state_dict(ck["model"])
    meta = dict(metadata or {})
    meta.setdefault("val_loss", ck.get("val"))
    meta.setdefault("best_step", ck.get("step"))
    digest = tensors_sha256({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    save_weights(model, path, {**meta, "tensors_sha256": digest})
    return {"tensors_sha256": digest}


def tensors_sha256(weights) -> str:
    """SHA-256 over the tensors of a safetensors file (a path) or a state dict: each name, dtype,
    shape and raw bytes, in name order. Two runs that train the same weights give the same digest;
    the file's own hash also covers its header (training time, run folder, key order), which differs."""
    if not isinstance(weights, dict):
        from safetensors.torch import load_file
        weights = load_file(str(weights))
    h = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------- command line

def add_gapfill_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    d = TrainConfig()
    g = p.add_argument_group(TRAINING_GROUP)
    g.add_argument("--variant", choices=("gap_unet", "lite"), default=None,
                   help=f"gap_unet (ours) or lite (FillLineGaps LightUNet); default {d.variant}")
    add_batch_arguments(g, d, crop_help=f"training crop side in px, ≤ {PATCH}, a multiple of 8", lr_help="peak learning rate")
    g.add_argument("--seed", type=int, default=None, help=f"seed of the weights and the batch stream (default {d.seed})")
    g.add_argument("--outside", type=float, default=None,
                   help=f"loss weight of the paper beside an erased stroke (ink there widens the closure; default "
                        f"{d.outside}: ignored, as a 1-px antialiasing band)")
    g.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from these weights (a GapFill .safetensors, e.g. the bundled ones) instead of random ones")
    g.add_argument("--genga-share", type=float, default=None,
                   help=f"data recipe: share of studio-style (celgraph.synth.genga) frames in the pool and the "
                        f"validation patches, 0..1 (default {GENGA_SHARE}; 0 = the recipe of commit 7e02ecf, "
                        f"which trained the bundled weights)")
    g.add_argument("--endpoints", choices=ENDPOINT_RULES, default=None,
                   help="data recipe: the endpoint-map input as the GapFill node computes it now (node, default) or "
                        "by commit 7e02ecf's rule, which made the bundled weights' pool")
    r = p.add_argument_group("run")
    add_run_arguments(r, d, out_help="run folder: log.jsonl, last.pt, best.pt, weights", frames_help="frames in the pool",
                      export_help="final safetensors (default OUT/gapfill_<variant>.safetensors)")
    r.add_argument("--digest", default=None, metavar="WEIGHTS",
                   help="only print the tensors_sha256 of a GapFill .safetensors file (what two runs of the same "
                        "command share) and exit")
    p.set_defaults(func=cmd_train_gapfill)
    return p


def add_gapfill_train_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``gapfill`` to the ``graph train`` sub-commands (``subparsers`` of the train parser)."""
    p = subparsers.add_parser("gapfill", help="train the GapFill network on synthetic line art",
                              description=(__doc__ or "").split("\n\n")[0])
    return add_gapfill_arguments(p)


def cmd_train_gapfill(args) -> int:
    if args.digest:
        print(tensors_sha256(args.digest))
        return EXIT_OK
    if args.genga_share is not None and not 0.0 <= args.genga_share <= 1.0:
        print("error: --genga-share must be between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    if args.make_pool:
        share = GENGA_SHARE if args.genga_share is None else args.genga_share
        try:
            make_pool(args.pool, frames=args.pool_frames, genga_share=share, endpoints=args.endpoints or "node")
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    cfg = config_from_args(TrainConfig, args, TRAJECTORY_FIELDS, pool_run_settings(args))
    if cfg is None:
        return EXIT_USAGE
    if cfg.crop > PATCH or cfg.crop % 8:
        print(f"error: --crop must be a multiple of 8 and at most {PATCH}", file=sys.stderr)
        return EXIT_USAGE
    try:
        res = train(cfg, resume=args.resume)
    except ValueError as e:             # a pool of another recipe
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_CANCELLED if res.get("interrupted") else EXIT_OK


def main(argv=None) -> int:
    return main_of("celgraph.train.gapfill", __doc__, add_gapfill_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
