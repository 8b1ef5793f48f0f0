"""`graph remote ...` (the bridge Natron/Nuke plug-ins run as a subprocess) and `graph serve`, against a
live server on loopback. The server runs in this process (so conftest's test.* node types exist on it);
the bridge runs as the installed console script, exactly as a plug-in would call it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from celgraph.service.client import Client
from celgraph.service.server import GraphServer

pytestmark = pytest.mark.timeout(60)

_SCRIPT = Path(sys.executable).with_name("graph")
GRAPH = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "celgraph.cli"]


def lines(stdout: str) -> list[dict]:
    out = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert all(isinstance(o, dict) and "type" in o for o in out), out
    return out


@pytest.fixture
def served(tmp_path):
    """(server, run) — run(*args, token=None) runs `graph remote --address <server> ...`."""
    servers = []

    def start(**kw):
        s = GraphServer(port=0, cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", base_dir=tmp_path,
                        rpc_threads=16, **kw).start()
        servers.append(s)
        return s

    server = start()
    env = {k: v for k, v in os.environ.items() if k not in ("CELGRAPH_TOKEN", "CELGRAPH_ADDRESS")}
    env["CELGRAPH_CACHE"] = str(tmp_path / "client-cache")

    def run(*args, address=None, token=None, timeout=60):
        cmd = [*GRAPH, "remote", "--address", address or server.address]
        if token:
            cmd += ["--token", token]
        return subprocess.run([*cmd, *map(str, args)], cwd=tmp_path, env=env, text=True, capture_output=True,
                              timeout=timeout)

    yield server, run, start
    for s in servers:
        s.stop(grace=2.0)


def scene_file(tmp_path, scene: dict, name="scene.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(scene))
    return p


GOOD = {"celgraph": 1, "frames": "1-2", "nodes": {
    "src": {"type": "test.Source", "params": {"value": 0.25}},
    "out": {"type": "Write", "inputs": {"image": "src.image"}, "params": {"path": "out/b.####.exr"}}}}
FAILING = {"celgraph": 1, "frames": "1-3", "nodes": {
    "src": {"type": "test.Source"},
    "bad": {"type": "test.FailOn", "inputs": {"image": "src.image"}, "params": {"frame": 2}}}}
SLOW = {"celgraph": 1, "frames": "1-50", "nodes": {
    "src": {"type": "test.Source"},
    "slow": {"type": "test.Slow", "inputs": {"image": "src.image"}, "params": {"seconds": 0.5}}}}
INVALID = {"celgraph": 1, "nodes": {"a": {"type": "test.AddConst"}, "b": {"type": "Nope"}}}


def test_nodes_prints_one_descriptor_per_line_from_the_server(served):
    _, run, _ = served
    r = run("nodes")
    assert r.returncode == 0, r.stderr
    out = lines(r.stdout)
    assert {o["type"] for o in out} == {"node_type"}
    slow = next(o for o in out if o["id"] == "test.Slow")        # registered only in the server's process
    assert slow["params"][0] == {"name": "seconds", "kind": "float", "default": 0.2, "help": "", "min": 0, "max": 60}


def test_submit_watch_prints_job_events_and_final_job(served, tmp_path):
    _, run, _ = served
    r = run("submit", scene_file(tmp_path, GOOD), "--watch", "--label", "natron")
    assert r.returncode == 0, r.stderr
    out = lines(r.stdout)
    assert out[0]["type"] == "job" and out[0]["state"] in ("queued", "running", "succeeded")
    events = [o for o in out if o["type"] == "event"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["kind"] == "job_queued" and events[-1]["kind"] == "job_finished"
    final = out[-1]
    assert final["type"] == "job" and final["state"] == "succeeded" and final["label"] == "natron"
    files = [o["path"] for o in final["outputs"] if o["kind"] == "file"]
    assert files == [str((tmp_path / f"out/b.000{f}.exr").resolve()) for f in (1, 2)]
    # status and fetch of what it made
    s = run("status", final["job_id"])
    assert s.returncode == 0 and lines(s.stdout)[0]["state"] == "succeeded"
    f = run("fetch", final["job_id"], files[0], tmp_path / "copy.exr")
    assert f.returncode == 0, f.stderr
    fetched = lines(f.stdout)[0]
    assert fetched["type"] == "fetched" and fetched["bytes"] == os.path.getsize(files[0])
    assert (tmp_path / "copy.exr").read_bytes() == Path(files[0]).read_bytes()


def test_exit_codes_follow_the_job_and_the_scene(served, tmp_path):
    _, run, _ = served
    bad = run("submit", scene_file(tmp_path, INVALID), "--watch")
    assert bad.returncode == 2
    err = lines(bad.stdout)[-1]
    assert err["type"] == "error" and err["code"] == "invalid"
    assert {(i["node"], i["code"]) for i in err["issues"]} >= {("a", "missing_input"), ("b", "unknown_type")}
    v = run("validate", scene_file(tmp_path, INVALID, "invalid.json"))
    assert v.returncode == 2 and lines(v.stdout)[0] == {"type": "validation", "valid": False,
                                                        "issues": lines(v.stdout)[0]["issues"]}
    assert run("validate", scene_file(tmp_path, GOOD, "good.json")).returncode == 0
    failed = run("submit", scene_file(tmp_path, FAILING, "failing.json"), "--watch", "--no-progress")
    assert failed.returncode == 1
    final = lines(failed.stdout)[-1]
    assert final["state"] == "failed" and final["error"]["node"] == "bad" and final["error"]["frame"] == 2


def test_cancel_then_watch_exits_130(served, tmp_path):
    server, run, _ = served
    with Client(server.address, timeout=10) as c:
        job_id = c.submit(SLOW, workers=1)
        deadline = time.monotonic() + 10
        while c.job(job_id)["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
    r = run("cancel", job_id)
    assert r.returncode == 0 and lines(r.stdout)[0]["cancel_requested"]
    w = run("watch", job_id, "--from", 1)
    assert w.returncode == 130
    out = lines(w.stdout)
    assert out[0]["seq"] == 2 and out[-1]["type"] == "job" and out[-1]["state"] == "cancelled"


def test_refusals_and_unreachable_servers_have_their_own_exit_codes(served, tmp_path):
    server, run, start = served
    r = run("fetch", "-", "/etc/passwd", tmp_path / "x")
    assert r.returncode == 4 and lines(r.stdout)[0]["code"] == "permission_denied"
    r = run("status", "0" * 32)
    assert r.returncode == 4 and lines(r.stdout)[0]["code"] == "not_found"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run("nodes", address=f"127.0.0.1:{port}")
    assert r.returncode == 3
    assert lines(r.stdout) == [{"type": "error", "code": "unavailable", "address": f"127.0.0.1:{port}",
                                "message": lines(r.stdout)[0]["message"]}]
    locked = start(token="tok3n")
    r = run("info", address=locked.address)
    assert r.returncode == 4 and lines(r.stdout)[0]["code"] == "unauthenticated"
    r = run("info", address=locked.address, token="tok3n")
    assert r.returncode == 0 and lines(r.stdout)[0]["token_required"] is True


def test_serve_refuses_a_non_loopback_address_without_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CELGRAPH_TOKEN"}
    r = subprocess.run([*GRAPH, "serve", "--host", "0.0.0.0", "--port", "0", "--cache-dir", tmp_path / "c",
                        "--state-dir", tmp_path / "s"], env=env, text=True, capture_output=True, timeout=60)
    assert r.returncode == 2 and "token" in r.stderr and r.stdout == ""


def test_serve_prints_its_address_and_stops_on_sigterm(tmp_path):
    import signal
    env = {k: v for k, v in os.environ.items() if k != "CELGRAPH_TOKEN"}
    proc = subprocess.Popen([*GRAPH, "serve", "--port", "0", "--cache-dir", tmp_path / "c", "--state-dir",
                             tmp_path / "s", "--log-level", "error"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["type"] == "serving" and ready["address"].startswith("127.0.0.1:")
        with Client(ready["address"], timeout=10) as c:
            assert c.health() == "SERVING" and any(d["id"] == "celgraph.Write" for d in c.nodes())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
