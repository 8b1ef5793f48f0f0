"""Only the outputs someone reads are computed and stored: the planner knows, per task, the outputs
that the tasks which run read and those the request names ("node.output" targets); a node may leave
the others out (ctx.wants); a cache entry may hold some of a task's outputs and is a hit only when it
holds every wanted one, and grows to the union when a later run wants more."""
import numpy as np
import pytest

import celgraph as cg
from celgraph.core.errors import GraphInvalid, NodeFailed
from celgraph.engine import Image, In, NodeType, Out, register, registry
from celgraph.engine.cache import DiskStore
from celgraph.engine.farm import farm_jobs
from celgraph.graph import resolve

from conftest import CALLS

PREVIEWS: list[tuple[str, int]] = []      # (node, frame) of every preview made


class Shade(NodeType):
    """image × 0.5, and a costly optional preview (only when someone reads it)."""
    id, version, category = "test.Shade", 1, "Test"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image), Out("preview", Image)]

    def compute(self, ctx, image):
        CALLS[(ctx.node, ctx.frame)] += 1
        out = {"image": image * 0.5} if ctx.wants("image") else {}
        if ctx.wants("preview"):
            PREVIEWS.append((ctx.node, ctx.frame))
            out["preview"] = np.clip(image, 0, 1)
        return out


class DropsWanted(NodeType):
    """A broken node: leaves out an output that is wanted."""
    id, version, category = "test.DropsWanted", 1, "Test"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image), Out("preview", Image)]

    def compute(self, ctx, image):
        return {"preview": image}


for _t in (Shade, DropsWanted):
    if registry.get(_t.id) is None:
        register(_t)


@pytest.fixture(autouse=True)
def _reset_previews():
    PREVIEWS.clear()
    yield


def scene(frames="1-3") -> cg.Graph:
    """src → shade → sum(shade.image): nothing reads shade.preview."""
    g = cg.Graph(frames=frames)
    src = g.add("test.Source", name="src", value=0.2)
    shade = g.add("test.Shade", name="shade", image=src["image"])
    g.add("test.Sum", name="sum", a=shade["image"])
    return g


def shade_key(engine, g, frame=1) -> str:
    return engine.plan(g, use_cache=False).tasks[("shade", frame)].key


def test_a_scene_reading_only_the_image_neither_computes_nor_stores_the_preview(engine):
    g = scene()
    r = engine.run(g)
    assert r.computed == 9 and PREVIEWS == []
    key = shade_key(engine, g)
    assert engine.store.held(key) == {"image"}
    assert set(engine.store.get(key)) == {"image"} and set(engine.ram.get(key)) == {"image"}
    assert r.value("sum", "image", 2)[0, 0, 0] == pytest.approx((0.2 + 0.02) * 0.5)


def test_a_later_request_for_the_preview_recomputes_once_then_hits(engine):
    g = scene()
    engine.run(g)
    CALLS.clear()
    r = engine.run(g, targets=["shade.preview"])
    assert r.computed == 3 and sorted(PREVIEWS) == [("shade", f) for f in (1, 2, 3)]
    assert {n for n, _ in CALLS} == {"shade"}               # src was a hit
    key = shade_key(engine, g)
    assert engine.store.held(key) == {"image", "preview"}  # the union, in one entry
    assert set(engine.ram.get(key)) == {"image", "preview"}
    assert r.value("shade", "preview", 1)[0, 0, 0] == pytest.approx(0.21)
    PREVIEWS.clear()
    for targets in (["shade.preview"], ["shade"], ["sum"], ["shade.image", "shade.preview"]):
        assert engine.run(g, targets=targets).computed == 0, targets
    assert PREVIEWS == []


def test_a_target_named_alone_gets_every_output(engine):
    r = engine.run(scene(), targets=["shade"])
    assert len(PREVIEWS) == 3
    assert engine.store.held(r.plan.tasks[("shade", 1)].key) is None       # a whole entry: no markers


def test_the_ram_cache_alone_holds_subsets_and_grows_them(tmp_path):
    engine = cg.Engine(use_disk_cache=False)
    g = scene()
    engine.run(g)
    key = shade_key(engine, g)
    assert set(engine.ram.get(key)) == {"image"}
    CALLS.clear()
    assert engine.run(g, targets=["shade.preview"]).computed == 3
    assert set(engine.ram.get(key)) == {"image", "preview"}
    assert engine.run(g, targets=["shade"]).computed == 0


def test_a_fresh_engine_reads_subset_entries_from_disk(tmp_path):
    g = scene()
    cg.Engine(tmp_path / "c").run(g)
    fresh = cg.Engine(tmp_path / "c")
    CALLS.clear()
    assert fresh.run(g, targets=["shade.image"]).computed == 0
    r = fresh.run(g, targets=["shade"])                    # the preview is missing: recompute
    assert r.computed == 3 and len(PREVIEWS) == 3
    assert fresh.store.held(shade_key(fresh, g)) is None   # replaced by a whole entry


def test_a_stale_ram_entry_lacking_an_output_is_not_served(tmp_path):
    """Two engines on one store (two workers): one grows the entry; the other's RAM copy lacks the
    new output, so it reads the store instead of failing or recomputing."""
    g = scene()
    a, b = cg.Engine(tmp_path / "c"), cg.Engine(tmp_path / "c")
    a.run(g)
    b.run(g)
    b.run(g, targets=["shade.preview"])
    CALLS.clear()
    r = a.run(g, targets=["shade.preview"])
    assert r.computed == 0 and not CALLS
    assert r.value("shade", "preview", 3) is not None


def test_a_node_that_ignores_wants_stores_every_output(engine):
    g = cg.Graph(frames="1-2")
    src = g.add("test.Source", name="src")
    add = g.add("test.AddConst", name="add", image=src["image"])      # outputs image and mask
    g.add("test.Sum", name="sum", a=add["image"])
    r = engine.run(g)
    key = r.plan.tasks[("add", 1)].key
    assert engine.store.held(key) is None                   # a whole entry: no markers
    assert set(engine.store.get(key)) == {"image", "mask"}
    assert engine.run(g, targets=["add.mask"]).computed == 0


def test_a_node_leaving_out_a_wanted_output_fails_naming_it(engine):
    g = cg.Graph(frames="1")
    src = g.add("test.Source", name="src")
    g.add("test.DropsWanted", name="bad", image=src["image"])
    with pytest.raises(NodeFailed, match=r"bad.*at least the wanted \['image'\]"):
        engine.run(g, targets=["bad.image"])


def test_an_unknown_output_target_is_invalid(engine):
    with pytest.raises(GraphInvalid) as e:
        engine.run(scene(), targets=["shade.nope"])
    assert [i.code for i in e.value.issues] == ["unknown_target"]
    assert "no output 'nope'" in str(e.value.issues[0].message)


def test_a_value_not_asked_for_is_a_clear_error(engine):
    r = engine.run(scene(), targets=["shade.image"])
    with pytest.raises(cg.CelgraphError, match="did not ask for it.*'shade.preview'"):
        r.value("shade", "preview", 1)


def test_evaluate_computes_only_the_output_it_returns(engine):
    v = engine.evaluate(scene(), "shade.image", frame=2)
    assert v[0, 0, 0] == pytest.approx(0.11) and PREVIEWS == []


def test_check_mode_recomputes_subset_entries_and_compares(engine):
    g = scene()
    engine.run(g)
    key = shade_key(engine, g)
    r = engine.run(g, targets=["shade.image", "sum"], check=True)
    assert r.status == "succeeded" and r.computed == 9
    assert engine.store.held(key) == {"image"}              # check mode stores nothing
    r = engine.run(g, targets=["shade"], check=True)        # the entry lacks the preview: compared on image
    assert r.status == "succeeded" and len(PREVIEWS) == 3


def test_a_run_resumed_after_a_failure_reuses_the_subset_entries(engine):
    g = scene()
    g.add("test.FailOn", name="fail", image=g["shade"]["image"], frame=2)
    r = engine.run(g, targets=["fail"], raise_on_error=False, workers=1)
    assert r.status == "failed"
    g.nodes["fail"].params["frame"] = 99
    CALLS.clear()
    r = engine.run(g, targets=["fail"])
    assert r.status == "succeeded" and CALLS[("shade", 1)] == 0 and PREVIEWS == []


def test_planning_tests_hits_without_reading_meta_json(engine, monkeypatch):
    g = scene()
    engine.run(g)
    fresh = cg.Engine(engine.store.root)
    monkeypatch.setattr(DiskStore, "meta", lambda *a: pytest.fail("meta.json read while planning"))
    monkeypatch.setattr(DiskStore, "get", lambda *a: pytest.fail("an entry loaded while planning"))
    plan = fresh.plan(g, targets=["shade.image"])
    assert plan.n_compute == 0 and len(plan.cached) == 3
    assert fresh.plan(g, targets=["shade"]).n_compute == 3


def test_farm_chunks_ask_for_the_named_outputs_only(tmp_path):
    g = scene()
    jobs = farm_jobs(resolve(g, targets=["shade.image", "sum"]), "scene.json", chunk=2)
    assert all(j["command"][j["command"].index("--targets") + 1] == "shade.image,sum" for j in jobs)


# ---- the store --------------------------------------------------------------------------------------

def test_the_store_grows_a_subset_entry_to_the_union(tmp_path):
    store = DiskStore(tmp_path / "s")
    a, b = np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32)
    store.put("k" * 64, {"a": a}, {}, partial=True)
    assert store.held("k" * 64) == {"a"} and store.has("k" * 64, ["a"]) and not store.has("k" * 64, ["b"])
    store.put("k" * 64, {"b": b}, {}, partial=True)
    got = store.get("k" * 64)
    assert store.held("k" * 64) == {"a", "b"} and np.array_equal(got["a"], a) and np.array_equal(got["b"], b)
    store.put("k" * 64, {"a": a}, {}, partial=True)          # already held: kept as it is
    assert store.held("k" * 64) == {"a", "b"}
    store.put("k" * 64, {"a": a, "b": b, "c": a}, {})        # a whole entry replaces a subset
    assert store.held("k" * 64) is None and set(store.get("k" * 64)) == {"a", "b", "c"}
    store.put("k" * 64, {"a": a}, {}, partial=True)          # and is never replaced by one
    assert store.held("k" * 64) is None
    assert store.held("m" * 64) is False and not store.has("m" * 64, [])
    assert list((tmp_path / "s" / "tmp").iterdir()) == []    # nothing left behind
