"""The gRPC service, end to end: a real server on loopback (random free port, in-process threads so the
test.* node types of conftest are registered), real clients. Every loop is bounded in count and time;
every server is stopped by its fixture."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from celgraph.core.errors import GraphInvalid
from celgraph.nodes.io import read_image
from celgraph.service._gen import graph_service_pb2 as pb
from celgraph.service._gen import graph_service_pb2_grpc as pb_grpc
from celgraph.service.client import Client, ServerUnavailable, ServiceError
from celgraph.service.server import GraphServer, ServiceConfigError, is_loopback

pytestmark = pytest.mark.timeout(60)
TESTS = Path(__file__).resolve().parent


# ---- scenes ---------------------------------------------------------------------------------------

def write_scene(frames="1-3", value=0.5, path="out/x.####.exr") -> dict:
    """src → add (+1) → Write: frame f of the output is value + f/100 + 1."""
    return {"celgraph": 1, "frames": frames, "nodes": {
        "src": {"type": "test.Source", "params": {"value": value}},
        "add": {"type": "test.AddConst", "inputs": {"image": "src.image"}},
        "out": {"type": "Write", "inputs": {"image": "add.image"}, "params": {"path": path}}}}


def slow_scene(frames="1-20", seconds=0.1, value=0.0) -> dict:
    return {"celgraph": 1, "frames": frames, "nodes": {
        "src": {"type": "test.Source", "params": {"value": value}},
        "slow": {"type": "test.Slow", "inputs": {"image": "src.image"}, "params": {"seconds": seconds}}}}


def invalid_scene() -> dict:
    return {"celgraph": 1, "frames": "1-3", "nodes": {
        "src": {"type": "test.Source", "params": {"size": 0}},                  # param_out_of_range
        "add": {"type": "test.AddConst"},                                        # missing_input
        "what": {"type": "NoSuchNode"},                                           # unknown_type
        "sum": {"type": "test.Sum", "inputs": {"a": "ghost.image"}}}}            # unknown_node


# ---- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture
def make_server(tmp_path):
    servers = []

    def start(**kw) -> GraphServer:
        kw.setdefault("port", 0)
        kw.setdefault("cache_dir", tmp_path / "cache")
        kw.setdefault("state_dir", tmp_path / "state")
        kw.setdefault("base_dir", tmp_path)
        kw.setdefault("rpc_threads", 32)
        server = GraphServer(**kw).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop(grace=2.0)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def client(server):
    with Client(server.address, timeout=10) as c:
        yield c


@pytest.fixture
def stub(server):
    channel = grpc.insecure_channel(server.address)
    yield pb_grpc.GraphServiceStub(channel)
    channel.close()


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def assert_contiguous(events, start=1):
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(start, start + len(seqs))), seqs


# ---- standard services -----------------------------------------------------------------------------

def test_health_service_reports_serving(client):
    assert client.health() == "SERVING"
    assert client.health("celgraph.v1.GraphService") == "SERVING"


def test_reflection_lists_the_graph_service(server):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    with grpc.insecure_channel(server.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        replies = list(stub.ServerReflectionInfo(iter([
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="celgraph.v1.GraphService")]), timeout=10))
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"celgraph.v1.GraphService", "grpc.health.v1.Health"} <= names
    assert replies[1].file_descriptor_response.file_descriptor_proto


def test_server_info_names_store_limits_and_codes(client, server, tmp_path):
    info = client.server_info()
    assert info["store_root"] == str((tmp_path / "cache").resolve())
    assert info["base_dir"] == str(tmp_path.resolve())
    assert info["max_message_bytes"] == server.max_message_bytes and not info["token_required"]
    assert "missing_input" in info["issue_codes"]


# ---- node types and validation ------------------------------------------------------------------

def test_list_node_types_gives_full_typed_descriptors(client):
    from celgraph.engine import registry
    got = {d["id"]: d for d in client.nodes()}
    for t in registry.all():
        assert got[t.id] == json.loads(json.dumps(t.describe())), t.id
    src = {p["name"]: p for p in got["test.Source"]["params"]}
    assert src["size"] == {"name": "size", "kind": "int", "default": 8, "help": "", "min": 1, "max": 4096}
    mode = {p["name"]: p for p in got["test.AddConst"]["params"]}["mode"]
    assert mode["choices"] == ["add", "sub"] and mode["default"] == "add"
    assert got["celgraph.Write"]["outputs"][0]["type"] == "FileRef"


def test_list_node_types_filters_and_keeps_the_json_descriptor(stub):
    resp = stub.ListNodeTypes(pb.ListNodeTypesRequest(types=["test.Slow", "Write"]), timeout=10)
    assert [t.id for t in resp.node_types] == ["test.Slow", "celgraph.Write"]
    assert json.loads(resp.node_types[0].descriptor_json)["params"][0]["max"] == 60
    assert "Image" in {p.name for p in resp.port_types}
    with pytest.raises(grpc.RpcError) as e:
        stub.ListNodeTypes(pb.ListNodeTypesRequest(types=["Nope"]), timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_validate_graph_returns_every_coded_issue_per_node(stub):
    resp = stub.ValidateGraph(pb.ValidateGraphRequest(scene_json=json.dumps(invalid_scene())), timeout=10)
    assert not resp.valid
    codes = {(i.node, i.code) for i in resp.issues}
    assert {("src", "param_out_of_range"), ("add", "missing_input"), ("what", "unknown_type"),
            ("sum", "unknown_node")} <= codes
    assert {i.code for i in resp.node_issues["add"].issues} == {"missing_input"}
    ok = stub.ValidateGraph(pb.ValidateGraphRequest(scene_json=json.dumps(write_scene())), timeout=10)
    assert ok.valid and not ok.issues


def test_validate_reports_bad_json_targets_and_frames(client):
    assert [i["code"] for i in client.validate("{not json")] == ["bad_scene"]
    issues = client.validate(write_scene(), targets=["nope"], frames="7-9")
    assert {i["code"] for i in issues} == {"unknown_target", "bad_frames"}
    assert [i["code"] for i in client.validate(write_scene(), frames="3-1")] == ["bad_frames"]


def test_submit_invalid_graph_is_invalid_argument_with_issues_in_details(stub, client):
    with pytest.raises(grpc.RpcError) as e:
        stub.SubmitJob(pb.SubmitJobRequest(scene_json=json.dumps(invalid_scene())), timeout=10)
    err = e.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing_input" in err.details()
    blob = dict(err.trailing_metadata())["grpc-status-details-bin"]
    status = pb.RpcStatus.FromString(blob)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    detail = pb.ValidateGraphResponse()
    assert status.details[0].Unpack(detail)
    assert {"param_out_of_range", "missing_input", "unknown_type", "unknown_node"} <= {i.code for i in detail.issues}
    with pytest.raises(GraphInvalid) as gi:          # the client turns it into the engine's own error
        client.submit(invalid_scene())
    assert {"missing_input", "unknown_type"} <= {i.code for i in gi.value.issues}
    assert client.jobs() == []                      # nothing was queued


def test_submit_refuses_unknown_targets_frames_and_base_dir(client, tmp_path):
    for kw, code in (({"targets": ["ghost"]}, "unknown_target"), ({"frames": "5-9"}, "bad_frames"),
                     ({"frames": "x"}, "bad_frames"), ({"base_dir": str(tmp_path / "no/such")}, "file_not_found"),
                     ({"base_dir": "/no/such/folder"}, "path_not_allowed")):
        with pytest.raises(GraphInvalid) as e:
            client.submit(write_scene(), **kw)
        assert [i.code for i in e.value.issues] == [code], kw


# ---- jobs ------------------------------------------------------------------------------------------------

def test_job_runs_and_get_job_reports_state_timestamps_and_outputs(client, tmp_path):
    t0 = time.time()
    job_id = client.submit(write_scene(), label="sh010")
    job = client.wait(job_id, timeout=30)
    assert job["state"] == "succeeded" and job["error"] is None and job["label"] == "sh010"
    assert t0 <= job["created"] <= job["started"] <= job["finished"] <= time.time()
    assert job["targets"] == ["out"] and job["tasks_total"] == 9 and job["tasks_done"] == 9
    files = sorted(o["path"] for o in job["outputs"] if o["kind"] == "file")
    assert files == [str((tmp_path / f"out/x.000{f}.exr").resolve()) for f in (1, 2, 3)]
    for o in job["outputs"]:
        assert os.path.getsize(o["path"]) == o["bytes"] and len(o["sha256"]) == 64
    assert float(read_image(files[1])[0, 0, 0]) == pytest.approx(0.5 + 0.02 + 1, abs=1e-2)
    # a second identical job is all cache hits and says so
    again = client.wait(client.submit(write_scene()), timeout=30)
    assert again["state"] == "succeeded" and again["tasks_total"] == 0 and again["tasks_cached"] == 3


def test_outputs_of_non_write_targets_are_arrays_in_the_store(client, server):
    job = client.wait(client.submit(write_scene(frames="1-2"), targets=["add"]), timeout=30)
    arrays = [o for o in job["outputs"] if o["output"] == "image"]
    assert [o["frame"] for o in arrays] == [1, 2] and all(o["kind"] == "array" for o in arrays)
    assert all(o["path"].startswith(str(server.engine.store.objects)) for o in arrays)
    import io
    value = np.load(io.BytesIO(client.read_output(arrays[1]["path"], job_id=job["job_id"])))
    assert value.shape == (8, 8, 3) and float(value[0, 0, 0]) == pytest.approx(0.5 + 0.02 + 1)


def test_a_job_asking_for_one_output_lists_that_output_only(client, server):
    job = client.wait(client.submit(write_scene(frames="1-2"), targets=["add.mask"]), timeout=30)
    assert job["state"] == "succeeded" and job["targets"] == ["add.mask"]
    assert [(o["output"], o["frame"]) for o in job["outputs"]] == [("mask", 1), ("mask", 2)]
    with pytest.raises(GraphInvalid) as e:
        client.submit(write_scene(), targets=["add.nope"])
    assert [i.code for i in e.value.issues] == ["unknown_target"]


def test_relative_paths_resolve_against_base_dir(client, tmp_path):
    (tmp_path / "shot").mkdir()
    job = client.wait(client.submit(write_scene(frames="1"), base_dir="shot"), timeout=30)
    assert job["state"] == "succeeded" and job["base_dir"] == str((tmp_path / "shot").resolve())
    assert (tmp_path / "shot/out/x.0001.exr").is_file()
    scene_file = tmp_path / "shot" / "scene.json"        # a scene path: its folder is the base
    scene_file.write_text(json.dumps(write_scene(frames="2", path="frames/y.####.exr")))
    assert client.wait(client.submit(scene_file), timeout=30)["state"] == "succeeded"
    assert (tmp_path / "shot/frames/y.0002.exr").is_file()
    client.wait(client.submit(write_scene(frames="1", path="default/z.####.exr")), timeout=30)
    assert (tmp_path / "default/z.0001.exr").is_file()      # no base_dir: the server's base folder


def test_failed_job_names_node_frame_and_exception(client):
    scene = {"celgraph": 1, "frames": "1-3", "nodes": {
        "src": {"type": "test.Source"},
        "bad": {"type": "test.FailOn", "inputs": {"image": "src.image"}, "params": {"frame": 2}}}}
    job_id = client.submit(scene, workers=1)
    events = list(client.watch(job_id, timeout=30))
    job = client.job(job_id)
    assert job["state"] == "failed" and job["outputs"] == []
    err = job["error"]
    assert (err["code"], err["node"], err["node_type"], err["frame"], err["exception"]) == \
        ("node_failed", "bad", "test.FailOn", 2, "ValueError")
    failed = [e for e in events if e["kind"] == "task_failed"]
    assert failed and failed[0]["node"] == "bad" and failed[0]["frame"] == 2
    assert events[-1]["kind"] == "job_finished" and events[-1]["state"] == "failed"


def test_get_job_always_answers_and_unknown_ids_are_refused(client, stub):
    job_id = client.submit(slow_scene(frames="1-3", seconds=0.2))
    assert client.job(job_id)["state"] in ("queued", "running")
    wait_for(lambda: client.job(job_id)["state"] == "running", what="running")
    client.wait(job_id, timeout=30)
    assert client.job(job_id)["state"] == "succeeded"
    assert [j["job_id"] for j in client.jobs()] == [job_id]
    with pytest.raises(ServiceError) as e:
        client.job("0" * 32)
    assert e.value.code == "not_found"
    with pytest.raises(grpc.RpcError) as e2:
        stub.GetJob(pb.GetJobRequest(job_id="../../etc/passwd"), timeout=10)
    assert e2.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---- events ----------------------------------------------------------------------------------------------

def test_events_arrive_complete_and_in_order(client):
    job_id = client.submit(write_scene(frames="1-4"))
    events = list(client.watch(job_id, timeout=30))        # the stream ends by itself
    assert_contiguous(events)
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["job_queued", "run_started"] and kinds[-2:] == ["run_finished", "job_finished"]
    assert events[-1]["state"] == "succeeded" and events[-1]["data"]["state"] == "succeeded"
    started = {(e["node"], e.get("frame")) for e in events if e["kind"] == "task_started"}
    finished = [(e["node"], e.get("frame")) for e in events if e["kind"] == "task_finished"]
    assert len(finished) == 12 and set(finished) == started
    for e in events:
        if e["kind"] == "task_finished":
            start = next(s for s in events if s["kind"] == "task_started" and
                         (s["node"], s.get("frame")) == (e["node"], e.get("frame")))
            assert start["seq"] < e["seq"]
    assert client.job(job_id)["last_seq"] == events[-1]["seq"]
    # replay of a finished job gives the same events
    assert [e["seq"] for e in client.watch(job_id, timeout=30)] == [e["seq"] for e in events]


def test_reconnecting_watcher_resumes_without_gaps_or_duplicates(client, stub):
    job_id = client.submit(slow_scene(frames="1-6", seconds=0.1), workers=1)
    call = stub.WatchJob(pb.WatchJobRequest(job_id=job_id), timeout=30)
    first = []
    for batch in call:
        first += [{"seq": m.seq, "kind": m.kind} for m in batch.events]
        if len(first) >= 4:
            break
    call.cancel()                                                   # the client goes away mid-stream
    assert client.job(job_id)["state"] == "running"
    rest = list(client.watch(job_id, from_seq=first[-1]["seq"], timeout=30))
    assert_contiguous(first + rest)
    assert rest[-1]["kind"] == "job_finished"


class TcpProxy:
    """Loopback TCP forwarder whose connections can be cut, to drop a live stream under a client."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        self.accepted = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                down, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            up = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            up.settimeout(None)
            down.settimeout(None)
            with self.lock:
                self.conns += [down, up]
                self.accepted += 1
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def sever(self) -> int:
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        return len(conns)

    def close(self):
        self.closed = True
        self.sever()
        self.sock.close()
        self.thread.join(2)


def test_watch_reconnects_by_itself_when_the_connection_drops(server):
    proxy = TcpProxy(server.port)
    try:
        with Client(f"127.0.0.1:{proxy.port}", timeout=10) as c:
            job_id = c.submit(slow_scene(frames="1-8", seconds=0.1), workers=1)
            events, severed = [], 0
            for ev in c.watch(job_id, timeout=30, retry_for=10):
                events.append(ev)
                if len(events) == 5:
                    severed = proxy.sever()
                assert len(events) < 500
            assert severed >= 2 and proxy.accepted >= 2          # the stream was cut and re-opened
            assert_contiguous(events)
            assert events[-1]["kind"] == "job_finished" and events[-1]["state"] == "succeeded"
            assert len([e for e in events if e["kind"] == "task_finished"]) == 16
    finally:
        proxy.close()


# ---- cancellation ------------------------------------------------------------------------------------------

def test_cancel_running_job(client):
    job_id = client.submit(slow_scene(frames="1-50", seconds=0.5), workers=1)
    events = []
    cancelled = False
    for ev in client.watch(job_id, timeout=30):
        events.append(ev)
        if ev["kind"] == "task_started" and ev["node"] == "slow" and not cancelled:
            cancelled = True
            assert client.cancel(job_id)["cancel_requested"]
    assert cancelled
    assert sum(e["kind"] == "task_finished" and e["node"] == "slow" for e in events) <= 2   # of 50
    job = client.job(job_id)
    assert job["state"] == "cancelled" and job["error"]["code"] == "cancelled"
    assert events[-1]["kind"] == "job_finished" and events[-1]["state"] == "cancelled"
    assert client.cancel(job_id)["state"] == "cancelled"          # idempotent


def test_cancel_queued_job_never_runs_it(make_server):
    server = make_server(max_jobs=1)
    with Client(server.address, timeout=10) as c:
        first = c.submit(slow_scene(frames="1-50", seconds=0.5), workers=1)
        second = c.submit(write_scene())
        wait_for(lambda: c.job(first)["state"] == "running", what="first job running")
        assert c.job(second)["state"] == "queued"
        assert c.cancel(second)["state"] == "cancelled"
        assert [e["kind"] for e in c.watch(second, timeout=10)] == ["job_queued", "job_finished"]
        c.cancel(first)
        assert c.wait(first, timeout=30)["state"] == "cancelled"
        assert c.job(second)["started"] is None


# ---- concurrency --------------------------------------------------------------------------------------------

def test_eight_concurrent_clients_get_correct_results_and_every_event(make_server, tmp_path):
    server = make_server(max_jobs=4)
    results, errors = {}, []

    def one(i):
        try:
            with Client(server.address, timeout=20) as c:
                job_id = c.submit(write_scene(value=i / 10, path=f"c{i}/x.####.exr"))
                events = list(c.watch(job_id, timeout=45))
                results[i] = (c.job(job_id), events)
        except Exception as e:       # noqa: BLE001 — reported below
            errors.append((i, e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(50)
    assert not errors and len(results) == 8
    ids = set()
    for i, (job, events) in results.items():
        assert job["state"] == "succeeded"
        assert_contiguous(events)
        assert events[-1]["kind"] == "job_finished" and job["last_seq"] == events[-1]["seq"]
        assert len([e for e in events if e["kind"] == "task_finished"]) == 9
        for f in (1, 2, 3):
            img = read_image(tmp_path / f"c{i}/x.000{f}.exr")
            assert float(img[0, 0, 0]) == pytest.approx(i / 10 + f / 100 + 1, abs=1e-2)
        ids.add(job["job_id"])
    assert len(ids) == 8


# ---- security and limits --------------------------------------------------------------------------------------

def test_non_loopback_address_without_token_refuses_to_start(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.3.2.1")
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "", "10.1.2.3", "render01.studio"))
    for host in ("0.0.0.0", "::", "192.168.1.20"):
        with pytest.raises(ServiceConfigError, match="token"):
            GraphServer(host=host, port=0, cache_dir=tmp_path / "c", state_dir=tmp_path / "s")


def test_token_is_required_on_every_call_when_set(make_server):
    server = make_server(token="s3cret")
    with Client(server.address, token="", timeout=10) as anon:      # "" = no token (not $CELGRAPH_TOKEN)
        for call in (anon.nodes, anon.jobs, anon.server_info, anon.cache_du):
            with pytest.raises(ServiceError) as e:
                call()
            assert e.value.code == "unauthenticated"
        with pytest.raises(ServiceError) as e:
            list(anon.watch("0" * 32, reconnect=False))           # streams are guarded too
        assert e.value.code == "unauthenticated"
        assert anon.health() == "SERVING"                          # probes need no token
    with Client(server.address, token="wrong", timeout=10) as bad:
        with pytest.raises(ServiceError, match="unauthenticated"):
            bad.nodes()
    with Client(server.address, token="s3cret", timeout=10) as good:
        assert good.nodes() and good.server_info()["token_required"]
        assert good.wait(good.submit(write_scene(frames="1")), timeout=30)["state"] == "succeeded"


def test_oversized_message_is_refused_and_the_server_still_answers(make_server):
    server = make_server(max_message_bytes=1 << 20)
    scene = write_scene()
    scene["ui"] = {"notes": "x" * (2 << 20)}
    with Client(server.address, timeout=10) as c:
        with pytest.raises(ServiceError) as e:
            c.submit(scene)
        assert e.value.code == "resource_exhausted"
        assert c.nodes() and c.health() == "SERVING"
        assert c.wait(c.submit(write_scene(frames="1")), timeout=30)["state"] == "succeeded"


def test_read_output_streams_job_files_in_chunks(client, stub):
    job = client.wait(client.submit(write_scene()), timeout=30)
    path = job["outputs"][0]["path"]
    data = Path(path).read_bytes()
    chunks = list(stub.ReadOutput(pb.ReadOutputRequest(job_id=job["job_id"], path=path, chunk_size=100), timeout=10))
    assert len(chunks) == -(-len(data) // 100) and chunks[-1].last and chunks[0].total_bytes == len(data)
    assert b"".join(c.data for c in chunks) == data
    assert client.read_output(path, job_id=job["job_id"]) == data


def test_read_output_cannot_escape_the_outputs_or_the_store(client, server, tmp_path):
    job = client.wait(client.submit(write_scene()), timeout=30)
    jid = job["job_id"]
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    store = server.engine.store
    entry = next(store.objects.glob("*/*"))
    (entry / "evil.npy").symlink_to(secret)                          # a symlink planted in the store
    out0 = Path(job["outputs"][0]["path"])
    out0.unlink()
    out0.symlink_to(secret)                                          # an output swapped for a symlink
    denied = ["../../secret.txt", "objects/../../secret.txt", str(secret), "/etc/passwd",
              str(entry / "evil.npy"), str(out0), str(Path(job["outputs"][1]["path"])) + "/../../secret.txt",
              str(store.root / "objects" / ".." / ".." / "secret.txt")]
    for path in denied:
        for job_id in (jid, ""):
            with pytest.raises(ServiceError) as e:
                client.read_output(path, job_id=job_id)
            assert e.value.code == "permission_denied", (path, job_id)
    with pytest.raises(ServiceError, match="not_found"):
        client.read_output(str(store.objects / "00" / "missing.npy"))
    with pytest.raises(ServiceError, match="invalid_argument"):
        client.read_output(str(entry))                               # a folder, not a file
    rel = (entry / "meta.json").relative_to(store.root)
    assert json.loads(client.read_output(str(rel)))["key"] == entry.name     # store-relative is fine
    with pytest.raises(ServiceError, match="permission_denied"):   # another job's files are not this job's
        other = client.wait(client.submit(write_scene(path="other/y.####.exr")), timeout=30)
        client.read_output(other["outputs"][0]["path"], job_id=jid)


# ---- persistence --------------------------------------------------------------------------------------------

def test_job_record_survives_a_graceful_restart_as_interrupted(make_server, tmp_path):
    server = make_server(max_jobs=1)
    with Client(server.address, timeout=10) as c:
        running = c.submit(slow_scene(frames="1-50", seconds=0.5), workers=1)
        queued = c.submit(write_scene())
        wait_for(lambda: c.job(running)["state"] == "running", what="running")
    server.stop(grace=0.5)
    again = make_server()
    with Client(again.address, timeout=10) as c:
        for job_id in (running, queued):
            job = c.job(job_id)
            assert job["state"] == "interrupted" and job["error"]["code"] == "interrupted", job
            events = list(c.watch(job_id, timeout=10))
            assert_contiguous(events)
            assert events[-1]["kind"] == "job_finished" and events[-1]["state"] == "interrupted"


def test_job_record_survives_a_killed_server_as_interrupted(make_server, tmp_path):
    """SIGKILL: no chance to write anything at exit; the next server finds the record running."""
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import conftest; from celgraph.cli import main; "
            f"sys.exit(main(['serve', '--port', '0', '--cache-dir', {str(tmp_path / 'cache')!r}, "
            f"'--state-dir', {str(tmp_path / 'state')!r}, '--base-dir', {str(tmp_path)!r}, '--log-level', 'error']))")
    env = {k: v for k, v in os.environ.items() if k != "CELGRAPH_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        address = json.loads(line)["address"]
        with Client(address, timeout=10) as c:
            job_id = c.submit(slow_scene(frames="1-50", seconds=0.5), workers=1)
            seen = []
            for ev in c.watch(job_id, timeout=30):
                seen.append(ev)
                if ev["kind"] == "task_progress":
                    break
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    server = make_server()
    with Client(server.address, timeout=10) as c:
        job = c.job(job_id)
        assert job["state"] == "interrupted" and job["started"] and job["finished"]
        events = list(c.watch(job_id, timeout=10))
        assert_contiguous(events)
        assert [e["seq"] for e in events[:len(seen)]] == [e["seq"] for e in seen]
        assert events[-1]["kind"] == "job_finished" and events[-1]["state"] == "interrupted"
        resumed = list(c.watch(job_id, from_seq=seen[-1]["seq"], timeout=10))   # a watcher that was cut off
        assert resumed and resumed[0]["seq"] == seen[-1]["seq"] + 1 and resumed[-1]["kind"] == "job_finished"


def test_a_final_event_lost_in_a_crash_is_restored_at_start(make_server, tmp_path):
    server = make_server()
    with Client(server.address, timeout=10) as c:
        job_id = c.submit(write_scene(frames="1"))
        before = list(c.watch(job_id, timeout=30))
    server.stop()
    log = tmp_path / "state" / "jobs" / f"{job_id}.events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-1]) + lines[-1][:10])      # the last line half-written, as by a crash
    again = make_server()
    with Client(again.address, timeout=10) as c:
        after = list(c.watch(job_id, timeout=10))
        assert c.job(job_id)["state"] == "succeeded" and c.job(job_id)["last_seq"] == before[-1]["seq"]
    assert_contiguous(after)
    assert [e["kind"] for e in after] == [e["kind"] for e in before]
    assert after[-1]["state"] == "succeeded"


# ---- cache management -----------------------------------------------------------------------------------------

def test_cache_du_ls_gc_clear(client):
    client.wait(client.submit(write_scene()), timeout=30)
    du = client.cache_du()
    assert du["entries"] == 9 and du["bytes"] > 0
    entries = client.cache_ls()
    assert len(entries) == 9 and {e["node_type"] for e in entries} == {"test.Source", "test.AddConst", "celgraph.Write"}
    assert len(client.cache_ls(limit=2)) == 2
    assert client.cache_gc(older_than=3600)["removed"] == 0
    assert client.cache_gc(max_bytes=du["bytes"] - 1)["removed"] >= 1
    left = client.cache_du()["entries"]
    assert client.cache_clear()["removed"] == left and client.cache_du()["entries"] == 0
    with pytest.raises(ServiceError, match="invalid_argument"):
        client.cache_gc()


def test_clear_cache_refuses_while_jobs_run_unless_forced(client):
    job_id = client.submit(slow_scene(frames="1-50", seconds=0.5), workers=1)
    wait_for(lambda: client.job(job_id)["state"] == "running", what="running")
    with pytest.raises(ServiceError) as e:
        client.cache_clear()
    assert e.value.code == "failed_precondition"
    assert client.cache_clear(force=True)["removed"] >= 0
    client.cancel(job_id)
    client.wait(job_id, timeout=30)


def test_unreachable_server_is_server_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"127.0.0.1:{port}", timeout=5) as c:
        with pytest.raises(ServerUnavailable):
            c.nodes()
