"""``graph train ...``: the ``train`` command and its sub-commands, one per trainer.

Each trainer module owns its command line, built from the same pieces of
:mod:`celgraph.train.loop` (``add_batch_arguments``, ``add_run_arguments``, ``config_from_args``):
``flow`` (:mod:`celgraph.train.flow`), ``gapfill``, ``sketch``, ``colorize``. Wire them into the
main CLI with ``add_train_parser(subparsers, extra)``; the chosen handler is stored as
``args.func`` and returns an exit code (0 ok, 2 bad usage / unresumable run, 130 interrupted;
an interrupted run has saved a checkpoint and continues with ``--resume``).

    graph train flow --variant small --steps 4000 --batch 4 --crop 192x256 --out runs/flow
    graph train flow --out runs/flow --resume          # continue after a crash or Ctrl-C
    graph train flow --eval-only weights.safetensors    # held-out EPE beside DIS, as JSON
"""
from __future__ import annotations

import argparse

from .flow import add_flow_arguments, add_flow_train_parser, cmd_train_flow, parse_crop

__all__ = ["add_train_parser", "add_flow_arguments", "cmd_train_flow", "parse_crop"]


def add_train_parser(subparsers, extra=()) -> argparse.ArgumentParser:
    """Add ``train`` (with its sub-command ``flow``) to the main CLI's subparsers.

    ``extra``: more ``add_*_train_parser(train_subparsers)`` functions (e.g. gapfill's), each
    called with the subparsers of ``train``. Returns the ``train`` parser; its subparsers are
    also kept as ``.train_subparsers`` for late additions."""
    t = subparsers.add_parser("train", help="train the project's networks on synthetic data")
    tsub = t.add_subparsers(dest="train_command", required=True)
    t.train_subparsers = tsub
    add_flow_train_parser(tsub)
    for add in extra:
        add(tsub)
    return t
