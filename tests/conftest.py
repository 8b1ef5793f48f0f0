"""Shared fixtures: small node types that count their computes, registered for the tests only."""
from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import celgraph as cg
from celgraph.engine import (Choice, Context, Float, Image, In, Int, Mask, NodeType, Out, register,
                             registry)
from celgraph.graph import normalize_params

CALLS: Counter = Counter()          # (node name, frame) → number of computes
_lock = threading.Lock()


def _count(ctx: Context) -> None:
    with _lock:
        CALLS[(ctx.node, ctx.frame)] += 1


class Source(NodeType):
    """A frame-dependent constant image: value + frame/100."""
    id, version, category = "test.Source", 1, "Test"
    outputs = [Out("image", Image)]
    params = [Float("value", 0.0), Int("size", 8, min=1, max=4096)]

    def compute(self, ctx, **_):
        _count(ctx)
        s = ctx.params.size
        return {"image": np.full((s, s, 3), ctx.params.value + ctx.frame / 100, np.float32)}


class AddConst(NodeType):
    """image + amount."""
    id, version, category = "test.AddConst", 1, "Test"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image), Out("mask", Mask)]
    params = [Float("amount", 1.0, min=-100, max=100), Choice("mode", "add", choices=("add", "sub"))]

    def compute(self, ctx, image):
        _count(ctx)
        sign = 1 if ctx.params.mode == "add" else -1
        out = image + sign * ctx.params.amount
        return {"image": out, "mask": (out[:, :, 0] > 0.5).astype(np.float32)}


class Sum(NodeType):
    """a + b (b optional)."""
    id, version, category = "test.Sum", 1, "Test"
    inputs = [In("a", Image), In("b", Image, optional=True)]
    outputs = [Out("image", Image)]

    def compute(self, ctx, a, b):
        _count(ctx)
        return {"image": a + (b if b is not None else 0)}


class FailOn(NodeType):
    """Raises on one frame; passes its input through otherwise."""
    id, version, category = "test.FailOn", 1, "Test"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]
    params = [Int("frame", 2)]

    def compute(self, ctx, image):
        _count(ctx)
        if ctx.frame == ctx.params.frame:
            raise ValueError("synthetic failure")
        return {"image": image}


class Slow(NodeType):
    """Sleeps in small steps, reporting progress (and so honouring cancellation)."""
    id, version, category = "test.Slow", 1, "Test"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]
    params = [Float("seconds", 0.2, min=0, max=60)]

    def compute(self, ctx, image):
        _count(ctx)
        steps = max(10, int(ctx.params.seconds / 0.05))
        for i in range(steps):
            time.sleep(ctx.params.seconds / steps)
            ctx.progress(i + 1, steps, "sleeping")
        return {"image": image}


class Neighbours(NodeType):
    """Per-frame node reading frames t-1 and t+1 (clamped): mean of the two."""
    id, version, category = "test.Neighbours", 1, "Test"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]

    def frames_needed(self, ctx):
        fs = ctx.frames
        i = fs.index(ctx.frame)
        return {"image": sorted({fs[max(i - 1, 0)], fs[min(i + 1, len(fs) - 1)]})}

    def compute(self, ctx, image):
        _count(ctx)
        assert isinstance(image, dict)
        return {"image": sum(image.values()) / len(image)}


class ClipMean(NodeType):
    """Clip scope: every frame becomes the mean over the clip."""
    id, version, category = "test.ClipMean", 1, "Test"
    scope = "clip"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]

    def compute(self, ctx, image):
        _count(ctx)
        mean = sum(image.values()) / len(image)
        return {"image": {f: mean for f in ctx.frames}}


class BadOutput(NodeType):
    """Returns the wrong type."""
    id, version, category = "test.BadOutput", 1, "Test"
    outputs = [Out("image", Image)]

    def compute(self, ctx):
        return {"image": "not an array"}


for _t in (Source, AddConst, Sum, FailOn, Slow, Neighbours, ClipMean, BadOutput):
    if registry.get(_t.id) is None:
        register(_t)


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()
    yield


@pytest.fixture
def engine(tmp_path):
    return cg.Engine(tmp_path / "cache")


def chain(frames="1-3", value=0.0, amount=1.0) -> cg.Graph:
    """src → add → sum(add, src)."""
    g = cg.Graph(frames=frames)
    src = g.add("test.Source", name="src", value=value)
    add = g.add("test.AddConst", name="add", image=src["image"], amount=amount)
    g.add("test.Sum", name="sum", a=add["image"], b=src["image"])
    return g


def write_frames(folder, pattern="in.####.png", frames=range(1, 4), value=None, size=(8, 8)):
    """Write a small PNG sequence; frame f gets value f/10 unless `value` is given: scene-linear, as
    Read gives it back (the files hold its sRGB encoding, in 16 bits so the round trip stays within
    half an 8-bit step)."""
    from celgraph.colorspace import from_working
    from celgraph.nodes.io import frame_path, write_image
    paths = []
    for f in frames:
        p = folder / frame_path(pattern, f)
        v = f / 10 if value is None else value
        if p.suffix == ".exr":
            write_image(p, np.full((*size, 3), v, np.float32))
        else:
            write_image(p, from_working(np.full((*size, 3), v, np.float32), "sRGB"), "16")
        paths.append(p)
    return paths


def run_node(type_name: str, frame: int = 1, **values):
    """Call one node type's compute directly: numpy values are inputs, the rest params."""
    t = registry.get(type_name)
    inputs = {k: v for k, v in values.items() if isinstance(v, np.ndarray)}
    params, issues = normalize_params(t, {k: v for k, v in values.items() if k not in inputs})
    assert not issues, issues
    ctx = Context("n", t(), params, frame, [frame], Path.cwd())
    raw = t().compute(ctx, **inputs)
    return {o.name: o.type.coerce(raw[o.name]) for o in t.outputs}
