"""Settings (panel, environment, ~/.celgraph/host.json, defaults) and PathMap, how this machine and
the server name the same shared folders.

Standard library only (Python 3.7+).
"""
from __future__ import print_function

import json
import os
import sys
import tempfile

from .base import DEFAULT_ADDRESS, DEFAULT_BRIDGE

_ENV = {"address": "CELGRAPH_ADDRESS", "bridge": "CELGRAPH_BRIDGE", "token": "CELGRAPH_TOKEN",
        "transport": "CELGRAPH_TRANSPORT", "shared": "CELGRAPH_SHARED", "path_map": "CELGRAPH_PATH_MAP",
        "timeout": "CELGRAPH_TIMEOUT", "colorspace": "CELGRAPH_COLORSPACE"}


def load_settings(default_transport="auto", **overrides):
    """The settings dict: address, bridge, token, transport (auto|bridge|grpc), shared, path_map,
    timeout, colorspace (the OCIO space of the EXRs the host writes and reads back: its linear). Empty overrides (a blank panel field) fall through to the environment and the file."""
    cfg = {}
    path = os.environ.get("CELGRAPH_HOST_CONFIG") or os.path.join(os.path.expanduser("~"), ".celgraph",
                                                                  "host.json")
    if os.path.isfile(path):
        try:
            with open(path) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            print("celgraph: ignoring %s: %s" % (path, e), file=sys.stderr)
        if not isinstance(cfg, dict):
            cfg = {}
    defaults = {"address": DEFAULT_ADDRESS, "bridge": DEFAULT_BRIDGE, "token": "",
                "transport": default_transport,
                "shared": os.path.join(tempfile.gettempdir(), "celgraph_shared"), "path_map": "",
                "timeout": 30.0, "colorspace": "linear"}
    s = {}
    for key, default in defaults.items():
        value = overrides.get(key)
        if value in (None, ""):
            value = os.environ.get(_ENV[key]) or cfg.get(key) or default
        s[key] = value
    s["timeout"] = float(s["timeout"])
    if s["transport"] not in ("auto", "bridge", "grpc"):
        s["transport"] = default_transport
    return s


class PathMap(object):
    """How this machine and the server name the same shared folders.

    "LOCAL=SERVER;LOCAL2=SERVER2", e.g. "/Volumes/show=/mnt/show;S:\\show=/mnt/show". Paths that
    match no prefix are the same on both sides."""

    def __init__(self, spec=""):
        self.pairs = []
        for part in (spec or "").split(";"):
            if "=" in part:
                local, server = part.split("=", 1)
                if local.strip() and server.strip():
                    self.pairs.append((local.strip().rstrip("/\\"), server.strip().rstrip("/\\")))

    @staticmethod
    def _swap(path, src, dst):
        if path == src:
            return dst
        if path.startswith(src) and path[len(src)] in "/\\":
            rest = path[len(src):]
            return dst + (rest.replace("/", "\\") if "\\" in dst and "/" not in dst else rest.replace("\\", "/"))
        return None

    def to_server(self, path):
        for local, server in self.pairs:
            mapped = self._swap(path, local, server)
            if mapped is not None:
                return mapped
        return path

    def to_local(self, path):
        for local, server in self.pairs:
            mapped = self._swap(path, server, local)
            if mapped is not None:
                return mapped
        return path
