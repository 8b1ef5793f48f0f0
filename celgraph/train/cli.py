"""``graph train flow``: the command line of :mod:`celgraph.train.flow`.

Wire it into the main CLI with ``add_train_parser(subparsers)``; the chosen handler is stored as
``args.func`` and returns an exit code (0 ok, 2 bad usage / unresumable run, 130 interrupted;
an interrupted run has saved a checkpoint and continues with ``--resume``).

    graph train flow --variant small --steps 4000 --batch 4 --crop 192x256 --out runs/flow
    graph train flow --out runs/flow --resume          # continue after a crash or Ctrl-C
    graph train flow --eval-only weights.safetensors    # held-out EPE beside DIS, as JSON
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .loop import EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, config_from_args, nonneg, positive

__all__ = ["add_train_parser", "add_flow_arguments", "cmd_train_flow", "parse_crop"]


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
    from celgraph.train.flow import TrainConfig
    d = TrainConfig()
    g = p.add_argument_group("training (fixed for a run; on --resume they default to the checkpoint's)")
    g.add_argument("--variant", choices=("small", "large"), default=None, help=f"RAFT-small or RAFT (default {d.variant})")
    g.add_argument("--steps", type=positive, default=None, help=f"optimiser steps (default {d.steps})")
    g.add_argument("--batch", type=positive, default=None, help=f"pairs per step (default {d.batch})")
    g.add_argument("--crop", type=parse_crop, default=None, metavar="HxW",
                   help=f"training crop, multiples of 8 (default {d.crop[0]}x{d.crop[1]})")
    g.add_argument("--lr", type=float, default=None, help=f"peak learning rate of the one-cycle schedule (default {d.lr})")
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
    r.add_argument("--out", default=d.out, help=f"run folder: log.jsonl, checkpoints, weights (default {d.out})")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    r.add_argument("--eval-every", type=nonneg, default=d.eval_every,
                   help=f"validate (and keep the best model) every N steps; 0 = only at the end (default {d.eval_every})")
    r.add_argument("--ckpt-every", type=positive, default=d.ckpt_every, help=f"checkpoint every N steps (default {d.ckpt_every})")
    r.add_argument("--log-every", type=positive, default=d.log_every, help=f"log line every N steps (default {d.log_every})")
    r.add_argument("--workers", type=nonneg, default=d.workers, help="DataLoader worker processes (default 0: in-process)")
    r.add_argument("--threads", type=positive, default=d.threads, help=f"torch CPU threads (default {d.threads})")
    r.add_argument("--export", default=None, metavar="PATH",
                   help="where the final safetensors go (default OUT/raft_<variant>_toon.safetensors)")
    r.add_argument("--stop-at", type=positive, default=None, metavar="N",
                   help="stop after N steps with a checkpoint, as an interruption would (resume later with --resume)")
    r.add_argument("--no-final-eval", action="store_true", help="skip the held-out test evaluation at the end")
    r.add_argument("--eval-only", metavar="WEIGHTS", default=None,
                   help="train nothing: print the held-out EPE of WEIGHTS beside DIS 'medium' as JSON")
    r.add_argument("--json", action="store_true", help="print log records as JSON lines (default: short text)")
    p.set_defaults(func=cmd_train_flow)
    return p


def add_train_parser(subparsers, extra=()) -> argparse.ArgumentParser:
    """Add ``train`` (with its sub-command ``flow``) to the main CLI's subparsers.

    ``extra``: more ``add_*_train_parser(train_subparsers)`` functions (e.g. gapfill's), each
    called with the subparsers of ``train``. Returns the ``train`` parser; its subparsers are
    also kept as ``.train_subparsers`` for late additions."""
    t = subparsers.add_parser("train", help="train the project's networks on synthetic data")
    tsub = t.add_subparsers(dest="train_command", required=True)
    t.train_subparsers = tsub
    f = tsub.add_parser("flow", help="train RAFT-small / RAFT optical flow on synthetic cartoon pairs",
                        description="Train RAFT-small / RAFT optical flow on celgraph.synth pairs after the "
                                    "RAFT recipe (sequence loss γ, AdamW, one-cycle LR, grad clip 1.0); "
                                    "resumable, deterministic for a seed on the CPU.")
    add_flow_arguments(f)
    for add in extra:
        add(tsub)
    return t


def _short(line: str) -> None:
    rec = json.loads(line)
    ev = rec.pop("event")
    if ev == "train":
        print(f"step {rec['step']:>6}  loss {rec['loss']:.3f}  epe {rec['epe']:.3f}  lr {rec['lr']:.2e}  "
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
    from celgraph.train.flow import TRAJECTORY_FIELDS, TrainConfig, evaluate_weights, load_checkpoint, train
    if args.eval_only:
        if not Path(args.eval_only).is_file():
            print(f"error: no weights file {args.eval_only}", file=sys.stderr)
            return EXIT_USAGE
        print(json.dumps(evaluate_weights(args.eval_only, threads=args.threads), indent=2))
        return EXIT_OK
    cfg = config_from_args(TrainConfig, args, TRAJECTORY_FIELDS,
                           {"eval_every": args.eval_every, "ckpt_every": args.ckpt_every, "log_every": args.log_every,
                            "workers": args.workers, "threads": args.threads, "export": args.export,
                            "final_eval": not args.no_final_eval},
                           load_config=lambda path: load_checkpoint(path)["config"])
    if cfg is None:
        return EXIT_USAGE
    echo = (lambda s: print(s, flush=True)) if args.json else _short
    try:
        res = train(cfg, resume=args.resume, stop_at=args.stop_at, echo=echo)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_CANCELLED if res.get("interrupted") and args.stop_at is None else EXIT_OK
