"""Compositing utilities: Ink (LineArt → a drawing) and Reformat."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from celgraph import colorspace
from celgraph.engine import registry
from celgraph.graph import normalize_params

from conftest import run_node


def test_ink_draws_black_ink_on_white_paper():
    lines = np.array([[0.0, 0.25, 1.0]], np.float32)
    out = run_node("Ink", lines=lines)["image"]
    assert out.shape == (1, 3, 4)
    shown = colorspace.from_working(out, "sRGB")          # the drawing's greys are display values
    np.testing.assert_allclose(shown[0, :, 0], [1.0, 0.75, 0.0], atol=1e-4)
    np.testing.assert_allclose(out[0, :, :3], np.repeat(out[0, :, :1], 3, axis=1))
    np.testing.assert_allclose(out[0, :, 3], 1.0)


def test_ink_without_paper_is_premultiplied_black_with_coverage_alpha():
    lines = np.array([[0.0, 0.5, 1.0]], np.float32)
    out = run_node("Ink", lines=lines, paper="none")["image"]
    np.testing.assert_allclose(out[0, :, :3], 0.0)
    np.testing.assert_allclose(out[0, :, 3], [0.0, 0.5, 1.0])


def test_ink_then_to_line_art_gives_the_coverage_back():
    rng = np.random.default_rng(0)
    lines = rng.random((8, 9), dtype=np.float32)
    back = run_node("ToLineArt", image=run_node("Ink", lines=lines)["image"])["lines"]
    np.testing.assert_allclose(back, lines, atol=1e-4)


# ---- Reformat ----------------------------------------------------------------------------------------

def smooth_plate(h=108, w=192, seed=0):
    """A band-limited RGBA plate (what area/lanczos can bring back well), premultiplied, alpha 1."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([0.5 + 0.4 * np.sin(x / 17.0 + c) * np.cos(y / 13.0 - c) for c in rng.random(3) * 6], axis=2)
    return np.concatenate([rgb, np.ones((h, w, 1), np.float32)], axis=2).astype(np.float32)


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_reformat_sizes_keep_the_pixel_aspect_when_one_side_is_given():
    plate = smooth_plate()
    assert run_node("Reformat", image=plate, mode="size", width=96)["image"].shape == (54, 96, 4)
    assert run_node("Reformat", image=plate, mode="size", height=27)["image"].shape == (27, 48, 4)
    assert run_node("Reformat", image=plate, mode="size", width=50, height=40)["image"].shape == (40, 50, 4)
    assert run_node("Reformat", image=plate, mode="scale", scale=0.25)["image"].shape == (27, 48, 4)


def test_reformat_area_shrink_averages_the_pixels_it_covers():
    img = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    out = run_node("Reformat", image=img, mode="size", width=2, filter="area")["image"]
    np.testing.assert_allclose(out[..., 0], [[2.5, 4.5], [10.5, 12.5]])
    auto = run_node("Reformat", image=img, mode="size", width=2)["image"]               # auto = area when shrinking
    np.testing.assert_array_equal(auto, out)


def test_reformat_down_and_back_to_the_reference_size():
    plate = smooth_plate()
    small = run_node("Reformat", image=plate, mode="size", width=46, height=26)["image"]  # 1920x1080 -> 456x256
    assert small.shape == (26, 46, 4)
    back = run_node("Reformat", image=small, reference=plate, mode="reference")["image"]
    assert back.shape == plate.shape
    assert psnr(back, plate) > 30                          # smooth content comes back closely
    worse = run_node("Reformat", image=small, reference=plate, mode="reference", filter="nearest")["image"]
    assert psnr(back, plate) > psnr(worse, plate) + 3      # and the filter matters


def test_reformat_labels_stay_integer_ids_of_the_input():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, (12, 20)).astype(np.int32)
    labels[0, 0] = 2 ** 30 + 7                             # beyond float32's exact integers
    up = run_node("ReformatLabels", labels=labels, mode="scale", scale=3.0)["labels"]
    assert up.dtype == np.int32 and up.shape == (36, 60)
    assert set(np.unique(up)) <= set(np.unique(labels)) and up[0, 0] == 2 ** 30 + 7
    np.testing.assert_array_equal(up[1::3, 1::3], labels)  # each input pixel's centre keeps its id
    ref = np.zeros((12, 20, 3), np.float32)
    back = run_node("ReformatLabels", labels=up, reference=ref, mode="reference")["labels"]
    np.testing.assert_array_equal(back, labels)


def test_reformat_lines_stay_coverage_and_flow_vectors_scale():
    lines = np.zeros((20, 20), np.float32)
    lines[:, 10] = 1.0
    up = run_node("ReformatLines", lines=lines, mode="scale", scale=2.0, filter="lanczos")["lines"]
    assert up.shape == (40, 40) and up.min() >= 0.0 and up.max() <= 1.0
    flow = np.zeros((10, 20, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -1.0
    small = run_node("ReformatFlow", flow=flow, mode="size", width=10, height=10)["flow"]
    np.testing.assert_allclose(small[..., 0], 1.5, atol=1e-6)
    np.testing.assert_allclose(small[..., 1], -1.0, atol=1e-6)


def test_reformat_errors_name_the_node_and_param():
    t = registry.get("Reformat")
    params, issues = normalize_params(t, {"mode": "size"})
    from celgraph.core.node import CheckContext
    issues = t().check(CheckContext("small", params, [1], Path.cwd()))
    assert [(i.code, i.node, i.field) for i in issues] == [("param_out_of_range", "small", "width")]
    with pytest.raises(ValueError, match="n .*celgraph.Reformat.* frame 1: mode 'reference' needs the reference"):
        run_node("Reformat", image=smooth_plate(), mode="reference")


# ---- colour management: the same drawing from an sRGB PNG and a linear EXR -----------------------

def drawing(h=96, w=128):
    """A display-referred (sRGB) drawing: the line art of a procedural frame over pale colours,
    every stroke cut at one column so GapFill has gaps to close."""
    from celgraph.synth import make_clip
    clip = make_clip(5, width=w, height=h, n_frames=1, flow=False).to_dict()
    ink = clip["lines"][0].copy()
    ink[:, w // 2:w // 2 + 3] = 0.0                      # a cut through every stroke: gaps to close
    paper = 0.75 + 0.25 * clip["color"][0]               # pale colours, the line art drawn over them
    return (paper * (1.0 - ink[:, :, None])).astype(np.float32)


def colour_graph(tmp_path, path, colorspace="auto"):
    import celgraph as cg
    g = cg.Graph(frames="1", base_dir=tmp_path)
    r = g.add("Read", name="read", path=path, colorspace=colorspace)
    g.add("Sketch", name="sketch", image=r["image"])
    lines = g.add("ToLineArt", name="lines", image=r["image"])
    g.add("GapFill", name="fill", lines=lines["lines"])
    return g


def test_the_same_drawing_as_srgb_png_or_linear_exr_gives_the_same_lines(tmp_path, engine):
    from celgraph.nodes.io import read_image, write_image
    write_image(tmp_path / "drawing.png", drawing(), "16")           # what a paint package saves
    linear = colorspace.to_working(read_image(tmp_path / "drawing.png"), "sRGB")
    write_image(tmp_path / "drawing.exr", linear, "float")           # what Natron or Nuke hands over
    runs = {p: engine.run(colour_graph(tmp_path, p), frames=[1]) for p in ("drawing.png", "drawing.exr")}
    png, exr = runs["drawing.png"], runs["drawing.exr"]
    # stated tolerance: OCIO's sRGB curve is exact to ~3e-5, far below what changes a line
    for node, output in (("sketch", "lines"), ("lines", "lines"), ("fill", "lines"), ("fill", "added")):
        a, b = png.value(node, output, 1), exr.value(node, output, 1)
        assert np.abs(a - b).max() < 1e-3, (node, output, np.abs(a - b).max())
    assert png.value("fill", "added", 1).sum() > 5                   # GapFill did close something
    # without colour management (the EXR's linear values taken as sRGB) the lines differ
    raw = engine.run(colour_graph(tmp_path, "drawing.exr", colorspace="sRGB"), frames=[1], targets=["lines", "sketch"])
    assert np.abs(raw.value("lines", "lines", 1) - png.value("lines", "lines", 1)).max() > 0.1
    assert np.abs(raw.value("sketch", "lines", 1) - png.value("sketch", "lines", 1)).mean() > 5e-3


def test_read_then_write_leaves_pixels_unchanged_when_the_colour_space_matches(tmp_path, engine):
    import celgraph as cg
    from celgraph.nodes.io import read_image, write_image
    rng = np.random.default_rng(3)
    rgba = rng.random((16, 20, 4), dtype=np.float32)
    rgba[..., :3] *= rgba[..., 3:]
    write_image(tmp_path / "a.png", rgba, "8")
    write_image(tmp_path / "b.exr", rgba * 4.0, "half")              # scene-linear values above 1 too
    write_image(tmp_path / "c.tif", rgba[..., :3], "16")
    g = cg.Graph(frames="1", base_dir=tmp_path)
    for name, src in (("a", "a.png"), ("b", "b.exr"), ("c", "c.tif")):
        r = g.add("Read", name=f"read_{name}", path=src)
        g.add("Write", name=f"write_{name}", image=r["image"], path=f"out/{src}", bit_depth="auto")
    engine.run(g)
    for src in ("a.png", "b.exr"):                                   # 8-bit and EXR: exactly
        np.testing.assert_array_equal(read_image(tmp_path / "out" / src), read_image(tmp_path / src), err_msg=src)
    # 16 bits: within one code value (OCIO's sRGB curve round trip is exact to ~3e-5)
    np.testing.assert_allclose(read_image(tmp_path / "out" / "c.tif"), read_image(tmp_path / "c.tif"), atol=1.01 / 65535)
    lin = engine.evaluate(g, "read_a.image", 1)                     # and in between it was linear
    assert lin[..., :3].mean() < read_image(tmp_path / "a.png")[..., :3].mean() - 0.05


def test_colorspace_params_are_checked_and_ocio_is_honoured(tmp_path, monkeypatch):
    import celgraph as cg
    from celgraph.nodes.io import write_image
    write_image(tmp_path / "a.exr", np.zeros((4, 4, 3), np.float32))
    g = cg.Graph(frames="1", base_dir=tmp_path)
    r = g.add("Read", name="read", path="a.exr", colorspace="Rec.9999")
    g.add("Write", name="write", image=r["image"], path="o.png", colorspace="ACEScg")
    issues = g.validate()
    assert [(i.code, i.node, i.field) for i in issues] == [("param_out_of_range", "read", "colorspace")]
    assert "unknown colour space 'Rec.9999'" in issues[0].message
    assert colorspace.resolve("ACEScg") == "ACEScg" and colorspace.working() == "Linear Rec.709 (sRGB)"
    monkeypatch.setenv("OCIO", str(tmp_path / "no-such-config.ocio"))
    with pytest.raises(Exception):
        colorspace.resolve("ACEScg")                 # $OCIO is the config that is asked (and it is missing)


def test_conversion_through_oiios_shared_config_equals_naming_the_config(monkeypatch):
    # convert uses OIIO's shared config (processors kept) while $OCIO is the one it was made from;
    # naming the config instead reloads it each call, with the same pixels
    from celgraph import colorspace
    rng = np.random.default_rng(5)
    for shape in ((30, 40, 4), (20, 30, 3), (16, 12)):
        pixels = rng.random(shape, dtype=np.float32) * 1.2 - 0.1
        for src, dst in (("sRGB", "lin_rec709"), ("lin_rec709", "sRGB"), ("lin_rec709", "ACEScg")):
            shared = colorspace.convert(pixels, src, dst)
            monkeypatch.setattr(colorspace, "_DEFAULT_OCIO", "another config")
            named = colorspace.convert(pixels, src, dst)
            monkeypatch.undo()
            assert np.array_equal(shared, named)
