"""Train the Sketch U-Net on synthetic colour frames: ``graph train sketch``.

Data (:func:`make_pool`): seeded frames of :func:`celgraph.synth.make_clip` (80 %: painted plate,
1-4 cel-shaded sprites; 456×256 to 1280×720, so outline widths of ≈ 1.6-3 px) and of
:func:`celgraph.synth.make_lineart` (20 %: flat-coloured items on paper, colour-traced lines), each
degraded once by :func:`celgraph.synth.degrade_photo` with its default ranges (JPEG 40-95,
down/up-scaling ×0.5-1, blur σ 0-1, noise σ 0-5/255, lighting gradients, hue/saturation jitter),
15 % with screentone (strength 0.15-0.5), 10 % left clean. The target is the exact ink layer
(``lines``): shadow and highlight boundaries and the plate's painted detail lines are **not**
ink. From each frame, ``PATCH``² patches are cut around ink (55 %), around strong colour edges that
are not ink (30 %: the hard negatives) and at random (15 %), stored as uint8 shards
``POOL/shard_NNNNN.npz`` (resumable; default ``/work/scratch/sketch/pool`` or
``$CELGRAPH_SKETCH_POOL``). Training frame seeds start at :data:`POOL_SEED0`; validation (threshold
and checkpoint choice) uses :data:`VAL_SEEDS`, the benchmark (bench/quality.py) seeds 300-307:
no seed is shared.

Training (:func:`train`): random ``crop``² crops with the 8 flips/rotations, loss = BCE on the soft
ink coverage (ink pixels × ``pos_weight``) + ``dice`` × soft Dice, AdamW, warm-up + cosine LR. A
batch depends only on (seed, step), so a resumed run continues exactly. ``OUT/last.pt`` is written
atomically every ``ckpt_every`` steps (model, optimiser, step, RNG, config); SIGTERM/Ctrl-C save
and exit (resume with ``--resume``). Every ``eval_every`` steps the model runs on the whole
validation frames and the **binarisation threshold maximising F1 within 1 px** is searched;
``OUT/best.pt`` keeps the best F1. At the end the best model is exported to safetensors with its
threshold in the header (``--export``; default ``OUT/sketch_unet.safetensors``).

    graph train sketch --steps 3000 --batch 12 --crop 128 --out runs/sketch      # the bundled weights
    graph train sketch --out runs/sketch --resume
    graph train sketch --eval-only celgraph/models/weights/sketch_unet.safetensors
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from .cli import _positive

__all__ = ["TrainConfig", "sketch_frame", "eval_frames", "make_pool", "load_pool", "batch_tensors", "sketch_loss",
           "best_threshold", "evaluate", "train", "export_weights", "add_sketch_train_parser", "main",
           "POOL_SEED0", "VAL_SEEDS", "SIZES"]

POOL_SEED0 = 2_000_000
VAL_SEEDS = tuple(range(700_000, 700_008))
DEFAULT_POOL = os.environ.get("CELGRAPH_SKETCH_POOL", "/work/scratch/sketch/pool")
SIZES = ((456, 256), (640, 360), (960, 540), (1280, 720))
SIZE_P = (0.4, 0.2, 0.25, 0.15)
PATCH = 160
EXIT_OK, EXIT_USAGE, EXIT_CANCELLED = 0, 2, 130


# ---------------------------------------------------------------- data

def degrade(color: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The training/benchmark degradation of a clean colour frame (see the module doc)."""
    from celgraph.synth import degrade_photo
    r = rng.random()
    if r < 0.10:
        return np.asarray(color, np.float32)
    tone = (0.15, 0.5) if r > 0.85 else None
    return degrade_photo(color, rng, screentone=tone)


def sketch_frame(seed: int, size: tuple[int, int] | None = None, source: str | None = None) -> dict:
    """One seeded sample: {"image": degraded colour H×W×3, "clean": clean colour, "lines": exact ink}.

    ``source``: "clip" (a make_clip frame) or "lineart" (a make_lineart page); None draws it
    (80 / 20)."""
    from celgraph.synth import make_clip, make_lineart
    rng = np.random.default_rng([seed, 0x5E7C])
    W, H = size or SIZES[int(rng.choice(len(SIZES), p=SIZE_P))]
    source = source or ("clip" if rng.random() < 0.8 else "lineart")
    if source == "clip":
        clip = make_clip(seed, width=W, height=H, n_frames=2, flow=False)
        fr = clip.frames[int(rng.integers(2))]
        color, lines = fr["color"], fr["lines"]
    else:
        s = make_lineart(seed, W, H)
        color, lines = s["color"], s["lines"]
    return {"image": degrade(color, rng), "clean": np.asarray(color, np.float32), "lines": np.asarray(lines, np.float32)}


def eval_frames(seeds=VAL_SEEDS, sizes=((456, 256), (960, 540))) -> list[dict]:
    """Fixed held-out frames: each seed at each size (clip frames; the first seed of each size
    also as a make_lineart page)."""
    out = []
    for W, H in sizes:
        for i, s in enumerate(seeds):
            out.append(sketch_frame(s, (W, H), "lineart" if i == 0 else "clip"))
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


def _save_npz(path: Path, arrays: dict) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def make_pool(pool: str | Path = DEFAULT_POOL, frames: int = 800, per_frame: int = 8, shard_frames: int = 50,
              seed0: int = POOL_SEED0, echo=print) -> Path:
    """Write (or complete) a patch pool of ``frames`` frames × ``per_frame`` patches, in shards of
    ``shard_frames`` frames; existing shards are kept, so an interrupted run continues."""
    pool = Path(pool)
    pool.mkdir(parents=True, exist_ok=True)
    n_shards = math.ceil(frames / shard_frames)
    t0 = time.time()
    for sh in range(n_shards):
        path = pool / f"shard_{sh:05d}.npz"
        if path.exists():
            continue
        parts = [frame_patches(sketch_frame(seed0 + f), np.random.default_rng([seed0 + f, 31]), per_frame)
                 for f in range(sh * shard_frames, min((sh + 1) * shard_frames, frames))]
        _save_npz(path, {k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
        echo(f"pool shard {sh + 1}/{n_shards} ({time.time() - t0:.0f} s)")
    return pool


def load_pool(pool: str | Path) -> dict[str, np.ndarray]:
    shards = sorted(Path(pool).glob("shard_*.npz"))
    if not shards:
        raise FileNotFoundError(f"no patch pool in {pool}: run `graph train sketch --make-pool` first")
    parts = [dict(np.load(s)) for s in shards]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


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
class TrainConfig:
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
    # run settings (may change on resume)
    out: str = "runs/sketch"
    ckpt_every: int = 100
    eval_every: int = 500
    log_every: int = 25
    threads: int = 1
    export: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


TRAJECTORY_FIELDS = ("arch", "steps", "batch", "crop", "lr", "wdecay", "pos_weight", "dice", "seed")


def atomic_save(obj, path: Path) -> None:
    import torch
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def lr_at(step: int, steps: int, lr: float) -> float:
    """Linear warm-up over 3 % of the steps, then cosine decay to 2 % of ``lr``."""
    warm = max(int(0.03 * steps), 1)
    if step < warm:
        return lr * (step + 1) / warm
    t = (step - warm) / max(steps - warm, 1)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


class StopFlag:
    """Set by SIGINT/SIGTERM while a training loop runs (main thread only)."""

    def __init__(self):
        self.now = False
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._set)
        return self

    def _set(self, signum, frame):
        self.now = True

    def __exit__(self, *exc):
        for sig, h in self._old.items():
            signal.signal(sig, h)
        return False


def train(cfg: TrainConfig, resume: bool = False, echo=print, data: dict | None = None,
          val: list[dict] | None = None, stop_at: int | None = None) -> dict:
    """Run (or resume) a training run; returns a summary dict. ``data``/``val`` override the pool
    and the validation frames (tests)."""
    import torch
    from celgraph.models.sketch_unet import build, count_parameters
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "log.jsonl", "a")

    def record(event, **kw):
        rec = {"event": event, **kw}
        log.write(json.dumps(rec) + "\n")
        log.flush()
        echo(json.dumps(rec))

    torch.manual_seed(cfg.seed)
    model = build(cfg.arch)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.wdecay)
    step, best, best_t, elapsed = 0, -1.0, 0.5, 0.0
    if resume and (out / "last.pt").exists():
        ck = torch.load(out / "last.pt", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, best, best_t, elapsed = ck["step"], ck["best"], ck.get("best_threshold", 0.5), ck["elapsed"]
        torch.set_rng_state(ck["rng"])
        record("resume", step=step)
    else:
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        record("start", params=count_parameters(model), config=cfg.to_dict())
    if data is None:
        if len(list(Path(cfg.pool).glob("shard_*.npz"))) * 50 < cfg.pool_frames:
            make_pool(cfg.pool, frames=cfg.pool_frames, echo=lambda s: record("pool", message=s))
        data = load_pool(cfg.pool)
        record("pool", patches=len(data["x"]))
    if val is None:
        val = eval_frames()
    n = len(data["x"])

    def checkpoint():
        atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
                     "best_threshold": best_t, "elapsed": elapsed, "rng": torch.get_rng_state(),
                     "config": cfg.to_dict()}, out / "last.pt")

    model.train()
    t_last, losses = time.time(), []
    with StopFlag() as stop:
        try:
            while step < cfg.steps and not stop.now and (stop_at is None or step < stop_at):
                rng = np.random.default_rng([cfg.seed, step])
                x, y = batch_tensors(data, rng.integers(0, n, cfg.batch), cfg.crop, rng)
                for g in opt.param_groups:
                    g["lr"] = lr_at(step, cfg.steps, cfg.lr)
                loss = sketch_loss(model(x), y, cfg.pos_weight, cfg.dice)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
                now = time.time()
                elapsed += now - t_last
                t_last = now
                if step % cfg.log_every == 0:
                    record("train", step=step, loss=float(np.mean(losses)), lr=lr_at(step - 1, cfg.steps, cfg.lr),
                           elapsed_s=round(elapsed, 1))
                    losses = []
                if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
                    model.eval()
                    r = evaluate(model, val)
                    model.train()
                    is_best = r["f1"] > best
                    if is_best:
                        best, best_t = r["f1"], r["threshold"]
                        atomic_save({"model": model.state_dict(), "step": step, "f1": best, "threshold": best_t,
                                     "config": cfg.to_dict()}, out / "best.pt")
                    record("eval", step=step, f1=round(r["f1"], 4), chamfer=round(r["chamfer"], 3),
                           threshold=r["threshold"], best=is_best)
                    t_last = time.time()            # evaluation time is not training time
                if step % cfg.ckpt_every == 0 or step == cfg.steps:
                    checkpoint()
        finally:
            checkpoint()
    summary = {"step": step, "best_f1": best, "threshold": best_t, "elapsed_s": round(elapsed, 1),
               "interrupted": step < cfg.steps}
    if step >= cfg.steps and (out / "best.pt").exists():
        path = Path(cfg.export or out / f"{cfg.arch}.safetensors")
        export_weights(out / "best.pt", path, {"steps": step, "train_seconds": round(elapsed)})
        summary["weights"] = str(path)
    record("final", **summary)
    log.close()
    return summary


def export_weights(checkpoint, path, metadata: dict | None = None) -> Path:
    """best.pt → safetensors with the calibrated threshold, validation F1 and config in the header."""
    import torch
    from celgraph.models.sketch_unet import build, save_weights
    ck = torch.load(checkpoint, weights_only=False)
    model = build(ck["config"]["arch"])
    model.load_state_dict(ck["model"])
    meta = {"threshold": ck["threshold"], "val_f1": round(ck["f1"], 4), "best_step": ck["step"],
            "config": ck["config"], **(metadata or {})}
    return save_weights(model, path, meta)


# ---------------------------------------------------------------- command line

def add_sketch_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    d = TrainConfig()
    g = p.add_argument_group("training (fixed for a run; on --resume they default to the checkpoint's)")
    g.add_argument("--arch", choices=("sketch_unet", "sketch_unet_tiny"), default=None, help=f"network (default {d.arch})")
    g.add_argument("--steps", type=_positive, default=None, help=f"optimiser steps (default {d.steps})")
    g.add_argument("--batch", type=_positive, default=None, help=f"patches per step (default {d.batch})")
    g.add_argument("--crop", type=_positive, default=None, help=f"training crop side in px, ≤ {PATCH}, a multiple of 32 "
                                                                f"(default {d.crop})")
    g.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {d.lr})")
    g.add_argument("--pos-weight", type=float, default=None, help=f"BCE weight of ink pixels (default {d.pos_weight})")
    g.add_argument("--seed", type=int, default=None, help=f"seed of the weights and the batch stream (default {d.seed})")
    r = p.add_argument_group("run")
    r.add_argument("--out", default=d.out, help=f"run folder: log.jsonl, last.pt, best.pt, weights (default {d.out})")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    r.add_argument("--pool", default=d.pool, help=f"patch pool folder (default {d.pool})")
    r.add_argument("--pool-frames", type=_positive, default=d.pool_frames, help=f"frames in the pool (default {d.pool_frames})")
    r.add_argument("--make-pool", action="store_true", help="only write (or complete) the patch pool")
    r.add_argument("--eval-every", type=int, default=d.eval_every, help=f"validate every N steps (default {d.eval_every})")
    r.add_argument("--ckpt-every", type=_positive, default=d.ckpt_every, help=f"checkpoint every N steps (default {d.ckpt_every})")
    r.add_argument("--log-every", type=_positive, default=d.log_every, help=f"log every N steps (default {d.log_every})")
    r.add_argument("--threads", type=_positive, default=d.threads, help=f"torch CPU threads (default {d.threads})")
    r.add_argument("--export", default=None, metavar="PATH", help="final safetensors (default OUT/<arch>.safetensors)")
    r.add_argument("--eval-only", metavar="WEIGHTS", default=None,
                   help="train nothing: print F1/chamfer of WEIGHTS on the validation frames as JSON")
    p.set_defaults(func=cmd_train_sketch)
    return p


def add_sketch_train_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sketch`` to the ``graph train`` sub-commands (``subparsers`` of the train parser)."""
    p = subparsers.add_parser("sketch", help="train the Sketch U-Net (colour → line art) on synthetic frames",
                              description=(__doc__ or "").split("\n\n")[0])
    return add_sketch_arguments(p)


def cmd_train_sketch(args) -> int:
    import torch
    if args.eval_only:
        from celgraph.models.sketch_unet import load_weights
        if not Path(args.eval_only).is_file():
            print(f"error: no weights file {args.eval_only}", file=sys.stderr)
            return EXIT_USAGE
        torch.set_num_threads(args.threads)
        model, meta = load_weights(args.eval_only)
        r = evaluate(model, eval_frames(), meta.get("threshold"))
        print(json.dumps({k: v for k, v in r.items() if k != "f1_by_threshold"}, indent=2))
        return EXIT_OK
    if args.make_pool:
        make_pool(args.pool, frames=args.pool_frames)
        return EXIT_OK
    out = Path(args.out)
    given = {k: getattr(args, k) for k in TRAJECTORY_FIELDS if getattr(args, k, None) is not None}
    base = TrainConfig()
    if (out / "last.pt").exists():
        if not args.resume:
            print(f"error: {out} already holds a run; pass --resume to continue it", file=sys.stderr)
            return EXIT_USAGE
        base = TrainConfig.from_dict(torch.load(out / "last.pt", weights_only=False)["config"])
        diff = {k: (getattr(base, k), v) for k, v in given.items() if getattr(base, k) != v}
        if diff:
            print(f"error: cannot resume {out} with other settings (checkpoint, given): {diff}", file=sys.stderr)
            return EXIT_USAGE
    crop = given.get("crop", base.crop)
    if crop > PATCH or crop % 32:
        print(f"error: --crop must be a multiple of 32 and at most {PATCH}", file=sys.stderr)
        return EXIT_USAGE
    cfg = TrainConfig.from_dict({**base.to_dict(), **given, "out": str(out), "pool": args.pool,
                                 "pool_frames": args.pool_frames, "threads": args.threads,
                                 "ckpt_every": args.ckpt_every, "eval_every": args.eval_every,
                                 "log_every": args.log_every, "export": args.export})
    res = train(cfg, resume=args.resume)
    return EXIT_CANCELLED if res.get("interrupted") else EXIT_OK


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m celgraph.train.sketch", description=(__doc__ or "").split("\n\n")[0])
    add_sketch_arguments(p)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
