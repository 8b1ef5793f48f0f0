"""celgraph start-up for Natron (runs in GUI and background mode, before any project exists).

It only makes ../common (celgraph_host.py) importable; the AnimeGraph PyPlug next to this file
is found by Natron itself through NATRON_PLUGIN_PATH.
"""
import os
import sys


def _celgraph_common_dirs():
    dirs = []
    try:
        dirs.append(os.path.dirname(os.path.abspath(__file__)))
    except NameError:                    # executed without a file name
        pass
    dirs += [d for d in os.environ.get("NATRON_PLUGIN_PATH", "").split(os.pathsep) if d]
    for d in dirs:
        common = os.path.abspath(os.path.join(d, "..", "common"))
        if os.path.isfile(os.path.join(common, "celgraph_host.py")):
            yield common


for _dir in _celgraph_common_dirs():
    if _dir not in sys.path:
        sys.path.append(_dir)
    break
