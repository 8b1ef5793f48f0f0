"""celgraph start-up for Nuke (runs in every mode, `nuke -t` included): makes ../common
(the celgraph_host package) importable. Put this folder on NUKE_PATH (or nuke.pluginAddPath it)."""
import os

import nuke


def _celgraph_common():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
    except NameError:                    # executed without a file name
        return None
    common = os.path.abspath(os.path.join(here, "..", "common"))
    return common if os.path.isfile(os.path.join(common, "celgraph_host", "__init__.py")) else None


if _celgraph_common():
    nuke.pluginAddPath(_celgraph_common())
