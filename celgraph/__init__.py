"""celgraph: a node-graph engine for 2D animation production.

    import celgraph as cg
    g = cg.Graph(frames="1-24")
    plate = g.add("Read", path="shots/sh010/plate.####.png")
    g.add("Write", image=plate["image"], path="out/plate.####.exr")
    g.run()
"""
from .engine import (CancelToken, Cancelled, CelgraphError, Engine, GraphInvalid, Issue, NodeFailed,
                     NodeType, register, registry)
from .graph import Graph, OutputRef, load_scene, validate

__version__ = "0.1.0"
__all__ = ["Graph", "OutputRef", "load_scene", "validate", "Engine", "CancelToken", "NodeType", "register",
           "registry", "CelgraphError", "GraphInvalid", "NodeFailed", "Cancelled", "Issue", "__version__"]
