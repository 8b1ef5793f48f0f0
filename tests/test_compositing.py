"""Compositing utilities: Ink (LineArt → a drawing) and Reformat."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from celgraph.engine import registry
from celgraph.engine.node import Context
from celgraph.graph import normalize_params


def run_node(type_name: str, frame: int = 1, **values):
    t = registry.get(type_name)
    inputs = {k: v for k, v in values.items() if isinstance(v, np.ndarray)}
    params, issues = normalize_params(t, {k: v for k, v in values.items() if k not in inputs})
    assert not issues, issues
    ctx = Context("n", t(), params, frame, [frame], Path.cwd())
    raw = t().compute(ctx, **inputs)
    return {o.name: o.type.coerce(raw[o.name]) for o in t.outputs}


def test_ink_draws_black_ink_on_white_paper():
    lines = np.array([[0.0, 0.25, 1.0]], np.float32)
    out = run_node("Ink", lines=lines)["image"]
    assert out.shape == (1, 3, 4)
    np.testing.assert_allclose(out[0, :, 0], [1.0, 0.75, 0.0])
    np.testing.assert_allclose(out[0, :, :3], np.repeat(out[0, :, :1], 3, axis=1))
    np.testing.assert_allclose(out[0, :, 3], 1.0)


def test_ink_without_paper_is_premultiplied_black_with_coverage_alpha():
    lines = np.array([[0.0, 0.5, 1.0]], np.float32)
    out = run_node("Ink", lines=lines, paper="none")["image"]
    np.testing.assert_allclose(out[0, :, :3], 0.0)
    np.testing.assert_allclose(out[0, :, 3], [0.0, 0.5, 1.0])
    over_white = out[..., :3] + (1 - out[..., 3:]) * 1.0            # over white paper: the same drawing
    np.testing.assert_allclose(over_white, run_node("Ink", lines=lines)["image"][..., :3])


def test_ink_then_to_line_art_gives_the_coverage_back():
    rng = np.random.default_rng(0)
    lines = rng.random((8, 9), dtype=np.float32)
    back = run_node("ToLineArt", image=run_node("Ink", lines=lines)["image"])["lines"]
    np.testing.assert_allclose(back, lines, atol=1e-5)
