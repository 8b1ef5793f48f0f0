"""A stand-in third-party package of node types, loaded through the celgraph.nodes entry point."""
import numpy as np

from celgraph.engine import Float, Image, In, NodeType, Out


class Invert(NodeType):
    """1 - image."""
    id, version, category = "acme.Invert", 1, "Acme"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]

    def compute(self, ctx, image):
        return {"image": 1.0 - image}


class Blur(NodeType):
    """A third-party node whose short name collides with a built-in one."""
    id, version, category = "acme.Blur", 1, "Acme"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]
    params = [Float("size", 1.0)]

    def compute(self, ctx, image):
        return {"image": np.asarray(image)}


def node_types():
    return [Invert]


class Sleep(NodeType):
    """Passes its input through after sleeping (in steps that honour cancellation)."""
    id, version, category = "acme.Sleep", 1, "Acme"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]
    params = [Float("seconds", 0.5)]

    def compute(self, ctx, image):
        import time
        steps = max(1, int(ctx.params.seconds / 0.05))
        for i in range(steps):
            time.sleep(ctx.params.seconds / steps)
            ctx.progress(i + 1, steps)
        return {"image": np.asarray(image)}
