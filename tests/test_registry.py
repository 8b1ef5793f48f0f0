"""The registry: built-ins through the entry point, third-party packages the same way."""
import json
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import celgraph as cg
from celgraph.engine import Registry
import importlib
registry_module = importlib.import_module("celgraph.core.registry")

sys.path.insert(0, str(Path(__file__).parent / "plugins"))


def make_registry(monkeypatch, *eps):
    def fake_entry_points(group):
        assert group == "celgraph.nodes"
        return [EntryPoint("builtin", "celgraph.nodes", group), *eps]
    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)
    return Registry()


def test_builtin_node_types_are_registered():
    names = {t.name() for t in cg.registry.all()}
    assert {"Read", "Write", "Blur", "Grade", "Merge", "ToLineArt"} <= names


def test_a_third_party_module_registers_all_its_node_types(monkeypatch):
    reg = make_registry(monkeypatch, EntryPoint("acme", "acme_nodes", "celgraph.nodes"))
    assert reg.get("acme.Invert") is not None and reg.get("Invert") is not None


def test_an_entry_point_may_name_a_class_or_a_function(monkeypatch):
    reg = make_registry(monkeypatch, EntryPoint("one", "acme_nodes:Invert", "celgraph.nodes"))
    assert reg.get("acme.Invert") is not None and reg.get("acme.Blur") is None
    reg = make_registry(monkeypatch, EntryPoint("fn", "acme_nodes:node_types", "celgraph.nodes"))
    assert reg.get("acme.Invert") is not None


def test_a_broken_plugin_does_not_take_the_others_down(monkeypatch, caplog):
    reg = make_registry(monkeypatch, EntryPoint("broken", "no_such_module_xyz", "celgraph.nodes"),
                        EntryPoint("acme", "acme_nodes", "celgraph.nodes"))
    assert reg.get("Invert") is not None and reg.get("Read") is not None
    assert "no_such_module_xyz" in caplog.text or "broken" in caplog.text


def test_short_names_prefer_the_builtin_when_ambiguous_and_full_ids_always_work(monkeypatch):
    reg = make_registry(monkeypatch, EntryPoint("acme", "acme_nodes", "celgraph.nodes"))
    assert reg.get("Blur").id == "celgraph.Blur"
    assert reg.get("acme.Blur").id == "acme.Blur"


def test_registering_two_types_with_one_id_is_an_error():
    from celgraph.engine import NodeType
    reg = Registry()
    reg._loaded_entry_points = True

    class A(NodeType):
        id = "x.Same"

    class B(NodeType):
        id = "x.Same"
    reg.register(A)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register(B)


def test_a_third_party_node_runs_in_a_scene(monkeypatch, tmp_path):
    reg = make_registry(monkeypatch, EntryPoint("acme", "acme_nodes", "celgraph.nodes"))
    import conftest  # noqa: F401  (registers test.Source in the global registry)
    reg.register(cg.registry.get("test.Source"))
    g = cg.Graph(frames="1")
    s = g.add("test.Source", name="s", value=0.25)
    g.add("acme.Invert", name="inv", image=s["image"])
    v = cg.Engine(tmp_path, registry=reg).evaluate(g, "inv.image", 1)
    assert v[0, 0, 0] == pytest.approx(0.74)


def test_descriptors_are_plain_json():
    for t in cg.registry.all():
        d = json.loads(json.dumps(t.describe()))
        assert d["id"] == t.id and d["name"] == t.name()
        assert all({"name", "kind", "default", "help"} <= set(p) for p in d["params"])
        assert d["scope"] in ("frame", "clip")


def test_modules_listed_in_the_environment_are_loaded(monkeypatch):
    monkeypatch.setenv("CELGRAPH_NODE_MODULES", "acme_nodes, ")
    reg = make_registry(monkeypatch)
    assert reg.get("acme.Sleep") is not None and reg.get("Read") is not None


def _node(**attrs):
    from celgraph.core import Image, In, Int, NodeType, Out
    body = {"id": "test.Checked", "inputs": [In("image", Image)], "outputs": [Out("image", Image)],
            "params": [Int("n", 1)], "compute": lambda self, ctx, image: {"image": image}}
    body.update(attrs)
    return type("Checked", (NodeType,), body)


def test_register_accepts_a_well_formed_type():
    assert Registry().register(_node()).id == "test.Checked"


@pytest.mark.parametrize("attrs, message", [
    ({"params": []} | {"inputs": "dup"}, "input names must be unique"),
    ({"params": "dup"}, "param names must be unique"),
    ({"params": "clash"}, "both an input and a param"),
    ({"compute": lambda self, ctx, img: {}}, r"does not take the declared input\(s\) \['image'\]"),
    ({"compute": lambda self, ctx, image, mask: {}}, r"requires \['mask'\]"),
    ({"check": lambda self, params, ctx: []}, r"check\(\) must take \(self, ctx\).*ctx.params"),
    ({"verify": lambda self, ctx: True}, r"verify\(\) must take \(self, ctx, outputs\)"),
])
def test_register_rejects_an_interface_that_disagrees_with_itself(attrs, message):
    from celgraph.core import Image, In, Int
    attrs = dict(attrs)
    if attrs.get("inputs") == "dup":
        attrs["inputs"] = [In("image", Image), In("image", Image)]
    if attrs.get("params") == "dup":
        attrs["params"] = [Int("n", 1), Int("n", 2)]
    if attrs.get("params") == "clash":
        attrs["params"] = [Int("image", 1)]
    with pytest.raises(TypeError, match=message):
        Registry().register(_node(**attrs))


def test_compute_may_take_inputs_as_keywords_or_leave_optional_ones_defaulted():
    Registry().register(_node(compute=lambda self, ctx, **inputs: {}))
    Registry().register(_node(compute=lambda self, ctx, image, extra=None: {}))
