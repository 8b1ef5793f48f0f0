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


def test_graph_run_resolves_and_normalises_once(tmp_path, monkeypatch):
    """`graph run`: one resolve of the scene, one normalisation of each node's params; the planner
    and the tasks use what it returned."""
    import importlib
    import json

    from celgraph import cli
    from celgraph.engine import runtime
    validate_module = importlib.import_module("celgraph.graph.validate")   # the package's `validate` is the function
    resolves, normalised = [], []
    real_resolve, real_normalize = validate_module.resolve, validate_module.normalize_params

    def counting_resolve(*a, **kw):
        resolves.append(a[0])
        return real_resolve(*a, **kw)

    def counting_normalize(node_type, raw, node=None):
        normalised.append(node)
        return real_normalize(node_type, raw, node)
    monkeypatch.setattr(runtime, "resolve", counting_resolve)
    monkeypatch.setattr(cli, "resolve", counting_resolve)
    monkeypatch.setattr(validate_module, "normalize_params", counting_normalize)
    path = tmp_path / "scene.json"
    path.write_text(json.dumps({"celgraph": 1, "frames": "1-3", "nodes": {
        "s": {"type": "test.Source"},
        "a": {"type": "test.AddConst", "inputs": {"image": "s.image"}, "params": {"amount": 2}}}}))
    assert cli.main(["run", str(path), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert len(resolves) == 1
    assert sorted(normalised) == ["a", "s"]


def test_the_planner_takes_only_a_resolved_graph(engine):
    from celgraph.engine.planner import make_plan
    g = scene({"s": {"type": "test.Source"}})
    with pytest.raises(TypeError, match="ResolvedGraph"):
        make_plan(g)
    plan = make_plan(cg.graph.resolve(g))
    assert sorted(plan.tasks) == [("s", 1), ("s", 2), ("s", 3)]


def test_run_without_raising_reports_an_invalid_scene_as_a_status(engine):
    g = scene({"a": {"type": "test.AddConst"}, "x": {"type": "NoSuchNode"}})
    events = []
    result = engine.run(g, raise_on_error=False, on_event=events.append)
    assert result.status == "invalid" and result.plan is None
    assert sorted(i.code for i in result.error.issues) == ["missing_input", "unknown_type"]
    assert events == []
    with pytest.raises(cg.GraphInvalid):
        engine.run(g)


def test_run_without_raising_reports_bad_targets_and_frames_as_a_status(engine):
    g = scene({"s": {"type": "test.Source"}})
    result = engine.run(g, targets=["nope"], frames=[7], raise_on_error=False)
    assert result.status == "invalid"
    assert sorted(i.code for i in result.error.issues) == ["bad_frames", "unknown_target"]


def test_check_hooks_see_the_normalised_params():
    from celgraph.core import CheckContext, Int, Issue, NodeType, Out, Image, Registry

    class Picky(NodeType):
        id = "test.Picky"
        outputs = [Out("image", Image)]
        params = [Int("n", 3)]

        def check(self, ctx: CheckContext):
            return [Issue("param_out_of_range", f"n={ctx.params.n} is odd", ctx.node, "n")] if ctx.params.n % 2 else []

        def compute(self, ctx):
            return {"image": None}
    reg = Registry()
    reg._loaded_entry_points = True
    reg.register(Picky)
    issues = cg.graph.validate(scene({"p": {"type": "test.Picky"}}), reg)
    assert [(i.node, i.message) for i in issues] == [("p", "n=3 is odd")]
