# Natron PyPlug
"""AnimeGraph: run a celgraph node type, or a whole celgraph scene, on a celgraph server.

A Natron PyPlug (Natron 2.5+, Python 3): Natron imports this file from a folder on
NATRON_PLUGIN_PATH because of the marker line above, registers it under getPluginID(), and calls
createInstance(app, group) inside the Group node it has just made. The work is in
celgraph_natron.py (next to this file) and ../common/celgraph_host/, standard library only.
"""


def getPluginID():
    return "org.celgraph.AnimeGraph"


def getLabel():
    return "AnimeGraph"


def getVersion():
    return 1


def getGrouping():
    return "Anime/Graph"


def getDescription():
    return ("Runs a celgraph node type (or a scene file) on a celgraph server: inputs go to the server as EXR "
            "files on shared storage, results come back through an internal ReadOIIO.")


def createInstance(app, group):
    import celgraph_natron
    celgraph_natron.create_instance(app, group)


def paramChanged(thisParam, thisNode, thisGroup, app, userEdited):
    import celgraph_natron
    celgraph_natron.param_changed(thisParam, thisNode, thisGroup, app, userEdited)
