"""Node types (ListNodeTypes, cached per address) and the host widgets built from their
descriptors: param specs, values both ways, input ports.

Standard library only (Python 3.7+).
"""
from __future__ import print_function

import json
import re
import threading
import time

from .base import DEFAULT_ADDRESS, HostError, IMAGE_TYPES, PARAM_PREFIX, TYPES_TTL
from .transports import make_transport


_TYPES_CACHE = {}
_TYPES_LOCK = threading.Lock()


def fetch_types(settings, force=False):
    """The server's node type descriptors (ListNodeTypes), cached per address for TYPES_TTL seconds.
    Call it from a worker thread. Raises HostError."""
    address = settings.get("address") or DEFAULT_ADDRESS
    with _TYPES_LOCK:
        hit = _TYPES_CACHE.get(address)
    if hit and not force and time.time() - hit[0] < TYPES_TTL:
        return hit[1]
    transport = make_transport(settings)
    try:
        types = transport.nodes()
    finally:
        transport.close()
    with _TYPES_LOCK:
        _TYPES_CACHE[address] = (time.time(), types)
    return types


def runnable_types(descs):
    """The node types a host node can wrap: at least one output an EXR can carry, no side effect
    (Read and Write are the wrapper's own). Sorted by category, then name."""
    out = [d for d in descs if not d.get("side_effect") and image_outputs(d)]
    return sorted(out, key=lambda d: (d.get("category", ""), d.get("name", ""), d["id"]))


def type_labels(descs):
    """[(menu label, type id)]: 'Blur (Filter)', or the id where two types share a name."""
    names = {}
    for d in descs:
        names[d["name"]] = names.get(d["name"], 0) + 1
    return [("%s (%s)" % (d["name"], d.get("category") or "-") if names[d["name"]] == 1 else d["id"], d["id"])
            for d in descs]


def image_outputs(desc):
    return [o["name"] for o in desc.get("outputs", []) if o.get("type") in IMAGE_TYPES]


def output_type(desc, output):
    """The port type name of one output of a node type ("" when unknown)."""
    return next((o.get("type", "") for o in (desc or {}).get("outputs", []) if o.get("name") == output), "")


def slug(text):
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def param_name(type_id, param):
    """Host param/knob name of a node param: prefixed and type-qualified, so it can clash neither
    with the host's own names nor with another type's param of the same name."""
    return PARAM_PREFIX + slug(type_id) + "_" + slug(param)


def _fmt(x):
    return ("%d" % x) if isinstance(x, int) else ("%g" % x)


def param_specs(desc):
    """One dict per param of a node type, what a host needs to build its widget:
    name (host name), param, widget (int float bool choice string file_in file_out), kind, label,
    default (in host terms: a choice's index, an int list as text), min, max, options, choices,
    help (with the range and the accepted values)."""
    specs = []
    for p in desc.get("params", []):
        kind = p.get("kind", "any")
        widget = {"int": "int", "float": "float", "bool": "bool", "choice": "choice"}.get(kind, "string")
        if kind == "path":
            widget = "file_out" if p.get("file") == "out" else "file_in"
        spec = {"name": param_name(desc["id"], p["name"]), "param": p["name"], "kind": kind, "widget": widget,
                "label": p["name"].replace("_", " "), "min": p.get("min"), "max": p.get("max"),
                "choices": list(p.get("choices") or []), "help": p.get("help") or ""}
        spec["options"] = [str(c) for c in spec["choices"]]
        spec["default"] = value_to_host(spec, p.get("default"))
        extra = []
        if spec["min"] is not None or spec["max"] is not None:
            extra.append("range %s .. %s" % ("-inf" if spec["min"] is None else _fmt(spec["min"]),
                                             "inf" if spec["max"] is None else _fmt(spec["max"])))
        if kind == "int_list":
            extra.append("integers separated by commas")
        elif kind == "any":
            extra.append("a JSON value")
        spec["help"] = (spec["help"] + (" (" + "; ".join(extra) + ")" if extra else "")).strip()
        specs.append(spec)
    return specs


def value_to_host(spec, value):
    """A scene value as the host widget holds it."""
    w, kind = spec["widget"], spec["kind"]
    if w == "choice":
        return spec["choices"].index(value) if value in spec["choices"] else 0
    if w == "int":
        return int(value or 0)
    if w == "float":
        return float(value or 0.0)
    if w == "bool":
        return bool(value)
    if kind == "int_list":
        return ", ".join(str(v) for v in (value or []))
    if kind == "any":
        return "" if value is None else json.dumps(value)
    return "" if value is None else str(value)


def value_to_scene(spec, raw):
    """What the host widget holds, as a scene value. Raises HostError(bad_param) for text that
    cannot be parsed; ranges and choices are the server's to check."""
    w, kind = spec["widget"], spec["kind"]
    if w == "choice":
        if isinstance(raw, bool):
            raw = int(raw)
        if isinstance(raw, int):
            if 0 <= raw < len(spec["choices"]):
                return spec["choices"][raw]
            raise HostError("bad_param", "%s: choice %d is not one of %s" % (spec["param"], raw, spec["options"]))
        label = str(raw)
        return spec["choices"][spec["options"].index(label)] if label in spec["options"] else label
    if w == "int":
        f = float(raw)
        return int(f) if f.is_integer() else f
    if w == "float":
        return float(raw)
    if w == "bool":
        return bool(raw)
    text = "" if raw is None else str(raw)
    if kind == "int_list":
        try:
            return [int(t) for t in re.split(r"[,\s]+", text.strip()) if t]
        except ValueError:
            raise HostError("bad_param", "%s: %r is not a list of integers (e.g. 1, 2, 4)" % (spec["param"], text))
    if kind == "any":
        try:
            return json.loads(text) if text.strip() else None
        except ValueError as e:
            raise HostError("bad_param", "%s: not JSON: %s" % (spec["param"], e))
    return text


def scene_params(desc, read):
    """{param: scene value} for a node type, `read(host_name, spec)` giving each widget's value."""
    return dict((s["param"], value_to_scene(s, read(s["name"], s))) for s in param_specs(desc))


def schema_from_text(text):
    """The node type description a host node keeps as JSON text; None when empty or unreadable."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def require(param, kind, name):
    """``param``, a host param or knob looked up by ``name`` (None when the node has none): a node
    saved with another node type's params is stale, which the user fixes by choosing the type again."""
    if param is None:
        raise HostError("stale", "%s %s is missing: choose the node type again" % (kind, name))
    return param


def describe_ports(desc):
    """[(port name, optional, help)] for the inputs a host node shows as input arrows."""
    return [(i["name"], bool(i.get("optional")), i.get("help") or i.get("type", "")) for i in desc.get("inputs", [])]
