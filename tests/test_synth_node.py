"""SynthClip node and `graph synth`: the project's embedded data source."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import celgraph as cg


def clip_graph(frames="1-4", **params):
    g = cg.Graph(frames=frames)
    g.add("SynthClip", name="clip", width=160, height=96, **params)
    return g


def test_outputs_have_the_declared_types_and_shapes(engine):
    r = engine.run(clip_graph(seed=1, sprites=2), frames=[2])
    v = lambda out: r.value("clip", out, 2)   # noqa: E731
    assert v("image").shape == (96, 160, 3) and v("fill").shape == (96, 160, 3)
    assert v("lines").shape == (96, 160) and 0 <= v("lines").min() and v("lines").max() <= 1
    assert v("regions").dtype == np.int32 and v("objects").dtype == np.int32
    assert set(np.unique(v("objects"))) <= {0, 1, 2}
    assert v("flow_fw").shape == (96, 160, 2) and v("occ_fw").shape == (96, 160)
    assert v("transforms").shape == (3, 3, 3)          # plate + 2 sprites


def test_same_seed_same_clip_and_another_seed_another(engine, tmp_path):
    a = engine.evaluate(clip_graph(seed=4), "clip.image", 3)
    b = cg.Engine(tmp_path / "other").evaluate(clip_graph(seed=4), "clip.image", 3)
    c = engine.evaluate(clip_graph(seed=5), "clip.image", 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_clip_is_one_task_however_many_frames_are_asked_for(engine):
    g = clip_graph(seed=2)
    g.add("Blur", name="blur", image=g["clip"]["image"])
    r1 = engine.run(g, frames=[1, 2])
    r2 = engine.run(g, frames=[3, 4])
    assert r1.computed == 3 and r2.computed == 2          # the clip is cached after the first chunk


def test_lines_sit_on_sprites_only(engine):
    r = engine.run(clip_graph(seed=3, sprites=2), frames=[1])
    lines, objects = r.value("clip", "lines", 1), r.value("clip", "objects", 1)
    assert lines[objects == 0].mean() < lines[objects > 0].mean()


def test_graph_synth_writes_frames_and_ground_truth(tmp_path):
    graph = Path(sys.executable).with_name("graph")
    r = subprocess.run([str(graph), "synth", str(tmp_path / "clip"), "--frames", "3", "--size", "128x80",
                        "--seed", "9", "--sprites", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "clip"
    for stem in ("color", "fill", "lines", "flow_fw", "flow_bw", "flow_fw_preview"):
        assert len(list(out.glob(f"{stem}.0*"))) == 3, stem
    gt = np.load(out / "groundtruth.npz")
    assert gt["color"].shape == (3, 80, 128, 3) and gt["flow_fw"].shape == (3, 80, 128, 2)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 9 and meta["clip"]
    from celgraph.nodes.io import read_image
    assert read_image(out / "flow_fw.0001.exr").shape == (80, 128, 2)
    assert np.allclose(read_image(out / "flow_fw.0001.exr"), gt["flow_fw"][0], atol=1e-5)


def test_graph_synth_rejects_a_bad_size(tmp_path):
    graph = Path(sys.executable).with_name("graph")
    r = subprocess.run([str(graph), "synth", str(tmp_path), "--size", "big"], capture_output=True, text=True)
    assert r.returncode == 2 and "WIDTHxHEIGHT" in r.stderr
