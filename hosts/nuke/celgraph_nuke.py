"""The Nuke side of celgraph: a Group whose knobs come from the server's schema, a Run button,
and a Read inside that shows what the server wrote.

Standard library and `nuke` only; everything that does not touch a Nuke object is in
hosts/common/celgraph_host/. The default transport is the `graph remote` bridge subprocess:
importing grpc/protobuf inside Nuke clashes with Nuke's own protobuf (set CELGRAPH_TRANSPORT=auto
to use grpc where it is known to load).

Inside the group: Input nodes named after the node type's input ports → Write cg_write<i> (EXR,
rgba: the inputs rendered to shared storage); Read cg_result → Output. Knob names start with cg_
(panel) or cgp_<type>_ (the node type's params), so none can clash with Nuke's own knobs.

Threads: network waits run on a worker thread; every node or knob change goes through
nuke.executeInMainThread.
"""
from __future__ import print_function

import json
import os
import sys
import traceback
import uuid


def _add_common():
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "common"), os.path.join(here, "common")):
        cand = os.path.abspath(cand)
        if os.path.isfile(os.path.join(cand, "celgraph_host", "__init__.py")):
            if cand not in sys.path:
                sys.path.insert(0, cand)
            return


_add_common()

import nuke  # noqa: E402
import celgraph_host as ch  # noqa: E402

MODES = ["node type", "scene file"]
NO_TYPES = "(no node types yet: check the server, then Refresh)"
RESULT = "cg_result"
_CMD = "import celgraph_nuke\ncelgraph_nuke.%s()"
KNOB_CHANGED = "import celgraph_nuke\ncelgraph_nuke.knob_changed()"


# ---- creation --------------------------------------------------------------------------------------

FIXED_HIDDEN = ("cg_mode", "cg_type", "cg_scene", "cg_targets", "cg_show")   # not for a one-type node


def create(mode="node type", type_id=""):
    """Menu command: a celgraph Group (connected to the selection, as createNode does). With a
    type_id (the per-type commands `graph hosts install` writes) it is that node type only."""
    try:
        group = nuke.createNode("Group", "", False)
        base = ch.slug(type_id.rsplit(".", 1)[-1]) if type_id else "AnimeGraph"
        n = 1
        while nuke.toNode("%s%d" % (base, n)) is not None:
            n += 1
        group["name"].setValue("%s%d" % (base, n))
        _build_ui(group, mode)
        if type_id:
            group["cg_fixed"].setValue(type_id)
            for name in FIXED_HIDDEN:
                group[name].setVisible(False)
        with group:
            read = nuke.nodes.Read(name=RESULT)
            out = nuke.nodes.Output()
            out.setInput(0, read)
        group["knobChanged"].setValue(KNOB_CHANGED)
        refresh(group, force=False)
        return group
    except Exception as e:
        traceback.print_exc()
        print("celgraph: could not create the node: %s" % e, file=sys.stderr)
        return None


def _build_ui(group, mode):
    s = ch.load_settings(default_transport="bridge")
    knobs = [
        (nuke.Tab_Knob("cg_tab", "celgraph"), ""),
        (nuke.String_Knob("cg_address", "server", s["address"]),
         "celgraph server HOST:PORT (graph serve). Default: $CELGRAPH_ADDRESS or 127.0.0.1:50051."),
        (nuke.Enumeration_Knob("cg_mode", "mode", MODES),
         "Run one node type on this node's inputs, or a scene file as it is."),
        (nuke.Enumeration_Knob("cg_type", "node type", [NO_TYPES]), "The server's node types (ListNodeTypes)."),
        (nuke.PyScript_Knob("cg_refresh", "Refresh", _CMD % "refresh"), "Ask the server for its node types again."),
        (nuke.Enumeration_Knob("cg_output", "output", ["image"]), "Which output of the node type comes back."),
        (nuke.File_Knob("cg_scene", "scene file"),
         "scene.json to run in 'scene file' mode; its relative paths resolve against its folder."),
        (nuke.String_Knob("cg_targets", "targets"),
         "Scene mode: nodes to compute, comma-separated (empty: the scene's end nodes)."),
        (nuke.String_Knob("cg_show", "show node"),
         "Scene mode: the Write node whose frames come back (empty: the first one)."),
        (nuke.Int_Knob("cg_first", "first frame"), "Frames to compute (celgraph frame = Nuke frame)."),
        (nuke.Int_Knob("cg_last", "last frame"), "Frames to compute (celgraph frame = Nuke frame)."),
        (nuke.File_Knob("cg_shared", "shared folder"),
         "Where inputs and results go as EXR: storage this machine and the server both see "
         "(default $CELGRAPH_SHARED)."),
        (nuke.Boolean_Knob("cg_alpha", "send alpha", True),
         "Render the inputs as rgba (celgraph images are premultiplied); turn off for plates without alpha, "
         "which would otherwise arrive with alpha 0."),
        (nuke.PyScript_Knob("cg_run", "Run", _CMD % "run"), "Render the inputs, send the job, load the result."),
        (nuke.PyScript_Knob("cg_cancel", "Cancel", _CMD % "cancel"), "Cancel the running job on the server."),
        (nuke.Text_Knob("cg_status", "status", ""), "What the node is doing, or why it failed."),
        (nuke.Text_Knob("cg_params", "node params", ""), ""),
    ]
    for knob, tip in knobs:
        if tip:
            knob.setTooltip(tip)
        group.addKnob(knob)
    for name in ("cg_schema", "cg_uid", "cg_made", "cg_inputs", "cg_fixed"):     # hidden state, saved with the script
        knob = nuke.String_Knob(name, name)
        knob.setVisible(False)
        group.addKnob(knob)
    group["cg_run"].setFlag(nuke.STARTLINE)
    group["cg_mode"].setValue(mode)
    group["cg_first"].setValue(1)
    group["cg_last"].setValue(1)
    group["cg_shared"].setValue(_nuke_path(s["shared"]))
    group["cg_uid"].setValue(uuid.uuid4().hex)


# ---- node types and knobs --------------------------------------------------------------------------

def refresh(node=None, force=True):
    """ListNodeTypes on a worker thread; the knobs change on the main thread."""
    node = node or nuke.thisNode()
    _session(node).fetch(_settings(node), lambda descs: _apply_types(node, descs), force=force)


def _apply_types(node, descs):
    labels = ch.type_labels(descs)
    names = [label for label, _ in labels] or [NO_TYPES]
    ids = [i for _, i in labels]
    fixed = node["cg_fixed"].value()
    current = fixed or (_desc(node) or {}).get("id")
    node["cg_type"].setValues(names)
    node["cg_type"].setValue(names[ids.index(current)] if current in ids else names[0])
    apply_type(node)
    if fixed and fixed not in ids:
        _status(node, "error (no_type): the server at %s has no node type %s" % (_settings(node)["address"], fixed))


def apply_type(node):
    """The chosen node type's knobs, input arrows and outputs."""
    session = _session(node)
    label = node["cg_type"].value()
    desc = next((d for (l, _), d in zip(ch.type_labels(session.types), session.types) if l == label), None)
    if desc is None:
        return
    text = json.dumps(desc)
    if node["cg_schema"].value() == text:
        return                              # already built (run() calls this for scripts)
    node["cg_schema"].setValue(text)
    _build_knobs(node, desc)
    _build_inputs(node, desc)
    out = node["cg_output"]
    previous, outputs = out.value(), ch.image_outputs(desc)
    out.setValues(outputs)
    out.setValue(previous if previous in outputs else outputs[0])


def _build_knobs(node, desc):
    """One knob per param; a previous type's knobs are hidden, not removed (their values stay)."""
    specs = ch.param_specs(desc)
    wanted = set(s["name"] for s in specs)
    made = json.loads(node["cg_made"].value() or "[]")
    for name in made:
        knob = node.knob(name)
        if knob is not None and name not in wanted:
            knob.setVisible(False)
    for spec in specs:
        knob = node.knob(spec["name"])
        if knob is None:
            knob = _make_knob(spec)
            node.addKnob(knob)
            made.append(spec["name"])
        knob.setVisible(True)
    node["cg_made"].setValue(json.dumps(made))


def _make_knob(spec):
    w, name, label, default = spec["widget"], spec["name"], spec["label"], spec["default"]
    if w == "int":
        knob = nuke.Int_Knob(name, label)
    elif w == "float":
        knob = nuke.Double_Knob(name, label)
        if spec["min"] is not None and spec["max"] is not None:
            knob.setRange(float(spec["min"]), float(spec["max"]))
    elif w == "bool":
        knob = nuke.Boolean_Knob(name, label)
    elif w == "choice":
        knob = nuke.Enumeration_Knob(name, label, spec["options"])
        default = spec["options"][default] if spec["options"] else ""
    elif w in ("file_in", "file_out"):
        knob = nuke.File_Knob(name, label)
    else:
        knob = nuke.String_Knob(name, label)
    if w != "choice" or spec["options"]:
        knob.setValue(default)
    knob.setTooltip(spec["help"])
    knob.setFlag(nuke.STARTLINE)
    return knob


def _build_inputs(node, desc):
    """Input i named after port i (feeding Write cg_write<i>). Nodes cannot be deleted through the
    API we use, so inputs a previous type needed stay, renamed unused<i> and ignored."""
    ports = ch.describe_ports(desc)
    names = json.loads(node["cg_inputs"].value() or "[]")
    with node:
        inputs = [nuke.toNode(n) for n in names]
        for i, inp in enumerate(inputs):                    # two passes: new names may swap
            inp["name"].setValue("cg_tmp_in%d" % i)
        for i in range(len(inputs), len(ports)):
            inp = nuke.nodes.Input(name="cg_tmp_in%d" % i)
            writer = nuke.nodes.Write(name="cg_write%d" % i, file_type="exr", channels="rgba")
            writer.setInput(0, inp)
            inputs.append(inp)
        names = []
        for i, inp in enumerate(inputs):
            name = ch.slug(ports[i][0]) if i < len(ports) else "unused%d" % i
            inp["name"].setValue(name)
            names.append(name)
    node["cg_inputs"].setValue(json.dumps(names))


# ---- running ---------------------------------------------------------------------------------------

def run(node=None):
    """The Run button (main thread): render the inputs with nuke.execute, then the job goes to a
    worker thread. Never raises: failures go to the status line."""
    node = node or nuke.thisNode()
    session = _session(node)
    if session.busy():
        session.set_status("busy: a job is running (Cancel it first)")
        return
    try:
        settings = _settings(node)
        first, last = node["cg_first"].value(), node["cg_last"].value()
        name = node["name"].value()
        if node["cg_mode"].value() == "scene file":
            plan = ch.plan_scene_run(settings, node["cg_scene"].value(), node["cg_targets"].value(),
                                     first, last, name, node["cg_show"].value())
        else:
            # knobChanged runs only for panel edits: a script that set cg_type gets its type here
            apply_type(node)
            desc = _desc(node)
            params = ch.scene_params(desc, lambda kname, spec: _value(node, kname)) if desc else {}
            ports = ch.describe_ports(desc) if desc else []
            connected = [port for i, (port, _, _) in enumerate(ports) if node.input(i) is not None]
            plan = ch.plan_node_run(settings, desc, params, connected, node["cg_output"].value(), first, last, name)
            with node:
                for i, (port, _, _) in enumerate(ports):
                    if port in plan["inputs"]:
                        writer = nuke.toNode("cg_write%d" % i)
                        writer["file"].setValue(_nuke_path(plan["inputs"][port]["local"]))
                        writer["channels"].setValue("rgba" if node["cg_alpha"].value() else "rgb")
                        nuke.execute(writer, plan["first"], plan["last"])
            ch.check_rendered(plan)
        session.submit(settings, plan, lambda result: show_result(node, result))
    except Exception as e:
        session.fail(e)


def show_result(node, result):
    """Point the internal Read at what the server wrote (main thread)."""
    with node:
        read = nuke.toNode(RESULT)
        read["file"].setValue(_nuke_path(result["pattern"]))
        for knob in ("first", "origfirst"):
            read[knob].setValue(int(result["first"]))
        for knob in ("last", "origlast"):
            read[knob].setValue(int(result["last"]))


def cancel(node=None):
    _session(node or nuke.thisNode()).cancel()


def knob_changed():
    """The group's knobChanged: it also fires for panel and input events, so filter by knob name."""
    node, knob = nuke.thisNode(), nuke.thisKnob()
    if knob is None:
        return
    try:
        if knob.name() == "cg_type":
            apply_type(node)
        elif knob.name() == "cg_address":
            refresh(node, force=False)
    except Exception as e:
        traceback.print_exc()
        _status(node, "error: %s" % e)


# ---- helpers ---------------------------------------------------------------------------------------

def _value(node, name):
    return ch.require(node.knob(name), "knob", name).value()


def _desc(node):
    return ch.schema_from_text(node["cg_schema"].value())


def _settings(node):
    return ch.load_settings(default_transport="bridge", address=node["cg_address"].value().strip(),
                            shared=node["cg_shared"].value().strip())


def _status(node, text):
    node["cg_status"].setValue(ch.one_line(text))


def _nuke_path(path):
    return path.replace("\\", "/")


def _session(node):
    uid = node["cg_uid"].value()
    if not uid:
        uid = uuid.uuid4().hex
        node["cg_uid"].setValue(uid)
    return ch.session_for(uid, nuke.executeInMainThread, lambda text: _status(node, text), node["name"].value())
