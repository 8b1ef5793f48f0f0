"""What the Natron and Nuke plug-ins of celgraph share. Standard library only (Python 3.7+).

Natron and Nuke embed their own Python and protobuf, and loading grpcio there breaks or cannot be
installed. So this package reaches a `graph serve` server through the bridge, `graph remote ...`
run as a subprocess from celgraph's own environment (JSON lines on stdout), or through
`celgraph.service.client` where the host's Python can import it (never at import time). Frames
travel as EXR files on shared storage; only scenes and paths cross the wire.

    settings = load_settings(address="gpubox:50051")       # env, ~/.celgraph/host.json, defaults
    types = fetch_types(settings)                           # ListNodeTypes, cached per address
    session = Session(post=nuke.executeInMainThread, on_status=show)
    plan = plan_node_run(settings, desc, values, inputs, "image", 1, 24, "Blur1")
    ...  # the host renders each plan["inputs"][port]["local"] to EXR, on its UI thread
    check_rendered(plan)
    session.submit(settings, plan, on_result=apply)         # a worker thread; apply() via post

Nothing here touches a host object: hosts pass callables. `Session` never raises into the host:
every failure (server down, invalid scene, failed node, missing bridge) becomes the status line.

Settings, strongest first: what the panel says (server address, shared folder), the environment
(CELGRAPH_ADDRESS, CELGRAPH_BRIDGE, CELGRAPH_TOKEN, CELGRAPH_TRANSPORT, CELGRAPH_SHARED,
CELGRAPH_PATH_MAP, CELGRAPH_TIMEOUT), the JSON file $CELGRAPH_HOST_CONFIG (default
~/.celgraph/host.json, same keys in lower case without the prefix), then the defaults.

The modules, each importing only those above it: base (constants, HostError), settings (settings,
PathMap), transports (bridge, gRPC), panels (node types, widgets from descriptors), planning (run
folders, the scene a host node sends, the result), session (the worker a host node owns).
"""
from __future__ import print_function

# One module per concern; hosts import the package (`import celgraph_host as ch`) and use the names
# below, which stay where they always were.
from .base import (DEFAULT_ADDRESS, DEFAULT_BRIDGE, IMAGE_TYPES, INTERNAL_NODES, PARAM_PREFIX, READ_COMPONENTS,
                   STATUS_INTERVAL, TERMINAL, TYPES_TTL, HostError, one_line)
from .settings import PathMap, load_settings
from .transports import BridgeTransport, GrpcTransport, bridge_command, grpc_importable, make_transport
from .panels import (describe_ports, fetch_types, image_outputs, output_type, param_name, param_specs,
                     require, runnable_types, scene_params, schema_from_text, slug, type_labels,
                     value_to_host, value_to_scene)
from .planning import (check_rendered, frame_file, frames_spec, job_result, missing_frames, new_run_dir,
                       node_scene, plan_node_run, plan_scene_run, sequence_pattern)
from .session import Session, forget_session, get_session, session_for
