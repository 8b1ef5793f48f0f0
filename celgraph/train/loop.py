"""What the four trainers share (:mod:`.flow`, :mod:`.gapfill`, :mod:`.sketch`, :mod:`.colorize`):
a run folder with its log and checkpoints, the step loop, and the command-line scaffolding.

A run folder ``OUT`` holds ``log.jsonl`` (one JSON record a line: ``start``/``resume``, ``pool``,
``train``, ``eval``, ``final``), ``config.json``, ``last.pt`` (written atomically every
``ckpt_every`` steps and whenever the loop ends: the networks' and optimisers' states, the step, the
best score, the elapsed training time, the torch RNG state and the config as JSON text) and
``best.pt`` (the networks at their best validation score). Checkpoints hold tensors and plain values
only and are read weights-only (:func:`load_checkpoint`): a crafted ``last.pt`` cannot run code. The batch of step ``s`` is drawn from
``numpy.random.default_rng([seed, s])`` (the flow trainer's from its own (seed, step) stream), so a
resumed run continues exactly as an uninterrupted one.

torch is imported where it is used, so the command line of a trainer loads without it.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from celgraph.core.atomic import atomic_path, write_text

__all__ = ["Run", "RunConfig", "StopFlag", "atomic_save", "load_checkpoint", "CheckpointError", "warmup_cosine_lr", "descend", "positive", "nonneg",
           "add_batch_arguments", "add_run_arguments", "run_settings", "pool_run_settings", "config_from_args",
           "checkpoint_config", "main_of",
           "EXIT_OK", "EXIT_USAGE", "EXIT_CANCELLED"]

EXIT_OK, EXIT_USAGE, EXIT_CANCELLED = 0, 2, 130


# ---------------------------------------------------------------- pieces

def atomic_save(obj, path: Path) -> None:
    """torch.save through a temporary file, so ``path`` is never half written."""
    import torch
    with atomic_path(path, suffix=".tmp") as tmp:
        torch.save(obj, tmp)


class CheckpointError(ValueError):
    """A checkpoint that is not a plain one (tensors, numbers, strings, lists, dicts)."""


def load_checkpoint(path) -> dict:
    """A trainer's checkpoint, read weights-only: a pickle that would build any other object (and so
    could run code) is refused with CheckpointError. The config comes back as a dict."""
    import pickle
    import torch
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path} is not a plain checkpoint (tensors and plain values only); "
                              f"refusing to load it: {str(e).splitlines()[0]}") from None
    if not isinstance(ck, dict):
        raise CheckpointError(f"{path} is not a trainer's checkpoint")
    if isinstance(ck.get("config"), str):
        ck["config"] = json.loads(ck["config"])
    return ck


def _plain(v):
    """numpy scalars as Python numbers, so weights-only loading accepts them."""
    return v.item() if isinstance(v, np.generic) else v


def warmup_cosine_lr(step: int, steps: int, lr: float) -> float:
    """Linear warm-up over 3 % of the steps, then cosine decay to 2 % of ``lr``."""
    warm = max(int(0.03 * steps), 1)
    if step < warm:
        return lr * (step + 1) / warm
    t = (step - warm) / max(steps - warm, 1)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def descend(opt, loss, clip=None) -> float:
    """One optimiser step on ``loss``, the gradients of the ``clip`` parameters first clipped to
    norm 1 when given; returns the loss as a float."""
    import torch
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(clip, 1.0)
    opt.step()
    return float(loss.detach())


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


class RunConfig:
    """Base of a trainer's ``TrainConfig`` dataclass: its dict form, as config.json and the
    checkpoints keep it. Needs the fields ``steps``, ``seed``, ``out``, ``threads``,
    ``log_every``, ``eval_every``, ``ckpt_every`` (and ``pool``, ``pool_frames`` for
    :meth:`Run.load_pool`)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        """The config of ``d``; keys that are not fields of ``cls`` are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------- a run

class Run:
    """One training run in its folder ``cfg.out`` (see the module doc).

    The trainer builds its networks and optimisers after creating the Run (which sets the torch
    thread count) and hands them to :meth:`begin`; ``step``, ``best``, ``elapsed`` and ``extra``
    (more values kept in last.pt, e.g. Sketch's ``best_threshold``) are then the run's progress."""

    def __init__(self, cfg: RunConfig, echo=print):
        import torch
        torch.set_num_threads(cfg.threads)
        self.cfg, self.echo = cfg, echo
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._log = open(self.out / "log.jsonl", "a")
        self.states: dict = {}
        self.step, self.best, self.elapsed, self.extra = 0, 0.0, 0.0, {}
        self.history: list[dict] = []           # the metric means of each "train" record

    def record(self, event: str, **kw) -> None:
        """Append a record to log.jsonl and echo it (as a JSON line)."""
        rec = {"event": event, **kw}
        self._log.write(json.dumps(rec) + "\n")
        self._log.flush()
        self.echo(json.dumps(rec))

    def begin(self, resume: bool, states: dict, start: dict, best: float, **extra) -> None:
        """Start the run, or with ``resume`` continue it from last.pt when there is one.

        ``states``: checkpoint key → network or optimiser, e.g. ``{"model": net, "optimizer": opt}``;
        ``start``: the fields of the "start" record before the config (parameter counts);
        ``best``, ``extra``: the starting best score and other kept values."""
        self.states, self.best, self.extra = states, best, dict(extra)
        last = self.out / "last.pt"
        if resume and last.exists():
            import torch
            ck = load_checkpoint(last)
            for k, obj in states.items():
                obj.load_state_dict(ck[k])
            self.step, self.best, self.elapsed = ck["step"], ck["best"], ck["elapsed"]
            self.extra = {k: ck.get(k, v) for k, v in self.extra.items()}
            torch.set_rng_state(ck["rng"])
            self.record("resume", step=self.step)
        else:
            write_text(self.out / "config.json", json.dumps(self.cfg.to_dict(), indent=2))
            self.record("start", **start, config=self.cfg.to_dict())

    def load_pool(self, make_pool, load_pool, complete: bool) -> dict:
        """The patch pool ``cfg.pool``, written (or completed) first by ``make_pool`` unless
        ``complete``; its size goes in a "pool" record."""
        cfg = self.cfg
        if not complete:
            make_pool(cfg.pool, frames=cfg.pool_frames, echo=lambda s: self.record("pool", message=s))
        data = load_pool(cfg.pool)
        self.record("pool", patches=len(next(iter(data.values()))))     # all arrays hold N patches
        return data

    def save_last(self) -> None:
        import torch
        atomic_save({**{k: obj.state_dict() for k, obj in self.states.items()}, "step": self.step,
                     "best": _plain(self.best), **{k: _plain(v) for k, v in self.extra.items()},
                     "elapsed": self.elapsed, "rng": torch.get_rng_state(),
                     "config": json.dumps(self.cfg.to_dict())}, self.out / "last.pt")

    def keep_best(self, score: float, lower_is_better: bool = False, **best_pt) -> bool:
        """Whether ``score`` beats the best so far; if it does, it becomes the best and best.pt
        is written with ``best_pt`` (and the config)."""
        better = score < self.best if lower_is_better else score > self.best
        if better:
            self.best = score
            atomic_save({**{k: _plain(v) for k, v in best_pt.items()}, "config": json.dumps(self.cfg.to_dict())},
                        self.out / "best.pt")
        return better

    def loop(self, step_fn, eval_fn, optimizers, lr_at, metrics=("loss",), stop_at: int | None = None,
             on_checkpoint=None) -> None:
        """Train until ``cfg.steps``, or ``stop_at``, or SIGINT/SIGTERM; last.pt is saved every
        ``cfg.ckpt_every`` steps and, whatever ends the loop, on the way out.

        A step sets ``lr_at(step)`` on the ``optimizers`` and calls ``step_fn(rng)`` with the
        step's generator; it returns the step's values of ``metrics`` (None: not measured). Every
        ``cfg.log_every`` steps a "train" record holds their means since the last one and the
        seconds per step. Every ``cfg.eval_every`` steps and after the last, ``eval_fn()`` returns
        the fields of an "eval" record (``eval_fn`` None: the run validates nothing); its time does
        not count as training time. ``on_checkpoint()`` runs after each periodic save."""
        cfg = self.cfg
        window = {k: [] for k in metrics}
        t_last = time.time()
        window_s, window_n = 0.0, 0
        with StopFlag() as stop:
            try:
                while self.step < cfg.steps and not stop.now and (stop_at is None or self.step < stop_at):
                    rng = np.random.default_rng([cfg.seed, self.step])
                    lr = lr_at(self.step)
                    for opt in optimizers:
                        for g in opt.param_groups:
                            g["lr"] = lr
                    for k, v in step_fn(rng).items():
                        if v is not None:
                            window[k].append(v)
                    self.step += 1
                    now = time.time()
                    self.elapsed += now - t_last
                    window_s, window_n = window_s + now - t_last, window_n + 1
                    t_last = now
                    if self.step % cfg.log_every == 0:
                        means = {k: float(np.mean(v)) if v else None for k, v in window.items()}
                        self.history.append(means)
                        self.record("train", step=self.step, **means, lr=lr, s_per_step=round(window_s / window_n, 3),
                                    elapsed_s=round(self.elapsed, 1))
                        window = {k: [] for k in metrics}
                        window_s, window_n = 0.0, 0
                    if eval_fn is not None and ((cfg.eval_every and self.step % cfg.eval_every == 0)
                                                or self.step == cfg.steps):
                        self.record("eval", step=self.step, **eval_fn())
                        t_last = time.time()
                    if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                        self.save_last()
                        if on_checkpoint is not None:
                            on_checkpoint()
            finally:
                self.save_last()

    def finish(self, results: dict, weights: Path, export, source: str = "best.pt", **metadata) -> dict:
        """Close the run and return its summary: step, ``results`` (the best score...), elapsed_s,
        interrupted, and weights when the run is complete and has the checkpoint ``source``
        (best.pt; last.pt for a run that validates nothing) — then ``export(checkpoint, weights,
        meta)`` has written that file first; a dict it returns joins the summary. The summary is
        also the "final" record."""
        summary = {"step": self.step, **results, "elapsed_s": round(self.elapsed, 1),
                   "interrupted": self.step < self.cfg.steps}
        if self.step >= self.cfg.steps and (self.out / source).exists():
            more = export(self.out / source, weights, {"steps": self.step, "train_seconds": round(self.elapsed),
                                                       **metadata})
            summary["weights"] = str(weights)
            if isinstance(more, dict):
                summary.update(more)
        self.record("final", **summary)
        self.close()
        return summary

    def close(self) -> None:
        """Close the log (finish does; call it when a run ends without finishing)."""
        self._log.close()


# ---------------------------------------------------------------- command line

def positive(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {v}")
    return v


def nonneg(text: str) -> int:
    """argparse type: an integer ≥ 0."""
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {v}")
    return v


TRAINING_GROUP = "training (fixed for a run; on --resume they default to the checkpoint's)"


def add_batch_arguments(g, d: RunConfig, crop_help: str, lr_help: str, crop_type=positive,
                        batch_help: str = "patches per step") -> None:
    """--steps, --batch, --crop and --lr of a trainer, defaults from ``d``. ``crop_type``: the
    argparse type of --crop (a side in px; the flow trainer's is H×W)."""
    crop = "x".join(str(v) for v in d.crop) if isinstance(d.crop, (tuple, list)) else d.crop
    g.add_argument("--steps", type=positive, default=None, help=f"optimiser steps (default {d.steps})")
    g.add_argument("--batch", type=positive, default=None, help=f"{batch_help} (default {d.batch})")
    g.add_argument("--crop", type=crop_type, default=None, metavar="HxW" if crop_type is not positive else None,
                   help=f"{crop_help} (default {crop})")
    g.add_argument("--lr", type=float, default=None, help=f"{lr_help} (default {d.lr})")


def add_run_arguments(r, d: RunConfig, out_help: str, frames_help: str | None, export_help: str,
                      eval_help: str = "validate every N steps") -> None:
    """The run options of a trainer: folder, resume, pool (a patch trainer's: ``frames_help`` not
    None), cadences, threads, export."""
    r.add_argument("--out", default=d.out, help=f"{out_help} (default {d.out})")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    if frames_help is not None:
        r.add_argument("--pool", default=d.pool, help=f"patch pool folder (default {d.pool})")
        r.add_argument("--pool-frames", type=positive, default=d.pool_frames,
                       help=f"{frames_help} (default {d.pool_frames})")
        r.add_argument("--make-pool", action="store_true", help="only write (or complete) the patch pool")
    r.add_argument("--eval-every", type=nonneg, default=d.eval_every, help=f"{eval_help} (default {d.eval_every})")
    r.add_argument("--ckpt-every", type=positive, default=d.ckpt_every, help=f"checkpoint every N steps (default {d.ckpt_every})")
    r.add_argument("--log-every", type=positive, default=d.log_every, help=f"log every N steps (default {d.log_every})")
    r.add_argument("--threads", type=positive, default=d.threads, help=f"torch CPU threads (default {d.threads})")
    r.add_argument("--export", default=None, metavar="PATH", help=export_help)


def run_settings(args) -> dict:
    """The run settings of :func:`add_run_arguments` on a trainer's command line (they may change
    on --resume)."""
    return {"threads": args.threads, "ckpt_every": args.ckpt_every, "eval_every": args.eval_every,
            "log_every": args.log_every, "export": args.export}


def pool_run_settings(args) -> dict:
    """The run settings of a patch trainer's command line: :func:`run_settings` and the pool."""
    return {"pool": args.pool, "pool_frames": args.pool_frames, **run_settings(args)}


def checkpoint_config(path) -> dict:
    """The config saved in a trainer's checkpoint (read weights-only)."""
    return load_checkpoint(path)["config"]


def _as_list(v):
    return list(v) if isinstance(v, (tuple, list)) else v


def config_from_args(cls, args, trajectory: tuple[str, ...], settings: dict, load_config=checkpoint_config):
    """The config of a ``graph train ...`` command, or None after printing why it cannot run.

    The ``trajectory`` fields given on the command line go over the defaults of ``cls`` or, when
    ``--out`` already holds a run (``last.pt``), over that run's config: continuing it takes
    ``--resume`` and no other trajectory values. The run ``settings`` (threads, cadences, ...)
    then go over both."""
    out = Path(args.out)
    given = {k: getattr(args, k) for k in trajectory if getattr(args, k, None) is not None}
    base = cls()
    if (out / "last.pt").exists():
        if not args.resume:
            print(f"error: {out} already holds a run; pass --resume to continue it, or choose another --out",
                  file=sys.stderr)
            return None
        try:
            base = cls.from_dict(load_config(out / "last.pt"))
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return None
        diff = {k: (getattr(base, k), v) for k, v in given.items() if _as_list(v) != _as_list(getattr(base, k))}
        if diff:
            print(f"error: cannot resume {out} with other settings (checkpoint, given): {diff}", file=sys.stderr)
            return None
    return cls.from_dict({**base.to_dict(), **given, "out": str(out), **settings})


def main_of(module: str, doc: str | None, add_arguments, argv=None) -> int:
    """``python -m <module>``: the arguments of ``add_arguments``, described by the first paragraph
    of ``doc``; runs the handler they set as ``func``."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=(doc or "").split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    return args.func(args)
