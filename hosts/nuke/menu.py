"""celgraph menus for Nuke's GUI: Nodes > Anime > celgraph Node / celgraph Scene, and one entry per
node type where `graph hosts install --nuke DIR` wrote celgraph_menu_types.py."""
import importlib.util

import nuke

nuke.menu("Nodes").addMenu("Anime").addCommand(
    "celgraph Node", "import celgraph_nuke\ncelgraph_nuke.create()")
nuke.menu("Nodes").addMenu("Anime").addCommand(
    "celgraph Scene", "import celgraph_nuke\ncelgraph_nuke.create('scene file')")

if importlib.util.find_spec("celgraph_menu_types") is not None:
    import celgraph_menu_types  # noqa: F401  (adds Nodes > Anime > <type>)
