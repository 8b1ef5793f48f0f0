"""A stand-in for Nuke's `nuke` module, for tests only (Nuke cannot be installed).

It has exactly the names /work/shared/reference/hosts_and_engines.md §5.1 lists: createNode,
nodes.<Class>, toNode, selectedNode, makeGroup, collapseToGroup; node[knob], node.knob(),
setInput, input, addKnob, begin/end/`with group:`; the knob classes Int_Knob, Double_Knob
(setRange), String_Knob, Multiline_Eval_String_Knob, Boolean_Knob, Enumeration_Knob (setValues,
value), File_Knob, PyScript_Knob, Tab_Knob, Text_Knob with value/setValue/getValue, setTooltip,
setFlag(STARTLINE), setVisible; addKnobChanged/thisNode/thisKnob (plus knob.name(), which filtering
"by knob name" needs) and the other add* callbacks; pluginAddPath and menu().addMenu().addCommand();
execute, executeMultiple, executeBackgroundNuke; executeInMainThread(WithResult); ProgressTask
(setMessage, setProgress, isCancelled). The built-in nodes it knows (Group, Input, Output, Read,
Write) carry only the knobs listed in _BUILTIN (Nuke's documented names). Anything else fails
loudly with an AttributeError (or NameError for a missing knob, as Nuke does).

Nuke's rule that nodes and knobs belong to the main thread is enforced: creating nodes, adding
knobs, setInput, setValue and friends from another thread raise RuntimeError. executeInMainThread
queues the call; a test runs the queue on the main thread with _FAKE.pump(), as Nuke's event
loop would. nuke.execute "renders" a Write through _FAKE.render_hook(write, frame, path, upstream)
and, like Nuke, writes nothing without it.

Tests drive it through `_FAKE` (never used by plug-in code): reset(), pump(until), press(knob),
user_set(knob, value), select(node), calls, render_hook, menus.
"""
from __future__ import print_function

import collections
import re
import sys
import threading
import time

_REF = "hosts_and_engines.md \u00a75.1"
STARTLINE = 0x1000


def _outside(depth=2):
    return sys._getframe(depth).f_globals.get("__name__") != __name__


class _Strict(object):
    def __getattribute__(self, name):
        if name.startswith("_") and not name.startswith("__") and _outside():
            raise AttributeError("nuke stand-in: %s.%s is private to the stand-in; Nuke's API has no such "
                                 "name (%s)" % (type(self).__name__, name, _REF))
        return object.__getattribute__(self, name)

    def __getattr__(self, name):
        if name.startswith("_") and not name.startswith("__"):
            raise AttributeError("nuke stand-in: %s.%s is private to the stand-in; Nuke's API has no such name "
                                 "(%s)" % (type(self).__name__, name, _REF))
        raise AttributeError("nuke stand-in: %s has no attribute %r: not in the Nuke API the reference lists "
                             "(%s)" % (type(self).__name__, name, _REF))

    def __setattr__(self, name, value):
        if not name.startswith("_") or _outside():
            raise AttributeError("nuke stand-in: cannot set %r on a %s: Nuke objects take no new attributes"
                                 % (name, type(self).__name__))
        object.__setattr__(self, name, value)


def _main_thread(what):
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("nuke stand-in: %s called from thread %r: Nuke's nodes and knobs belong to the main "
                           "thread (use nuke.executeInMainThread)" % (what, threading.current_thread().name))


# ---- knobs -----------------------------------------------------------------------------------------

class Knob(_Strict):
    _default = ""

    def __init__(self, name, label=None, *args):
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ValueError("nuke stand-in: bad knob name %r" % (name,))
        self._name, self._label = name, label if label is not None else name
        self._value = self._default
        self._tooltip, self._flags, self._visible, self._node = "", set(), True, None

    def _check(self, value):
        return value

    def _rec(self, method, *args):
        owner = self._node._knobs["name"]._value if self._node is not None else "-"
        _FAKE.record("%s.%s" % (owner, self._name), method, *args)

    def name(self):
        return self._name

    def value(self):
        return self._value

    def getValue(self):
        return self._value

    def setValue(self, value):
        _main_thread("%s.setValue" % self._name)
        value = self._check(value)
        node = self._node
        if self._name == "name" and node is not None and node._parent is not None:
            if any(c is not node and c._knobs["name"]._value == value for c in node._parent._children):
                raise ValueError("nuke stand-in: a node named %r already exists here" % value)
        self._value = value
        self._rec("setValue", self._value)
        return True

    def setTooltip(self, text):
        _main_thread("setTooltip")
        self._tooltip = str(text)

    def setFlag(self, flag):
        _main_thread("setFlag")
        self._flags.add(flag)

    def setVisible(self, on):
        _main_thread("setVisible")
        self._rec("setVisible", on)
        self._visible = bool(on)


class Int_Knob(Knob):
    _default = 0

    def _check(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("Int_Knob %s: an int, got %r" % (self._name, value))
        return value


class Double_Knob(Knob):
    _default = 0.0

    def __init__(self, name, label=None, *args):
        Knob.__init__(self, name, label)
        self._range = None

    def _check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("Double_Knob %s: a number, got %r" % (self._name, value))
        return float(value)

    def setRange(self, minimum, maximum):           # the slider's range; values are not clamped
        _main_thread("setRange")
        self._rec("setRange", minimum, maximum)
        self._range = (float(minimum), float(maximum))


class String_Knob(Knob):
    def __init__(self, name, label=None, value=""):
        Knob.__init__(self, name, label)
        self._value = self._check(value)

    def _check(self, value):
        if not isinstance(value, str):
            raise TypeError("%s %s: a string, got %r" % (type(self).__name__, self._name, value))
        return value


class Multiline_Eval_String_Knob(String_Knob):
    pass


class File_Knob(String_Knob):
    pass


class Text_Knob(String_Knob):
    pass


class Boolean_Knob(Knob):
    _default = False

    def __init__(self, name, label=None, value=False):
        Knob.__init__(self, name, label)
        self._value = self._check(value)

    def _check(self, value):
        if not isinstance(value, bool):
            raise TypeError("Boolean_Knob %s: a bool, got %r" % (self._name, value))
        return value


class Enumeration_Knob(Knob):
    def __init__(self, name, label, items):
        Knob.__init__(self, name, label)
        self._items = self._items_of(items)
        self._value = 0

    @staticmethod
    def _items_of(items):
        items = list(items)
        if not all(isinstance(i, str) for i in items):
            raise TypeError("Enumeration_Knob items must be strings, got %r" % (items,))
        return items

    def _check(self, value):
        if isinstance(value, str):
            if value not in self._items:
                raise ValueError("Enumeration_Knob %s: %r is not one of %s" % (self._name, value, self._items))
            return self._items.index(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < len(self._items):
            raise ValueError("Enumeration_Knob %s: bad index %r" % (self._name, value))
        return int(value)

    def value(self):
        return self._items[self._value] if self._items else ""

    def getValue(self):
        return float(self._value)

    def setValues(self, items):
        _main_thread("setValues")
        self._items = self._items_of(items)
        self._rec("setValues", list(self._items))
        if self._value >= len(self._items):
            self._value = 0


class PyScript_Knob(Knob):
    def __init__(self, name, label=None, command=""):
        Knob.__init__(self, name, label)
        self._value = command


class Tab_Knob(Knob):
    pass


class _ChannelKnob(Knob):        # Write's channels (a ChannelMask knob in Nuke): 'rgb', 'rgba', ...
    _default = "rgb"


# ---- nodes -----------------------------------------------------------------------------------------

_BUILTIN = {
    "Group": [(String_Knob, "knobChanged")],
    "Input": [(Int_Knob, "number")],
    "Output": [],
    "Read": [(File_Knob, "file"), (Int_Knob, "first"), (Int_Knob, "last"), (Int_Knob, "origfirst"),
             (Int_Knob, "origlast")],
    "Write": [(File_Knob, "file"), (_ChannelKnob, "channels"), (Boolean_Knob, "create_directories")],
}
_MAX_INPUTS = {"Input": 0, "Read": 0, "Output": 1, "Write": 1}


class Node(_Strict):
    def __init__(self, cls, parent):
        self._class, self._parent = cls, parent
        self._knobs = collections.OrderedDict()
        self._inputs = {}
        self._deleted = False
        counts = _FAKE.counts
        counts[cls] = counts.get(cls, 0) + 1
        for k in (String_Knob("name", "name", "%s%d" % (cls, counts[cls])), String_Knob("label", "label")):
            self._attach(k)
        for kcls, kname in _BUILTIN[cls]:
            self._attach(kcls(kname, kname))
        if cls == "Write":
            self._attach(Enumeration_Knob("file_type", "file type", ["", "exr", "png", "tiff", "dpx", "jpeg"]))

    def __repr__(self):
        return "<%s %s>" % (self._class, self._knobs["name"]._value)

    def _attach(self, knob):
        knob._node = self
        self._knobs[knob._name] = knob

    def __getitem__(self, name):
        if name not in self._knobs:
            raise NameError("knob %s does not exist" % name)
        return self._knobs[name]

    def knob(self, name):
        return self._knobs.get(name)

    def addKnob(self, knob):
        _main_thread("addKnob")
        if not isinstance(knob, Knob):
            raise TypeError("addKnob takes a knob")
        if knob._name in self._knobs:
            raise ValueError("nuke stand-in: %s already has a knob %r" % (self, knob._name))
        self._attach(knob)
        _FAKE.record(self._knobs["name"]._value, "addKnob", knob._name)
        return True

    def _max_inputs(self):
        if self._class == "Group":
            return len(self._input_nodes())
        return _MAX_INPUTS.get(self._class, 1)

    def setInput(self, i, node):
        _main_thread("setInput")
        if node is not None and not isinstance(node, Node):
            raise TypeError("setInput takes a node or None")
        if not 0 <= i < self._max_inputs():
            return False
        self._inputs[i] = node
        return True

    def input(self, i):
        node = self._inputs.get(i)
        return None if node is None or node._deleted else node


class Group(Node):
    def __init__(self, cls, parent):
        Node.__init__(self, cls, parent)
        self._children = []

    def _input_nodes(self):
        return [c for c in self._children if c._class == "Input"]

    def begin(self):
        _main_thread("begin")
        _FAKE.context.append(self)
        return self

    def end(self):
        _main_thread("end")
        if len(_FAKE.context) < 2 or _FAKE.context[-1] is not self:
            raise RuntimeError("nuke stand-in: end() without a matching begin()")
        _FAKE.context.pop()

    def __enter__(self):
        return self.begin()

    def __exit__(self, *exc):
        self.end()
        return False


def _new(cls, knobs):
    _main_thread("creating a %s" % cls)
    if cls not in _BUILTIN:
        raise AttributeError("nuke stand-in: no node class %r (the stand-in knows %s)" % (cls, sorted(_BUILTIN)))
    parent = _FAKE.context[-1]
    node = (Group if cls == "Group" else Node)(cls, parent)
    for k, v in knobs.items():
        if k == "name":
            _check_name(parent, v)
        node[k].setValue(v)
    parent._children.append(node)
    _FAKE.record(node._knobs["name"]._value, "create", cls)
    return node


def _check_name(parent, name):
    if any(c._knobs["name"]._value == name for c in parent._children):
        raise ValueError("nuke stand-in: a node named %r already exists here" % name)


class _Nodes(_Strict):
    def __getattr__(self, cls):
        if cls not in _BUILTIN:
            raise AttributeError("nuke stand-in: nuke.nodes has no node class %r (known: %s)" % (cls, sorted(_BUILTIN)))
        return lambda **knobs: _new(cls, knobs)


nodes = _Nodes()


def createNode(nodeClass, knobs="", inpanel=True):
    """UI-style: the new node is connected to the selection."""
    node = _new(nodeClass, {})
    sel = _FAKE.selection
    if sel is not None and node._max_inputs() > 0:
        node.setInput(0, sel)
    _FAKE.created_with_panel.append(bool(inpanel))
    return node


def toNode(name):
    parts = name.split(".")
    scope = _FAKE.context[-1] if len(parts) == 1 else _FAKE.root
    node = None
    for part in parts:
        node = next((c for c in getattr(scope, "_children", []) if c._knobs["name"]._value == part), None)
        if node is None:
            return None
        scope = node
    return node


def selectedNode():
    if _FAKE.selection is None:
        raise ValueError("no node selected")
    return _FAKE.selection


def makeGroup(show=True):
    raise NotImplementedError("nuke stand-in: makeGroup is listed but not simulated")


def collapseToGroup(show=True):
    raise NotImplementedError("nuke stand-in: collapseToGroup is listed but not simulated")


def thisNode():
    return _FAKE.this[-1][0] if _FAKE.this else _FAKE.root


def thisKnob():
    return _FAKE.this[-1][1] if _FAKE.this else None


def _add_callback(kind):
    def add(func, args=(), kwargs=None, nodeClass="*", node=None):
        _FAKE.callbacks.setdefault(kind, []).append((func, args, kwargs or {}, nodeClass, node))
    add.__name__ = kind
    return add


addKnobChanged = _add_callback("knobChanged")
addOnCreate = _add_callback("onCreate")
addOnUserCreate = _add_callback("onUserCreate")
addOnScriptLoad = _add_callback("onScriptLoad")
addBeforeRender = _add_callback("beforeRender")
addAfterFrameRender = _add_callback("afterFrameRender")
addAfterRender = _add_callback("afterRender")


def pluginAddPath(path):
    """Nuke adds the folder to its plug-in path and to sys.path."""
    _FAKE.plugin_path.append(path)
    if path not in sys.path:
        sys.path.insert(0, path)


class _Menu(_Strict):
    def __init__(self, name):
        self._name = name

    def addMenu(self, name, icon=None):
        return _FAKE.menu("%s/%s" % (self._name, name))

    def addCommand(self, name, command, shortcut="", icon=""):
        _FAKE.menus.setdefault(self._name, []).append((name, command))
        return self


def menu(name):
    return _FAKE.menu(name)


def _frame_file(pattern, frame):
    return re.sub(r"#+", lambda m: "%0*d" % (len(m.group(0)), frame), pattern)


def _upstream(node):
    src = node.input(0)
    while src is not None and src._class == "Input":
        group = src._parent
        src = group.input(group._input_nodes().index(src))
    return src


def execute(nameOrNode, start, end, incr=1, views=None, continueOnError=False):
    _main_thread("execute")
    node = toNode(nameOrNode) if isinstance(nameOrNode, str) else nameOrNode
    if node is None or node._class != "Write":
        raise RuntimeError("nuke stand-in: execute needs a Write node, got %r" % (nameOrNode,))
    _FAKE.record(node._knobs["name"]._value, "execute", start, end)
    pattern = node["file"].value()
    for frame in range(int(start), int(end) + 1, int(incr)):
        if _FAKE.render_hook is not None:
            _FAKE.render_hook(node, frame, _frame_file(pattern, frame), _upstream(node))


def executeMultiple(nodes, ranges, views=None, continueOnError=False):
    for node in nodes:
        for r in ranges:
            execute(node, r[0], r[1], r[2] if len(r) > 2 else 1, views, continueOnError)


def executeBackgroundNuke(*args, **kwargs):
    raise NotImplementedError("nuke stand-in: executeBackgroundNuke is listed but not simulated")


def executeInMainThread(call, args=(), kwargs=None):
    if not isinstance(args, tuple):
        args = (args,)
    with _FAKE.lock:
        _FAKE.queue.append((call, args, kwargs or {}))


def executeInMainThreadWithResult(call, args=(), kwargs=None):
    if not isinstance(args, tuple):
        args = (args,)
    if threading.current_thread() is threading.main_thread():
        return call(*args, **(kwargs or {}))
    done, box = threading.Event(), []

    def run():
        try:
            box.append(call(*args, **(kwargs or {})))
        finally:
            done.set()
    executeInMainThread(run)
    done.wait()
    return box[0] if box else None


class ProgressTask(_Strict):
    def __init__(self, name):
        self._name, self._message, self._progress = name, "", 0

    def setMessage(self, message):
        self._message = message

    def setProgress(self, percent):
        self._progress = percent

    def isCancelled(self):
        return False


# ---- what tests use --------------------------------------------------------------------------------

class _Recorder(object):
    def reset(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.calls = []
        self.queue = []
        self.callbacks = {}
        self.menus = {}
        self._menus = {}
        self.plugin_path = []
        self.selection = None
        self.render_hook = None
        self.created_with_panel = []
        self.this = []
        self.root = Group.__new__(Group)
        object.__setattr__(self.root, "_class", "Root")
        object.__setattr__(self.root, "_children", [])
        object.__setattr__(self.root, "_knobs", {"name": String_Knob("name", "name", "root")})
        self.context = [self.root]

    def record(self, what, method, *args):
        self.calls.append((threading.current_thread().name, what, method, args))

    def menu(self, name):
        if name not in self._menus:
            self._menus[name] = _Menu(name)
        return self._menus[name]

    def pump(self, until=None, timeout=60.0):
        """Run queued executeInMainThread calls on this (main) thread until `until()` holds
        (or, without `until`, until the queue is empty). False on timeout."""
        _main_thread("pump")
        deadline = time.time() + timeout
        while True:
            with self.lock:
                batch, self.queue[:] = list(self.queue), []
            for call, args, kwargs in batch:
                call(*args, **kwargs)
            if until is not None and until():
                return True
            if until is None and not batch:
                return True
            if time.time() > deadline:
                return False
            time.sleep(0.02)

    def _run_in(self, node, knob, fn):
        self.this.append((node, knob))
        try:
            return fn()
        finally:
            self.this.pop()

    def _exec(self, code, node, knob):
        ns = {"nuke": sys.modules[__name__], "__name__": "__main__"}
        self._run_in(node, knob, lambda: exec(compile(code, "<%s>" % knob._name, "exec"), ns))

    def press(self, knob):
        """The user clicks a PyScript_Knob: its command runs with thisNode()/thisKnob() set."""
        if not isinstance(knob, PyScript_Knob):
            raise TypeError("press() takes a PyScript_Knob")
        self._exec(knob._value, knob._node, knob)

    def user_set(self, knob, value):
        """The user edits a knob: setValue, then the node's knobChanged script and addKnobChanged."""
        knob.setValue(value)
        node = knob._node
        script = node._knobs.get("knobChanged")
        if script is not None and script._value:
            self._exec(script._value, node, knob)
        for func, args, kwargs, cls, only in self.callbacks.get("knobChanged", []):
            if (cls == "*" or cls == node._class) and (only is None or only is node):
                self._run_in(node, knob, lambda: func(*args, **kwargs))

    def select(self, node):
        self.selection = node

    def calls_from_other_threads(self):
        main = threading.main_thread().name
        return [c for c in self.calls if c[0] != main]


_FAKE = _Recorder()
_FAKE.reset()

_PUBLIC = frozenset(("createNode", "nodes", "toNode", "selectedNode", "makeGroup", "collapseToGroup",
                     "Int_Knob", "Double_Knob", "String_Knob", "Multiline_Eval_String_Knob", "Boolean_Knob",
                     "Enumeration_Knob", "File_Knob", "PyScript_Knob", "Tab_Knob", "Text_Knob", "STARTLINE",
                     "addKnobChanged", "thisNode", "thisKnob", "addOnCreate", "addOnUserCreate", "addOnScriptLoad",
                     "addBeforeRender", "addAfterFrameRender", "addAfterRender", "pluginAddPath", "menu",
                     "execute", "executeMultiple", "executeBackgroundNuke", "executeInMainThread",
                     "executeInMainThreadWithResult", "ProgressTask"))


def __getattr__(name):                  # PEP 562: unknown module attributes
    raise AttributeError("nuke stand-in: module nuke has no attribute %r: not in the Nuke API the reference "
                         "lists (%s)" % (name, _REF))
