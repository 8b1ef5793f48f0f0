"""Long optimisations cut into segments, each ending in a checkpoint of the *whole* state.

A trainer lists its segments (stage, first iteration, end) and can run one, dump its complete
state (network weights, optimiser moments, random generator, labels, canvases) as a dict of numpy
arrays, and load such a dict back. `run` walks the segments through a `checkpoint(name, compute)`
callback — the node passes one that stores the state as a cache entry keyed by the task's content
and the segment — so an interrupted run keeps every finished segment and a rerun continues from the
last one. Because the whole state is restored (the generator included), a resumed run is
bit-identical to one that was never interrupted, and the segment length does not change the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import torch

Progress = Callable[[float, str], None]          # (fraction done 0..1, message)


@dataclass(frozen=True)
class Segment:
    stage: str
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.stage}:{self.start}-{self.stop}"


def split(stage: str, n: int, every: int) -> list[Segment]:
    """Segments of at most `every` iterations covering [0, n) (every ≤ 0: one segment)."""
    if n <= 0:
        return [Segment(stage, 0, 0)]
    step = n if every <= 0 else every
    return [Segment(stage, a, min(a + step, n)) for a in range(0, n, step)]


class Trainer(Protocol):
    def segments(self) -> list[Segment]: ...
    def run_segment(self, segment: Segment) -> None: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


Checkpoint = Callable[[str, Callable[[], dict]], dict]


def run(trainer: Trainer, checkpoint: Checkpoint | None = None, on_resume: Callable[[str], None] | None = None) -> None:
    """Run every segment of `trainer`; `checkpoint(name, compute)` returns the stored state after
    segment `name`, calling `compute` (run the segment, return the new state) only when there is none.
    Stored states are loaded lazily: only the last one before the first segment still to run."""
    pending: dict | None = None            # a stored state the trainer has not loaded yet
    for seg in trainer.segments():
        ran = False

        def compute(seg=seg):
            nonlocal ran, pending
            ran = True
            if pending is not None:
                trainer.load_state_dict(pending)
                if on_resume is not None:
                    on_resume(seg.name)
                pending = None
            trainer.run_segment(seg)
            return trainer.state_dict()

        state = compute() if checkpoint is None else checkpoint(seg.name, compute)
        if not ran:
            pending = state
    if pending is not None:
        trainer.load_state_dict(pending)


# ---- state ↔ numpy --------------------------------------------------------------------------

def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A copy (never a view: the tensor keeps training after the checkpoint is taken)."""
    return t.detach().cpu().numpy().copy()


def from_numpy(a: Any, device: str | torch.device = "cpu") -> torch.Tensor:
    return torch.from_numpy(np.array(a, copy=True)).to(device)


def module_state(module: torch.nn.Module) -> dict:
    return {k: to_numpy(v) for k, v in module.state_dict().items()}


def load_module_state(module: torch.nn.Module, state: dict) -> None:
    device = next(module.parameters()).device
    module.load_state_dict({k: from_numpy(v, device) for k, v in state.items()})


def optimizer_state(opt: torch.optim.Optimizer) -> dict:
    sd = opt.state_dict()
    return {str(i): {k: to_numpy(v) if torch.is_tensor(v) else np.asarray(v) for k, v in s.items()}
            for i, s in sd["state"].items()}


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict) -> None:
    sd = opt.state_dict()
    sd["state"] = {int(i): {k: from_numpy(v) for k, v in s.items()} for i, s in state.items()}
    opt.load_state_dict(sd)


def generator_state(g: torch.Generator) -> np.ndarray:
    return g.get_state().numpy().copy()


def load_generator_state(g: torch.Generator, state) -> None:
    g.set_state(torch.from_numpy(np.array(state, dtype=np.uint8, copy=True)))
