"""Validation: every problem at once, each with its stable code and the node it concerns."""
import pytest

import celgraph as cg
from celgraph.engine import CODES


def codes(g):
    return sorted({i.code for i in g.validate()})


def scene(nodes, frames="1-3"):
    return cg.Graph.from_dict({"celgraph": 1, "frames": frames, "nodes": nodes})


def test_a_valid_scene_has_no_issues():
    g = scene({"s": {"type": "test.Source"},
               "a": {"type": "test.AddConst", "inputs": {"image": "s.image"}, "params": {"amount": 2}}})
    assert g.validate() == []


def test_unknown_type():
    issues = scene({"x": {"type": "NoSuchNode"}}).validate()
    assert [(i.code, i.node) for i in issues] == [("unknown_type", "x")]


def test_missing_input():
    issues = scene({"a": {"type": "test.AddConst"}}).validate()
    assert [(i.code, i.node, i.field) for i in issues] == [("missing_input", "a", "image")]


def test_optional_input_may_be_left_unlinked():
    g = scene({"s": {"type": "test.Source"}, "sum": {"type": "test.Sum", "inputs": {"a": "s.image"}}})
    assert g.validate() == []


def test_unknown_output():
    g = scene({"s": {"type": "test.Source"}, "a": {"type": "test.AddConst", "inputs": {"image": "s.nope"}}})
    issues = g.validate()
    assert [(i.code, i.node, i.field) for i in issues] == [("unknown_output", "a", "image")]
    assert "outputs: image" in issues[0].message


def test_unknown_node_in_link():
    g = scene({"a": {"type": "test.AddConst", "inputs": {"image": "ghost.image"}}})
    assert codes(g) == ["unknown_node"]


def test_unknown_input():
    g = scene({"s": {"type": "test.Source"},
               "a": {"type": "test.AddConst", "inputs": {"image": "s.image", "extra": "s.image"}}})
    assert codes(g) == ["unknown_input"]


def test_bad_link_text():
    g = scene({"a": {"type": "test.AddConst", "inputs": {"image": "no-dot"}}})
    assert codes(g) == ["bad_link"]


def test_type_mismatch():
    # Mask → Image is allowed (Image accepts Mask); Image → Mask-only input is not. Use Flow → Image.
    from celgraph.engine import Flow, NodeType, Out, register, registry

    class FlowSource(NodeType):
        id, category = "test.FlowSource", "Test"
        outputs = [Out("flow", Flow)]
    if registry.get(FlowSource.id) is None:
        register(FlowSource)
    g = scene({"f": {"type": "test.FlowSource"}, "a": {"type": "test.AddConst", "inputs": {"image": "f.flow"}}})
    issues = g.validate()
    assert [(i.code, i.node, i.field) for i in issues] == [("type_mismatch", "a", "image")]
    assert "takes Image but 'f.flow' is Flow" in issues[0].message


def test_compatible_types_link():
    g = scene({"s": {"type": "test.Source"}, "a": {"type": "test.AddConst", "inputs": {"image": "s.image"}},
               "b": {"type": "test.AddConst", "inputs": {"image": "a.mask"}}})
    assert g.validate() == []


def test_param_type():
    g = scene({"s": {"type": "test.Source", "params": {"value": "high"}}})
    assert [(i.code, i.field) for i in g.validate()] == [("param_type", "value")]


@pytest.mark.parametrize("params", [{"size": 0}, {"size": 5000}])
def test_param_out_of_range(params):
    g = scene({"s": {"type": "test.Source", "params": params}})
    assert [(i.code, i.field) for i in g.validate()] == [("param_out_of_range", "size")]


def test_choice_outside_choices_is_out_of_range():
    g = scene({"s": {"type": "test.Source"},
               "a": {"type": "test.AddConst", "inputs": {"image": "s.image"}, "params": {"mode": "mul"}}})
    issue = g.validate()[0]
    assert (issue.code, issue.field) == ("param_out_of_range", "mode")
    assert "'add', 'sub'" in issue.message


def test_unknown_param():
    g = scene({"s": {"type": "test.Source", "params": {"valu": 1}}})
    assert [(i.code, i.field) for i in g.validate()] == [("unknown_param", "valu")]


def test_cycle():
    g = scene({"a": {"type": "test.AddConst", "inputs": {"image": "b.image"}},
               "b": {"type": "test.AddConst", "inputs": {"image": "a.image"}}})
    issues = g.validate()
    assert [i.code for i in issues] == ["cycle"]
    assert "a" in issues[0].message and "b" in issues[0].message


@pytest.mark.parametrize("frames", ["", "9-1", "1-x", "1-4x0"])
def test_bad_frames(frames):
    assert codes(scene({"s": {"type": "test.Source"}}, frames=frames)) == ["bad_frames"]


def test_file_not_found(tmp_path):
    g = cg.Graph.from_dict({"celgraph": 1, "frames": "1-2",
                            "nodes": {"r": {"type": "Read", "params": {"path": "nothing.####.exr"}}}},
                           base_dir=tmp_path)
    issues = g.validate()
    assert [(i.code, i.node, i.field) for i in issues] == [("file_not_found", "r", "path")]
    assert str(tmp_path) in issues[0].message


def test_bad_version_is_reported_by_validate_too():
    g = scene({})
    g.version = 3
    assert codes(g) == ["bad_version"]


def test_every_problem_is_reported_at_once():
    g = scene({
        "x": {"type": "NoSuchNode"},
        "s": {"type": "test.Source", "params": {"value": "high", "size": 0}},
        "a": {"type": "test.AddConst"},
        "b": {"type": "test.AddConst", "inputs": {"image": "s.nope"}},
        "c": {"type": "test.AddConst", "inputs": {"image": "d.image"}},
        "d": {"type": "test.AddConst", "inputs": {"image": "c.image"}},
    }, frames="5-1")
    assert codes(g) == sorted(["unknown_type", "param_type", "param_out_of_range", "missing_input",
                               "unknown_output", "cycle", "bad_frames"])
    by_node = {i.node for i in g.validate() if i.node}
    assert {"x", "s", "a", "b"} <= by_node


def test_every_code_is_documented():
    for code in ["unknown_type", "missing_input", "unknown_output", "type_mismatch", "param_type",
                 "param_out_of_range", "cycle", "bad_frames", "file_not_found", "bad_version"]:
        assert code in CODES


def test_run_refuses_an_invalid_scene(engine):
    g = scene({"a": {"type": "test.AddConst"}})
    with pytest.raises(cg.GraphInvalid) as e:
        engine.run(g)
    assert e.value.issues[0].code == "missing_input"


def test_unknown_target_is_reported(engine):
    g = scene({"s": {"type": "test.Source"}})
    with pytest.raises(cg.GraphInvalid) as e:
        engine.run(g, targets=["nope"])
    assert e.value.issues[0].code == "unknown_target"


def test_frames_outside_the_scene_are_bad_frames(engine):
    g = scene({"s": {"type": "test.Source"}})
    with pytest.raises(cg.GraphInvalid) as e:
        engine.run(g, frames=[7])
    assert e.value.issues[0].code == "bad_frames"
