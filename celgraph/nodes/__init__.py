"""celgraph's built-in node types, one module per family. Registered through the `celgraph.nodes`
entry point like any third-party package (see core/registry.py)."""
from . import color, decompose, flow, io, lines, reformat, sketch, synth, util

NODE_MODULES = (io, synth, flow, decompose, lines, sketch, color, util, reformat)
