"""The local executor: parallel where allowed, events, failures and cancellation."""
import threading
import time

import numpy as np
import pytest

import celgraph as cg
from celgraph.engine import Image, In, NodeType, Out, register, registry

from conftest import CALLS, chain


class _Concurrency:
    def __init__(self):
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


SAFE, UNSAFE = _Concurrency(), _Concurrency()


class Busy(NodeType):
    """Holds the task open briefly so overlap can be observed."""
    id, category = "test.Busy", "Test"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]

    def compute(self, ctx, image):
        with SAFE:
            time.sleep(0.05)
        return {"image": image}


class BusyUnsafe(Busy):
    """Same, but declared not thread-safe."""
    id = "test.BusyUnsafe"
    thread_safe = False

    def compute(self, ctx, image):
        with UNSAFE:
            time.sleep(0.05)
        return {"image": image}


class ThreadName(NodeType):
    """Records which thread computed it; device 'any' marks a torch node."""
    id = "test.ThreadName"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]
    device = "any"
    seen: list[str] = []

    def compute(self, ctx, image):
        ThreadName.seen.append(threading.current_thread().name)
        return {"image": image}


class ThreadNameCpu(ThreadName):
    id = "test.ThreadNameCpu"
    device = "cpu"


for _t in (Busy, BusyUnsafe, ThreadName, ThreadNameCpu):
    if registry.get(_t.id) is None:
        register(_t)


def busy_graph(type_id, frames="1-6"):
    g = cg.Graph(frames=frames)
    s = g.add("test.Source", name="s")
    g.add(type_id, name="b", image=s["image"])
    return g


def test_independent_tasks_run_in_parallel(engine):
    SAFE.peak = 0
    engine.run(busy_graph("test.Busy"), workers=3)
    assert SAFE.peak >= 2


def test_tasks_of_a_non_thread_safe_type_never_overlap(engine):
    UNSAFE.peak = 0
    engine.run(busy_graph("test.BusyUnsafe"), workers=3)
    assert UNSAFE.peak == 1


def test_one_worker_runs_tasks_one_at_a_time(engine):
    SAFE.peak = 0
    engine.run(busy_graph("test.Busy"), workers=1)
    assert SAFE.peak == 1


def test_events_cover_the_run_in_order(engine):
    events = []
    engine.run(chain(frames="1-2"), on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("task_started") == kinds.count("task_finished") == 6
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert len({e.seq for e in events}) == len(events)
    assert events[-1].data["status"] == "succeeded"
    started = {(e.node, e.frame) for e in events if e.kind == "task_started"}
    assert started == {(n, f) for n in ("src", "add", "sum") for f in (1, 2)}


def test_cached_tasks_are_announced(engine):
    g = chain(frames="1-2")
    engine.run(g)
    events = []
    engine.run(g, on_event=events.append)
    assert sorted((e.node, e.frame) for e in events if e.kind == "task_cached") == [("sum", 1), ("sum", 2)]


def test_progress_events_come_from_inside_long_nodes(engine):
    g = cg.Graph(frames="1")
    s = g.add("test.Source", name="s")
    g.add("test.Slow", name="slow", image=s["image"], seconds=0.05)
    events = []
    engine.run(g, on_event=events.append)
    progress = [e.progress for e in events if e.kind == "task_progress"]
    assert len(progress) == 10 and progress[-1] == pytest.approx(1.0)


def test_a_failure_names_node_type_and_frame(engine):
    g = chain(frames="1-3")
    g.add("test.FailOn", name="boom", image=g["src"]["image"], frame=3)
    events = []
    with pytest.raises(cg.NodeFailed) as e:
        engine.run(g, on_event=events.append)
    assert "node 'boom' (test.FailOn) failed at frame 3: ValueError: synthetic failure" in str(e.value)
    failed = [ev for ev in events if ev.kind == "task_failed"]
    assert failed[0].data == {"node": "boom", "type": "test.FailOn", "frame": 3, "exception": "ValueError",
                              "message": "synthetic failure"}
    assert events[-1].data["status"] == "failed"


def test_a_wrong_output_type_is_a_clear_node_error(engine):
    g = cg.Graph(frames="1")
    g.add("test.BadOutput", name="bad")
    with pytest.raises(cg.NodeFailed, match="node 'bad'.*output 'image': Image must be a numpy array"):
        engine.run(g)


def test_result_reports_status_instead_of_raising_when_asked(engine):
    g = chain(frames="1")
    g.add("test.FailOn", name="boom", image=g["src"]["image"], frame=1)
    r = engine.run(g, raise_on_error=False)
    assert r.status == "failed" and isinstance(r.error, cg.NodeFailed)


def test_cancel_stops_between_tasks_and_a_rerun_finishes_the_rest(engine):
    g = cg.Graph(frames="1-8")
    s = g.add("test.Source", name="s")
    g.add("test.AddConst", name="a", image=s["image"])
    token = cg.CancelToken()

    def stop_after_first(ev):
        if ev.kind == "task_finished":
            token.cancel()
    r = engine.run(g, workers=1, cancel=token, on_event=stop_after_first, raise_on_error=False)
    assert r.status == "cancelled" and isinstance(r.error, cg.Cancelled)
    done_first = r.computed
    assert 1 <= done_first < 16
    r2 = engine.run(g, workers=1)
    assert r2.computed == 16 - done_first


def test_ctrl_c_while_collecting_a_finished_task_cancels_not_fails(engine, monkeypatch):
    """Ctrl-C often lands just as the main thread reads a finished task's result (the task's
    'finished' line is what the user saw). It must cancel the run, not be reported as that task
    failing with KeyboardInterrupt (CI once saw exit 1 instead of 130 this way)."""
    from concurrent.futures import Future
    fired = []

    def interrupt_once(original):
        def method(self, *args, **kwargs):
            if not fired and threading.current_thread() is threading.main_thread():
                fired.append(True)
                raise KeyboardInterrupt
            return original(self, *args, **kwargs)
        return method
    monkeypatch.setattr(Future, "result", interrupt_once(Future.result))
    monkeypatch.setattr(Future, "exception", interrupt_once(Future.exception))
    g = cg.Graph(frames="1-4")
    s = g.add("test.Source", name="s")
    g.add("test.AddConst", name="a", image=s["image"])
    r = engine.run(g, workers=1, raise_on_error=False)
    assert fired
    assert r.status == "cancelled" and isinstance(r.error, cg.Cancelled), r.error
    monkeypatch.undo()
    assert engine.run(g, workers=1).status == "succeeded"


def test_cancel_interrupts_a_long_node_at_its_next_progress_point(engine):
    g = cg.Graph(frames="1")
    s = g.add("test.Source", name="s")
    g.add("test.Slow", name="slow", image=s["image"], seconds=30)
    token = cg.CancelToken()
    progress = []

    def cancel_at_the_tenth_step(ev):
        if ev.kind == "task_progress" and ev.node == "slow":
            progress.append(ev.progress)
            if len(progress) == 10:
                token.cancel()
    with pytest.raises(cg.Cancelled):
        engine.run(g, cancel=token, on_event=cancel_at_the_tenth_step)
    assert len(progress) == 10 and progress[-1] < 0.02      # stopped at that step, not 600 steps later
    key = engine.plan(g, use_cache=False).tasks[("slow", 1)].key
    assert key not in engine.store


def test_evaluate_returns_one_output_at_one_frame(engine):
    v = engine.evaluate(chain(), "add.image", 2)
    assert v.shape == (8, 8, 3) and v[0, 0, 0] == pytest.approx(1.02)


def test_graph_evaluate_uses_the_same_engine(tmp_path):
    g = chain()
    v = g.evaluate(g["sum"]["image"], frame=3, cache_dir=tmp_path)
    assert v[0, 0, 0] == pytest.approx(1.06)
    r = g.run(cache_dir=tmp_path)
    assert r.status == "succeeded"


def test_same_scene_gives_identical_outputs_run_to_run(tmp_path):
    g = chain()
    a = cg.Engine(tmp_path / "a").evaluate(g, "sum.image", 2)
    b = cg.Engine(tmp_path / "b").evaluate(g, "sum.image", 2)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("type_id, torch_thread", [("test.ThreadName", True), ("test.ThreadNameCpu", False)])
def test_torch_nodes_compute_on_one_thread_other_nodes_on_the_workers(engine, type_id, torch_thread):
    """Why: two threads calling torch give libgomp more OpenMP threads than cores (RAFT 25-30 %
    slower with two workers, engine/task.py); so torch computes share one thread."""
    g = cg.Graph(frames="1-6")
    s = g.add("test.Source", name="s")
    g.add(type_id, name="t", image=s["image"])
    ThreadName.seen.clear()
    assert engine.run(g, workers=2).status == "succeeded"
    assert len(ThreadName.seen) == 6
    if torch_thread:
        assert set(ThreadName.seen) == {"celgraph-torch_0"}
    else:
        assert not any(n.startswith("celgraph-torch") for n in ThreadName.seen)


def test_on_torch_thread_runs_nested_calls_inline_and_passes_errors_on():
    from celgraph.engine.task import on_torch_thread

    def outer():
        return threading.current_thread().name, on_torch_thread(lambda: threading.current_thread().name)
    assert on_torch_thread(outer) == ("celgraph-torch_0", "celgraph-torch_0")     # no deadlock
    with pytest.raises(ZeroDivisionError):
        on_torch_thread(lambda: 1 / 0)


def test_which_tasks_use_torch_follows_the_method_params():
    from celgraph.engine import registry as reg
    from celgraph.core.node import Params

    def uses(type_name, **params):
        t = reg.get(f"celgraph.{type_name}")
        return t().uses_torch(Params({p.name: p.default for p in t.params} | params))
    assert uses("FlowRAFT", backend="raft_small") and not uses("FlowRAFT", backend="dis")
    assert uses("GapFill", method="model") and not uses("GapFill", method="classical")
    assert uses("Sketch", method="model") and not uses("Sketch", method="xdog")
    assert uses("Colorize", mode="model") and not uses("Colorize", mode="hints")
    assert uses("SpriteLearn") and not uses("Read")


def test_a_torch_task_queued_behind_another_does_not_start_once_the_run_is_cancelled(engine):
    from celgraph.engine.task import on_torch_thread
    g = cg.Graph(frames="1")
    s = g.add("test.Source", name="s")
    g.add("test.ThreadName", name="t", image=s["image"])
    release, token, result = threading.Event(), cg.CancelToken(), []
    busy = threading.Thread(target=on_torch_thread, args=(release.wait,))     # another job holds the torch thread
    busy.start()

    def cancel_once_queued(ev):
        if ev.kind == "task_started" and ev.node == "t":
            token.cancel()
            release.set()
    ThreadName.seen.clear()
    run = threading.Thread(target=lambda: result.append(
        engine.run(g, cancel=token, on_event=cancel_once_queued, raise_on_error=False)))
    run.start()
    run.join(30)
    busy.join(30)
    assert result[0].status == "cancelled" and ThreadName.seen == []
