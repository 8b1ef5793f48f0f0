"""The cache contract: hits exactly when the inputs, params, version and files are the same."""
import numpy as np
import pytest

import celgraph as cg
from celgraph.engine import Float, Image, NodeType, Out, register, registry
from celgraph.engine.runtime import CacheCheckFailed

from conftest import CALLS, chain


def computed(result):
    return sorted((e for e in CALLS.elements()), key=str) if result is None else result.computed


def test_first_run_computes_everything_second_run_nothing(engine):
    g = chain()
    r1 = engine.run(g)
    assert r1.computed == 9 and r1.cached == 0
    CALLS.clear()
    r2 = engine.run(g)
    assert r2.computed == 0 and not CALLS
    assert r2.cached == 3          # the walk stops at the targets


def test_a_fresh_engine_on_the_same_folder_hits_the_disk_store(tmp_path):
    g = chain()
    cg.Engine(tmp_path / "c").run(g)
    CALLS.clear()
    r = cg.Engine(tmp_path / "c").run(g)
    assert r.computed == 0 and not CALLS


def test_changing_a_param_reruns_that_node_and_its_descendants_only(engine):
    g = chain()
    engine.run(g)
    CALLS.clear()
    g.nodes["add"].params["amount"] = 5.0
    r = engine.run(g)
    assert r.computed == 6
    assert {n for n, _ in CALLS} == {"add", "sum"}
    assert r.value("sum", "image", 1)[0, 0, 0] == pytest.approx(2 * 0.01 + 5.0)


def test_a_param_changed_back_hits_the_old_entries(engine):
    g = chain()
    engine.run(g)
    g.nodes["add"].params["amount"] = 5.0
    engine.run(g)
    g.nodes["add"].params["amount"] = 1.0
    CALLS.clear()
    assert engine.run(g).computed == 0


def test_an_explicit_default_param_is_the_same_key_as_an_omitted_one(engine):
    g = chain()
    engine.run(g)
    g.nodes["add"].params["mode"] = "add"
    assert engine.run(g).computed == 0


def test_same_subgraph_in_another_scene_with_other_names_hits_the_same_entries(engine):
    engine.run(chain())
    g2 = cg.Graph(frames="1-3")
    a = g2.add("test.Source", name="plate_a", value=0.0)
    b = g2.add("test.AddConst", name="lift", image=a["image"], amount=1.0)
    g2.add("test.Sum", name="combined", a=b["image"], b=a["image"])
    g2.add("test.AddConst", name="extra", image=b["image"], amount=3.0)
    CALLS.clear()
    r = engine.run(g2)
    assert {n for n, _ in CALLS} == {"extra"}
    assert r.computed == 3


def test_no_cache_recomputes_everything_and_leaves_the_store_as_it_was(engine):
    g = chain()
    engine.run(g)
    before = engine.store.du()
    CALLS.clear()
    r = engine.run(g, use_cache=False)
    assert r.computed == 9 and sum(CALLS.values()) == 9
    assert engine.store.du() == before


def test_a_failed_node_leaves_no_cache_entry(engine):
    g = chain(frames="1-3")
    g.add("test.FailOn", name="boom", image=g["add"]["image"], frame=2)
    with pytest.raises(cg.NodeFailed) as e:
        engine.run(g)
    assert (e.value.node, e.value.frame, e.value.type_id) == ("boom", 2, "test.FailOn")
    plan = engine.plan(g)
    failed = plan.tasks[("boom", 2)]
    assert failed.key not in engine.store
    assert not failed.cached


def test_bumping_a_node_version_invalidates_its_entries(engine):
    class Versioned(NodeType):
        id, category, version = "test.Versioned", "Test", 1
        outputs = [Out("image", Image)]

        def compute(self, ctx):
            CALLS[(ctx.node, ctx.frame)] += 1
            return {"image": np.zeros((2, 2, 3), np.float32)}
    if registry.get(Versioned.id) is None:
        register(Versioned)
    g = cg.Graph(frames="1")
    g.add("test.Versioned", name="v")
    engine.run(g)
    CALLS.clear()
    engine.run(g)
    assert not CALLS
    registry._by_id[Versioned.id].version = 2
    try:
        engine.run(g)
        assert CALLS[("v", 1)] == 1
    finally:
        registry._by_id[Versioned.id].version = 1


def test_unhashed_params_do_not_change_the_key(tmp_path, engine):
    from conftest import write_frames
    write_frames(tmp_path, "a.####.png", range(1, 3))
    write_frames(tmp_path / "copy", "b.####.png", range(1, 3))
    g = cg.Graph(frames="1-2", base_dir=tmp_path)
    g.add("Read", name="r", path="a.####.png")
    engine.run(g)
    g.nodes["r"].params["path"] = "copy/b.####.png"       # same content under another name
    assert engine.run(g).computed == 0


def test_clip_node_runs_once_for_all_chunks(engine):
    g = cg.Graph(frames="1-4")
    s = g.add("test.Source", name="s")
    g.add("test.ClipMean", name="m", image=s["image"])
    g.add("test.AddConst", name="after", image=g["m"]["image"])
    engine.run(g, targets=["after"], frames=[1, 2])
    engine.run(g, targets=["after"], frames=[3, 4])
    assert CALLS[("m", None)] == 1
    assert sum(c for (n, _), c in CALLS.items() if n == "s") == 4


def test_frames_needed_reads_neighbours_and_hashes_them(engine):
    g = cg.Graph(frames="1-3")
    s = g.add("test.Source", name="s")
    n = g.add("test.Neighbours", name="n", image=s["image"])
    r = engine.run(g, frames=[2])
    assert {f for (node, f) in CALLS if node == "s"} == {1, 3}
    assert r.value("n", "image", 2)[0, 0, 0] == pytest.approx(0.02)
    assert n is not None


def test_cached_values_are_read_only(engine):
    g = chain()
    engine.run(g)
    v = cg.Engine(engine.store.root).evaluate(g, "sum.image", 2)
    assert not v.flags.writeable
    with pytest.raises(ValueError):
        v[0, 0, 0] = 1


def test_computed_values_are_read_only_too(engine):
    v = engine.evaluate(chain(), "add.image", 1)
    assert not v.flags.writeable


def test_check_mode_passes_when_hashes_are_right(engine):
    g = chain()
    engine.run(g)
    CALLS.clear()
    r = engine.run(g, check=True)
    assert r.computed == 9


_hidden = {"gain": 1.0}


class Leaky(NodeType):
    """Reads a global its hash does not know about: a deliberate hashing bug."""
    id, category = "test.Leaky", "Test"
    outputs = [Out("image", Image)]
    params = [Float("value", 0.0)]

    def compute(self, ctx):
        return {"image": np.full((2, 2, 3), _hidden["gain"], np.float32)}


def test_check_mode_catches_a_node_whose_hash_misses_an_input(engine):
    if registry.get(Leaky.id) is None:
        register(Leaky)
    g = cg.Graph(frames="1")
    g.add("test.Leaky", name="leak")
    engine.run(g)
    _hidden["gain"] = 2.0
    try:
        assert engine.run(g).computed == 0          # the stale hit a wrong hash would serve
        with pytest.raises(cg.NodeFailed, match="leak@1") as e:
            engine.run(g, check=True)
        assert isinstance(e.value.exc, CacheCheckFailed)
    finally:
        _hidden["gain"] = 1.0


def test_ram_cache_serves_repeat_evaluations_without_disk(engine):
    g = chain()
    engine.run(g)
    key = engine.plan(g, use_cache=False).tasks[("sum", 1)].key
    assert key in engine.ram
