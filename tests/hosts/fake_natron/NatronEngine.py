"""A stand-in for Natron's built-in `NatronEngine` module, for tests only (Natron cannot be installed).

It has exactly the names that /work/shared/reference/hosts_and_engines.md §4 lists for a PyPlug
(the `natron` object, App, Group/Effect, UserParamHolder's create*Param, the Param classes,
StringParam.TypeEnum, the onParamChanged/onInputChanged callbacks, the built-in Input/Output and
the ReadOIIO/WriteOIIO meta nodes with their param script names), plus the value accessors that
Natron's own reference gives every value param (get/set/getValue/setValue/setDefaultValue on
BooleanParam, ChoiceParam and the StringParamBase family — PyParameter.h). Anything else fails
loudly: an AttributeError naming the class and the attribute, also for private attributes touched
from outside this module and for attributes a plug-in tries to add to Natron objects.

Behaviour copied from Natron: createNode("fr.inria.openfx.ReadOIIO") returns the generic Read
meta node (plug-in id fr.inria.built-in.Read), the same for WriteOIIO; IntParam/DoubleParam
getters clamp to setMinimum/setMaximum; ChoiceParam.setOptions takes (label, help) pairs and
set(label) ignores unknown labels; app.render works only on Write/DiskCache nodes and "succeeds"
whether or not files were written (renders go through _FAKE.render_hook, which a test sets);
param-changed callbacks are "module.func" strings called with the keyword arguments thisParam,
thisNode, thisGroup, app, userEdited.

Behaviour seen in a real NatronRenderer 2.5 (Python 3.11) and modelled here (docs/hosts.md):
the callback's signature is checked with inspect.getargspec, so without a replacement on Python
>= 3.11 it never runs (an error is printed and kept in _FAKE.errors); every programmatic set()
(and restoreDefaultValue, and a button's trigger()) fires the callback with userEdited=False;
setDefaultValue does not change the current value; destroy() is deferred (the node stays
reachable until _FAKE.process_events()); onParamChanged/onInputChanged are attributes only of the
registered wrapper createInstance receives (getParam("onParamChanged") works on every node);
createReader detects a sequence's frame range, createNode + filename.set does not; the method is
setPersistent (not the documented setPersistant).

Tests drive it through `_FAKE` (never used by plug-in code): reset(), register_pyplug(module),
user_set(param, value), press(button), process_events(), errors, calls (what was done, from
which thread), render_hook.
"""
from __future__ import print_function

import importlib
import inspect
import os
import re
import sys
import threading

_REF = "hosts_and_engines.md \u00a74"


def _outside(depth=2):
    return sys._getframe(depth).f_globals.get("__name__") != __name__


class _Strict(object):
    """Unknown attributes raise AttributeError with a clear message; no new public attributes."""

    def __getattribute__(self, name):
        if name.startswith("_") and not name.startswith("__") and _outside():
            raise AttributeError("NatronEngine stand-in: %s.%s is private to the stand-in; Natron's API has "
                                 "no such name (%s)" % (type(self).__name__, name, _REF))
        return object.__getattribute__(self, name)

    def __getattr__(self, name):
        if name.startswith("_") and not name.startswith("__"):
            raise AttributeError("NatronEngine stand-in: %s.%s is private to the stand-in; Natron's API has no such name "
                                 "(%s)" % (type(self).__name__, name, _REF))
        raise AttributeError("NatronEngine stand-in: %s has no attribute %r: not in the Natron API the "
                             "reference lists (%s)" % (type(self).__name__, name, _REF))

    def __setattr__(self, name, value):
        if not name.startswith("_") or _outside():
            raise AttributeError("NatronEngine stand-in: cannot set %r on a %s: Natron objects take no new "
                                 "attributes" % (name, type(self).__name__))
        object.__setattr__(self, name, value)


class _Recorder(object):
    def __init__(self):
        self.reset()

    def reset(self, background=False):
        self.background = background
        self.calls = []                 # (thread name, what, method, args)
        self.pyplugs = {}               # plugin id -> module
        self.render_hook = None         # f(writer, frame, path, upstream) writes the frame
        self.timeline = (1, 1)
        self.script_editor = []
        self.errors = []                # what Natron printed instead of calling a callback
        self.pending_destroy = []       # destroy() is deferred until process_events()
        self.app = App()
        return self.app

    def record(self, what, method, *args):
        self.calls.append((threading.current_thread().name, what, method, args))

    def calls_from_other_threads(self, methods=None):
        main = threading.main_thread().name
        return [c for c in self.calls if c[0] != main and (methods is None or c[2] in methods)]

    def register_pyplug(self, module):
        """Natron's PyPlug discovery: the marker line, getLabel, getGrouping, createInstance."""
        with open(module.__file__) as f:
            lines = [line.rstrip("\n") for line in f]
        if "# Natron PyPlug" not in lines:
            raise AssertionError("%s lacks the line '# Natron PyPlug'" % module.__file__)
        for fn in ("getLabel", "getGrouping", "createInstance"):
            if not callable(getattr(module, fn, None)):
                raise AssertionError("%s: a PyPlug needs %s()" % (module.__file__, fn))
        pid = module.getPluginID() if hasattr(module, "getPluginID") else module.getLabel()
        self.pyplugs[pid] = module
        return pid

    def user_set(self, param, value):
        """The user edits a param in the panel: one callback, userEdited=True (a script's set()
        fires it too, with userEdited=False)."""
        if param._assign(value):
            self.fire(param, user=True)

    def press(self, button):
        if not isinstance(button, ButtonParam):
            raise TypeError("press() takes a ButtonParam, got %r" % (button,))
        self.fire(button, user=True)

    def process_events(self):
        """What Natron's event loop does later: nodes whose destroy() was deferred go."""
        for node in list(self.pending_destroy):
            sibs = node._siblings()
            if node in sibs:
                sibs.remove(node)
        self.pending_destroy = []

    def fire(self, param, user):
        """Natron's param-changed dispatch: the callback named by the holder's onParamChanged
        param, after checking its signature with inspect.getargspec (gone in Python 3.11: without
        a replacement, Natron prints an error and never calls the callback)."""
        holder = param._holder
        ref_param = holder.getParam("onParamChanged") if isinstance(holder, Effect) else None
        ref = ref_param._value if ref_param is not None else ""
        if not ref:
            return
        module, _, func = ref.rpartition(".")
        fn = getattr(importlib.import_module(module), func)
        getargspec = getattr(inspect, "getargspec", None)
        try:
            spec = getargspec(fn)
            if len(spec[0]) != 5:
                raise TypeError("wrong number of arguments")
        except Exception:
            message = ("Failed to get signature of onParamChanged callback (%s): inspect.getargspec(%s) failed!"
                       % (ref, ref))
            print(message, file=sys.stderr)
            self.errors.append(message)
            return
        fn(thisParam=param, thisNode=holder, thisGroup=holder._parent, app=self.app, userEdited=user)


_FAKE = _Recorder.__new__(_Recorder)


def _frame_file(pattern, frame):
    return re.sub(r"#+", lambda m: "%0*d" % (len(m.group(0)), frame), pattern)


# ---- params ----------------------------------------------------------------------------------------

class Param(_Strict):
    def __init__(self, holder, name, label):
        self._holder, self._name, self._label = holder, name, label
        self._help, self._visible, self._enabled = "", True, True
        self._persistent, self._evaluate, self._animates, self._newline = True, True, True, True

    def _rec(self, method, *args):
        _FAKE.record("%s.%s" % (self._holder._name, self._name), method, *args)

    def setHelp(self, text):
        self._rec("setHelp", text)
        self._help = str(text)

    def setAddNewLine(self, on):
        self._newline = bool(on)

    def setEvaluateOnChange(self, on):
        self._evaluate = bool(on)

    def setAnimationEnabled(self, on):
        self._animates = bool(on)

    def setPersistent(self, on):          # the real 2.5 name (the generated docs say setPersistant)
        self._persistent = bool(on)

    def setVisible(self, on):
        self._rec("setVisible", on)
        self._visible = bool(on)

    def setEnabled(self, on):
        self._enabled = bool(on)

    def getScriptName(self):
        return self._name

    def getTypeName(self):
        return type(self).__name__


class _Valued(Param):
    _type = object

    def __init__(self, holder, name, label, default=None):
        Param.__init__(self, holder, name, label)
        self._default = default
        self._value = default

    def _check(self, value):
        if not isinstance(value, self._type) or (self._type is not bool and isinstance(value, bool)):
            raise TypeError("%s.set: %s expected, got %r" % (type(self).__name__, self._type, value))
        return value

    def get(self, frame=None):
        return self._value

    def getValue(self):
        return self.get()

    def _assign(self, x):
        """Store a value without any callback; False when nothing was set."""
        x = self._check(x)
        if x is None:
            return False
        self._rec("set", x)
        self._value = x
        return True

    def set(self, x, frame=None):
        """Like Natron: every programmatic set fires the holder's callback, userEdited=False."""
        if self._assign(x):
            _FAKE.fire(self, user=False)

    def setValue(self, value):
        self.set(value)

    def setDefaultValue(self, value):
        """Like real Natron 2.5: the default changes, the current value does not."""
        value = self._check(value)
        if value is None:
            return
        self._rec("setDefaultValue", value)
        self._default = value

    def getDefaultValue(self):
        return self._default

    def restoreDefaultValue(self, dimension=0):
        self.set(self._default)


class _Ranged(_Valued):
    def __init__(self, holder, name, label, default):
        _Valued.__init__(self, holder, name, label, default)
        self._min = self._max = self._dmin = self._dmax = None

    def get(self, frame=None):          # Natron clamps what getValue returns to the range
        v = self._value
        if self._min is not None:
            v = max(v, self._min)
        if self._max is not None:
            v = min(v, self._max)
        return v

    def setValue(self, value, dim=0):         # Int/Double: setValue(v[, dim])
        if dim != 0:
            raise IndexError("%s %s has one dimension" % (type(self).__name__, self._name))
        self.set(value)

    def restoreDefaultValue(self, dimension=0):
        if dimension != 0:
            raise IndexError("%s %s has one dimension" % (type(self).__name__, self._name))
        self.set(self._default)

    def setMinimum(self, v):
        self._rec("setMinimum", v)
        self._min = self._check(v)

    def setMaximum(self, v):
        self._rec("setMaximum", v)
        self._max = self._check(v)

    def setDisplayMinimum(self, v):
        self._dmin = self._check(v)

    def setDisplayMaximum(self, v):
        self._dmax = self._check(v)


class IntParam(_Ranged):
    _type = int

    def __init__(self, holder, name, label):
        _Ranged.__init__(self, holder, name, label, 0)


class DoubleParam(_Ranged):
    _type = (int, float)

    def __init__(self, holder, name, label):
        _Ranged.__init__(self, holder, name, label, 0.0)

    def _check(self, value):
        return float(_Ranged._check(self, value))


class BooleanParam(_Valued):
    _type = bool

    def __init__(self, holder, name, label):
        _Valued.__init__(self, holder, name, label, False)


class StringParamBase(_Valued):
    _type = str

    def __init__(self, holder, name, label):
        _Valued.__init__(self, holder, name, label, "")


class StringParam(StringParamBase):
    class TypeEnum(object):
        eStringTypeLabel = 0
        eStringTypeMultiLine = 1
        eStringTypeRichTextMultiLine = 2
        eStringTypeCustom = 3
        eStringTypeDefault = 4

    def setType(self, kind):
        if kind not in range(5):
            raise TypeError("StringParam.setType takes a StringParam.TypeEnum value, got %r" % (kind,))
        self._kind = kind


class FileParam(StringParamBase):
    def setSequenceEnabled(self, on):
        self._sequences = bool(on)

    def reloadFile(self):
        self._rec("reloadFile")


class OutputFileParam(StringParamBase):
    def setSequenceEnabled(self, on):
        self._sequences = bool(on)


class PathParam(StringParamBase):
    pass


class ChoiceParam(_Valued):
    _type = int

    def __init__(self, holder, name, label):
        _Valued.__init__(self, holder, name, label, 0)
        self._options = []

    def addOption(self, option, help):
        self._options.append((str(option), str(help)))

    def setOptions(self, options):
        pairs = list(options)
        for p in pairs:
            if not (isinstance(p, tuple) and len(p) == 2 and all(isinstance(s, str) for s in p)):
                raise TypeError("ChoiceParam.setOptions takes (label, help) string pairs, got %r" % (p,))
        self._rec("setOptions", pairs)
        self._options = pairs
        if self._value >= len(pairs):
            self._value = 0

    def getOption(self, i):
        return self._options[i][0]

    def getNumOptions(self):
        return len(self._options)

    def _check(self, value):
        if isinstance(value, str):
            for i, (label, _) in enumerate(self._options):
                if label.lower() == value.lower():
                    return i
            return None                   # Natron: an unknown label changes nothing
        value = _Valued._check(self, value)
        if not 0 <= value < max(len(self._options), 1):
            raise IndexError("ChoiceParam %s: option %d out of range" % (self._name, value))
        return value



class ButtonParam(Param):
    def trigger(self):
        self._rec("trigger")
        _FAKE.fire(self, user=False)


class PageParam(Param):
    def __init__(self, holder, name, label):
        Param.__init__(self, holder, name, label)
        self._children = []

    def addParam(self, param):
        if not isinstance(param, Param):
            raise TypeError("PageParam.addParam takes a Param")
        self._children.append(param)


class GroupParam(Param):
    pass


class ColorParam(Param):
    pass


class Int2DParam(IntParam):
    pass


class Int3DParam(Int2DParam):
    pass


class Double2DParam(DoubleParam):
    pass


class Double3DParam(Double2DParam):
    pass


class ParametricParam(Param):
    pass


class _Callback(_Strict):
    """app.afterNodeCreated: set("module.func")."""

    def __init__(self, what):
        self._what, self._value = what, ""

    def set(self, ref):
        if not isinstance(ref, str) or "." not in ref:
            raise TypeError("%s.set takes 'module.function', got %r" % (self._what, ref))
        self._value = ref

    def get(self):
        return self._value


# ---- nodes -----------------------------------------------------------------------------------------

_BUILTIN_PARAMS = {
    "fr.inria.built-in.Read": [(FileParam, "filename")] + [(IntParam, n) for n in (
        "firstFrame", "lastFrame", "startingTime", "timeOffset")] + [(ChoiceParam, n) for n in (
            "before", "after", "onMissingFrame", "frameMode", "outputComponents", "outputPremult", "filePremult",
            "ocioInputSpaceIndex", "decodingPluginChoice")] + [(StringParam, "decodingPluginID")],
    "fr.inria.built-in.Write": [(OutputFileParam, "filename")] + [(IntParam, n) for n in (
        "firstFrame", "lastFrame")] + [(ChoiceParam, n) for n in (
            "frameRange", "formatType", "outputComponents", "bitDepth", "compression", "inputPremult",
            "encodingPluginChoice")] + [(BooleanParam, n) for n in ("overwrite", "processAllPlanes")]
    + [(StringParam, "encodingPluginID")],
}
_META = {"fr.inria.openfx.ReadOIIO": "fr.inria.built-in.Read", "fr.inria.openfx.WriteOIIO": "fr.inria.built-in.Write"}
_KNOWN = ("fr.inria.built-in.Input", "fr.inria.built-in.Output", "fr.inria.built-in.Group",
          "fr.inria.built-in.Read", "fr.inria.built-in.Write", "fr.inria.built-in.DiskCache")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Group(_Strict):
    def __init__(self):
        self._children = []

    def getNode(self, name):
        for c in self._children:
            if c._name == name:
                return c
        return None

    def getChildren(self):
        return list(self._children)


class Effect(Group):
    def __init__(self, app, plugin_id, parent, name):
        Group.__init__(self)
        self._app, self._plugin_id, self._parent, self._name = app, plugin_id, parent, name
        self._label = name
        self._params = []
        self._inputs = {}
        self._registered = False        # True only while createInstance holds it (Natron's wrapper)
        self._user_page = None
        options = {"frameRange": ["union of input ranges", "timeline bounds", "manual"],
                   "formatType": ["input stream format", "project format", "fixed format"],
                   "outputComponents": ["RGBA", "RGB", "Alpha"]}
        for pname in ("onParamChanged", "onInputChanged"):      # every node has them as params
            p = StringParam(self, pname, pname)
            self._params.append(p)
        for cls, pname in _BUILTIN_PARAMS.get(plugin_id, []):
            p = cls(self, pname, pname)
            if isinstance(p, ChoiceParam):
                p._options = [(o, "") for o in options.get(pname, ["0", "1", "2"])]
            self._params.append(p)

    def __repr__(self):
        return "<Effect %s (%s)>" % (self._name, self._plugin_id)

    def _wrapper_only(self, name):
        if not self._registered:
            raise AttributeError(name)                 # Python then asks __getattr__, below
        return self.getParam(name)

    def __getattr__(self, name):
        if name in ("onParamChanged", "onInputChanged"):
            raise AttributeError("NatronEngine stand-in: %s.%s exists only on Natron's registered node wrapper "
                                 "(what createInstance receives, app.<scriptName>), not on an object from "
                                 "app.createNode: use getParam(%r)" % (self._name, name, name))
        return _Strict.__getattr__(self, name)

    @property
    def onParamChanged(self):
        return self._wrapper_only("onParamChanged")

    @property
    def onInputChanged(self):
        return self._wrapper_only("onInputChanged")

    def _rec(self, method, *args):
        _FAKE.record(self._name, method, *args)

    # params
    def getParam(self, name):
        for p in self._params:
            if p._name == name:
                return p
        return None

    def getParams(self):
        return list(self._params)

    def _create(self, cls, name, label, *extra):
        if not isinstance(name, str) or not _IDENT.match(name):
            raise ValueError("NatronEngine stand-in: param script name %r is not an identifier" % (name,))
        if self.getParam(name) is not None:
            raise ValueError("NatronEngine stand-in: %s already has a param %r" % (self._name, name))
        p = cls(self, name, label)
        self._params.append(p)
        self._rec("create" + cls.__name__, name)
        return p

    def createIntParam(self, name, label):
        return self._create(IntParam, name, label)

    def createDoubleParam(self, name, label):
        return self._create(DoubleParam, name, label)

    def createBooleanParam(self, name, label):
        return self._create(BooleanParam, name, label)

    def createStringParam(self, name, label):
        return self._create(StringParam, name, label)

    def createChoiceParam(self, name, label):
        return self._create(ChoiceParam, name, label)

    def createButtonParam(self, name, label):
        return self._create(ButtonParam, name, label)

    def createFileParam(self, name, label):
        return self._create(FileParam, name, label)

    def createOutputFileParam(self, name, label):
        return self._create(OutputFileParam, name, label)

    def createPathParam(self, name, label):
        return self._create(PathParam, name, label)

    def createPageParam(self, name, label):
        return self._create(PageParam, name, label)

    def createGroupParam(self, name, label):
        return self._create(GroupParam, name, label)

    def createColorParam(self, name, label, useAlpha):
        return self._create(ColorParam, name, label)

    def createInt2DParam(self, name, label):
        return self._create(Int2DParam, name, label)

    def createInt3DParam(self, name, label):
        return self._create(Int3DParam, name, label)

    def createDouble2DParam(self, name, label):
        return self._create(Double2DParam, name, label)

    def createDouble3DParam(self, name, label):
        return self._create(Double3DParam, name, label)

    def createParametricParam(self, name, label, nbCurves):
        return self._create(ParametricParam, name, label)

    def removeParam(self, param):
        self._rec("removeParam", param._name)
        if param in self._params:
            self._params.remove(param)
            for p in self._params:
                if isinstance(p, PageParam) and param in p._children:
                    p._children.remove(param)
            return True
        return False

    def refreshUserParamsGUI(self):
        self._rec("refreshUserParamsGUI")

    def getUserPageParam(self):
        if self._user_page is None:
            self._user_page = PageParam(self, "userNatron", "User")
            self._params.append(self._user_page)
        return self._user_page

    def setPagesOrder(self, pages):
        self._pages_order = list(pages)

    # graph
    def _input_nodes(self):
        return [c for c in self._children if c._plugin_id == "fr.inria.built-in.Input"]

    def getMaxInputCount(self):
        if self._plugin_id in ("fr.inria.built-in.Group",) or self._plugin_id in _FAKE.pyplugs:
            return len(self._input_nodes())
        return 0 if self._plugin_id == "fr.inria.built-in.Input" else 1

    def connectInput(self, i, node):
        if not isinstance(node, Effect):
            raise TypeError("connectInput takes an Effect")
        if not 0 <= i < self.getMaxInputCount():
            return False
        self._rec("connectInput", i, node._name)
        self._inputs[i] = node
        return True

    def disconnectInput(self, i):
        self._inputs.pop(i, None)

    def getInput(self, i):
        node = self._inputs.get(i)
        return node

    def getScriptName(self):
        return self._name

    def setScriptName(self, name):
        if not _IDENT.match(name or "") or any(c is not self and c._name == name for c in self._siblings()):
            return False
        self._rec("setScriptName", name)
        self._name = name
        return True

    def _siblings(self):
        return self._parent._children if self._parent is not None else self._app._children

    def setLabel(self, label):
        self._label = str(label)

    def getPluginID(self):
        return self._plugin_id

    def setPosition(self, x, y):
        self._position = (x, y)

    def setColor(self, r, g, b):
        self._color = (r, g, b)

    def beginChanges(self):
        pass

    def endChanges(self):
        pass

    def destroy(self):
        """Deferred, as in NatronRenderer: the node stays (getNode finds it, a group keeps its input
        arrow) until the event loop runs (_FAKE.process_events())."""
        self._rec("destroy")
        _FAKE.pending_destroy.append(self)

    def getRegionOfDefinition(self, time, view):
        return None


# ---- the application -------------------------------------------------------------------------------

class App(_Strict):
    def __init__(self):
        self._children = []
        self._counts = {}
        self._afterNodeCreated = _Callback("afterNodeCreated")

    @property
    def afterNodeCreated(self):
        return self._afterNodeCreated

    def createNode(self, pluginID, majorVersion=-1, group=None, properties=None):
        _FAKE.record("app", "createNode", pluginID)
        pid = _META.get(pluginID, pluginID)
        if pid not in _KNOWN and pid not in _FAKE.pyplugs:
            return None                      # Natron returns None for an unknown plug-in id
        parent = group
        base = {"fr.inria.built-in.Read": "Read", "fr.inria.built-in.Write": "Write"}.get(
            pid, pid.rsplit(".", 1)[-1])
        self._counts[base] = self._counts.get(base, 0) + 1
        node = Effect(self, pid, parent, "%s%d" % (base, self._counts[base]))
        (parent._children if parent is not None else self._children).append(node)
        if pid in _FAKE.pyplugs:
            node._registered = True
            try:
                _FAKE.pyplugs[pid].createInstance(self, node)
            finally:
                node._registered = False
        return node

    def createReader(self, filename, group=None):
        """Unlike createNode + filename.set, this detects a sequence's frame range (as Natron does)."""
        node = self.createNode("fr.inria.openfx.ReadOIIO", -1, group)
        node.getParam("filename").set(filename)
        frames = _sequence_frames(filename)
        if frames:
            node.getParam("firstFrame").set(min(frames))
            node.getParam("lastFrame").set(max(frames))
        return node

    def createWriter(self, filename, group=None):
        node = self.createNode("fr.inria.openfx.WriteOIIO", -1, group)
        node.getParam("filename").set(filename)
        return node

    def getNode(self, name):
        for c in self._children:
            if c._name == name:
                return c
        return None

    def render(self, effect, first=None, last=None, step=1):
        tasks = effect if isinstance(effect, list) else [(effect, first, last, step)]
        for task in tasks:
            node, first, last = task[0], task[1], task[2]
            step = task[3] if len(task) > 3 else 1
            if node.getPluginID() not in ("fr.inria.built-in.Write", "fr.inria.built-in.DiskCache"):
                raise RuntimeError("app.render works only for Write and DiskCache nodes, not %s" % node.getPluginID())
            _FAKE.record(node._name, "render", first, last)
            pattern = node.getParam("filename").get()
            for frame in range(int(first), int(last) + 1, int(step)):
                if _FAKE.render_hook is not None:
                    _FAKE.render_hook(node, frame, _frame_file(pattern, frame), _upstream(node))
        # like NatronRenderer: no error even when nothing was written

    def timelineGetTime(self):
        return _FAKE.timeline[0]

    def timelineGetLeftBound(self):
        return _FAKE.timeline[0]

    def timelineGetRightBound(self):
        return _FAKE.timeline[1]

    def saveProject(self, path):
        return True

    def loadProject(self, path):
        return None

    def getProjectParam(self, name):
        return None

    def addFormat(self, spec):
        pass

    def writeToScriptEditor(self, message):
        _FAKE.script_editor.append(str(message))


def _sequence_frames(pattern):
    """Frame numbers of the files on disk that match a #### pattern."""
    m = re.search(r"#+", pattern)
    if m is None:
        return []
    folder = os.path.dirname(pattern) or "."
    rx = re.compile(re.escape(os.path.basename(pattern[:m.start()])) + r"(\d+)"
                    + re.escape(pattern[m.end():]) + "$")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(int(r.group(1)) for r in map(rx.match, names) if r)


def _upstream(node):
    """What feeds a node: through an internal Input node to whatever is plugged into the group."""
    src = node.getInput(0)
    while src is not None and src.getPluginID() == "fr.inria.built-in.Input":
        group = src._parent
        index = group._input_nodes().index(src)
        src = group.getInput(index)
    return src


class PyCoreApplication(_Strict):
    def appendToNatronPath(self, path):
        if path not in sys.path:
            sys.path.append(path)

    def setOnProjectCreatedCallback(self, ref):
        self._created = ref

    def setOnProjectLoadedCallback(self, ref):
        self._loaded = ref

    def getPluginIDs(self):
        return list(_KNOWN) + sorted(_META) + sorted(_FAKE.pyplugs)

    def isBackground(self):
        return bool(_FAKE.background)


natron = PyCoreApplication()
_FAKE.reset()

_PUBLIC = frozenset(("natron", "App", "Group", "Effect", "Param", "IntParam", "DoubleParam", "BooleanParam",
                     "StringParamBase", "StringParam", "FileParam", "OutputFileParam", "PathParam", "ChoiceParam",
                     "ButtonParam", "PageParam", "GroupParam", "ColorParam", "Int2DParam", "Int3DParam",
                     "Double2DParam", "Double3DParam", "ParametricParam", "PyCoreApplication"))


def __getattr__(name):                  # PEP 562: unknown module attributes
    raise AttributeError("NatronEngine stand-in: module NatronEngine has no attribute %r: not in the Natron "
                         "API the reference lists (%s)" % (name, _REF))

