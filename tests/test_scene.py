"""scene.json v1: exact round trip, builder API, frame ranges."""
import json

import pytest

import celgraph as cg
from celgraph.graph import FrameRangeError, format_frames, parse_frames

SCENE = {
    "celgraph": 1,
    "frames": "1-24",
    "nodes": {
        "plate": {"type": "Read", "params": {"path": "shots/sh010/plate.####.png"}, "ui": {"x": 10}},
        "soft": {"inputs": {"image": "plate.image"}, "type": "Blur", "params": {"size": 2}},
        "out": {"type": "Write", "inputs": {"image": "soft.image"},
                "params": {"path": "out/soft.####.exr"}, "comment": "kept"},
    },
    "ui": {"positions": {"plate": [0, 0], "out": [200, 0]}, "colours": {"out": "#ff0000"}},
    "studio": {"show": "abc"},
}


def test_load_then_save_is_an_exact_round_trip(tmp_path):
    src = tmp_path / "scene.json"
    src.write_text(json.dumps(SCENE, indent=2) + "\n")
    g = cg.load_scene(src)
    out = g.save(tmp_path / "copy.json")
    assert out.read_text() == src.read_text()


def test_round_trip_keeps_key_order_and_unknown_blocks(tmp_path):
    g = cg.Graph.from_dict(json.loads(json.dumps(SCENE)))
    data = g.to_dict()
    assert list(data) == list(SCENE)
    assert list(data["nodes"]["soft"]) == ["inputs", "type", "params"]
    assert data["ui"] == SCENE["ui"] and data["studio"] == SCENE["studio"]
    assert data["nodes"]["out"]["comment"] == "kept"


def test_params_left_at_default_are_not_written_back():
    g = cg.Graph(frames="1-2")
    g.add("Blur", name="b")
    assert g.to_dict()["nodes"]["b"] == {"type": "Blur"}


def test_builder_api_makes_links_from_outputs_and_params_from_values(tmp_path):
    g = cg.Graph(frames="1-24")
    plate = g.add("Read", path="shots/sh010/plate.####.png")
    soft = g.add("Blur", image=plate["image"], size=3.0)
    g.add("Write", image=soft["image"], path="out/soft.####.exr")
    assert list(g.nodes) == ["read1", "blur1", "write1"]
    assert g.nodes["blur1"].inputs == {"image": "read1.image"}
    assert g.nodes["blur1"].params == {"size": 3.0}
    path = g.save(tmp_path / "scene.json")
    again = cg.load_scene(path)
    assert again.to_dict() == g.to_dict()


def test_builder_rejects_duplicate_and_malformed_names():
    g = cg.Graph()
    g.add("Blur", name="a")
    with pytest.raises(ValueError, match="already exists"):
        g.add("Blur", name="a")
    with pytest.raises(ValueError, match="must start with a letter"):
        g.add("Blur", name="a.b")


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path):
    g = cg.Graph()
    g.add("Blur")
    g.save(tmp_path / "s.json")
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_unknown_version_is_a_clear_error(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"celgraph": 2, "frames": "1", "nodes": {}}))
    with pytest.raises(cg.GraphInvalid) as e:
        cg.load_scene(p)
    assert [i.code for i in e.value.issues] == ["bad_version"]
    assert "version 2" in str(e.value)


def test_invalid_json_is_bad_scene(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{nope")
    with pytest.raises(cg.GraphInvalid) as e:
        cg.load_scene(p)
    assert e.value.issues[0].code == "bad_scene"


def test_missing_scene_file_is_file_not_found(tmp_path):
    with pytest.raises(cg.GraphInvalid) as e:
        cg.load_scene(tmp_path / "nope.json")
    assert e.value.issues[0].code == "file_not_found"


@pytest.mark.parametrize("spec, frames", [
    ("1-5", [1, 2, 3, 4, 5]), ("1-9x4", [1, 5, 9]), ("3,1,2-3", [1, 2, 3]), (7, [7]), ("-2-1", [-2, -1, 0, 1]),
    ("1001-1003", [1001, 1002, 1003]),
])
def test_frame_ranges_parse(spec, frames):
    assert parse_frames(spec) == frames


@pytest.mark.parametrize("spec", ["", "5-1", "a-b", "1-5x0", None, [], True])
def test_malformed_frame_ranges_raise(spec):
    with pytest.raises(FrameRangeError):
        parse_frames(spec)


def test_format_frames_compacts_runs():
    assert format_frames([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"


def test_a_folder_or_binary_file_as_scene_is_bad_scene(tmp_path):
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    for path in (tmp_path, tmp_path / "bin.json"):
        with pytest.raises(cg.GraphInvalid) as e:
            cg.load_scene(path)
        assert e.value.issues[0].code == "bad_scene"
