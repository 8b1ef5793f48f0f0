"""Constants the host modules share, HostError (what the status line shows) and one_line.

Standard library only (Python 3.7+).
"""
from __future__ import print_function

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_BRIDGE = "graph"
IMAGE_TYPES = ("Image", "Mask", "LineArt", "Flow", "Labels")   # what an EXR can carry (Write's AnyImage)
TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
TYPES_TTL = 300.0                  # seconds a ListNodeTypes answer is reused for a new node
STATUS_INTERVAL = 0.1              # at most this often a progress line goes to the host UI
INTERNAL_NODES = ("cg_node", "cg_ink", "cg_out")   # node_scene's names: the wrapped node, Ink, the Write
# What a host's Read should make of each output type's EXR: a drawing / picture in RGBA (LineArt
# arrives as an Ink drawing), a matte in alpha (one-channel Mask and Labels), two flow channels.
READ_COMPONENTS = {"Image": "RGBA", "LineArt": "RGBA", "Mask": "Alpha", "Labels": "Alpha", "Flow": "RGB"}
PARAM_PREFIX = "cgp_"              # host param/knob names: cgp_<type slug>_<param>; UI ones are cg_*


class HostError(Exception):
    """A failure the status line shows. code: unavailable, invalid, no_bridge, bridge_failed,
    render_failed, not_shared, bad_param, busy, no_type, ... (or the server's gRPC code)."""

    def __init__(self, code, message, issues=None):
        Exception.__init__(self, message)
        self.code, self.message, self.issues = code, message, list(issues or [])

    def status(self):
        if self.code == "invalid" and self.issues:
            parts = []
            for i in self.issues[:3]:
                node = None if i.get("node") in INTERNAL_NODES else i.get("node")   # the user knows params
                where = ".".join(x for x in (node, i.get("field")) if x)
                parts.append("%s%s" % (where + ": " if where else "", i.get("message", i.get("code", "?"))))
            more = " (+%d more)" % (len(self.issues) - 3) if len(self.issues) > 3 else ""
            return one_line("invalid: " + "; ".join(parts) + more)
        if self.code in ("unavailable", "timeout"):
            return one_line("no server: " + self.message)
        if self.code in ("cancelled", "interrupted", "failed"):
            return one_line("%s: %s" % (self.code, self.message))
        return one_line("error (%s): %s" % (self.code, self.message))


def one_line(text, limit=400):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"
