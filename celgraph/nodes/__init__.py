"""celgraph's built-in node types, one module per family. Registered through the `celgraph.nodes`
entry point like any third-party package (see engine/registry.py)."""
from . import color, flow, io, lines, sketch, synth, util

NODE_MODULES = (io, synth, flow, lines, sketch, color, util)
