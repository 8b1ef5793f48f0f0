"""celgraph: a node-graph engine for 2D animation production.

    import celgraph as cg
    g = cg.Graph(frames="1-24")
    plate = g.add("Read", path="shots/sh010/plate.####.png")
    g.add("Write", image=plate["image"], path="out/plate.####.exr")
    g.run()

The packages are floors that import only downwards (docs/design.md): core ← graph ← engine ←
nodes, service, cli, api.
"""
from .api import Graph, load_scene
from .core import CelgraphError, Cancelled, GraphInvalid, Issue, NodeFailed, NodeType, register, registry
from .engine import CancelToken, Engine
from .graph import OutputRef, validate

__version__ = "0.1.0"
__all__ = ["Graph", "OutputRef", "load_scene", "validate", "Engine", "CancelToken", "NodeType", "register",
           "registry", "CelgraphError", "GraphInvalid", "NodeFailed", "Cancelled", "Issue", "__version__"]
