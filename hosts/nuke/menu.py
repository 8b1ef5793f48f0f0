"""celgraph menus for Nuke's GUI: Nodes > Anime > celgraph Node / celgraph Scene."""
import nuke

nuke.menu("Nodes").addMenu("Anime").addCommand(
    "celgraph Node", "import celgraph_nuke\ncelgraph_nuke.create()")
nuke.menu("Nodes").addMenu("Anime").addCommand(
    "celgraph Scene", "import celgraph_nuke\ncelgraph_nuke.create('scene file')")
