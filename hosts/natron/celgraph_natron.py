"""The Natron side of the AnimeGraph PyPlug: its panel, its internal nodes, the Run button.

Standard library and NatronEngine only (never NatronGui: PyPlugs also load in background mode).
Everything that does not touch a Natron object lives in hosts/common/celgraph_host/.

Inside the group:  Input nodes cgIn0.. (one per input port of the chosen node type) → WriteOIIO
cgWrite0.. (render the inputs to EXR on shared storage) ; ReadOIIO cgResult → Output (what the
server wrote, once a job succeeds). The panel (page "celgraph") holds the server address, the mode
(one node type / a scene file), the node type and its params (cgp_<type>_<param>, built from
ListNodeTypes), the frame range, the shared folder, Run, Cancel and a status line.

Threads: Natron has no call-on-the-main-thread in NatronEngine. Where the GUI's Qt binding is
already loaded, results are handed to the main thread through a queued Qt signal; otherwise (and
in background mode) panel changes happen on the calling (main) thread and only the status line and
the result Read's filename are set from the worker thread, as the reference's Natron flow does.
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

import NatronEngine  # noqa: E402  (built into Natron)
import celgraph_host as ch  # noqa: E402

PLUGIN_ID = "org.celgraph.AnimeGraph"
LABEL = "AnimeGraph"
GROUPING = "Anime/Graph"
VERSION = 1
CALLBACK = "AnimeGraph.paramChanged"       # the PyPlug module's function (module prefix, §4.2)
INPUT_ID, OUTPUT_ID = "fr.inria.built-in.Input", "fr.inria.built-in.Output"
READ_ID, WRITE_ID = "fr.inria.openfx.ReadOIIO", "fr.inria.openfx.WriteOIIO"
MODES = (("node type", "one celgraph node type, fed by this node's inputs"),
         ("scene file", "a scene.json run as it is; its Write node's frames come back"))
NO_TYPES = "(no node types yet: check the server, then Refresh)"
RESULT = "cgResult"
PAGE = "cg_page"


# ---- creation --------------------------------------------------------------------------------------

FIXED_HIDDEN = ("cg_mode", "cg_type", "cg_scene", "cg_targets", "cg_show")   # not for a one-type node


def create_instance(app, group, type_id=""):
    """PyPlug createInstance: the panel and the internal nodes, then the node types (ListNodeTypes).
    With a type_id (the per-type PyPlugs `graph hosts install` writes) the node is that type only:
    no mode or type chooser, no scene fields."""
    try:
        _build_panel(app, group)
        if type_id:
            group.getParam("cg_fixed").set(type_id)
            for name in FIXED_HIDDEN:
                group.getParam(name).setVisible(False)
        out = _create(app, OUTPUT_ID, group)
        read = _create(app, READ_ID, group)
        read.setScriptName(RESULT)
        read.setPosition(0, 200)
        out.setPosition(0, 300)
        out.connectInput(0, read)
        # getParam works on any node object; the onParamChanged attribute only on Natron's wrapper
        group.getParam("onParamChanged").set(CALLBACK)
        group.refreshUserParamsGUI()
        refresh_types(app, group)
    except Exception as e:
        traceback.print_exc()
        _status(group, "error: could not build the node: %s" % e)


def _create(app, plugin_id, group):
    node = app.createNode(plugin_id, -1, group)
    if node is None:
        raise ch.HostError("natron", "Natron has no plug-in %s" % plugin_id)
    return node


def _build_panel(app, group):
    settings = ch.load_settings()
    page = group.createPageParam(PAGE, "celgraph")
    label_type = NatronEngine.StringParam.TypeEnum

    def add(param, help_text, newline=True):
        param.setHelp(help_text)
        param.setAnimationEnabled(False)
        param.setEvaluateOnChange(False)
        if not newline:
            param.setAddNewLine(False)
        page.addParam(param)
        return param

    p = add(group.createStringParam("cg_address", "server"),
            "celgraph server, HOST:PORT (graph serve). Default: $CELGRAPH_ADDRESS or 127.0.0.1:50051.")
    p.setType(label_type.eStringTypeDefault)
    _default(p, settings["address"])
    p = add(group.createChoiceParam("cg_mode", "mode"), "Run one node type on this node's inputs, "
                                                       "or a scene file as it is.")
    p.setOptions(list(MODES))
    p = add(group.createChoiceParam("cg_type", "node type"), "The server's node types (ListNodeTypes).", False)
    p.setOptions([(NO_TYPES, "")])
    add(group.createButtonParam("cg_refresh", "Refresh"), "Ask the server for its node types again.")
    p = add(group.createChoiceParam("cg_output", "output"), "Which output of the node type comes back.")
    p.setOptions([("image", "")])
    p = add(group.createFileParam("cg_scene", "scene file"), "scene.json to run in 'scene file' mode; "
                                                            "its relative paths resolve against its folder.")
    p.setSequenceEnabled(False)
    p = add(group.createStringParam("cg_targets", "targets"), "Scene mode: nodes to compute, comma-separated "
                                                             "(empty: the scene's end nodes).")
    p.setType(label_type.eStringTypeDefault)
    p = add(group.createStringParam("cg_show", "show node"), "Scene mode: the Write node whose frames "
                                                            "come back (empty: the first one).")
    p.setType(label_type.eStringTypeDefault)
    for name, label, value in (("cg_first", "first frame", app.timelineGetLeftBound()),
                               ("cg_last", "last frame", app.timelineGetRightBound())):
        p = add(group.createIntParam(name, label), "Frames to compute (celgraph frame = Natron frame).",
                name == "cg_last")
        _default(p, int(value))
    p = add(group.createPathParam("cg_shared", "shared folder"),
            "Where inputs and results go as EXR: storage this machine and the server both see "
            "(default $CELGRAPH_SHARED).")
    _default(p, settings["shared"])
    add(group.createButtonParam("cg_run", "Run"), "Render the inputs, send the job, load the result.", False)
    add(group.createButtonParam("cg_cancel", "Cancel"), "Cancel the running job on the server.")
    p = add(group.createStringParam("cg_status", "status"), "What the node is doing, or why it failed.")
    p.setType(label_type.eStringTypeLabel)
    p.setPersistent(False)                  # a saved project does not keep "running..."
    for name in ("cg_schema", "cg_uid", "cg_fixed"):
        p = add(group.createStringParam(name, name), "internal")
        p.setType(label_type.eStringTypeCustom)
        p.setVisible(False)
    group.getParam("cg_uid").set(uuid.uuid4().hex)


# ---- node types and params -------------------------------------------------------------------------

def refresh_types(app, group, force=False):
    """ListNodeTypes in the background (or right here when panel changes must stay on this thread)."""
    session = _session(app, group)
    session.fetch(_settings(group), lambda descs: _apply_types(app, group, descs), force=force, sync=_sync())


def _apply_types(app, group, descs):
    labels = ch.type_labels(descs)
    choice = group.getParam("cg_type")
    choice.setOptions([(label, _first_line(d.get("doc"))) for (label, _), d in zip(labels, descs)]
                      or [(NO_TYPES, "")])
    fixed = group.getParam("cg_fixed").get()
    current = fixed or (_desc(group) or {}).get("id")
    ids = [i for _, i in labels]
    choice.set(ids.index(current) if current in ids else 0)
    apply_type(app, group)
    if fixed and fixed not in ids:
        _status(group, "error (no_type): the server at %s has no node type %s" % (_settings(group)["address"], fixed))


def apply_type(app, group):
    """The chosen node type's params, input arrows and outputs. Nothing to do when they are
    already there: Natron calls back for every set(), the plug-in's own included."""
    session = _session(app, group)
    index = group.getParam("cg_type").get()
    if not 0 <= index < len(session.types):
        return
    desc = session.types[index]
    text = json.dumps(desc)
    if group.getParam("cg_schema").get() == text:
        return
    group.getParam("cg_schema").set(text)
    _build_params(group, desc)
    _build_inputs(app, group, desc)
    out = group.getParam("cg_output")
    previous = out.getOption(out.get()) if out.getNumOptions() else ""
    outputs = ch.image_outputs(desc)
    out.setOptions([(o, "") for o in outputs])
    if previous in outputs:
        out.set(previous)
    group.refreshUserParamsGUI()


def _build_params(group, desc):
    specs = ch.param_specs(desc)
    wanted = set(s["name"] for s in specs)
    for p in group.getParams():
        if p.getScriptName().startswith(ch.PARAM_PREFIX) and p.getScriptName() not in wanted:
            group.removeParam(p)
    page = group.getParam(PAGE)
    for spec in specs:
        if group.getParam(spec["name"]) is None:
            page.addParam(_make_param(group, spec))


def _make_param(group, spec):
    w, name, label = spec["widget"], spec["name"], spec["label"]
    if w == "int":
        p = group.createIntParam(name, label)
    elif w == "float":
        p = group.createDoubleParam(name, label)
    elif w == "bool":
        p = group.createBooleanParam(name, label)
    elif w == "choice":
        p = group.createChoiceParam(name, label)
        p.setOptions([(o, "") for o in spec["options"]])
    elif w == "file_in":
        p = group.createFileParam(name, label)
        p.setSequenceEnabled(True)
    elif w == "file_out":
        p = group.createOutputFileParam(name, label)
        p.setSequenceEnabled(True)
    else:
        p = group.createStringParam(name, label)
        p.setType(NatronEngine.StringParam.TypeEnum.eStringTypeDefault)
    if w in ("int", "float"):
        num = int if w == "int" else float
        if spec["min"] is not None:
            p.setMinimum(num(spec["min"]))
            p.setDisplayMinimum(num(spec["min"]))
        if spec["max"] is not None:
            p.setMaximum(num(spec["max"]))
            p.setDisplayMaximum(num(spec["max"]))
    _default(p, spec["default"])
    p.setHelp(spec["help"])
    p.setAnimationEnabled(False)
    p.setEvaluateOnChange(False)
    return p


def _build_inputs(app, group, desc):
    """Input i (labelled with port i) → WriteOIIO cgWrite<i>. Inputs a previous type needed stay,
    labelled "(unused)" and ignored, and are reused when a later type needs them: destroy() is
    deferred in NatronRenderer, so a destroyed cgIn1 would still be found and still count as an
    input arrow, shifting the arrows of nodes made after it."""
    ports = ch.describe_ports(desc)
    i = 0
    while i < len(ports) or group.getNode("cgIn%d" % i) is not None:
        inp = group.getNode("cgIn%d" % i)
        if inp is None:
            inp = _create(app, INPUT_ID, group)
            inp.setScriptName("cgIn%d" % i)
            inp.setPosition(200 * i, 0)
            writer = _create(app, WRITE_ID, group)
            writer.setScriptName("cgWrite%d" % i)
            writer.setPosition(200 * i, 100)
            writer.connectInput(0, inp)
            writer.getParam("formatType").set(0)          # the input's size, not the project format
        if i < len(ports):
            port, optional, _ = ports[i]
            inp.setLabel(port + (" (optional)" if optional else ""))
        else:
            inp.setLabel("(unused)")
        i += 1


# ---- running ---------------------------------------------------------------------------------------

def run(app, group):
    """The Run button: render the inputs (here, on the main thread: app.render blocks), then the job
    goes to a worker thread. Never raises: failures go to the status line."""
    session = _session(app, group)
    if session.busy():
        session.set_status("busy: a job is running (Cancel it first)")
        return
    try:
        settings = _settings(group)
        first, last = group.getParam("cg_first").get(), group.getParam("cg_last").get()
        name = group.getScriptName()
        if group.getParam("cg_mode").get() == 1:
            plan = ch.plan_scene_run(settings, group.getParam("cg_scene").get(), group.getParam("cg_targets").get(),
                                     first, last, name, group.getParam("cg_show").get())
        else:
            apply_type(app, group)          # a no-op unless the chosen type's params are not built yet
            desc = _desc(group)
            params = ch.scene_params(desc, lambda pname, spec: _value(group, pname)) if desc else {}
            ports = ch.describe_ports(desc) if desc else []
            connected = [port for i, (port, _, _) in enumerate(ports) if group.getInput(i) is not None]
            out = group.getParam("cg_output")
            output = out.getOption(out.get()) if out.getNumOptions() else ""
            plan = ch.plan_node_run(settings, desc, params, connected, output, first, last, name)
            _status(group, "rendering inputs\u2026")
            for i, (port, _, _) in enumerate(ports):
                if port in plan["inputs"]:
                    writer = group.getNode("cgWrite%d" % i)
                    writer.getParam("filename").set(plan["inputs"][port]["local"])
                    app.render(writer, plan["first"], plan["last"])
            ch.check_rendered(plan)
        session.submit(settings, plan, lambda result: show_result(group, result),
                       sync=NatronEngine.natron.isBackground())
    except Exception as e:
        session.fail(e)


def show_result(group, result):
    """Point the internal ReadOIIO at what the server wrote, with the components its type needs."""
    read = group.getNode(RESULT)
    filename = read.getParam("filename")
    filename.set(result["pattern"])
    read.getParam("firstFrame").set(int(result["first"]))
    read.getParam("lastFrame").set(int(result["last"]))
    # a one-channel EXR would come into RGBA as RGB = 1 (white): a Mask is a matte in alpha
    read.getParam("outputComponents").set(result.get("components") or "RGBA")
    filename.reloadFile()


def param_changed(thisParam, thisNode, thisGroup, app, userEdited):
    """Natron calls this for every change, a script's set() and the plug-in's own writes included
    (userEdited=False), so scripts can choose the type; apply_type is a no-op when nothing changed."""
    try:
        name = thisParam.getScriptName()
        if name == "cg_run":
            run(app, thisNode)
        elif name == "cg_cancel":
            _session(app, thisNode).cancel()
        elif name == "cg_refresh":
            refresh_types(app, thisNode, force=True)
        elif name == "cg_address":
            refresh_types(app, thisNode)
        elif name == "cg_type":
            apply_type(app, thisNode)
    except Exception as e:
        traceback.print_exc()
        _status(thisNode, "error: %s" % e)


# ---- helpers ---------------------------------------------------------------------------------------

def _default(param, value):
    """Natron 2.5's setDefaultValue leaves the current value alone: apply it too."""
    param.setDefaultValue(value)
    param.restoreDefaultValue()


def _value(group, name):
    return ch.require(group.getParam(name), "param", name).get()


def _desc(group):
    return ch.schema_from_text(group.getParam("cg_schema").get())


def _settings(group):
    return ch.load_settings(address=group.getParam("cg_address").get().strip(),
                            shared=group.getParam("cg_shared").get().strip())


def _status(group, text):
    p = group.getParam("cg_status")
    if p is not None:
        p.set(ch.one_line(text))


def _first_line(text):
    return (text or "").strip().split("\n")[0]


def _session(app, group):
    uid_param = group.getParam("cg_uid")
    uid = uid_param.get()
    if not uid:
        uid = uuid.uuid4().hex
        uid_param.set(uid)
    return ch.session_for(uid, _poster(), lambda text: _status(group, text), group.getScriptName())


def _direct(fn):
    fn()


_QT_POSTER = []       # [poster or None], decided once
_QT_KEEP = []         # the relay object, kept alive


def _poster():
    """A queued Qt signal into the main thread when the GUI's QtCore is already loaded (never
    imported here); else call right away."""
    if NatronEngine.natron.isBackground():
        return _direct
    if not _QT_POSTER:
        _QT_POSTER.append(_make_qt_poster())
    return _QT_POSTER[0] or _direct


def _sync():
    return _poster() is _direct


def _make_qt_poster():
    qt = None
    for name in ("PySide6.QtCore", "PySide2.QtCore", "PySide.QtCore"):
        qt = sys.modules.get(name)
        if qt is not None:
            break
    if qt is None:
        return None
    try:
        class Relay(qt.QObject):
            fire = qt.Signal(object)

            def __init__(self):
                qt.QObject.__init__(self)
                self.fire.connect(self.call, qt.Qt.QueuedConnection)

            def call(self, fn):
                try:
                    fn()
                except Exception:
                    traceback.print_exc()

        relay = Relay()                 # created here, on the main thread: its slot runs there
        _QT_KEEP.append(relay)
        return relay.fire.emit
    except Exception:
        traceback.print_exc()
        return None
