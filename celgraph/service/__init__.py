"""The gRPC service: `graph serve` (server.py), the Python client (client.py), the `graph remote`
bridge for hosts whose Python cannot load grpcio (bridge.py), jobs and their persistence (jobs.py).

The wire contract is `proto/celgraph/v1/graph_service.proto`; the stubs in `_gen/` are generated from
it by `python -m celgraph.service.gen` (a test fails when they are stale). Nothing here imports grpc
until it is used, so `graph run` never loads it.
"""
from __future__ import annotations

__all__ = ["Client", "GraphServer", "ServiceError", "ServerUnavailable"]


def __getattr__(name):
    if name in ("Client", "ServiceError", "ServerUnavailable"):
        from . import client
        return getattr(client, name)
    if name == "GraphServer":
        from .server import GraphServer
        return GraphServer
    raise AttributeError(name)
