"""Run planning: frame files, a fresh run folder, the scene a host node sends, and what the host's
Read should show once the job succeeded.

Standard library only (Python 3.7+).
"""
from __future__ import print_function

import json
import os
import re
import time
import uuid

from .base import HostError, READ_COMPONENTS
from .settings import PathMap
from .panels import describe_ports, image_outputs, output_type, slug


_HASHES = re.compile(r"#+")


def frame_file(pattern, frame):
    """The file of `frame` in a '####' pattern (one # per digit; '#' alone: no padding)."""
    return _HASHES.sub(lambda m: "%0*d" % (len(m.group(0)), frame), pattern)


def frames_spec(first, last):
    first, last = int(first), int(last)
    if last < first:
        raise HostError("bad_frames", "the last frame (%d) is before the first (%d)" % (last, first))
    return str(first) if first == last else "%d-%d" % (first, last)


def missing_frames(pattern, first, last):
    return [f for f in range(int(first), int(last) + 1) if not os.path.isfile(frame_file(pattern, f))]


def new_run_dir(shared, node_name):
    """<shared>/<node>/<yyyymmdd-hhmmss>-<6 hex>: a fresh folder per run, so a Read still showing the
    last result never sees its files replaced under it."""
    stamp = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    path = os.path.join(os.path.abspath(os.path.expanduser(shared)), slug(node_name or "node"), stamp)
    try:
        os.makedirs(path)
    except OSError as e:
        raise HostError("shared_storage", "cannot create %s: %s (set the shared folder, or CELGRAPH_SHARED)"
                        % (path, e))
    return path


def node_scene(desc, params, inputs, output, out_pattern, frames, label="", colorspace="linear"):
    """scene.json for one node type: each input port fed by an EXR sequence (celgraph.Read), the
    chosen output written as a float EXR sequence (celgraph.Write, the target "cg_out"). A LineArt
    output goes through celgraph.Ink first, so the host shows a drawing, not white. `colorspace`:
    the space of the host's EXRs, both ways (celgraph converts to and from its working space)."""
    nodes, links = {}, {}
    for port in sorted(inputs):
        reader = "cg_in_" + slug(port)
        nodes[reader] = {"type": "celgraph.Read", "params": {"path": inputs[port], "colorspace": colorspace}}
        links[port] = reader + ".image"
    nodes["cg_node"] = {"type": desc["id"], "inputs": links, "params": params}
    source = "cg_node." + output
    if output_type(desc, output) == "LineArt":
        nodes["cg_ink"] = {"type": "celgraph.Ink", "inputs": {"lines": source}, "params": {"paper": "white"}}
        source = "cg_ink.image"
    nodes["cg_out"] = {"type": "celgraph.Write", "inputs": {"image": source},
                       "params": {"path": out_pattern, "bit_depth": "float", "colorspace": colorspace}}
    return {"celgraph": 1, "frames": frames, "nodes": nodes, "ui": {"made_by": "celgraph host plug-in",
                                                                     "label": label}}


def plan_node_run(settings, desc, params, connected, output, first, last, node_name):
    """Everything a node-mode run needs, decided on the UI thread before anything is rendered.

    desc: the node type; params: scene values (scene_params); connected: the input ports with
    something plugged in; output: which output to bring back. Returns a dict: mode, frames,
    run_dir, inputs {port: {"local", "server"}} (EXR patterns the host renders to), out_pattern
    (local), scene_text, base_dir (server), targets, label. Raises HostError."""
    if not desc:
        raise HostError("no_type", "choose a node type first (press Refresh if the list is empty)")
    missing = [name for name, optional, _ in describe_ports(desc) if not optional and name not in connected]
    if missing:
        raise HostError("missing_input", "connect the input%s %s" % ("s" if len(missing) > 1 else "",
                                                                     ", ".join(missing)))
    outputs = image_outputs(desc)
    if output not in outputs:
        raise HostError("bad_output", "%s has no image output %r (it has %s)" % (desc["id"], output, outputs))
    frames = frames_spec(first, last)
    pmap = PathMap(settings.get("path_map"))
    run_dir = new_run_dir(settings.get("shared"), node_name)
    inputs = {}
    for port in connected:
        local = os.path.join(run_dir, "in_%s.####.exr" % slug(port))
        inputs[port] = {"local": local, "server": pmap.to_server(local)}
    out_local = os.path.join(run_dir, "out_%s.####.exr" % slug(output))
    label = "%s %s" % (node_name, desc["id"])
    scene = node_scene(desc, params, dict((p, v["server"]) for p, v in inputs.items()), output,
                       pmap.to_server(out_local), frames, label, settings.get("colorspace") or "linear")
    return {"mode": "node", "frames": frames, "first": int(first), "last": int(last), "run_dir": run_dir,
            "inputs": inputs, "out_pattern": out_local, "scene_text": json.dumps(scene, indent=1),
            "base_dir": pmap.to_server(run_dir), "targets": ["cg_out"], "label": label,
            "result_node": "cg_out", "output_type": output_type(desc, output)}


def plan_scene_run(settings, scene_path, targets, first, last, node_name, result_node=""):
    """A scene-file run: the scene goes as is; relative paths resolve against its folder as the
    server sees it. frames None/None: the scene's own range."""
    path = os.path.abspath(os.path.expanduser(scene_path or ""))
    if not scene_path or not os.path.isfile(path):
        raise HostError("no_scene", "scene file %r not found" % (scene_path or ""))
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        json.loads(text)
    except (OSError, ValueError) as e:
        raise HostError("bad_scene", "cannot read %s: %s" % (path, e))
    frames = frames_spec(first, last) if first is not None and last is not None else None
    pmap = PathMap(settings.get("path_map"))
    targets = [t.strip() for t in re.split(r"[,\s]+", targets or "") if t.strip()]
    return {"mode": "scene", "frames": frames, "first": first, "last": last, "run_dir": None, "inputs": {},
            "out_pattern": None, "scene_text": text, "base_dir": pmap.to_server(os.path.dirname(path)),
            "targets": targets, "label": "%s %s" % (node_name, os.path.basename(path)),
            "result_node": (result_node or "").strip()}


def check_rendered(plan):
    """After the host rendered its inputs: every frame must be on disk (Natron's renderer exits 0
    even when it wrote nothing). Raises HostError(render_failed)."""
    for port, paths in sorted(plan["inputs"].items()):
        missing = missing_frames(paths["local"], plan["first"], plan["last"])
        if missing:
            raise HostError("render_failed", "input %s: frame%s %s not written to %s" % (
                port, "s" if len(missing) > 1 else "", ",".join(str(f) for f in missing[:8]),
                os.path.dirname(paths["local"])))


def sequence_pattern(paths):
    """A '####' pattern that names every {frame: path}, or None. 'a/out.0007.exr' at frame 7 →
    'a/out.####.exr'; an unpadded '%d' sequence → '#'."""
    frames = sorted(paths)
    if not frames:
        return None
    first = paths[frames[0]]
    head, base = os.path.split(first)
    for m in reversed(list(re.finditer(r"\d+", base))):
        if int(m.group(0)) != frames[0]:
            continue
        for hashes in ("#" * len(m.group(0)), "#"):
            candidate = os.path.join(head, base[:m.start()] + hashes + base[m.end():])
            if all(frame_file(candidate, f) == paths[f] for f in frames):
                return candidate
    return None


def job_result(job, plan, path_map=""):
    """What the host's Read should show after a successful job: {"pattern", "first", "last",
    "files", "node", "output"} with local paths that exist. Raises HostError when the job wrote no
    file or this machine cannot see what it wrote."""
    rows = [o for o in job.get("outputs") or [] if o.get("kind") == "file" and o.get("path")]
    if not rows:
        raise HostError("no_output", "the job wrote no file: target a Write node (targets: %s)"
                        % (", ".join(job.get("targets") or []) or "the scene's end nodes"))
    groups = {}
    for o in rows:
        groups.setdefault((o.get("node"), o.get("output")), []).append(o)
    wanted = plan.get("result_node")
    keys = sorted(groups, key=lambda k: (k[0] != wanted, str(k[0]), str(k[1])))
    if wanted and keys[0][0] != wanted:
        raise HostError("no_output", "node %r wrote no file (files came from %s)"
                        % (wanted, ", ".join(sorted(set(str(k[0]) for k in keys)))))
    node, output = keys[0]
    pmap = PathMap(path_map)
    files = dict((o.get("frame") if o.get("frame") is not None else 0, pmap.to_local(o["path"]))
                 for o in groups[(node, output)])
    unseen = [p for p in files.values() if not os.path.isfile(p)]
    if unseen:
        raise HostError("not_shared", "the server wrote %s but this machine cannot see it: put the shared "
                                      "folder on storage both see, or set CELGRAPH_PATH_MAP" % unseen[0])
    frames = sorted(files)
    pattern = sequence_pattern(files) or files[frames[0]]
    return {"pattern": pattern, "first": frames[0], "last": frames[-1], "files": [files[f] for f in frames],
            "node": node, "output": output, "components": READ_COMPONENTS.get(plan.get("output_type"), "RGBA")}
