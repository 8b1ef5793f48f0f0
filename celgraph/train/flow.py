"""Train RAFT / RAFT-small optical flow on synthetic cartoon pairs, after the RAFT recipe.

Recipe (``princeton-vl/RAFT`` ``train.py``; see /shared/reference/raft.md §9):

* **loss**: sequence loss, L1 over every iteration's upsampled prediction weighted γ^(N−1−i)
  (γ = 0.8), masked by ``valid`` (finite flow under 400 px; occluded pixels are included, as
  upstream does on FlyingChairs/Things), mean over all pixels;
* **optimiser**: AdamW (lr 4e-4, weight decay 1e-4, eps 1e-8), **one-cycle** schedule
  (``OneCycleLR(total_steps=steps + 100, pct_start=0.05, cycle_momentum=False,
  anneal_strategy='linear')``, as upstream), gradient-norm clipping at 1.0;
* **iterations**: 12 refinement iterations per training pair (upstream's value; ``--iters``);
* **data**: :mod:`celgraph.train.data` (random crops of 456×256 synth clips, pairs t → t±k with
  k ∈ {1, 2, 3}, flips, colour jitter, eraser);
* **stages**: ``--init`` starts a run from an earlier run's weights (upstream's chairs → things),
  e.g. a second stage on larger crops. Train on crops of at least ~192×320 before using the
  weights on 456×256 frames: on 96×128 crops the coarse correlation levels barely exist and the
  network does not carry over to whole frames (see celgraph/models/MODEL_CARD.md).

Runs go through :class:`celgraph.train.loop.Run`, like the patch trainers': they are **resumable
and deterministic** on the CPU for a given seed: every ``ckpt_every`` steps ``OUT/last.pt`` is
written atomically with the model, optimiser, scheduler and torch RNG states, the step, the best
validation EPE and the training time (evaluation excluded); a batch depends only on (seed, step),
so a resumed run continues exactly where the interrupted one was. SIGTERM / Ctrl-C save a
checkpoint at the current step and end the run with a ``final`` record marked ``interrupted``.
(Checkpoints written before this move — ``elapsed_s`` and a dict of RNG states — cannot be
resumed; start a new run from their weights with ``--init``.)

Outputs under ``OUT``: ``log.jsonl`` (one JSON object per line: ``start``/``resume``, ``train``
every ``log_every`` steps with loss, grad norm, EPE, 1/3/5 px shares, lr, s/step; ``eval`` with
validation EPE beside DIS; ``iters``; ``final`` with the held-out test numbers), ``config.json``,
``last.pt``, ``best.pt`` (the model with the best validation EPE), and at the end the exported
weights (safetensors, default ``OUT/raft_<variant>_toon.safetensors``; from ``best.pt``, or from
``last.pt`` with ``--eval-every 0``, which validates nothing) and ``final.json``.

Validation (checkpoint selection) uses whole 456×256 frames of synth seeds
:data:`~celgraph.train.data.VAL_SEEDS`; the reported held-out test uses
:data:`~celgraph.train.data.TEST_SEEDS` (10000–10015), scored only once, at the end, for the
exported weights and for DIS 'medium' on the same pairs. With validation on, the exported file
also records in its ``iters`` metadata the refinement iterations FlowRAFT runs by default: the
fewest of :data:`ITERS_SWEEP` within 1 % of the best validation EPE (:func:`pick_iters`; logged
as the ``iters`` event); without validation, the training count.

    python -m celgraph.train.flow --steps 4000 --batch 4 --crop 192x256 --out /tmp/flow_run
    python -m celgraph.train.flow --eval-only celgraph/models/weights/raft_small_toon.safetensors
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from celgraph.core.atomic import write_text
from celgraph.models.raft import RAFT, InputPadder, load_raft, raft_large, raft_small, save_safetensors
from celgraph.train.data import TEST_SEEDS, VAL_SEEDS, DataConfig, FlowPairs, eval_pairs

from .loop import (EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, TRAINING_GROUP, Run, RunConfig, add_batch_arguments,
                   add_run_arguments, config_from_args, load_checkpoint, main_of, nonneg, positive, run_settings)

__all__ = ["TrainConfig", "sequence_loss", "build_model", "make_optimizer", "train", "evaluate",
           "dis_baseline", "evaluate_weights", "export_weights", "load_checkpoint", "predict", "TRAJECTORY_FIELDS",
           "main", "ITERS_SWEEP", "pick_iters", "recommend_iters", "add_flow_arguments", "add_flow_train_parser",
           "cmd_train_flow", "parse_crop"]


@dataclass
class TrainConfig(RunConfig):
    """One training run. Fields in :data:`TRAJECTORY_FIELDS` decide the weights; the others only
    how the run is carried out (and may change on resume)."""
    variant: str = "small"
    steps: int = 4000
    batch: int = 4
    crop: tuple[int, int] = (192, 256)        # H, W
    lr: float = 4e-4
    wdecay: float = 1e-4
    epsilon: float = 1e-8
    gamma: float = 0.8
    iters: int = 12
    grad_clip: float = 1.0
    seed: int = 0
    max_gap: int = 3
    clip_reuse: int = 4
    clip_size: tuple[int, int] = (456, 256)   # W, H of the rendered synth clips
    n_frames: int = 6
    init: str | None = None                   # start from these weights (.pt checkpoint / .safetensors)
    # run-time settings
    out: str = "runs/train_flow"
    eval_every: int = 500
    eval_iters: int = 12
    ckpt_every: int = 100
    log_every: int = 10
    workers: int = 0
    threads: int = 2
    final_eval: bool = True
    final_iters: tuple[int, ...] = (12, 20)
    export: str | None = None
    val_seeds: tuple[int, ...] = VAL_SEEDS
    test_seeds: tuple[int, ...] = TEST_SEEDS

    def data_config(self) -> DataConfig:
        return DataConfig(seed=self.seed, batch=self.batch, crop=tuple(self.crop), max_gap=self.max_gap,
                          clip_reuse=self.clip_reuse, clip_size=tuple(self.clip_size), n_frames=self.n_frames)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return cls(**kw)


TRAJECTORY_FIELDS = ("variant", "steps", "batch", "crop", "lr", "wdecay", "epsilon", "gamma", "iters",
                     "grad_clip", "seed", "max_gap", "clip_reuse", "clip_size", "n_frames", "init")


# --------------------------------------------------------------------------------------------
# loss, model, optimiser
# --------------------------------------------------------------------------------------------

def sequence_loss(preds: Sequence[torch.Tensor], flow_gt: torch.Tensor, valid: torch.Tensor,
                  gamma: float = 0.8, max_flow: float = 400.0) -> tuple[torch.Tensor, dict]:
    """RAFT's sequence loss: Σ_i γ^(N−1−i) · mean(valid · |pred_i − gt|₁).

    preds: N tensors B×2×H×W; flow_gt B×2×H×W; valid B×H×W (pixels with |gt| ≥ max_flow are
    dropped too). Returns (loss, metrics of the last prediction over valid pixels: epe, 1px, 3px,
    5px)."""
    n = len(preds)
    mag = torch.sqrt((flow_gt ** 2).sum(dim=1))
    v = ((valid >= 0.5) & (mag < max_flow)).to(flow_gt.dtype)[:, None]
    loss = flow_gt.new_zeros(())
    for i, p in enumerate(preds):
        loss = loss + gamma ** (n - i - 1) * (v * (p - flow_gt).abs()).mean()
    with torch.no_grad():
        epe = torch.sqrt(((preds[-1] - flow_gt) ** 2).sum(dim=1))[v[:, 0] > 0]
        if epe.numel():
            metrics = {"epe": epe.mean().item(), "1px": (epe < 1).float().mean().item(),
                       "3px": (epe < 3).float().mean().item(), "5px": (epe < 5).float().mean().item()}
        else:
            metrics = {"epe": float("nan"), "1px": float("nan"), "3px": float("nan"), "5px": float("nan")}
    return loss, metrics


def build_model(variant: str = "small", seed: int = 0) -> RAFT:
    """A freshly initialised RAFT ('large') or RAFT-small ('small'), seeded."""
    torch.manual_seed(seed)
    if variant == "small":
        return raft_small()
    if variant == "large":
        return raft_large()
    raise ValueError(f"variant must be 'small' or 'large', got {variant!r}")


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig):
    """AdamW + linear one-cycle schedule over steps + 100, 5 % warm-up (upstream fetch_optimizer)."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.wdecay, eps=cfg.epsilon)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps + 100, pct_start=0.05,
                                                cycle_momentum=False, anneal_strategy="linear")
    return opt, sched


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------

def predict(model: RAFT, img1: np.ndarray, img2: np.ndarray, iters: int = 12, batch: int = 4) -> np.ndarray:
    """Flow for N pairs of equal-sized frames: N×H×W×3 float 0..1 each → N×H×W×2 (eval mode,
    no grad; the model's training flag is restored)."""
    was = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for s in range(0, len(img1), batch):
                a = torch.from_numpy(np.ascontiguousarray(img1[s:s + batch], np.float32)).permute(0, 3, 1, 2) * 255
                b = torch.from_numpy(np.ascontiguousarray(img2[s:s + batch], np.float32)).permute(0, 3, 1, 2) * 255
                padder = InputPadder(a.shape)
                a, b = padder.pad(a, b)
                _, up = model(a, b, iters=iters, test_mode=True)
                out.append(padder.unpad(up).permute(0, 2, 3, 1).numpy())
    finally:
        model.train(was)
    return np.concatenate(out).astype(np.float32)


def _epe_pair(pred, gt, occ) -> tuple[float, float]:
    d = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)
    noc = ~np.asarray(occ, bool)
    return float(d.mean()), float(d[noc].mean()) if noc.any() else float("nan")


def _summarise(pairs: Sequence[dict], preds: Sequence[np.ndarray]) -> dict:
    """Mean over pairs of per-pair EPE (all pixels / non-occluded), overall and per gap k."""
    rows = [(p["k"], *_epe_pair(f, p["flow"], p["occ"])) for p, f in zip(pairs, preds)]
    out = {"pairs": len(rows), "epe_all": float(np.mean([r[1] for r in rows])),
           "epe_noc": float(np.nanmean([r[2] for r in rows]))}
    for k in sorted({r[0] for r in rows}):
        sel = [r for r in rows if r[0] == k]
        out[f"k{k}"] = {"pairs": len(sel), "epe_all": float(np.mean([r[1] for r in sel])),
                        "epe_noc": float(np.nanmean([r[2] for r in sel]))}
    return out


def evaluate(model: RAFT, pairs: Sequence[dict], iters: int = 12) -> dict:
    """EPE of a model on :func:`~celgraph.train.data.eval_pairs` items (see :func:`_summarise`)."""
    t0 = time.perf_counter()
    preds = []
    for size in sorted({p["img1"].shape for p in pairs}):      # batch pairs of one size together
        idx = [i for i, p in enumerate(pairs) if p["img1"].shape == size]
        f = predict(model, np.stack([pairs[i]["img1"] for i in idx]), np.stack([pairs[i]["img2"] for i in idx]), iters)
        preds.extend(zip(idx, f))
    preds = [f for _, f in sorted(preds, key=lambda x: x[0])]
    res = _summarise(pairs, preds)
    res["iters"] = iters
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


# Iteration counts tried when choosing the count a weights file recommends (FlowRAFT's iters = 0).
ITERS_SWEEP = (4, 5, 6, 8, 12)


def pick_iters(epe_by_iters: Mapping[int, float], tolerance: float = 0.01) -> int:
    """The fewest iterations whose EPE is within ``tolerance`` (relative) of the best count's.

    Every iteration costs the same (the update block runs once per iteration), so a count that is
    as accurate within 1 % and cheaper is the better default."""
    if not epe_by_iters:
        raise ValueError("pick_iters needs at least one (iterations, EPE) entry")
    best = min(epe_by_iters.values())
    return min(i for i, e in epe_by_iters.items() if e <= best * (1 + tolerance))


def recommend_iters(model: RAFT, pairs: Sequence[dict], sweep: Sequence[int] = ITERS_SWEEP,
                    tolerance: float = 0.01) -> tuple[int, dict[int, float]]:
    """(chosen iterations, non-occluded EPE at each count of ``sweep``) on validation ``pairs``."""
    epe = {int(i): evaluate(model, pairs, int(i))["epe_noc"] for i in sweep}
    return pick_iters(epe, tolerance), epe


def dis_baseline(pairs: Sequence[dict], preset: str = "medium") -> dict:
    """The same summary for OpenCV DIS (:func:`celgraph.models.flow_classical.dis_flow`)."""
    from celgraph.models.flow_classical import dis_flow
    t0 = time.perf_counter()
    res = _summarise(pairs, [dis_flow(p["img1"], p["img2"], preset) for p in pairs])
    res["preset"] = preset
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def evaluate_weights(weights, seeds: Sequence[int] = TEST_SEEDS, iters: Sequence[int] = (12, 20),
                     dis_preset: str = "medium", threads: int | None = None) -> dict:
    """Held-out report for a weights file (or model): RAFT EPE at each iteration count beside DIS
    on the same whole-frame pairs of ``seeds``."""
    if threads:
        torch.set_num_threads(threads)
    model = weights if isinstance(weights, RAFT) else load_raft(weights)[0]
    pairs = eval_pairs(seeds)
    out = {"seeds": [int(min(seeds)), int(max(seeds))] if list(seeds) == list(range(min(seeds), max(seeds) + 1))
           else [int(s) for s in seeds],
           "pairs": len(pairs), "raft": {str(i): evaluate(model, pairs, i) for i in iters},
           "dis": dis_baseline(pairs, dis_preset)}
    if not isinstance(weights, RAFT):
        out["weights"] = str(weights)
    return out


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------

def init_state(path, variant: str) -> dict:
    """Model weights to start a run from (a later stage on larger crops, as upstream's
    chairs → things): a checkpoint of :func:`train` (``best.pt``/``last.pt``) or any weights file
    :func:`celgraph.models.raft.load_raft` reads."""
    if str(path).endswith(".pt"):
        ck = load_checkpoint(path)
        if "model" in ck and "config" in ck:
            return ck["model"]
    model, _ = load_raft(path, variant=variant)
    return model.state_dict()


def export_weights(checkpoint, path, metadata: dict | None = None) -> Path:
    """Write the model of a ``best.pt``/``last.pt`` checkpoint as safetensors (loadable with
    :func:`celgraph.models.raft.load_raft`)."""
    ck = load_checkpoint(checkpoint) if not isinstance(checkpoint, dict) else checkpoint
    cfg = TrainConfig.from_dict(ck["config"])
    model = build_model(cfg.variant)
    model.load_state_dict(ck["model"])
    meta = {"trained_by": "celgraph.train.flow", "step": str(ck["step"]), "seed": str(cfg.seed),
            "iters": str(cfg.iters),        # what FlowRAFT's iters = 0 runs (train() passes the measured choice)
            "data": "celgraph.synth make_clip 456x256 pairs k=1..3",
            **{k: str(v) for k, v in (metadata or {}).items()}}
    return save_safetensors(model, path, metadata=meta)


# --------------------------------------------------------------------------------------------
# the training loop (celgraph.train.loop's Run, as the patch trainers use it)
# --------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, resume: bool = False, stop_at: int | None = None,
          echo: Callable[[str], None] | None = print) -> dict:
    """Run (or resume) a training run; returns a summary dict.

    ``resume``: continue from ``OUT/last.pt`` if it exists (its trajectory fields must equal
    ``cfg``'s); without it an existing ``last.pt`` is an error. ``stop_at``: stop (with a
    checkpoint) once this many steps are done, as an interruption would.
    """
    out = Path(cfg.out)
    last, final = out / "last.pt", out / "final.json"
    if last.exists():
        if not resume:
            raise FileExistsError(f"{out} already holds a run (last.pt); pass resume=True / --resume, or another --out")
        saved = TrainConfig.from_dict(load_checkpoint(last)["config"])
        diff = {k: (getattr(saved, k), getattr(cfg, k)) for k in TRAJECTORY_FIELDS
                if _norm(getattr(saved, k)) != _norm(getattr(cfg, k))}
        if diff:
            raise ValueError(f"cannot resume {out}: settings differ from the checkpoint's (saved, given): {diff}")
    run = Run(cfg, echo or (lambda line: None))
    model = build_model(cfg.variant, cfg.seed)
    if cfg.init and not last.exists():
        model.load_state_dict(init_state(cfg.init, cfg.variant))
    model.train()
    opt, sched = make_optimizer(model, cfg)
    run.begin(resume, {"model": model, "optimizer": opt, "scheduler": sched},
              {"params": sum(p.numel() for p in model.parameters())}, best=float("inf"), best_step=None)
    if run.step >= cfg.steps and final.exists():               # resumed a finished run
        run.close()
        return json.loads(final.read_text())

    data = FlowPairs(cfg.data_config())
    end = cfg.steps if stop_at is None else min(cfg.steps, int(stop_at))
    batches = data.batches(run.step, max(end, run.step), cfg.workers)   # batch of step s: (seed, s) only

    def train_step(_rng) -> dict:
        batch = next(batches)
        loss, m = sequence_loss(model(batch["img1"], batch["img2"], iters=cfg.iters), batch["flow"], batch["valid"],
                                cfg.gamma)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()                                            # the one-cycle schedule (upstream's)
        return {"loss": loss.item(), "grad_norm": float(gnorm),
                **{k: (None if np.isnan(v) else v) for k, v in m.items()}}

    val = {}

    def validate() -> dict:
        if not val:
            val["pairs"] = eval_pairs(cfg.val_seeds)
            val["dis"] = dis_baseline(val["pairs"])
        res = evaluate(model, val["pairs"], cfg.eval_iters)
        better = run.keep_best(res["epe_all"], lower_is_better=True, model=model.state_dict(), step=run.step, val=res)
        if better:
            run.extra["best_step"] = run.step
        return {"split": "val", "raft": res, "dis": val["dis"], "best": better}

    run.loop(train_step, validate if cfg.eval_every else None, [opt], lambda step: sched.get_last_lr()[0],
             metrics=("loss", "grad_norm", "epe", "1px", "3px", "5px"), stop_at=stop_at)

    def export(checkpoint: Path, path: Path, _meta: dict) -> dict:
        exported = load_checkpoint(checkpoint)
        meta = None
        if cfg.eval_every:      # recommend the iterations measured best on validation, not the training count
            chosen = build_model(cfg.variant)
            chosen.load_state_dict(exported["model"])
            iters, sweep = recommend_iters(chosen, val["pairs"] if val else eval_pairs(cfg.val_seeds))
            meta = {"iters": str(iters)}
            run.record("iters", split="val", epe_noc=sweep, chosen=iters)
        export_weights(exported, path, metadata=meta)
        more = {"exported_from": checkpoint.name, "exported_step": int(exported["step"])}
        if cfg.final_eval:
            more["test"] = evaluate_weights(path, cfg.test_seeds, cfg.final_iters)
        return more

    best = None if run.extra.get("best_step") is None else {"step": run.extra["best_step"], "epe_all": run.best}
    summary = run.finish({"steps": cfg.steps, "best": best, "out": str(out)},
                         Path(cfg.export) if cfg.export else out / f"raft_{cfg.variant}_toon.safetensors",
                         export, source="best.pt" if cfg.eval_every and (out / "best.pt").exists() else "last.pt")
    if "weights" in summary:
        write_text(final, json.dumps(summary, indent=2))
    return summary


def _norm(v):
    return list(v) if isinstance(v, (tuple, list)) else v


# --------------------------------------------------------------------------------------------
# command line: `graph train flow` (the shape of the other trainers', from celgraph.train.loop)
# --------------------------------------------------------------------------------------------

def parse_crop(text: str) -> tuple[int, int]:
    """'192x256' (H×W) → (192, 256); both multiples of 8."""
    try:
        h, w = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"crop must be HxW, e.g. 192x256; got {text!r}") from None
    if h <= 0 or w <= 0 or h % 8 or w % 8:
        raise argparse.ArgumentTypeError(f"crop {text!r}: H and W must be positive multiples of 8")
    return h, w


def add_flow_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``graph train flow`` (also ``python -m celgraph.train.flow``)."""
    d = TrainConfig()
    g = p.add_argument_group(TRAINING_GROUP)
    g.add_argument("--variant", choices=("small", "large"), default=None, help=f"RAFT-small or RAFT (default {d.variant})")
    add_batch_arguments(g, d, crop_help="training crop H×W, multiples of 8", crop_type=parse_crop,
                        lr_help="peak learning rate of the one-cycle schedule", batch_help="pairs per step")
    g.add_argument("--wdecay", type=float, default=None, help=f"AdamW weight decay (default {d.wdecay})")
    g.add_argument("--gamma", type=float, default=None, help=f"sequence-loss decay (default {d.gamma})")
    g.add_argument("--iters", type=positive, default=None, help=f"refinement iterations in training (default {d.iters})")
    g.add_argument("--seed", type=int, default=None, help=f"seed of the weights and the data stream (default {d.seed})")
    g.add_argument("--max-gap", type=positive, default=None, help=f"largest frame gap k of a pair (default {d.max_gap})")
    g.add_argument("--clip-reuse", type=positive, default=None,
                   help=f"batches each rendered synth clip serves before a new one is drawn (default {d.clip_reuse})")
    g.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from these weights (a run's best.pt/last.pt or a .safetensors/.pth file) "
                        "instead of random ones, e.g. a second stage on larger crops")
    r = p.add_argument_group("run")
    add_run_arguments(r, d, out_help="run folder: log.jsonl, checkpoints, weights", frames_help=None,
                      export_help="where the final safetensors go (default OUT/raft_<variant>_toon.safetensors)",
                      eval_help="validate (and keep the best model) every N steps and at the end; 0 = never "
                                "(the last model is exported)")
    r.add_argument("--workers", type=nonneg, default=d.workers, help="DataLoader worker processes (default 0: in-process)")
    r.add_argument("--stop-at", type=positive, default=None, metavar="N",
                   help="stop after N steps with a checkpoint, as an interruption would (resume later with --resume)")
    r.add_argument("--no-final-eval", action="store_true", help="skip the held-out test evaluation at the end")
    r.add_argument("--eval-only", metavar="WEIGHTS", default=None,
                   help="train nothing: print the held-out EPE of WEIGHTS beside DIS 'medium' as JSON")
    r.add_argument("--json", action="store_true", help="print log records as JSON lines (default: short text)")
    p.set_defaults(func=cmd_train_flow)
    return p


def add_flow_train_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``flow`` to the ``graph train`` sub-commands (``subparsers`` of the train parser)."""
    p = subparsers.add_parser("flow", help="train RAFT-small / RAFT optical flow on synthetic cartoon pairs",
                              description="Train RAFT-small / RAFT optical flow on celgraph.synth pairs after the "
                                          "RAFT recipe (sequence loss γ, AdamW, one-cycle LR, grad clip 1.0); "
                                          "resumable, deterministic for a seed on the CPU.")
    return add_flow_arguments(p)


def _short(line: str) -> None:
    rec = json.loads(line)
    ev = rec.pop("event")
    if ev == "train":
        epe = "  epe   —  " if rec.get("epe") is None else f"  epe {rec['epe']:.3f}"
        print(f"step {rec['step']:>6}  loss {rec['loss']:.3f}{epe}  lr {rec['lr']:.2e}  "
              f"{rec['s_per_step']:.2f} s/step  {rec['elapsed_s'] / 60:.1f} min", flush=True)
    elif ev == "eval":
        r, d = rec["raft"], rec["dis"]
        print(f"eval  step {rec['step']}: EPE all {r['epe_all']:.3f} noc {r['epe_noc']:.3f}  "
              f"(DIS {d['epe_all']:.3f} / {d['epe_noc']:.3f}){'  best' if rec['best'] else ''}", flush=True)
    elif ev == "final":
        print(json.dumps(rec, indent=2), flush=True)
    else:
        print(f"{ev}: {json.dumps(rec)}", flush=True)


def cmd_train_flow(args) -> int:
    if args.eval_only:
        if not Path(args.eval_only).is_file():
            print(f"error: no weights file {args.eval_only}", file=sys.stderr)
            return EXIT_USAGE
        print(json.dumps(evaluate_weights(args.eval_only, threads=args.threads), indent=2))
        return EXIT_OK
    cfg = config_from_args(TrainConfig, args, TRAJECTORY_FIELDS,
                           {**run_settings(args), "workers": args.workers, "final_eval": not args.no_final_eval})
    if cfg is None:
        return EXIT_USAGE
    echo = (lambda s: print(s, flush=True)) if args.json else _short
    try:
        res = train(cfg, resume=args.resume, stop_at=args.stop_at, echo=echo)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_CANCELLED if res.get("interrupted") and args.stop_at is None else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m celgraph.train.flow [options]``: the same options as ``graph train flow``."""
    return main_of("celgraph.train.flow", __doc__, add_flow_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
