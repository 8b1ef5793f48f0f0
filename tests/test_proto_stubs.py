"""The committed gRPC stubs match proto/ (regenerated into a temp dir and compared), import as a package,
and stay out of `graph run`."""
from __future__ import annotations

import subprocess
import sys

import pytest


def test_committed_stubs_are_not_stale():
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the dev extra) regenerates the stubs")
    from celgraph.service.gen import stale_files
    assert stale_files() == [], "proto/ changed: run `python -m celgraph.service.gen` and commit _gen/"


def test_stubs_import_from_the_package_and_keep_the_proto_names():
    from celgraph.service._gen import graph_service_pb2 as pb
    from celgraph.service._gen import graph_service_pb2_grpc as pb_grpc
    assert pb.DESCRIPTOR.name == "celgraph/v1/graph_service.proto" and pb.DESCRIPTOR.package == "celgraph.v1"
    service = pb.DESCRIPTOR.services_by_name["GraphService"]
    assert service.full_name == "celgraph.v1.GraphService"
    assert {m.name for m in service.methods} == {
        "ListNodeTypes", "ValidateGraph", "SubmitJob", "GetJob", "ListJobs", "WatchJob", "CancelJob", "ReadOutput",
        "CacheUsage", "ListCache", "ClearCache", "GcCache", "GetServerInfo"}
    assert service.methods_by_name["WatchJob"].server_streaming
    assert service.methods_by_name["ReadOutput"].server_streaming
    assert hasattr(pb_grpc, "GraphServiceStub") and hasattr(pb_grpc, "add_GraphServiceServicer_to_server")


def test_job_states_cover_the_lifecycle():
    from celgraph.service._gen import graph_service_pb2 as pb
    assert set(pb.JobState.keys()) == {f"JOB_STATE_{s}" for s in (
        "UNSPECIFIED", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED")}


def test_the_graph_command_does_not_import_grpc():
    code = ("import sys; from celgraph.cli import build_parser; build_parser().parse_args(['run', 'x.json']); "
            "import celgraph.service; print('grpc' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
