"""The Python API's scene: the scene model (`celgraph.graph`) plus the conveniences that reach
the engine. It sits on the top floor, beside the CLI and the service, so the scene model below
never imports the runtime above it.

    import celgraph as cg
    g = cg.Graph(frames="1-24")
    ...
    g.run()                      # same engine as `graph run scene.json`
"""
from __future__ import annotations

from .core.errors import Issue
from .engine.runtime import default_engine
from .graph import scene
from .graph.scene import OutputRef
from .graph.validate import validate


class Graph(scene.Graph):
    """A scene you can validate, run and evaluate (one Engine per cache folder per process)."""

    def validate(self) -> list[Issue]:
        """Every problem of the scene at once; [] when it is valid."""
        return validate(self)

    def run(self, targets=None, frames=None, **options):
        """Run the graph (default: every node nothing else reads from). See Engine.run."""
        return default_engine(options.pop("cache_dir", None)).run(self, targets=targets, frames=frames, **options)

    def evaluate(self, output: OutputRef | str, frame: int | None = None, **options):
        """Compute (or fetch from cache) one output at one frame; returns a read-only value."""
        return default_engine(options.pop("cache_dir", None)).evaluate(self, output, frame, **options)


load_scene = Graph.load
