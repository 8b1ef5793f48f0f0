"""The web page's API (celgraph/service/web.py): a real gRPC server and its WebServer on loopback,
real HTTP requests. The same jobs answer both doors; events are WatchJob's; pictures pass ReadOutput's
path checks; the token and loopback rules are gRPC's. (The page in a browser: test_web_browser.py.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from celgraph.service.client import Client
from celgraph.service.server import GraphServer, ServiceConfigError
from celgraph.service.web import WebServer, layout, thumbnail_png, to_rgb8

pytestmark = pytest.mark.timeout(60)


def write_scene(frames="1-3", size=8, path="out/x.####.png") -> dict:
    return {"celgraph": 1, "frames": frames, "nodes": {
        "src": {"type": "test.Source", "params": {"value": 0.25, "size": size}},
        "add": {"type": "test.AddConst", "inputs": {"image": "src.image"}, "params": {"amount": 0.5}},
        "out": {"type": "Write", "inputs": {"image": "add.image"}, "params": {"path": path}}}}


def slow_scene(frames="1-6", seconds=0.05) -> dict:
    return {"celgraph": 1, "frames": frames, "nodes": {
        "src": {"type": "test.Source"},
        "slow": {"type": "test.Slow", "inputs": {"image": "src.image"}, "params": {"seconds": seconds}}}}


@pytest.fixture
def serve(tmp_path):
    """serve(**grpc_kw, web=dict(...)) → (GraphServer, WebServer); all stopped at the end."""
    started = []

    def start(web=None, **kw):
        kw.setdefault("port", 0)
        kw.setdefault("cache_dir", tmp_path / "cache")
        kw.setdefault("state_dir", tmp_path / "state")
        kw.setdefault("base_dir", tmp_path)
        g = GraphServer(**kw).start()
        started.append(g)
        w = WebServer(g, port=0, **(web or {})).start()
        started.append(w)
        return g, w

    yield start
    for s in reversed(started):
        s.stop() if isinstance(s, WebServer) else s.stop(grace=2.0)


def get(web, path, headers=None, method="GET", base=None):
    """(status, headers, body bytes) of one request; errors are answers too."""
    req = urllib.request.Request((base or web.url) + path.lstrip("/"), headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get_json(web, path, **kw):
    status, _, body = get(web, path, **kw)
    assert status == 200, body
    return json.loads(body)


def sse(web, job_id, from_seq=0, last_event_id=None) -> tuple[list[dict], bool]:
    """All events of an SSE stream until it ends, and whether it ended with `event: end`."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    query = f"?from={from_seq}" if from_seq else ""
    req = urllib.request.Request(f"{web.url}api/jobs/{job_id}/events{query}", headers=headers)
    events, ended, kind, ids = [], False, "message", []
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("id: "):
                ids.append(int(line[4:]))
            elif line.startswith("data: "):
                if kind == "end":
                    ended = True
                else:
                    events.append(json.loads(line[6:]))
                kind = "message"
    assert ids == [e["seq"] for e in events]         # the SSE id is the seq: EventSource resumes by it
    return events, ended


FIELDS = ("seq", "kind", "node", "node_type", "frame", "key", "state", "message", "data")


def same(ev: dict) -> tuple:
    return tuple(json.dumps(ev.get(k), sort_keys=True) for k in FIELDS)


# ---- events ------------------------------------------------------------------------------------------

def test_live_events_equal_watchjob_and_resume_by_seq(serve, tmp_path):
    g, w = serve()
    with Client(g.address) as c:
        job = c.submit(slow_scene(), label="sse")
        live: dict = {}
        t = threading.Thread(target=lambda: live.update(zip(("events", "ended"), sse(w, job))))
        t.start()                                           # reads while the job runs
        watched = list(c.watch(job, timeout=30))
        t.join(30)
        assert live["ended"]
        assert [same(e) for e in live["events"]] == [same(e) for e in watched]
        assert [e["seq"] for e in watched] == list(range(1, len(watched) + 1))
        assert watched[-1]["kind"] == "job_finished" and watched[-1]["state"] == "succeeded"
        assert any(e["kind"] == "task_progress" for e in watched)
        # resuming after seq k (query or EventSource's Last-Event-ID) gives exactly the rest
        k = len(watched) // 2
        rest, ended = sse(w, job, from_seq=k)
        assert ended and [same(e) for e in rest] == [same(e) for e in watched[k:]]
        rest, ended = sse(w, job, last_event_id=k + 1)
        assert ended and [same(e) for e in rest] == [same(e) for e in watched[k + 1:]]
        rest, ended = sse(w, job, from_seq=1, last_event_id=k)     # a reconnect: the header wins
        assert ended and [same(e) for e in rest] == [same(e) for e in watched[k:]]
        assert [same(e) for e in get_json(w, f"api/jobs/{job}/events.json?from=3")] == [same(e) for e in watched[3:]]


def test_events_of_a_job_finished_before_a_restart_replay_from_the_log(serve, tmp_path):
    g, w = serve()
    with Client(g.address) as c:
        job = c.submit(write_scene())
        before = list(c.watch(job, timeout=30))
    g.stop(grace=1.0)
    w.stop()
    g2, w2 = serve(state_dir=tmp_path / "state")
    events, ended = sse(w2, job)
    assert ended and [same(e) for e in events] == [same(e) for e in before]
    assert get_json(w2, f"api/jobs/{job}")["state"] == "succeeded"


# ---- jobs, failure, cancel, catalogue, graph ----------------------------------------------------------

def test_jobs_list_progress_and_failure_names_node_type_frame(serve):
    g, w = serve()
    scene = {"celgraph": 1, "frames": "1-3", "nodes": {
        "src": {"type": "test.Source"},
        "bad": {"type": "test.FailOn", "inputs": {"image": "src.image"}, "params": {"frame": 2}}}}
    with Client(g.address) as c:
        ok = c.submit(write_scene(), label="fine")
        bad = c.submit(scene, workers=1)
        c.wait(ok, timeout=30), c.wait(bad, timeout=30)
    jobs = {j["id"]: j for j in get_json(w, "api/jobs")}
    assert jobs[ok]["state"] == "succeeded" and jobs[ok]["progress"] == 1.0 and jobs[ok]["label"] == "fine"
    assert "scene" not in jobs[ok] and jobs[ok]["outputs"] == 3      # the polled list stays small
    assert len(get_json(w, f"api/jobs/{ok}")["outputs"]) == 3
    err = get_json(w, f"api/jobs/{bad}")["error"]
    assert (err["code"], err["node"], err["node_type"], err["frame"]) == ("node_failed", "bad", "test.FailOn", 2)
    assert "synthetic failure" in err["message"]
    status, _, body = get(w, "api/jobs/" + "0" * 32)
    assert status == 404 and "no job" in json.loads(body)["message"]
    assert get(w, "api/jobs/nothex")[0] == 400


def test_cancel_is_the_managers_cancel_and_refuses_other_origins(serve):
    g, w = serve(max_jobs=1)
    with Client(g.address) as c:
        running = c.submit(slow_scene(frames="1-40", seconds=0.2), workers=1)
        queued = c.submit(write_scene())
        status, _, body = get(w, f"api/jobs/{queued}/cancel", method="POST",
                              headers={"Origin": "http://evil.example"})
        assert status == 403 and c.job(queued)["state"] == "queued"
        assert get_json(w, f"api/jobs/{queued}/cancel", method="POST")["state"] == "cancelled"
        for ev in c.watch(running, timeout=30):
            if ev["kind"] == "task_finished":
                break
        assert get_json(w, f"api/jobs/{running}/cancel", method="POST")["cancel_requested"] is True
        final = c.wait(running, timeout=30)
        assert final["state"] == "cancelled" and c.job(queued)["state"] == "cancelled"


def test_node_catalogue_is_the_descriptors(serve):
    g, w = serve()
    types = {t["id"]: t for t in get_json(w, "api/nodes")}
    assert types["celgraph.Blur"] == g.engine.registry.get("Blur").describe()
    assert "test.Slow" in types and "celgraph.FlowRAFT" in types


def test_graph_is_laid_out_with_typed_links_and_params_with_defaults(serve):
    g, w = serve()
    with Client(g.address) as c:
        job = c.submit(write_scene())
    graph = get_json(w, f"api/jobs/{job}/graph")
    nodes = {n["name"]: n for n in graph["nodes"]}
    assert [(nodes[n]["col"], nodes[n]["row"]) for n in ("src", "add", "out")] == [(0, 0), (1, 0), (2, 0)]
    assert {(l["from"], l["output"], l["to"], l["input"], l["type"]) for l in graph["links"]} == {
        ("src", "image", "add", "image", "Image"), ("add", "image", "out", "image", "Image")}
    params = {p["name"]: p for p in nodes["add"]["params"]}
    assert params["amount"]["value"] == 0.5 and params["amount"]["set"]
    assert params["mode"]["value"] == "add" and not params["mode"]["set"]        # the default, filled in
    assert nodes["add"]["image_outputs"] == ["image", "mask"] and nodes["out"]["type"] == "celgraph.Write"


def test_layout_columns_are_longest_paths_and_rows_follow_parents():
    pos = layout(["a", "b", "x", "c", "d"], [("a", "c"), ("b", "d"), ("a", "d"), ("c", "d"), ("x", "c")])
    assert {n: p[0] for n, p in pos.items()} == {"a": 0, "b": 0, "x": 0, "c": 1, "d": 2}
    # two chains written crosswise: the sweeps put each child level with its parent
    pos = layout(["p", "q", "q2", "p2"], [("p", "p2"), ("q", "q2")])
    assert pos["p2"][1] == pos["p"][1] and pos["q2"][1] == pos["q"][1]
    assert layout(["a", "b"], [("a", "b"), ("b", "a")])          # a cycle (invalid scene) still draws


# ---- pictures ------------------------------------------------------------------------------------------

def test_pictures_list_written_files_and_previews_per_frame(serve, tmp_path):
    g, w = serve()
    scene = write_scene(size=600)
    with Client(g.address) as c:
        job = c.submit(scene)
        c.wait(job, timeout=30)
    pics = get_json(w, f"api/jobs/{job}/pictures")
    assert pics["frames"] == [1, 2, 3]
    files = [i for i in pics["items"] if i["kind"] == "file"]
    assert [i["frame"] for i in files] == [1, 2, 3]
    assert files[0]["path"] == str(tmp_path / "out" / "x.0001.png")
    status, headers, png = get(w, files[0]["src"] + "&size=64")
    assert status == 200 and headers["Content-Type"] == "image/png"
    import cv2
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (64, 64, 3)                               # 600 px, downsampled on the server
    from celgraph.colorspace import from_working                 # the PNG holds the linear value as sRGB
    expected = round(float(from_working(np.full((1, 1, 3), 0.25 + 0.01 + 0.5, np.float32), "sRGB")[0, 0, 1]) * 255)
    assert abs(int(img[32, 32, 1]) - expected) <= 1
    # any image output of any node, live from the store (not a target: no file, no output row)
    status, _, png = get(w, f"api/jobs/{job}/thumb?node=add&output=mask&frame=2&size=32")
    assert status == 200 and cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (32, 32, 3)
    assert get(w, f"api/jobs/{job}/thumb?node=add&output=nope&frame=2")[0] == 404
    assert get(w, f"api/jobs/{job}/thumb?node=add&output=image&frame=9")[0] == 404


def test_thumbnails_refuse_paths_outside_the_jobs_outputs(serve, tmp_path):
    g, w = serve()
    with Client(g.address) as c:
        job = c.submit(write_scene())
        other = c.submit(write_scene(path="other/y.####.png"))
        c.wait(job, timeout=30), c.wait(other, timeout=30)
    out1 = tmp_path / "out" / "x.0001.png"
    from celgraph.nodes.io import write_image
    secret = tmp_path / "secret.png"
    write_image(secret, np.ones((4, 4, 3), np.float32))
    outside = Path(os.path.realpath(tmp_path)).parent / "outside.png"
    refused = [secret, "/etc/passwd", str(tmp_path / "out" / ".." / "secret.png"), "../secret.png",
               f"{out1}/../../secret.png", str(tmp_path / "other" / "y.0001.png"),     # another job's file
               str(outside), str(tmp_path / "missing.png")]
    for p in refused:
        status, _, body = get(w, f"api/jobs/{job}/thumb?" + urllib.parse.urlencode({"path": str(p)}))
        assert status == 403, (p, body)
        assert "not an output of this job" in json.loads(body)["message"]
    assert get(w, f"api/jobs/{job}/thumb?" + urllib.parse.urlencode({"path": str(out1)}))[0] == 200
    # an output replaced by a symlink that leads out is refused too (after resolving it)
    out2 = tmp_path / "out" / "x.0002.png"
    out2.unlink()
    out2.symlink_to(secret)
    assert get(w, f"api/jobs/{job}/thumb?" + urllib.parse.urlencode({"path": str(out2)}))[0] == 403
    # a symlink planted in the store that leads out is refused
    planted = g.engine.store.objects / "zz" / "evil.npy"
    planted.parent.mkdir(parents=True, exist_ok=True)
    np.save(tmp_path / "real.npy", np.zeros((4, 4), np.float32))
    planted.symlink_to(tmp_path / "real.npy")
    assert get(w, f"api/jobs/{job}/thumb?" + urllib.parse.urlencode({"path": str(planted)}))[0] == 403
    # a file the policy allows that is no picture (an entry's meta.json) is 422, not a crash
    meta = next(g.engine.store.objects.glob("*/*/meta.json"))
    status, _, body = get(w, f"api/jobs/{job}/thumb?" + urllib.parse.urlencode({"path": str(meta)}))
    assert status == 422 and "not a picture" in json.loads(body)["message"]
    # the same path policy as ReadOutput: ask it about the same paths
    with Client(g.address) as c:
        from celgraph.service.client import ServiceError
        for p in (secret, str(out2)):
            with pytest.raises(ServiceError) as e:
                c.read_output(str(p), job_id=job)
            assert e.value.code == "permission_denied"


def test_thumbnail_rendering_of_each_port_type():
    flow = np.zeros((8, 8, 2), np.float32)
    flow[..., 0] = 3.0                                               # +x: red on the wheel
    assert tuple(to_rgb8(flow)[0, 0]) == (255, 0, 0)
    labels = np.array([[0, 1], [2, 1]], np.int32)
    rgb = to_rgb8(labels, "Labels")
    assert tuple(rgb[0, 0]) == (0, 0, 0) and (rgb[0, 1] == rgb[1, 1]).all() and (rgb[1, 0] != rgb[0, 1]).any()
    assert tuple(to_rgb8(np.ones((2, 2), np.float32), "LineArt")[0, 0]) == (0, 0, 0)      # ink is black
    rgba = np.zeros((16, 16, 4), np.float32)                          # transparent: the checkerboard shows
    assert len({tuple(p) for p in to_rgb8(rgba).reshape(-1, 3)}) == 2
    png = thumbnail_png(np.random.default_rng(0).random((1080, 1920, 3)).astype(np.float32), 128)
    import cv2
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (72, 128, 3)
    with pytest.raises(ValueError):
        to_rgb8(np.zeros((4, 4, 7), np.float32))


# ---- page, token, loopback --------------------------------------------------------------------------------

def test_page_and_assets_are_package_data_with_a_strict_csp(serve):
    g, w = serve()
    status, headers, body = get(w, "/")
    assert status == 200 and b"<script src=\"/app.js\"" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for asset, ctype in (("app.js", "text/javascript"), ("app.css", "text/css")):
        status, headers, body = get(w, asset)
        assert status == 200 and headers["Content-Type"].startswith(ctype) and len(body) > 1000
        body = body.replace(b'"http://www.w3.org/2000/svg"', b"")       # the SVG namespace is a name
        assert b"http://" not in body and b"https://" not in body      # nothing fetched from elsewhere
    assert get(w, "/nothing")[0] == 404


def test_token_required_off_loopback(serve, tmp_path):
    g, _ = serve()
    with pytest.raises(ServiceConfigError, match="without a token"):
        WebServer(g, host="0.0.0.0", port=0, token=None)
    g2, w = serve(host="0.0.0.0", token="s3cret", state_dir=tmp_path / "state2")
    assert w.token == "s3cret"                                          # the gRPC server's token by default
    base = f"http://127.0.0.1:{w.port}/"
    assert get(w, "/", base=base)[0] == 200                              # the page itself holds nothing secret
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "celgraph_token=wrong"}):
        status, _, body = get(w, "api/jobs", headers=headers, base=base)
        assert status == 401 and "token" in json.loads(body)["message"]
        assert get(w, "api/jobs/" + "0" * 32 + "/events", headers=headers, base=base)[0] == 401
        assert get(w, "api/nodes", headers=headers, base=base)[0] == 401
    assert get(w, "api/jobs", headers={"Authorization": "Bearer s3cret"}, base=base)[0] == 200
    # the page logs in once; the cookie then serves EventSource and <img> (which cannot send headers)
    assert get(w, "api/login", method="POST", headers={"Authorization": "Bearer wrong"}, base=base)[0] == 401
    status, headers, _ = get(w, "api/login", method="POST", headers={"Authorization": "Bearer s3cret"}, base=base)
    cookie = headers["Set-Cookie"]
    assert status == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert get(w, "api/jobs", headers={"Cookie": cookie.split(";")[0]}, base=base)[0] == 200
    assert "s3cret" not in cookie                                       # a digest, not the token
    assert get(w, "api/jobs", headers={"Cookie": "celgraph_token=s3cret"}, base=base)[0] == 401


def test_without_a_token_only_a_loopback_host_header_is_served(serve):
    g, w = serve()
    assert get(w, "api/info")[0] == 200
    status, _, body = get(w, "api/info", headers={"Host": f"rebound.example:{w.port}"})
    assert status == 403 and "localhost" in json.loads(body)["message"]
    assert get(w, "api/info", headers={"Host": f"localhost:{w.port}"})[0] == 200
    assert get_json(w, "api/info")["token_required"] is False


def test_graph_serve_http_prints_the_page_address(tmp_path):
    env = {**os.environ, "CELGRAPH_TOKEN": ""}
    p = subprocess.Popen([sys.executable, "-m", "celgraph.cli", "serve", "--port", "0", "--http", "0",
                          "--cache-dir", str(tmp_path / "c"), "--state-dir", str(tmp_path / "s")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = json.loads(p.stdout.readline())
        assert line["type"] == "serving" and line["http"].startswith("http://127.0.0.1:")
        with urllib.request.urlopen(line["http"] + "api/info", timeout=30) as r:
            info = json.loads(r.read())
        assert info["grpc_address"] == line["address"]
    finally:
        p.terminate()
        assert p.wait(30) == 0


def test_open_event_streams_are_bounded(serve):
    g, w = serve()
    w._streams = threading.BoundedSemaphore(1)                       # as if 63 other tabs were open
    with Client(g.address) as c:
        job = c.submit(slow_scene(frames="1-40", seconds=0.2), workers=1)
        first = urllib.request.urlopen(f"{w.url}api/jobs/{job}/events", timeout=30)
        try:
            assert first.readline().startswith(b"retry:")            # the stream is open and holds the slot
            status, _, body = get(w, f"api/jobs/{job}/events")
            assert status == 503 and "event streams are open" in json.loads(body)["message"]
        finally:
            first.close()
            c.cancel(job)
        c.wait(job, timeout=30)
    deadline = time.monotonic() + 10                                 # the slot comes back once the stream ends
    while not w._streams.acquire(blocking=False):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    w._streams.release()
