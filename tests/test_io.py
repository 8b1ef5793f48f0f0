"""Read / Write nodes and their helpers (frame patterns, image files), and the small utility nodes."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

import celgraph as cg
from celgraph import colorspace
from celgraph.engine import NodeFailed
from celgraph.nodes import io as cgio
from celgraph.nodes.io import frame_path, is_sequence, read_image, write_image

from conftest import CALLS, run_node, write_frames


# ---- helpers ---------------------------------------------------------------------------------

def files_in(folder: Path) -> list[str]:
    """Every file under `folder` (hidden ones included), relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def smooth_rgba(h=24, w=32, premultiplied=True, min_alpha=0.0) -> np.ndarray:
    """A smooth test image (gradients, no noise), RGBA float32 in 0..1."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r, g, b = x / (w - 1), y / (h - 1), 0.5 + 0.4 * np.sin(x / 5.0) * np.cos(y / 7.0)
    a = min_alpha + (1 - min_alpha) * (0.5 + 0.5 * np.cos((x + y) / 9.0))
    img = np.stack([r, g, b, a], axis=2).astype(np.float32)
    if premultiplied:
        img[:, :, :3] *= img[:, :, 3:4]
    return img


def graph_in(folder: Path, frames="1-3") -> cg.Graph:
    return cg.Graph(frames=frames, base_dir=folder)


def codes(issues) -> list[str]:
    return [i.code for i in issues]


# ---- frame patterns --------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, frame, expected", [
    ("plate.####.exr", 7, "plate.0007.exr"),
    ("plate.####.exr", 12345, "plate.12345.exr"),
    ("plate.#.exr", 7, "plate.7.exr"),
    ("plate.##.exr", 7, "plate.07.exr"),
    ("plate.%04d.exr", 7, "plate.0007.exr"),
    ("plate.%4d.exr", 7, "plate.0007.exr"),
    ("plate.%d.exr", 7, "plate.7.exr"),
    ("plate.%d.exr", 1234, "plate.1234.exr"),
    ("plate.$F4.exr", 7, "plate.0007.exr"),
    ("plate.$F.exr", 7, "plate.7.exr"),
    ("shots/sh010/plate.####.exr", 3, "shots/sh010/plate.0003.exr"),
])
def test_frame_path_substitutes_the_frame_number_padded_to_the_pattern_width(pattern, frame, expected):
    assert frame_path(pattern, frame) == expected


@pytest.mark.parametrize("pattern", ["plate.####.exr", "plate.%04d.exr", "plate.$F4.exr"])
def test_frame_path_writes_negative_frames_with_a_leading_minus_inside_the_padding(pattern):
    assert frame_path(pattern, -3) == "plate.-003.exr"
    assert frame_path(pattern, -1234) == "plate.-1234.exr"


def test_negative_frames_map_to_distinct_files():
    names = {frame_path("p.####.png", f) for f in range(-3, 4)}
    assert len(names) == 7


def test_frame_path_leaves_a_path_without_a_pattern_unchanged():
    assert frame_path("plate.exr", 7) == "plate.exr"
    assert frame_path("plate.exr", -7) == "plate.exr"


@pytest.mark.parametrize("pattern, expected", [
    ("a.####.png", True), ("a.#.png", True), ("a.%04d.png", True), ("a.%d.png", True),
    ("a.$F4.png", True), ("a.$F.png", True), ("a.png", False), ("shots/sh010/a.exr", False),
])
def test_is_sequence_is_true_only_for_paths_with_a_frame_pattern(pattern, expected):
    assert is_sequence(pattern) is expected


# ---- image files: round trips through Write and Read -------------------------------------------

# (extension, bit depth, channels, (absolute, relative) tolerance)
HALF = (1e-3, 1e-3)          # 11 bit mantissa
ROUND_TRIPS = [
    (".exr", "half", 3, HALF),
    (".exr", "half", 4, HALF),
    (".exr", "float", 3, (0.0, 0.0)),
    (".exr", "float", 1, (0.0, 0.0)),
    (".exr", "auto", 2, HALF),        # flow-like 2 channel data
    (".png", "8", 3, (0.5 / 255 + 1e-6, 0)),
    (".png", "8", 1, (0.5 / 255 + 1e-6, 0)),
    (".png", "16", 3, (0.5 / 65535 + 1e-6, 0)),
    (".png", "16", 4, (2e-4, 0)),     # premultiplied RGBA, stored unpremultiplied in 16 bits
    (".tif", "auto", 3, (0.5 / 65535 + 1e-6, 0)),
    (".tif", "auto", 4, (0.5 / 65535 + 1e-6, 0)),
    (".tiff", "8", 3, (0.5 / 255 + 1e-6, 0)),
    (".dpx", "auto", 3, (1 / 1023 + 1e-6, 0)),     # OIIO truncates to 10 bits: one step
    (".jpg", "auto", 3, (0.11, 0)),   # on sRGB-encoded values: chroma subsampling at the sharpest edges
]


@pytest.mark.parametrize("ext, bit_depth, channels, tol", ROUND_TRIPS,
                         ids=[f"{e[1:]}-{b}-{c}ch" for e, b, c, _ in ROUND_TRIPS])
def test_write_then_read_round_trips_within_the_format_precision(tmp_path, engine, ext, bit_depth, channels,
                                                                  tol):
    src = smooth_rgba()[:, :, :channels] if channels != 2 else \
        (smooth_rgba()[:, :, :2] - 0.5) * 40         # pixel displacements, negative too
    write_image(tmp_path / "src.exr", src, "float")
    g = graph_in(tmp_path, frames="1")
    r = g.add("Read", name="read", path="src.exr")
    g.add("Write", name="write", image=r["image"], path=f"out/result{ext}", bit_depth=bit_depth)
    engine.run(g)
    back = read_image(tmp_path / "out" / f"result{ext}")
    assert back.shape == src.shape
    assert back.dtype == np.float32
    if channels >= 3:      # colour: the file holds the linear pixels encoded in its space (sRGB for 8/16 bit)
        src = colorspace.from_working(src, colorspace.write_space(f"x{ext}", bit_depth))
    np.testing.assert_allclose(back, src, atol=tol[0], rtol=tol[1])


def test_jpeg_round_trip_keeps_the_mean_error_small(tmp_path):
    src = smooth_rgba(premultiplied=False)[:, :, :3]
    write_image(tmp_path / "a.jpg", src)
    assert np.abs(read_image(tmp_path / "a.jpg") - src).mean() < 0.01


def test_half_exr_keeps_values_above_one_and_below_zero(tmp_path):
    src = np.array([[[-2.0, 0.5, 7.25]]], np.float32)
    write_image(tmp_path / "a.exr", src)
    np.testing.assert_allclose(read_image(tmp_path / "a.exr"), src, rtol=1e-3)


def test_integer_formats_clip_to_zero_one(tmp_path):
    write_image(tmp_path / "a.png", np.array([[[-0.5, 0.5, 1.5]]], np.float32))
    np.testing.assert_allclose(read_image(tmp_path / "a.png"), [[[0.0, 128 / 255, 1.0]]], atol=1e-6)


def test_premultiplied_rgba_survives_an_8_bit_png_round_trip(tmp_path):
    src = smooth_rgba(premultiplied=True, min_alpha=0.25)
    write_image(tmp_path / "a.png", src)
    back = read_image(tmp_path / "a.png")
    assert back.shape == src.shape
    np.testing.assert_allclose(back[:, :, 3], src[:, :, 3], atol=0.5 / 255 + 1e-6)
    # colour is stored unpremultiplied in 8 bits, then premultiplied again on read
    assert np.abs(back[:, :, :3] - src[:, :, :3]).max() <= 1.5 / 255
    assert np.all(back[:, :, :3] <= back[:, :, 3:4] + 1e-6)


def test_fully_transparent_pixels_stay_black_through_png(tmp_path):
    src = np.zeros((2, 2, 4), np.float32)
    src[0, 0] = [0.25, 0.5, 0.125, 0.5]
    write_image(tmp_path / "a.png", src)
    back = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(back[1, 1], [0, 0, 0, 0])
    np.testing.assert_allclose(back[0, 0], src[0, 0], atol=2 / 255)


def test_read_image_names_the_file_it_cannot_read(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(OSError, match="broken.png"):
        read_image(bad)


# ---- Write: folders and atomic writes -----------------------------------------------------------

def test_write_creates_missing_folders(tmp_path, engine):
    write_frames(tmp_path / "in")
    g = graph_in(tmp_path)
    r = g.add("Read", name="read", path="in/in.####.png")
    g.add("Write", name="write", image=r["image"], path="deep/er/out.####.exr")
    engine.run(g)
    assert files_in(tmp_path / "deep") == [f"er/out.000{f}.exr" for f in (1, 2, 3)]


def test_write_leaves_no_temp_files_behind(tmp_path, engine):
    write_frames(tmp_path / "in")
    g = graph_in(tmp_path)
    r = g.add("Read", name="read", path="in/in.####.png")
    g.add("Write", name="write", image=r["image"], path="out/out.####.png")
    engine.run(g)
    assert files_in(tmp_path / "out") == ["out.0001.png", "out.0002.png", "out.0003.png"]


def test_write_node_value_names_the_file_with_its_digest_and_size(tmp_path, engine):
    write_frames(tmp_path / "in", frames=[1])
    g = graph_in(tmp_path, frames="1")
    r = g.add("Read", name="read", path="in/in.####.png")
    g.add("Write", name="write", image=r["image"], path="out/out.####.png")
    ref = engine.evaluate(g, "write.file", 1)
    target = tmp_path / "out" / "out.0001.png"
    assert Path(ref["path"]) == target.resolve()
    assert ref["bytes"] == target.stat().st_size
    from celgraph.core.hashing import file_digest
    assert ref["sha256"] == file_digest(target)


def test_a_failed_write_to_an_unsupported_format_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.xyz"
    target.write_bytes(b"previous render")
    with pytest.raises(OSError, match="out.xyz"):
        write_image(target, np.zeros((4, 4, 3), np.float32))
    assert target.read_bytes() == b"previous render"
    assert files_in(tmp_path) == ["out.xyz"]


def test_a_write_that_fails_at_the_rename_keeps_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    write_image(target, np.full((4, 4, 3), 0.25, np.float32))
    before = target.read_bytes()

    def refuse(src, dst):
        raise OSError("disk went away")
    monkeypatch.setattr(cgio.os, "replace", refuse)
    with pytest.raises(OSError, match="disk went away"):
        write_image(target, np.full((4, 4, 3), 0.75, np.float32))
    assert target.read_bytes() == before
    assert files_in(tmp_path) == ["out.png"]


def test_write_node_failing_on_an_unwritable_target_leaves_it_untouched_and_caches_nothing(tmp_path, engine):
    write_frames(tmp_path / "in", frames=[1])
    blocker = tmp_path / "out" / "out.0001.png"      # a folder where the file should go
    blocker.mkdir(parents=True)
    (blocker / "keep.txt").write_text("mine")
    g = graph_in(tmp_path, frames="1")
    r = g.add("Read", name="read", path="in/in.####.png")
    g.add("Write", name="write", image=r["image"], path="out/out.####.png")
    with pytest.raises(NodeFailed) as e:
        engine.run(g)
    assert e.value.node == "write" and e.value.frame == 1
    assert files_in(tmp_path / "out") == ["out.0001.png/keep.txt"]
    key = engine.plan(g, use_cache=False).tasks[("write", 1)].key
    assert key not in engine.store


# ---- Read: missing frames, offset, relative paths, single files ---------------------------------

def test_read_gives_each_frame_its_own_file(tmp_path, engine):
    write_frames(tmp_path, frames=[1, 2, 3])
    g = graph_in(tmp_path)
    g.add("Read", name="read", path="in.####.png")
    for f in (1, 2, 3):
        np.testing.assert_allclose(engine.evaluate(g, "read.image", f), f / 10, atol=0.5 / 255)


def test_read_missing_frame_is_an_error_by_default(tmp_path, engine):
    write_frames(tmp_path, frames=[1, 3])
    g = graph_in(tmp_path)
    g.add("Read", name="read", path="in.####.png")
    with pytest.raises(cg.GraphInvalid) as e:
        engine.run(g)
    assert codes(e.value.issues) == ["file_not_found"]
    assert "2" in e.value.issues[0].message


def test_read_hold_uses_the_nearest_earlier_frame_else_the_nearest_later(tmp_path, engine):
    write_frames(tmp_path, frames=[2, 4])
    g = graph_in(tmp_path, frames="1-6")
    g.add("Read", name="read", path="in.####.png", missing="hold")
    got = {f: float(engine.evaluate(g, "read.image", f)[0, 0, 0]) for f in range(1, 7)}
    expected_source = {1: 2, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4}
    for f, src in expected_source.items():
        assert got[f] == pytest.approx(src / 10, abs=0.5 / 255), f


def test_read_black_gives_zeros_with_the_size_of_the_nearest_frame(tmp_path, engine):
    # (a sequence keeps one size: frames of another size are an error, tests/test_reliability.py)
    write_frames(tmp_path, frames=[1, 3], size=(4, 6))
    g = graph_in(tmp_path, frames="1-4")
    g.add("Read", name="read", path="in.####.png", missing="black")
    two, four = engine.evaluate(g, "read.image", 2), engine.evaluate(g, "read.image", 4)
    assert two.shape == (4, 6, 3) and not two.any()
    assert four.shape == (4, 6, 3) and not four.any()
    assert engine.evaluate(g, "read.image", 3).shape == (4, 6, 3)
    assert engine.evaluate(g, "read.image", 3).any()


def test_read_black_before_the_first_file_uses_the_size_of_the_later_one(tmp_path, engine):
    write_frames(tmp_path, frames=[3], size=(5, 7))
    g = graph_in(tmp_path, frames="1-3")
    g.add("Read", name="read", path="in.####.png", missing="black")
    one = engine.evaluate(g, "read.image", 1)
    assert one.shape == (5, 7, 3) and not one.any()


def test_read_offset_maps_scene_frames_to_file_frames(tmp_path, engine):
    for f in (1001, 1002):
        write_frames(tmp_path, pattern="plate.####.exr", frames=[f], value=f - 1000.5)
    g = graph_in(tmp_path, frames="1-2")
    g.add("Read", name="read", path="plate.####.exr", offset=1000)
    assert engine.evaluate(g, "read.image", 1)[0, 0, 0] == pytest.approx(0.5)
    assert engine.evaluate(g, "read.image", 2)[0, 0, 0] == pytest.approx(1.5)


def test_read_relative_paths_resolve_against_the_scene_folder(tmp_path, engine, monkeypatch):
    shot = tmp_path / "shot"
    write_frames(shot / "plates", frames=[1, 2])
    (shot / "scene.json").write_text(json.dumps({
        "celgraph": 1, "frames": "1-2",
        "nodes": {"read": {"type": "Read", "params": {"path": "plates/in.####.png"}},
                  "write": {"type": "Write", "inputs": {"image": "read.image"},
                            "params": {"path": "renders/out.####.png"}}}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    g = cg.Graph.load(shot / "scene.json")
    assert g.validate() == []
    engine.run(g)
    assert files_in(shot / "renders") == ["out.0001.png", "out.0002.png"]
    assert list(elsewhere.iterdir()) == []
    np.testing.assert_allclose(cgio.read_linear(shot / "renders" / "out.0002.png"), 0.2, atol=0.5 / 255)


def test_read_a_single_file_without_a_pattern_for_every_frame(tmp_path, engine):
    write_image(tmp_path / "still.png", colorspace.from_working(np.full((3, 5, 3), 0.4, np.float32), "sRGB"), "16")
    g = graph_in(tmp_path, frames="1-3")
    g.add("Read", name="read", path="still.png")
    result = engine.run(g)
    assert result.computed == 3
    for f in (1, 2, 3):
        v = result.value("read", "image", f)
        assert v.shape == (3, 5, 3)
        np.testing.assert_allclose(v, 0.4, atol=0.5 / 255)


def test_read_output_is_read_only(tmp_path, engine):
    write_frames(tmp_path, frames=[1])
    g = graph_in(tmp_path, frames="1")
    g.add("Read", name="read", path="in.####.png")
    with pytest.raises(ValueError):
        engine.evaluate(g, "read.image", 1)[0, 0, 0] = 1.0


# ---- validation codes ------------------------------------------------------------------------

def test_read_of_a_missing_single_file_is_file_not_found(tmp_path):
    g = graph_in(tmp_path)
    g.add("Read", name="read", path="nope.png")
    issues = g.validate()
    assert codes(issues) == ["file_not_found"]
    assert issues[0].node == "read" and issues[0].field == "path"
    assert "nope.png" in issues[0].message


def test_read_of_a_sequence_with_no_frame_on_disk_is_file_not_found(tmp_path):
    g = graph_in(tmp_path)
    g.add("Read", name="read", path="nope.####.png", missing="hold")
    issues = g.validate()
    assert codes(issues) == ["file_not_found"]
    assert issues[0].node == "read"


def test_read_of_a_sequence_with_missing_frames_is_file_not_found_when_missing_is_error(tmp_path):
    write_frames(tmp_path, frames=[1, 3])
    g = graph_in(tmp_path)
    g.add("Read", name="read", path="in.####.png")
    issues = g.validate()
    assert codes(issues) == ["file_not_found"]
    assert "2" in issues[0].message


@pytest.mark.parametrize("policy", ["hold", "black"])
def test_read_of_a_sequence_with_missing_frames_is_valid_when_missing_is_hold_or_black(tmp_path, policy):
    write_frames(tmp_path, frames=[1, 3])
    g = graph_in(tmp_path)
    g.add("Read", name="read", path="in.####.png", missing=policy)
    assert g.validate() == []


def test_read_with_no_path_is_file_not_found(tmp_path):
    g = graph_in(tmp_path)
    g.add("Read", name="read")
    assert codes(g.validate()) == ["file_not_found"]


def test_read_with_an_unknown_missing_policy_is_param_out_of_range(tmp_path):
    write_frames(tmp_path)
    g = graph_in(tmp_path)
    g.add("Read", name="read", path="in.####.png", missing="loop")
    assert codes(g.validate()) == ["param_out_of_range"]


def test_write_with_an_unknown_extension_is_rejected_at_validation(tmp_path):
    write_frames(tmp_path)
    g = graph_in(tmp_path)
    r = g.add("Read", name="read", path="in.####.png")
    g.add("Write", name="write", image=r["image"], path="out/out.####.xyz")
    issues = g.validate()
    assert codes(issues) == ["bad_path"]
    assert issues[0].node == "write" and issues[0].field == "path"


def test_write_without_a_frame_pattern_in_a_multi_frame_scene_is_rejected(tmp_path):
    write_frames(tmp_path)
    g = graph_in(tmp_path)
    r = g.add("Read", name="read", path="in.####.png")
    g.add("Write", name="write", image=r["image"], path="out/still.png")
    issues = g.validate()
    assert codes(issues) == ["bad_path"] and "no frame pattern" in issues[0].message


def test_write_without_a_frame_pattern_is_fine_for_a_single_frame(tmp_path):
    write_frames(tmp_path, frames=[1])
    g = cg.Graph(frames="1", base_dir=tmp_path)
    r = g.add("Read", name="read", path="in.####.png")
    g.add("Write", name="write", image=r["image"], path="out/still.png")
    assert g.validate() == []


def test_write_without_a_path_is_rejected_at_validation(tmp_path):
    write_frames(tmp_path)
    g = graph_in(tmp_path)
    r = g.add("Read", name="read", path="in.####.png")
    g.add("Write", name="write", image=r["image"])
    assert [(i.node, i.field) for i in g.validate()] == [("write", "path")]


@pytest.mark.parametrize("ext", [".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dpx", ".EXR"])
def test_write_accepts_every_supported_extension(tmp_path, ext):
    write_frames(tmp_path)
    g = graph_in(tmp_path)
    r = g.add("Read", name="read", path="in.####.png")
    g.add("Write", name="write", image=r["image"], path=f"out/out.####{ext}")
    assert g.validate() == []


# ---- cache keys follow file contents -----------------------------------------------------------

def read_add_graph(folder: Path) -> cg.Graph:
    g = graph_in(folder)
    r = g.add("Read", name="read", path="in/in.####.png")
    g.add("test.AddConst", name="add", image=r["image"], amount=1.0)
    return g


def test_rewriting_one_input_frame_reruns_only_that_frames_downstream_tasks(tmp_path, engine):
    write_frames(tmp_path / "in")
    g = read_add_graph(tmp_path)
    assert engine.run(g).computed == 6
    CALLS.clear()
    write_frames(tmp_path / "in", frames=[2], value=0.9)
    result = engine.run(g)
    assert result.computed == 2                     # read@2 and add@2
    assert dict(CALLS) == {("add", 2): 1}
    np.testing.assert_allclose(result.value("add", "image", 2), 1.9, atol=0.5 / 255)


def test_rewriting_an_input_frame_reruns_downstream_in_a_fresh_engine_too(tmp_path):
    write_frames(tmp_path / "in")
    g = read_add_graph(tmp_path)
    cg.Engine(tmp_path / "cache").run(g)
    CALLS.clear()
    write_frames(tmp_path / "in", frames=[3], value=0.0)
    result = cg.Engine(tmp_path / "cache").run(g)
    assert result.computed == 2
    assert dict(CALLS) == {("add", 3): 1}


def test_rewriting_an_input_with_identical_content_is_a_cache_hit(tmp_path, engine):
    write_frames(tmp_path / "in")
    g = read_add_graph(tmp_path)
    engine.run(g)
    CALLS.clear()
    before = (tmp_path / "in" / "in.0002.png").stat()
    write_frames(tmp_path / "in")                   # same pixels, new files (new inode and mtime)
    assert (tmp_path / "in" / "in.0002.png").stat().st_ino != before.st_ino
    result = engine.run(g)
    assert result.computed == 0
    assert not CALLS


def test_touching_an_input_file_mtime_is_a_cache_hit(tmp_path, engine):
    write_frames(tmp_path / "in")
    g = read_add_graph(tmp_path)
    engine.run(g)
    CALLS.clear()
    p = tmp_path / "in" / "in.0001.png"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns + 10**10, st.st_mtime_ns + 10**10))
    assert cg.Engine(tmp_path / "cache").run(g).computed == 0
    assert engine.run(g).computed == 0
    assert not CALLS


def test_read_path_is_not_in_the_key_so_moved_files_with_the_same_content_hit(tmp_path, engine):
    write_frames(tmp_path / "in")
    g = read_add_graph(tmp_path)
    engine.run(g)
    CALLS.clear()
    (tmp_path / "in").rename(tmp_path / "moved")
    g.node("read").set(path="moved/in.####.png")
    assert engine.run(g).computed == 0


def test_read_offset_is_in_the_key(tmp_path, engine):
    for f in range(1, 5):
        write_frames(tmp_path / "in", frames=[f], value=0.5)     # identical files
    g = read_add_graph(tmp_path)
    engine.run(g)
    CALLS.clear()
    g.node("read").set(offset=1)
    assert engine.run(g).computed == 6


def test_read_missing_policy_black_and_hold_make_different_keys(tmp_path, engine):
    write_frames(tmp_path / "in", frames=[1, 3])
    g = read_add_graph(tmp_path)
    g.node("read").set(missing="hold")
    held = engine.evaluate(g, "add.image", 2)
    g.node("read").set(missing="black")
    black = engine.evaluate(g, "add.image", 2)
    np.testing.assert_allclose(held, 1.1, atol=0.5 / 255)
    np.testing.assert_allclose(black, 1.0)


# ---- Write is a side effect ---------------------------------------------------------------------

def write_graph(folder: Path) -> cg.Graph:
    write_frames(folder / "in")
    g = graph_in(folder)
    r = g.add("Read", name="read", path="in/in.####.png")
    b = g.add("Blur", name="blur", image=r["image"], size=1.0)
    g.add("Write", name="write", image=b["image"], path="out/out.####.png")
    return g


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_a_cached_run_rewrites_no_output(tmp_path, engine):
    g = write_graph(tmp_path)
    engine.run(g)
    before = mtimes(tmp_path / "out")
    assert engine.run(g).computed == 0
    assert cg.Engine(tmp_path / "cache").run(g).computed == 0
    assert mtimes(tmp_path / "out") == before


def test_deleting_an_output_file_rewrites_exactly_that_file(tmp_path, engine):
    g = write_graph(tmp_path)
    engine.run(g)
    (tmp_path / "out" / "out.0002.png").unlink()
    before = mtimes(tmp_path / "out")
    result = cg.Engine(tmp_path / "cache").run(g)
    assert result.computed == 1
    after = mtimes(tmp_path / "out")
    assert sorted(after) == ["out.0001.png", "out.0002.png", "out.0003.png"]
    assert {k: after[k] for k in before} == before


def test_deleting_an_output_file_rewrites_it_in_the_same_engine(tmp_path, engine):
    g = write_graph(tmp_path)
    engine.run(g)
    (tmp_path / "out" / "out.0003.png").unlink()
    assert engine.run(g).computed == 1
    assert (tmp_path / "out" / "out.0003.png").is_file()


def test_an_output_file_edited_by_someone_else_is_rewritten(tmp_path, engine):
    g = write_graph(tmp_path)
    engine.run(g)
    target = tmp_path / "out" / "out.0001.png"
    good = target.read_bytes()
    write_image(target, np.zeros((8, 8, 3), np.float32))
    assert engine.run(g).computed == 1
    assert target.read_bytes() == good


def test_the_same_scene_in_two_folders_writes_both_and_caches_both(tmp_path):
    a, b = write_graph(tmp_path / "a"), write_graph(tmp_path / "b")
    cg.Engine(tmp_path / "cache").run(a)
    assert cg.Engine(tmp_path / "cache").run(b).computed == 3         # its own files, upstream shared
    assert files_in(tmp_path / "b" / "out") == ["out.0001.png", "out.0002.png", "out.0003.png"]
    assert cg.Engine(tmp_path / "cache").run(b).computed == 0
    assert cg.Engine(tmp_path / "cache").run(a).computed == 0


def test_check_mode_agrees_with_the_cached_write_of_another_folder(tmp_path):
    a, b = write_graph(tmp_path / "a"), write_graph(tmp_path / "b")
    cg.Engine(tmp_path / "cache").run(a)
    cg.Engine(tmp_path / "cache").run(b)
    assert cg.Engine(tmp_path / "cache").run(b, check=True).status == "succeeded"


def test_changing_the_write_path_writes_the_new_files(tmp_path, engine):
    g = write_graph(tmp_path)
    engine.run(g)
    g.node("write").set(path="out2/out.####.png")
    assert engine.run(g).computed == 3
    assert files_in(tmp_path / "out2") == ["out.0001.png", "out.0002.png", "out.0003.png"]


# ---- utility nodes ----------------------------------------------------------------------------

def test_blur_of_size_zero_passes_the_image_through(tmp_path):
    img = smooth_rgba()
    np.testing.assert_array_equal(run_node("Blur", image=img, size=0.0)["image"], img)


def test_blur_spreads_an_impulse_into_a_gaussian_of_the_given_sigma():
    img = np.zeros((61, 61, 1), np.float32)
    img[30, 30, 0] = 1.0
    out = run_node("Blur", image=img, size=3.0)["image"][:, :, 0]
    assert out.sum() == pytest.approx(1.0, abs=1e-3)
    y, x = np.mgrid[0:61, 0:61]
    var_x = float((out * (x - 30) ** 2).sum() / out.sum())
    var_y = float((out * (y - 30) ** 2).sum() / out.sum())
    assert var_x == pytest.approx(9.0, rel=0.05)
    assert var_y == pytest.approx(9.0, rel=0.05)
    assert np.unravel_index(out.argmax(), out.shape) == (30, 30)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_blur_keeps_the_shape_of_the_image(channels):
    img = smooth_rgba()[:, :, :channels]
    assert run_node("Blur", image=img, size=2.0)["image"].shape == img.shape


def test_blur_leaves_a_constant_image_constant():
    img = np.full((16, 16, 3), 0.3, np.float32)
    np.testing.assert_allclose(run_node("Blur", image=img, size=5.0)["image"], 0.3, atol=1e-6)


def test_grade_applies_gain_then_offset_then_gamma_to_colour_and_keeps_alpha():
    img = np.array([[[0.2, 0.4, 0.1, 0.5]]], np.float32)
    out = run_node("Grade", image=img, gain=2.0, offset=0.1, gamma=2.0)["image"]
    np.testing.assert_allclose(out[0, 0, :3], np.sqrt([0.5, 0.9, 0.3]), rtol=1e-6)
    assert out[0, 0, 3] == pytest.approx(0.5)


def test_grade_defaults_are_the_identity():
    img = smooth_rgba()
    np.testing.assert_allclose(run_node("Grade", image=img)["image"], img)


def test_grade_grades_every_channel_of_a_single_channel_image():
    img = np.full((2, 2, 1), 0.25, np.float32)
    np.testing.assert_allclose(run_node("Grade", image=img, gain=2.0)["image"], 0.5)


def test_grade_does_not_modify_its_input():
    img = np.full((2, 2, 3), 0.25, np.float32)
    img.flags.writeable = False            # cached values are read-only
    run_node("Grade", image=img, gain=3.0)
    assert (img == 0.25).all()


A = np.array([[[0.5, 0.0, 0.0, 0.5]]], np.float32)       # half-transparent red, premultiplied
B = np.array([[[0.0, 0.2, 0.8, 1.0]]], np.float32)       # opaque blue-ish


@pytest.mark.parametrize("operation, expected", [
    ("over", [0.5, 0.1, 0.4, 1.0]),
    ("plus", [0.5, 0.2, 0.8, 1.5]),
    ("multiply", [0.0, 0.0, 0.0, 0.5]),
])
def test_merge_operations_on_a_known_premultiplied_example(operation, expected):
    out = run_node("Merge", a=A, b=B, operation=operation)["image"]
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-6)


def test_merge_over_with_a_transparent_foreground_gives_the_background():
    out = run_node("Merge", a=np.zeros((1, 1, 4), np.float32), b=B)["image"]
    np.testing.assert_allclose(out, B)


def test_merge_treats_rgb_inputs_as_opaque():
    out = run_node("Merge", a=np.full((1, 1, 3), 0.3, np.float32), b=B)["image"]
    np.testing.assert_allclose(out[0, 0], [0.3, 0.3, 0.3, 1.0])


def test_merge_treats_two_channel_inputs_as_grey_and_alpha():
    grey_alpha = np.array([[[0.25, 0.5]]], np.float32)         # premultiplied grey 0.5 at alpha 0.5
    out = run_node("Merge", a=grey_alpha, b=B)["image"]
    np.testing.assert_allclose(out[0, 0], [0.25, 0.35, 0.65, 1.0], rtol=1e-6)


def test_merge_of_images_of_different_sizes_fails_naming_both_sizes():
    with pytest.raises(ValueError, match="2×1.*1×1"):
        run_node("Merge", a=np.zeros((1, 2, 4), np.float32), b=B)


def srgb(values) -> np.ndarray:
    """Display-referred (sRGB) test values as the scene-linear pixels a Read of them gives."""
    return colorspace.to_working(np.asarray(values, np.float32), "sRGB")


def test_to_line_art_turns_black_into_full_ink_and_white_into_paper():
    img = np.array([[[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]]], np.float32)
    lines = run_node("ToLineArt", image=srgb(img))["lines"]
    assert lines.shape == (1, 3)
    np.testing.assert_allclose(lines[0], [1.0, 0.0, 0.5], atol=1e-4)


def test_to_line_art_uses_rec709_luminance():
    img = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1]]], np.float32)
    np.testing.assert_allclose(run_node("ToLineArt", image=srgb(img))["lines"][0],
                               [1 - 0.2126, 1 - 0.7152, 1 - 0.0722], atol=1e-4)


def test_to_line_art_maps_black_and_white_levels_to_full_ink_and_paper():
    img = np.array([[[0.1] * 3, [0.2] * 3, [0.5] * 3, [0.8] * 3, [0.9] * 3]], np.float32)
    lines = run_node("ToLineArt", image=srgb(img), black=0.2, white=0.8)["lines"]
    np.testing.assert_allclose(lines[0], [1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-4)


def test_to_line_art_lays_an_image_with_alpha_over_white_paper():
    # a premultiplied black line layer: colour 0 everywhere, alpha = stroke coverage
    layer = np.zeros((1, 3, 4), np.float32)
    layer[0, :, 3] = [0.0, 0.5, 1.0]
    np.testing.assert_allclose(run_node("ToLineArt", image=layer)["lines"][0], [0.0, 0.5, 1.0], atol=1e-4)
    grey_alpha = np.array([[[0.0, 0.0], [0.0, 1.0], [0.5, 1.0]]], np.float32)
    np.testing.assert_allclose(run_node("ToLineArt", image=srgb(grey_alpha))["lines"][0], [0.0, 1.0, 0.5], atol=1e-4)


def test_util_nodes_run_in_a_graph_and_write_line_art(tmp_path, engine):
    write_frames(tmp_path / "in", frames=[1], value=0.25)
    g = graph_in(tmp_path, frames="1")
    r = g.add("Read", name="read", path="in/in.####.png")
    graded = g.add("Grade", name="grade", image=r["image"], gain=2.0)
    lines = g.add("ToLineArt", name="lines", image=graded["image"])
    g.add("Write", name="write", image=lines["lines"], path="out/lines.####.exr")
    engine.run(g)
    back = read_image(tmp_path / "out" / "lines.0001.exr")
    assert back.shape == (8, 8, 1)
    shown = colorspace.from_working(np.full((1, 1, 3), 0.5, np.float32), "sRGB")[0, 0, 0]   # 0.25 × 2, as seen
    np.testing.assert_allclose(back, 1.0 - shown, atol=2e-3)
