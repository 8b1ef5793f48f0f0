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

Runs are **resumable and deterministic** on the CPU for a given seed: every ``ckpt_every``
steps ``OUT/last.pt`` is written atomically with the model, optimiser, scheduler and RNG states,
the step, the best validation result and the elapsed time; a batch depends only on (seed, step),
so a resumed run continues exactly where the interrupted one was. SIGTERM / Ctrl-C save a
checkpoint at the current step before exiting.

Outputs under ``OUT``: ``log.jsonl`` (one JSON object per line: ``start``/``resume``, ``train``
every ``log_every`` steps with loss, EPE, lr, s/step; ``eval`` with validation EPE beside DIS;
``final`` with the held-out test numbers), ``config.json``, ``last.pt``, ``best.pt`` (the model
with the best validation EPE), and at the end the exported weights (safetensors, default
``OUT/raft_<variant>_toon.safetensors``) and ``final.json``.

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

import json
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from celgraph.core.atomic import atomic_path, write_text
from celgraph.models.raft import RAFT, InputPadder, load_raft, raft_large, raft_small, save_safetensors
from celgraph.train.data import TEST_SEEDS, VAL_SEEDS, DataConfig, FlowPairs, eval_pairs

__all__ = ["TrainConfig", "sequence_loss", "build_model", "make_optimizer", "train", "evaluate",
           "dis_baseline", "evaluate_weights", "export_weights", "predict", "TRAJECTORY_FIELDS", "main",
           "ITERS_SWEEP", "pick_iters", "recommend_iters"]


@dataclass
class TrainConfig:
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

def _atomic_save(obj, path: Path) -> None:
    with atomic_path(path, suffix=".tmp") as tmp:
        torch.save(obj, tmp)


def _atomic_write_text(path: Path, text: str) -> None:
    write_text(path, text)


def _rng_state() -> dict:
    nps = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [nps[0], nps[1].tolist(), int(nps[2]), int(nps[3]), float(nps[4])],
            "python": random.getstate()}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    n = s["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], np.uint32), n[2], n[3], n[4]))
    py = s["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def load_checkpoint(path) -> dict:
    """A checkpoint written by :func:`train` (read with ``weights_only=True``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def init_state(path, variant: str) -> dict:
    """Model weights to start a run from (a later stage on larger crops, as upstream's
    chairs → things): a checkpoint of :func:`train` (``best.pt``/``last.pt``) or any weights file
    :func:`celgraph.models.raft.load_raft` reads."""
    if str(path).endswith(".pt"):
        ck = load_checkpoint(path)
        if isinstance(ck, dict) and "model" in ck and "config" in ck:
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
            "data": "celgraph.synth make_clip 456x256 pairs k=1..3", **(metadata or {})}
    return save_safetensors(model, path, metadata=meta)


# --------------------------------------------------------------------------------------------
# the training loop
# --------------------------------------------------------------------------------------------

class _Log:
    def __init__(self, path: Path, echo: Callable[[str], None] | None):
        self.path, self.echo = path, echo

    def __call__(self, event: str, **kw) -> dict:
        rec = {"event": event, "time": round(time.time(), 3), **kw}
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.echo:
            self.echo(json.dumps(rec))
        return rec


def train(cfg: TrainConfig, resume: bool = False, stop_at: int | None = None,
          echo: Callable[[str], None] | None = print) -> dict:
    """Run (or resume) a training run; returns a summary dict.

    ``resume``: continue from ``OUT/last.pt`` if it exists (its trajectory fields must equal
    ``cfg``'s); without it an existing ``last.pt`` is an error. ``stop_at``: stop (with a
    checkpoint) once this many steps are done, as an interruption would.
    """
    torch.set_num_threads(max(1, int(cfg.threads)))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    last, best_path = out / "last.pt", out / "best.pt"
    log = _Log(out / "log.jsonl", echo)

    model = build_model(cfg.variant, cfg.seed)
    if cfg.init and not last.exists():
        model.load_state_dict(init_state(cfg.init, cfg.variant))
    model.train()
    opt, sched = make_optimizer(model, cfg)
    step, elapsed, best = 0, 0.0, None
    if last.exists():
        if not resume:
            raise FileExistsError(f"{out} already holds a run (last.pt); pass resume=True / --resume, or another --out")
        ck = load_checkpoint(last)
        saved = TrainConfig.from_dict(ck["config"])
        diff = {k: (getattr(saved, k), getattr(cfg, k)) for k in TRAJECTORY_FIELDS
                if _norm(getattr(saved, k)) != _norm(getattr(cfg, k))}
        if diff:
            raise ValueError(f"cannot resume {out}: settings differ from the checkpoint's (saved, given): {diff}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        _set_rng_state(ck["rng"])
        step, elapsed, best = int(ck["step"]), float(ck["elapsed_s"]), ck.get("best")
        log("resume", step=step, elapsed_s=round(elapsed, 1))
    else:
        _atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))
        log("start", config=cfg.to_dict(), params=sum(p.numel() for p in model.parameters()))

    def checkpoint() -> None:
        _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                      "step": step, "rng": _rng_state(), "config": cfg.to_dict(), "best": best,
                      "elapsed_s": elapsed}, last)

    val_pairs = dis_val = None

    def validate() -> None:
        nonlocal val_pairs, dis_val, best
        if val_pairs is None:
            val_pairs = eval_pairs(cfg.val_seeds)
            dis_val = dis_baseline(val_pairs)
        res = evaluate(model, val_pairs, cfg.eval_iters)
        improved = best is None or res["epe_all"] < best["epe_all"]
        if improved:
            best = {"step": step, "epe_all": res["epe_all"], "epe_noc": res["epe_noc"]}
            _atomic_save({"model": model.state_dict(), "step": step, "config": cfg.to_dict(), "val": res}, best_path)
        log("eval", step=step, split="val", raft=res, dis=dis_val, best=improved)

    stop_flag = {"sig": None}

    def _handler(signum, _frame):
        stop_flag["sig"] = signum

    old = {}
    if _in_main_thread():
        for s in (signal.SIGTERM, signal.SIGINT):
            old[s] = signal.signal(s, _handler)

    data = FlowPairs(cfg.data_config())
    end = cfg.steps if stop_at is None else min(cfg.steps, int(stop_at))
    acc: dict[str, list] = {}
    t_mark = t_prev = time.perf_counter()
    n_mark = 0
    trained = False
    try:
        if step < end:
            for batch in data.batches(step, end, cfg.workers):
                trained = True
                preds = model(batch["img1"], batch["img2"], iters=cfg.iters)
                loss, m = sequence_loss(preds, batch["flow"], batch["valid"], cfg.gamma)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                step += 1
                n_mark += 1
                now = time.perf_counter()
                elapsed += now - t_prev          # wall time: data, model, evaluation, checkpoints
                t_prev = now
                for k, v in (("loss", loss.item()), ("grad_norm", float(gnorm)), *m.items()):
                    acc.setdefault(k, []).append(v)
                if step % cfg.log_every == 0 or step == end:
                    log("train", step=step, lr=sched.get_last_lr()[0],
                        **{k: float(np.nanmean(v)) for k, v in acc.items()},
                        s_per_step=round((now - t_mark) / max(n_mark, 1), 3), elapsed_s=round(elapsed, 1))
                    acc.clear()
                    t_mark, n_mark = now, 0
                if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                    validate()
                    elapsed += time.perf_counter() - t_prev
                    t_prev = time.perf_counter()
                if step % cfg.ckpt_every == 0 or step == end or stop_flag["sig"] is not None:
                    checkpoint()
                if stop_flag["sig"] is not None:
                    log("interrupted", step=step, signal=int(stop_flag["sig"]))
                    return {"step": step, "interrupted": True, "best": best}
                if step >= end:
                    break
    finally:
        for s, h in old.items():
            signal.signal(s, h)

    summary = {"step": step, "steps": cfg.steps, "elapsed_s": round(elapsed, 1), "best": best, "out": str(out)}
    if step < cfg.steps:
        return summary
    if not trained and (out / "final.json").exists():          # resumed a finished run
        return json.loads((out / "final.json").read_text())
    if cfg.eval_every:
        t0 = time.perf_counter()
        validate()
        elapsed += time.perf_counter() - t0
        checkpoint()
    src = best_path if best_path.exists() else last
    export = Path(cfg.export) if cfg.export else out / f"raft_{cfg.variant}_toon.safetensors"
    exported = load_checkpoint(src)
    meta = None
    if cfg.eval_every:          # recommend the iterations measured best on validation, not the training count
        chosen = build_model(cfg.variant)
        chosen.load_state_dict(exported["model"])
        iters, sweep = recommend_iters(chosen, val_pairs)
        meta = {"iters": str(iters)}
        log("iters", split="val", epe_noc=sweep, chosen=iters)
    export_weights(exported, export, metadata=meta)
    summary.update(elapsed_s=round(elapsed, 1), best=best, weights=str(export), exported_from=src.name,
                   exported_step=int(exported["step"]))
    if cfg.final_eval:
        summary["test"] = evaluate_weights(export, cfg.test_seeds, cfg.final_iters)
    log("final", **summary)
    _atomic_write_text(out / "final.json", json.dumps(summary, indent=2))
    return summary


def _norm(v):
    return list(v) if isinstance(v, (tuple, list)) else v


def _in_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def main(argv: list[str] | None = None) -> int:
    """``python -m celgraph.train.flow [options]``: the same options as ``graph train flow``."""
    import argparse

    from celgraph.train.cli import add_flow_arguments
    p = argparse.ArgumentParser(prog="python -m celgraph.train.flow", description=__doc__.split("\n")[0])
    add_flow_arguments(p)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
