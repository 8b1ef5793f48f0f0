"""celgraph start-up for Natron (runs in GUI and background mode, before any project exists).

It makes ../common (the celgraph_host package) importable, and gives `inspect` back the `getargspec` that
Python 3.11 removed: Natron 2.5 checks every Python callback's signature with it, and without it
prints "Failed to get signature of onParamChanged callback" and never calls the callback (Run,
Refresh and Cancel would do nothing). The AnimeGraph PyPlug next to this file is found by Natron
itself through NATRON_PLUGIN_PATH.
"""
import collections
import inspect
import os
import sys

if not hasattr(inspect, "getargspec"):
    _ArgSpec = collections.namedtuple("ArgSpec", "args varargs keywords defaults")

    def _getargspec(func):
        spec = inspect.getfullargspec(func)
        return _ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)

    inspect.getargspec = _getargspec


def _celgraph_common_dirs():
    dirs = []
    try:
        dirs.append(os.path.dirname(os.path.abspath(__file__)))
    except NameError:                    # executed without a file name
        pass
    dirs += [d for d in os.environ.get("NATRON_PLUGIN_PATH", "").split(os.pathsep) if d]
    for d in dirs:
        common = os.path.abspath(os.path.join(d, "..", "common"))
        if os.path.isfile(os.path.join(common, "celgraph_host", "__init__.py")):
            yield common


for _dir in _celgraph_common_dirs():
    if _dir not in sys.path:
        sys.path.append(_dir)
    break
