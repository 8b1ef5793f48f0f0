"""The Natron and Nuke plug-ins (hosts/), against stand-in NatronEngine and nuke modules
(tests/hosts/) and a live `graph serve` on loopback, reached through the `graph remote` bridge
exactly as inside Natron or Nuke.

The stand-ins have only the API names the reference lists and fail loudly on any other; the Nuke
one also refuses node/knob changes off the main thread. Their "renderers" write real EXRs (the
upstream Read's frames), so the server blurs real pixels and the internal Read must end up
pointing at real files.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import inspect
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from celgraph.nodes.io import read_image, write_image

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
HOSTS = ROOT / "hosts"
FAKES = ROOT / "tests" / "hosts"
_SCRIPT = Path(sys.executable).with_name("graph")
GRAPH = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "celgraph.cli"]
HOST_MODULES = {"celgraph_host", "celgraph_natron", "celgraph_nuke", "AnimeGraph", "init", "menu", "celgraph_menu_types"}
for _p in (FAKES / "fake_natron", FAKES / "fake_nuke", HOSTS / "natron", HOSTS / "nuke", HOSTS / "common"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import AnimeGraph  # noqa: E402
import NatronEngine  # noqa: E402
import celgraph_host as ch  # noqa: E402
import celgraph_natron  # noqa: E402
import celgraph_nuke  # noqa: E402
import nuke  # noqa: E402

# ---- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`graph serve` in its own process on a free loopback port, with its own cache and state."""
    d = tmp_path_factory.mktemp("server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELGRAPH_")}
    log = open(d / "serve.log", "w")
    proc = subprocess.Popen([*GRAPH, "serve", "--port", "0", "--cache-dir", str(d / "cache"), "--state-dir",
                             str(d / "state"), "--base-dir", str(d), "--log-level", "warning",
                             # the studio's shared folder: every test's tmp_path/shared lives under it
                             "--allow", str(tmp_path_factory.getbasetemp())],
                            stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=d)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        info = json.loads(lines.get(timeout=90))
        assert info["type"] == "serving", info
        yield info
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture
def host_env(server, tmp_path, monkeypatch):
    """What a studio sets: the server, the bridge (celgraph's `graph`), the shared folder."""
    for k in list(os.environ):
        if k.startswith("CELGRAPH_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CELGRAPH_ADDRESS", server["address"])
    monkeypatch.setenv("CELGRAPH_BRIDGE", " ".join(shlex.quote(a) for a in GRAPH))
    monkeypatch.setenv("CELGRAPH_TRANSPORT", "bridge")
    monkeypatch.setenv("CELGRAPH_SHARED", str(tmp_path / "shared"))
    monkeypatch.setenv("CELGRAPH_HOST_CONFIG", str(tmp_path / "no-config.json"))
    return tmp_path


def copy_upstream(node_file):
    """A stand-in renderer: the frame of the upstream Read, written where the host's writer points."""
    def hook(writer, frame, path, upstream):
        assert upstream is not None, "the host rendered an input that nothing feeds"
        write_image(path, read_image(ch.frame_file(node_file(upstream), frame)), "float")
    return hook


def source_frames(folder, frames=(1, 2, 3)):
    """16×16 RGBA frames, black with one bright pixel worth the frame number."""
    pattern = str(folder / "src" / "plate.####.exr")
    for f in frames:
        img = np.zeros((16, 16, 4), np.float32)
        img[8, 8, :3] = float(f)
        img[..., 3] = 1.0
        write_image(ch.frame_file(pattern, f), img, "float")
    return pattern


def natron_init(monkeypatch):
    """Natron's start-up: run hosts/natron/init.py, on a Python without inspect.getargspec (3.11+,
    as in Natron 2.5's); monkeypatch puts inspect back afterwards."""
    monkeypatch.setattr(inspect, "getargspec", None, raising=False)
    monkeypatch.delattr(inspect, "getargspec")
    path = HOSTS / "natron" / "init.py"
    exec(compile(path.read_text(), str(path), "exec"), {"__file__": str(path), "__name__": "init"})


@pytest.fixture
def natron(host_env, monkeypatch):
    natron_init(monkeypatch)
    fake = NatronEngine._FAKE
    app = fake.reset()
    fake.timeline = (1, 3)
    fake.render_hook = copy_upstream(lambda n: n.getParam("filename").get())
    pid = fake.register_pyplug(AnimeGraph)
    return app, pid, fake


@pytest.fixture
def nk(host_env):
    nuke._FAKE.reset()
    nuke._FAKE.render_hook = copy_upstream(lambda n: n["file"].value())
    return nuke._FAKE


def natron_session(app, group):
    return celgraph_natron._session(app, group)


def natron_status(group):
    return group.getParam("cg_status").get()


def choose(param, startswith):
    for i in range(param.getNumOptions()):
        if param.getOption(i).startswith(startswith):
            return i
    raise AssertionError("no option %r" % startswith)


def live_schema(server, type_id):
    from celgraph.service.client import Client
    with Client(server["address"]) as c:
        return c.nodes([type_id])[0]


def nuke_session(group):
    return ch.get_session(group["cg_uid"].value())


def settle(fake, group, timeout=90):
    """Pump Nuke's main-thread queue until the node's worker is idle and its last posts ran."""
    assert fake.pump(lambda: not nuke_session(group).busy(), timeout), group["cg_status"].value()
    fake.pump()
    return group["cg_status"].value()


def nuke_node(fake):
    group = celgraph_nuke.create()
    assert settle(fake, group, 60).startswith("ready"), group["cg_status"].value()
    return group


@contextlib.contextmanager
def recorded_imports():
    """Every import statement executed by host modules or knob commands (any thread) meanwhile.
    (Module-level imports are checked statically by test_host_code_imports_only_the_standard_library.)"""
    seen, real = [], builtins.__import__

    def spy(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__", "")
        if importer in HOST_MODULES or importer == "__main__":     # knob commands run in __main__
            seen.append((importer, name, level))
        return real(name, globals, locals, fromlist, level)

    builtins.__import__ = spy
    try:
        yield seen
    finally:
        builtins.__import__ = real


def assert_blurred(result_pattern, source_pattern, frames=(1, 2, 3)):
    for f in frames:
        out, src = read_image(ch.frame_file(result_pattern, f)), read_image(ch.frame_file(source_pattern, f))
        assert out.shape == src.shape
        assert out[8, 8, 0] < src[8, 8, 0] * 0.5, "the peak should spread"
        assert out[8, 9, 0] > 0 and out[7, 8, 0] > 0
        assert abs(out[..., 0].sum() - src[..., 0].sum()) < 0.05 * src[..., 0].sum(), "a blur keeps the energy"
        np.testing.assert_allclose(out[..., 3], 1.0, atol=1e-5)


# ---- the code itself ------------------------------------------------------------------------------

def host_sources():
    files = sorted(HOSTS.rglob("*.py"))
    assert {f.relative_to(HOSTS).as_posix() for f in files} >= {
        "common/celgraph_host/__init__.py", "common/celgraph_host/transports.py", "common/celgraph_host/session.py",
        "natron/AnimeGraph.py", "natron/celgraph_natron.py", "nuke/celgraph_nuke.py", "natron/init.py",
        "nuke/init.py", "nuke/menu.py"}
    return files


def test_host_code_imports_only_the_standard_library():
    # not NatronGui either: PyPlugs also load in background mode, where it does not exist
    allowed = set(sys.stdlib_module_names) | HOST_MODULES | {"NatronEngine", "nuke", "__future__"}
    for path in host_sources():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:              # `from .session import Session`: inside the celgraph_host package
                    assert path.parent.name == "celgraph_host", "%s: relative import" % path.relative_to(ROOT)
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "celgraph":       # the grpc transport, where the host's Python has it
                    fn = next(f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and node in ast.walk(f))
                    assert (path.relative_to(HOSTS).as_posix(), fn.name) == ("common/celgraph_host/transports.py",
                                                                             "__init__"), (path, name)
                    continue
                assert top in allowed, "%s imports %s" % (path.relative_to(ROOT), name)


def test_host_code_parses_as_python_3_7():
    for path in host_sources():
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 7))


def test_host_code_uses_only_names_the_stand_ins_have():
    for path in host_sources():
        text = path.read_text()
        assert "_FAKE" not in text
        for name in re.findall(r"\bNatronEngine\.(\w+)", text):
            assert name in NatronEngine._PUBLIC, (path.name, name)
        for name in re.findall(r"\bnuke\.(\w+)", text):
            assert name in nuke._PUBLIC, (path.name, name)


def test_stand_ins_fail_loudly_outside_the_reference(natron):
    app, pid, fake = natron
    with pytest.raises(AttributeError, match="stand-in.*executeInMainThread"):
        NatronEngine.executeInMainThread
    read = app.createNode("fr.inria.openfx.ReadOIIO")
    assert read.getPluginID() == "fr.inria.built-in.Read"          # the meta node, as Natron does
    with pytest.raises(AttributeError, match="Effect has no attribute 'getName'"):
        read.getName()
    with pytest.raises(AttributeError, match="private to the stand-in"):
        read.getParam("filename")._value
    with pytest.raises(AttributeError, match="no new attributes"):
        read.session = 1
    assert read.getParam("no_such_param") is None and app.createNode("com.example.Nope") is None
    with pytest.raises(AttributeError, match="module nuke has no attribute 'root'"):
        nuke.root
    with pytest.raises(AttributeError, match="no node class 'Blur'"):
        nuke.nodes.Blur()
    n = nuke.nodes.Read()
    with pytest.raises(NameError):
        n["nope"]
    errors = []
    t = threading.Thread(target=lambda: errors.append(pytest.raises(RuntimeError, n["file"].setValue, "x")))
    t.start()
    t.join()
    assert "main thread" in str(errors[0].value)


def test_pyplug_follows_natrons_rules():
    text = (HOSTS / "natron" / "AnimeGraph.py").read_text().splitlines()
    assert "# Natron PyPlug" in text
    assert AnimeGraph.getPluginID() == "org.celgraph.AnimeGraph"
    assert AnimeGraph.getGrouping() == "Anime/Graph" and AnimeGraph.getLabel() == "AnimeGraph"
    assert isinstance(AnimeGraph.getVersion(), int) and AnimeGraph.getVersion() >= 1
    assert list(inspect.signature(AnimeGraph.createInstance).parameters) == ["app", "group"]
    assert list(inspect.signature(AnimeGraph.paramChanged).parameters) == [
        "thisParam", "thisNode", "thisGroup", "app", "userEdited"]
    assert celgraph_natron.CALLBACK == "AnimeGraph.paramChanged"


def test_param_specs_map_every_kind_with_defaults_ranges_and_choices():
    desc = {"id": "acme.Thing", "name": "Thing", "params": [
        {"name": "n", "kind": "int", "default": 3, "help": "count", "min": 1, "max": 9},
        {"name": "x", "kind": "float", "default": 0.5, "help": "", "min": 0.0},
        {"name": "on", "kind": "bool", "default": True, "help": ""},
        {"name": "mode", "kind": "choice", "default": 4, "help": "", "choices": [1, 2, 4]},
        {"name": "offsets", "kind": "int_list", "default": [-1, 1], "help": ""},
        {"name": "weights", "kind": "path", "default": "", "help": "", "file": "in"},
        {"name": "out", "kind": "path", "default": "o.exr", "help": "", "file": "out"},
        {"name": "extra", "kind": "any", "default": {"a": 1}, "help": ""}]}
    specs = {s["param"]: s for s in ch.param_specs(desc)}
    assert [s["widget"] for s in specs.values()] == ["int", "float", "bool", "choice", "string", "file_in",
                                                     "file_out", "string"]
    assert specs["n"]["name"] == "cgp_acme_Thing_n" and "range 1 .. 9" in specs["n"]["help"]
    assert "range 0 .. inf" in specs["x"]["help"]
    assert specs["mode"]["options"] == ["1", "2", "4"] and specs["mode"]["default"] == 2
    assert specs["offsets"]["default"] == "-1, 1" and specs["extra"]["default"] == '{"a": 1}'
    defaults = {p["name"]: p["default"] for p in desc["params"]}
    assert ch.scene_params(desc, lambda name, spec: spec["default"]) == defaults        # round trip
    assert ch.value_to_scene(specs["mode"], "4") == 4 and ch.value_to_scene(specs["mode"], 1) == 2   # Nuke / Natron
    assert ch.value_to_scene(specs["n"], 5.0) == 5
    with pytest.raises(ch.HostError, match="not a list of integers"):
        ch.value_to_scene(specs["offsets"], "1, two")


def test_sequence_patterns_and_path_maps():
    assert ch.sequence_pattern({7: "/a/out.0007.exr", 8: "/a/out.0008.exr"}) == "/a/out.####.exr"
    assert ch.sequence_pattern({9: "/a/o9.exr", 10: "/a/o10.exr"}) == "/a/o#.exr"
    assert ch.sequence_pattern({1: "/a/x.exr", 2: "/a/y.exr"}) is None
    m = ch.PathMap("/Volumes/show=/mnt/show;S:\\proj=/mnt/proj")
    assert m.to_server("/Volumes/show/sh010/a.exr") == "/mnt/show/sh010/a.exr"
    assert m.to_server("S:\\proj\\x\\b.exr") == "/mnt/proj/x/b.exr"
    assert m.to_local("/mnt/show/sh010/a.exr") == "/Volumes/show/sh010/a.exr"
    assert m.to_server("/Volumes/showroom/a.exr") == "/Volumes/showroom/a.exr"     # a prefix, not a folder


FAKE_BRIDGE = """
import json, os, sys, time
mode = os.environ["FAKE_BRIDGE_MODE"]
if mode == "sleep":
    time.sleep(30)
elif mode == "noise":
    print("a library talking on stdout")
    print(json.dumps([1, 2]))
    sys.stderr.write("Traceback (most recent call last):\\nImportError: No module named 'celgraph'\\n")
    sys.exit(5)
else:
    print(json.dumps({"type": "node_type", "id": "x.Y", "argv": sys.argv[1:], "token": os.environ.get("CELGRAPH_TOKEN"),
                      "scrubbed": [k for k in ("PYTHONHOME", "PYTHONPATH") if k in os.environ]}))
"""


def test_bridge_failures_become_host_errors_and_secrets_stay_off_the_command_line(tmp_path, monkeypatch):
    script = tmp_path / "bridge.py"
    script.write_text(FAKE_BRIDGE)
    bridge = ch.BridgeTransport({"bridge": [sys.executable, "-S", str(script)], "address": "10.0.0.1:5", "token": "s3cret"})
    monkeypatch.setenv("PYTHONPATH", "/opt/nuke/lib/python")       # what an embedded Python leaves behind
    monkeypatch.setenv("FAKE_BRIDGE_MODE", "env")
    [desc] = bridge.nodes()
    assert desc["argv"][:3] == ["remote", "--address", "10.0.0.1:5"] and "s3cret" not in desc["argv"]
    assert desc["token"] == "s3cret" and desc["scrubbed"] == []
    monkeypatch.setenv("FAKE_BRIDGE_MODE", "noise")
    with pytest.raises(ch.HostError, match="status 5 .*No module named 'celgraph'") as e:
        bridge.nodes()
    assert e.value.code == "bridge_failed"
    monkeypatch.setenv("FAKE_BRIDGE_MODE", "sleep")
    t = time.time()
    with pytest.raises(ch.HostError, match="did not finish within 1 s") as e:
        bridge.stream(["nodes"], limit=1)
    assert e.value.code == "bridge_timeout" and time.time() - t < 10
    assert ch.bridge_command(str(script)) == [str(script)]                    # an existing path, as is
    assert ch.bridge_command("/opt/cg/bin/python -m celgraph.cli") == ["/opt/cg/bin/python", "-m", "celgraph.cli"]


# ---- Natron ------------------------------------------------------------------------------------------

def test_natron_node_builds_its_params_from_the_live_schema(natron, server):
    app, pid, fake = natron
    group = app.createNode(pid)
    assert natron_status(group).startswith("ready"), natron_status(group)
    types = group.getParam("cg_type")
    labels = [types.getOption(i) for i in range(types.getNumOptions())]
    assert "Blur (Filter)" in labels and "Merge (Merge)" in labels and not any(l.startswith("Write") for l in labels)

    fake.user_set(types, choose(types, "Merge"))
    merge = live_schema(server, "celgraph.Merge")
    op = group.getParam("cgp_celgraph_Merge_operation")
    assert isinstance(op, NatronEngine.ChoiceParam)
    assert [op.getOption(i) for i in range(op.getNumOptions())] == merge["params"][0]["choices"]
    assert op.getOption(op.get()) == merge["params"][0]["default"]
    assert [group.getNode("cgIn%d" % i) is not None for i in range(3)] == [True, True, False]
    assert group.getMaxInputCount() == 2

    fake.user_set(types, choose(types, "Blur"))
    blur = live_schema(server, "celgraph.Blur")["params"][0]
    size = group.getParam("cgp_celgraph_Blur_size")
    assert isinstance(size, NatronEngine.DoubleParam) and size.get() == blur["default"]
    size.set(1e6)
    assert size.get() == blur["max"]                    # Natron clamps to setMaximum
    assert blur["help"] in vars(size)["_help"] and "range" in vars(size)["_help"]
    assert group.getParam("cgp_celgraph_Merge_operation") is None       # the previous type's params go
    assert vars(group.getNode("cgIn1"))["_label"] == "(unused)"          # kept: destroy() is deferred
    assert group.getNode("cgWrite0").getInput(0) is group.getNode("cgIn0")
    assert group.getNode("cgWrite0").getPluginID() == "fr.inria.built-in.Write"
    assert group.getNode(celgraph_natron.RESULT).getPluginID() == "fr.inria.built-in.Read"
    # the panel was built on the main thread; no Qt here, so nothing structural came from a worker
    assert not fake.calls_from_other_threads()


def test_natron_run_blurs_real_frames_through_the_bridge_and_loads_the_result(natron, server, host_env):
    app, pid, fake = natron
    group = app.createNode(pid)
    types = group.getParam("cg_type")
    fake.user_set(types, choose(types, "Blur"))
    group.getParam("cgp_celgraph_Blur_size").set(1.5)
    source = source_frames(host_env)
    group.connectInput(0, app.createReader(source))
    with recorded_imports() as imports:
        group.getParam("cg_run").trigger()
        assert natron_session(app, group).wait(90)
    status = natron_status(group)
    assert status.startswith("done: 3 frames"), status
    result = group.getNode(celgraph_natron.RESULT)
    filename = result.getParam("filename").get()
    assert filename.startswith(str(host_env / "shared")) and filename.endswith("out_image.####.exr")
    assert (result.getParam("firstFrame").get(), result.getParam("lastFrame").get()) == (1, 3)   # point 8
    assert_blurred(filename, source)
    job = natron_session(app, group).last_job
    from celgraph.service.client import Client
    with Client(server["address"]) as c:              # the server really ran it, with our label
        record = c.job(job["job_id"])
    assert record["state"] == "succeeded" and record["label"].startswith("AnimeGraph1 celgraph.Blur")
    assert [c[2] for c in fake.calls if c[1] == "cgWrite0"][-1] == "render"
    # off the main thread: only the status line and the result Read's filename
    worker = fake.calls_from_other_threads()
    assert worker and {(c[1], c[2]) for c in worker} <= {
        (group.getScriptName() + ".cg_status", "set"), ("cgResult.filename", "set"),
        ("cgResult.firstFrame", "set"), ("cgResult.lastFrame", "set"), ("cgResult.outputComponents", "set"),
        ("cgResult.filename", "reloadFile")}
    assert ("cgResult.filename", "reloadFile", ()) == worker[-1][1:]
    assert imports and all(name.split(".")[0] in sys.stdlib_module_names | HOST_MODULES and not level
                           for _, name, level in imports), imports


def test_natron_scene_file_mode_in_background_mode(natron, host_env):
    app, pid, fake = natron
    fake.background = True                        # NatronRenderer: the job runs in the caller's thread
    source = source_frames(host_env)
    scene = host_env / "shots" / "sh010" / "scene.json"
    scene.parent.mkdir(parents=True)
    scene.write_text(json.dumps({"celgraph": 1, "frames": "1-3", "nodes": {
        "plate": {"type": "Read", "params": {"path": source}},
        "soft": {"type": "Blur", "inputs": {"image": "plate.image"}, "params": {"size": 1.0}},
        "comp": {"type": "Write", "inputs": {"image": "soft.image"}, "params": {"path": "out/soft.####.exr"}}}}))
    group = app.createNode(pid)
    fake.user_set(group.getParam("cg_mode"), 1)
    group.getParam("cg_scene").set(str(scene))
    group.getParam("cg_last").set(2)
    group.getParam("cg_run").trigger()
    assert natron_status(group).startswith("done: 2 frames"), natron_status(group)
    filename = group.getNode(celgraph_natron.RESULT).getParam("filename").get()
    assert filename == str(scene.parent / "out" / "soft.####.exr")        # relative to the scene's folder
    assert_blurred(filename, source, frames=(1, 2))
    assert not (scene.parent / "out" / "soft.0003.exr").exists()
    assert not fake.calls_from_other_threads()


def test_natron_errors_end_up_in_the_status_line(natron, host_env, monkeypatch):
    app, pid, fake = natron
    group = app.createNode(pid)
    types = group.getParam("cg_type")
    fake.user_set(types, choose(types, "Merge"))
    group.getParam("cg_run").trigger()                     # nothing plugged in
    assert natron_status(group) == "error (missing_input): connect the inputs a, b"

    fake.user_set(group.getParam("cg_mode"), 1)
    bad = host_env / "bad.json"
    bad.write_text(json.dumps({"celgraph": 1, "nodes": {"b": {"type": "Blur", "params": {"size": -4}}}}))
    group.getParam("cg_scene").set(str(bad))
    group.getParam("cg_run").trigger()
    assert natron_session(app, group).wait(60)
    status = natron_status(group)
    assert status.startswith("invalid: ") and "b.size" in status and "b.image" in status, status

    monkeypatch.setenv("CELGRAPH_ADDRESS", "127.0.0.1:9")            # nothing listens there
    down = app.createNode(pid)
    assert natron_status(down).startswith("no server: cannot reach a celgraph server at 127.0.0.1:9")
    assert down.getParam("cg_type").getOption(0) == celgraph_natron.NO_TYPES
    down.getParam("cg_run").trigger()
    assert natron_status(down).startswith("error (no_type)")


# ---- what real Natron 2.5 does (issue 18, points 1-9) -------------------------------------------

def test_natron_callbacks_need_getargspec_which_init_py_restores(natron, monkeypatch):
    # point 1: Natron checks callbacks with inspect.getargspec, gone in Python 3.11
    app, pid, fake = natron
    monkeypatch.delattr(inspect, "getargspec")
    group = app.createNode(pid)
    status = natron_status(group)
    fake.press(group.getParam("cg_refresh"))
    assert natron_status(group) == status and "Failed to get signature of onParamChanged" in fake.errors[-1]
    natron_init(monkeypatch)                       # what Natron does at start-up with our init.py
    spec = inspect.getargspec(AnimeGraph.paramChanged)
    assert spec.args == ["thisParam", "thisNode", "thisGroup", "app", "userEdited"] and spec.defaults is None
    group.getParam("cg_status").set("")
    fake.press(group.getParam("cg_refresh"))
    assert natron_status(group).startswith("ready"), natron_status(group)


def test_natron_defaults_are_applied_although_set_default_value_does_not(natron, server, host_env):
    # point 2: setDefaultValue leaves the current value alone in Natron 2.5
    app, pid, fake = natron
    probe = app.createNode("fr.inria.openfx.ReadOIIO").getParam("firstFrame")
    probe.setDefaultValue(7)
    assert probe.get() == 0 and probe.getDefaultValue() == 7
    probe.restoreDefaultValue()
    assert probe.get() == 7
    group = app.createNode(pid)
    assert group.getParam("cg_address").get() == server["address"]
    assert group.getParam("cg_shared").get() == str(host_env / "shared")
    assert (group.getParam("cg_first").get(), group.getParam("cg_last").get()) == (1, 3)
    types = group.getParam("cg_type")
    fake.user_set(types, choose(types, "Blur"))
    blur = live_schema(server, "celgraph.Blur")["params"][0]
    assert group.getParam("cgp_celgraph_Blur_size").get() == blur["default"]
    fake.user_set(types, choose(types, "Sketch"))
    sketch = live_schema(server, "celgraph.Sketch")
    for p in sketch["params"]:
        spec = ch.param_specs({"id": "celgraph.Sketch", "params": [p]})[0]
        assert group.getParam(spec["name"]).get() == spec["default"], p["name"]


def test_natron_scripts_choose_the_type_and_set_params_with_set(natron, host_env):
    # points 3 and 4: a script's set() fires the callback with userEdited=False, and it must count
    app, pid, fake = natron
    fake.background = True                                    # NatronRenderer: Run waits
    group = app.createNode(pid)
    seen = []
    real = celgraph_natron.param_changed

    def spy(thisParam, thisNode, thisGroup, app, userEdited):
        seen.append((thisParam.getScriptName(), userEdited))
        real(thisParam, thisNode, thisGroup, app, userEdited)

    celgraph_natron.param_changed = spy
    try:
        group.getParam("cg_type").set("Blur (Filter)")          # by label, as a TD would
        group.getParam("cgp_celgraph_Blur_size").set(1.5)
        source = source_frames(host_env)
        group.connectInput(0, app.createReader(source))
        group.getParam("cg_run").trigger()
    finally:
        celgraph_natron.param_changed = real
    assert ("cg_type", False) in seen and ("cg_run", False) in seen
    assert ("cg_status", False) in seen                       # the plug-in's own writes call back too
    assert natron_status(group).startswith("done: 3 frames"), natron_status(group)
    assert json.loads(group.getParam("cg_schema").get())["id"] == "celgraph.Blur"
    assert_blurred(group.getNode(celgraph_natron.RESULT).getParam("filename").get(), source)


def test_natron_type_changes_survive_deferred_destroy(natron):
    # point 5: destroy() is deferred, so the plug-in keeps and reuses its internal nodes
    app, pid, fake = natron
    node = app.createNode("fr.inria.built-in.Input")
    node.destroy()
    assert app.getNode(node.getScriptName()) is node                 # still there until the event loop
    fake.process_events()
    assert app.getNode(node.getScriptName()) is None
    group = app.createNode(pid)
    types = group.getParam("cg_type")
    for name in ("Merge", "Blur", "Merge"):
        fake.user_set(types, choose(types, name))
    fake.process_events()                                            # a deferred destroy lands now
    assert not [c for c in fake.calls if c[2] == "destroy" and c[1] != node.getScriptName()]
    assert group.getMaxInputCount() == 2
    assert [vars(group.getNode("cgIn%d" % i))["_label"] for i in range(2)] == ["a", "b"]
    assert [n.getScriptName() for n in vars(group)["_children"]
            if n.getPluginID() == "fr.inria.built-in.Input"] == ["cgIn0", "cgIn1"]     # arrow i is cgIn<i>


def test_natron_callback_is_set_through_get_param(natron):
    # point 6: onParamChanged is an attribute of the registered wrapper only
    app, pid, fake = natron
    group = app.createNode(pid)
    with pytest.raises(AttributeError, match="registered node wrapper"):
        group.onParamChanged
    assert group.getParam("onParamChanged").get() == celgraph_natron.CALLBACK
    for path in host_sources():
        assert ".onParamChanged" not in path.read_text(), path


def test_natron_shows_line_art_as_a_drawing(natron, host_env):
    # point 7: a LineArt comes back as black ink on white (celgraph.Ink), read as RGBA
    app, pid, fake = natron
    fake.background = True
    group = app.createNode(pid)
    group.getParam("cg_type").set("ToLineArt (Lines)")
    source = source_frames(host_env)
    group.connectInput(0, app.createReader(source))
    group.getParam("cg_run").trigger()
    assert natron_status(group).startswith("done: 3 frames"), natron_status(group)
    read = group.getNode(celgraph_natron.RESULT)
    components = read.getParam("outputComponents")
    assert components.getOption(components.get()) == "RGBA"
    for f in (1, 2, 3):
        out = read_image(ch.frame_file(read.getParam("filename").get(), f))
        src = read_image(ch.frame_file(source, f))
        assert out.shape == (16, 16, 4)
        np.testing.assert_allclose(out[..., 3], 1.0)
        np.testing.assert_allclose(out[0, 0, :3], 0.0, atol=1e-6)          # black source: full ink, black
        expected = 1.0 - np.clip(1.0 - src[8, 8, :3] @ np.float32([0.2126, 0.7152, 0.0722]), 0, 1)
        np.testing.assert_allclose(out[8, 8, :3], expected, atol=1e-3)     # the bright pixel: paper
    desc = {"id": "x.M", "outputs": [{"name": "m", "type": "Mask"}, {"name": "l", "type": "LineArt"}]}
    plan = ch.plan_node_run(ch.load_settings(), desc, {}, [], "m", 1, 1, "n")
    assert plan["output_type"] == "Mask" and ch.READ_COMPONENTS["Mask"] == "Alpha"
    assert "cg_ink" not in json.loads(plan["scene_text"])["nodes"]
    lines = json.loads(ch.plan_node_run(ch.load_settings(), desc, {}, [], "l", 1, 1, "n")["scene_text"])["nodes"]
    assert lines["cg_out"]["inputs"]["image"] == "cg_ink.image" and lines["cg_ink"]["type"] == "celgraph.Ink"


def test_natron_reader_frame_ranges_and_set_persistent(natron, host_env):
    # point 8: only createReader detects a sequence's range; point 9: setPersistent is the real name
    app, pid, fake = natron
    source = source_frames(host_env, (4, 5, 6))
    read = app.createReader(source)
    assert (read.getParam("firstFrame").get(), read.getParam("lastFrame").get()) == (4, 6)
    plain = app.createNode("fr.inria.openfx.ReadOIIO")
    plain.getParam("filename").set(source)
    assert (plain.getParam("firstFrame").get(), plain.getParam("lastFrame").get()) == (0, 0)
    group = app.createNode(pid)
    status = group.getParam("cg_status")
    with pytest.raises(AttributeError, match="setPersistant"):
        status.setPersistant(False)
    assert vars(status)["_persistent"] is False and vars(group.getParam("cg_uid"))["_persistent"] is True


def test_nuke_scripts_choose_the_type_with_set_value(nk, host_env):
    # knobChanged runs only for panel edits: Run applies a type a script chose with setValue
    group = nuke_node(nk)
    group["cg_type"].setValue("Blur (Filter)")
    celgraph_nuke.apply_type(group)                               # what a script calls to get the knobs
    group["cgp_celgraph_Blur_size"].setValue(1.5)
    source = source_frames(host_env)
    group.setInput(0, nuke.nodes.Read(file=source, first=1, last=3))
    group["cg_last"].setValue(3)
    group["cg_type"].setValue("Grade (Color)")
    nk.press(group["cg_run"])
    assert settle(nk, group).startswith("done: 3 frames")
    assert json.loads(group["cg_schema"].value())["id"] == "celgraph.Grade"


# ---- Nuke --------------------------------------------------------------------------------------------

def test_nuke_menu_and_init_register_the_plug_in(nk):
    exec((HOSTS / "nuke" / "init.py").read_text(), {"__file__": str(HOSTS / "nuke" / "init.py"), "__name__": "init"})
    assert str((HOSTS / "common").resolve()) in nk.plugin_path
    exec((HOSTS / "nuke" / "menu.py").read_text(), {"__name__": "menu"})
    assert [name for name, _ in nk.menus["Nodes/Anime"]] == ["celgraph Node", "celgraph Scene"]


def test_nuke_group_builds_its_knobs_from_the_live_schema(nk, server):
    group = nuke_node(nk)
    assert group["name"].value() == "AnimeGraph1" and group["knobChanged"].value() == celgraph_nuke.KNOB_CHANGED
    nk.user_set(group["cg_type"], "FlowRAFT (Flow)")
    flow = live_schema(server, "celgraph.FlowRAFT")
    for p in flow["params"]:
        knob = group["cgp_celgraph_FlowRAFT_" + p["name"]]
        expected = {"int": nuke.Int_Knob, "float": nuke.Double_Knob, "choice": nuke.Enumeration_Knob,
                    "path": nuke.File_Knob, "int_list": nuke.String_Knob}[p["kind"]]
        assert type(knob) is expected, p
        assert p["help"] in vars(knob)["_tooltip"]
        if p["kind"] == "choice":
            assert knob.value() == p["default"] and vars(knob)["_items"] == p["choices"]
        elif p["kind"] == "int_list":
            assert ch.value_to_scene(ch.param_specs({"id": "x", "params": [p]})[0], knob.value()) == p["default"]
        else:
            assert knob.value() == p["default"]
    assert vars(group["cg_output"])["_items"] == ["forward", "backward", "preview"]   # no FlowBundle
    nk.user_set(group["cg_type"], "Merge (Merge)")
    assert not vars(group["cgp_celgraph_FlowRAFT_iters"])["_visible"]
    with group:
        assert nuke.toNode("a") is not None and nuke.toNode("b") is not None
        assert nuke.toNode("cg_write1").input(0) is nuke.toNode("b")
    nk.user_set(group["cg_type"], "Blur (Filter)")
    with group:
        assert nuke.toNode("image") is not None and nuke.toNode("unused1") is not None
    mine = [name for name in vars(group)["_knobs"] if name not in ("name", "label", "knobChanged")]
    assert mine and all(name.startswith("cg_") or name.startswith("cgp_") for name in mine)


def test_nuke_run_goes_through_the_bridge_and_touches_nuke_only_on_the_main_thread(nk, server, host_env):
    group = nuke_node(nk)
    nk.user_set(group["cg_type"], "Blur (Filter)")
    source = source_frames(host_env)
    group.setInput(0, nuke.nodes.Read(file=source, first=1, last=3))
    group["cg_last"].setValue(3)
    with recorded_imports() as imports:
        nk.press(group["cg_run"])
        status = settle(nk, group)
    assert status.startswith("done: 3 frames"), status
    with group:
        read = nuke.toNode(celgraph_nuke.RESULT)
    assert (read["first"].value(), read["last"].value()) == (1, 3)
    assert read["file"].value().endswith("out_image.####.exr")
    assert_blurred(read["file"].value(), source)
    assert not nk.calls_from_other_threads()              # every knob change went through executeInMainThread
    assert imports and all(name.split(".")[0] in sys.stdlib_module_names | HOST_MODULES and not level
                           for _, name, level in imports), imports


def test_nuke_errors_end_up_in_the_status_line(nk, host_env, monkeypatch):
    group = nuke_node(nk)
    nk.user_set(group["cg_type"], "Blur (Filter)")
    group.setInput(0, nuke.nodes.Read(file=source_frames(host_env), first=1, last=3))
    group["cgp_celgraph_Blur_size"].setValue(500.0)        # Nuke's sliders do not clamp
    nk.press(group["cg_run"])
    status = settle(nk, group)
    assert status.startswith("invalid: size: size=500.0 is above the maximum 200.0"), status
    with group:
        assert nuke.toNode(celgraph_nuke.RESULT)["file"].value() == ""

    monkeypatch.setenv("CELGRAPH_BRIDGE", str(host_env / "no" / "graph"))
    group["cgp_celgraph_Blur_size"].setValue(1.0)
    nk.press(group["cg_run"])
    assert settle(nk, group).startswith("error (no_bridge): cannot start the bridge")

    monkeypatch.setenv("CELGRAPH_BRIDGE", " ".join(shlex.quote(a) for a in GRAPH))
    group["cg_address"].setValue("127.0.0.1:9")
    nk.press(group["cg_run"])
    assert settle(nk, group).startswith("no server: cannot reach a celgraph server at 127.0.0.1:9")


def test_nuke_cancel_stops_the_job_on_the_server(nk, server, host_env):
    one = str(host_env / "one.exr")                 # a path without a pattern: every frame reads it
    write_image(one, np.ones((16, 16, 4), np.float32), "float")
    scene = host_env / "long.json"
    scene.write_text(json.dumps({"celgraph": 1, "frames": "1-3000", "nodes": {
        "plate": {"type": "Read", "params": {"path": one}},
        "soft": {"type": "Blur", "inputs": {"image": "plate.image"}, "params": {"size": 1.0}},
        "out": {"type": "Write", "inputs": {"image": "soft.image"}, "params": {"path": "long/o.####.exr"}}}}))
    group = nuke_node(nk)
    nk.user_set(group["cg_mode"], "scene file")
    group["cg_scene"].setValue(str(scene))
    group["cg_last"].setValue(3000)
    nk.press(group["cg_run"])
    assert nk.pump(lambda: group["cg_status"].value().startswith(("running", "done", "failed")), 60)
    nk.press(group["cg_cancel"])
    status = settle(nk, group, 60)
    assert status.startswith("cancelled: job"), status
    from celgraph.service.client import Client
    with Client(server["address"]) as c:
        job = c.job(nuke_session(group).job_id)
    assert job["state"] == "cancelled" and job["tasks_done"] < job["tasks_total"]
    assert len(list((host_env / "long").iterdir())) < 3000


# ---- the grpc transport ---------------------------------------------------------------------------

def test_grpc_transport_runs_the_same_plan_where_grpc_is_importable(server, host_env):
    settings = ch.load_settings(transport="grpc")
    assert isinstance(ch.make_transport(settings), ch.GrpcTransport)
    blur = next(d for d in ch.runnable_types(ch.fetch_types(settings, force=True)) if d["id"] == "celgraph.Blur")
    plan = ch.plan_node_run(settings, blur, {"size": 1.5}, ["image"], "image", 1, 2, "td")
    source = source_frames(host_env, (1, 2))
    for f in (1, 2):
        write_image(ch.frame_file(plan["inputs"]["image"]["local"], f), read_image(ch.frame_file(source, f)), "float")
    ch.check_rendered(plan)
    results = []
    session = ch.Session(post=lambda fn: fn(), on_status=lambda text: None, name="td")
    assert session.submit(settings, plan, results.append, sync=True), session.status
    assert results[0]["pattern"] == plan["out_pattern"] and (results[0]["first"], results[0]["last"]) == (1, 2)
    assert_blurred(plan["out_pattern"], source, frames=(1, 2))


def test_host_scenes_carry_the_colour_space_of_the_frames(host_env, monkeypatch):
    desc = {"id": "celgraph.Blur", "inputs": [{"name": "image", "type": "Image"}],
            "outputs": [{"name": "image", "type": "Image"}], "params": []}

    def spaces():
        plan = ch.plan_node_run(ch.load_settings(), desc, {}, ["image"], "image", 1, 1, "n")
        nodes = json.loads(plan["scene_text"])["nodes"]
        return nodes["cg_in_image"]["params"]["colorspace"], nodes["cg_out"]["params"]["colorspace"]

    assert spaces() == ("linear", "linear")            # Natron's and Nuke's default linear (Rec.709)
    monkeypatch.setenv("CELGRAPH_COLORSPACE", "ACEScg")   # a studio whose hosts work in ACEScg
    assert spaces() == ("ACEScg", "ACEScg")


# ---- per-type menu entries (graph hosts install) -----------------------------------------------------

def test_hosts_install_gives_each_node_type_its_own_natron_and_nuke_entry(natron, nk, server, host_env,
                                                                           monkeypatch):
    app, _, fake = natron
    nat, nkdir = host_env / "natron", host_env / "nuke"
    nat.mkdir()
    gone = nat / "AnimeGraph_celgraph_Gone.py"          # what an older install wrote for a type now gone
    gone.write_text("# Natron PyPlug\n" + __import__("celgraph.service.hostmenu").service.hostmenu.GENERATED + "\n")
    mine = nat / "AnimeGraph_custom.py"                 # somebody's own file: never touched
    mine.write_text("# Natron PyPlug\n")
    r = subprocess.run([*GRAPH, "hosts", "install", "--natron", str(nat), "--nuke", str(nkdir),
                        "--address", server["address"], "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert {"celgraph.GapFill", "celgraph.Sketch", "celgraph.Blur", "celgraph.Reformat"} <= set(done["types"])
    assert "celgraph.Write" not in done["types"] and done["removed"] == [str(gone)]
    assert not gone.exists() and mine.exists()

    # Natron: Anime › GapFill makes a node with GapFill's panel only
    import importlib.util
    modules = {}
    for type_id in ("celgraph.GapFill", "celgraph.Blur"):
        path = nat / ("AnimeGraph_%s.py" % type_id.replace(".", "_"))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        modules[type_id] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(modules[type_id])
    pid = fake.register_pyplug(modules["celgraph.GapFill"])
    assert pid == "org.celgraph.node.celgraph.GapFill"
    assert (modules["celgraph.GapFill"].getGrouping(), modules["celgraph.GapFill"].getLabel()) == ("Anime", "GapFill")
    node = app.createNode(pid)
    assert natron_status(node).startswith("ready"), natron_status(node)
    assert json.loads(node.getParam("cg_schema").get())["id"] == "celgraph.GapFill"
    assert node.getParam("cgp_celgraph_GapFill_max_gap") is not None
    assert not vars(node.getParam("cg_type"))["_visible"] and not vars(node.getParam("cg_mode"))["_visible"]
    assert vars(node.getNode("cgIn0"))["_label"] == "lines"
    # ... and Anime › Blur runs, in NatronRenderer
    fake.background = True
    blur = app.createNode(fake.register_pyplug(modules["celgraph.Blur"]))
    source = source_frames(host_env)
    blur.connectInput(0, app.createReader(source))
    blur.getParam("cg_run").trigger()
    assert natron_status(blur).startswith("done: 3 frames"), natron_status(blur)
    assert_blurred(blur.getNode(celgraph_natron.RESULT).getParam("filename").get(), source)

    # Nuke: menu.py picks up celgraph_menu_types.py: Nodes › Anime › GapFill
    monkeypatch.syspath_prepend(str(nkdir))
    monkeypatch.delitem(sys.modules, "celgraph_menu_types", raising=False)
    exec((HOSTS / "nuke" / "menu.py").read_text(), {"__name__": "menu"})
    entries = dict(nk.menus["Nodes/Anime"])
    assert {"celgraph Node", "celgraph Scene", "GapFill", "Sketch", "Reformat"} <= set(entries)
    exec(entries["GapFill"], {"__name__": "__main__"})
    group = nuke.toNode("GapFill1")
    assert group is not None and settle(nk, group, 60).startswith("ready"), group["cg_status"].value()
    assert json.loads(group["cg_schema"].value())["id"] == "celgraph.GapFill"
    assert not vars(group["cg_type"])["_visible"] and not vars(group["cg_scene"])["_visible"]
