"""Every scene in examples/ validates and runs out of the box (copied to a temp folder)."""
import json
import shutil
from pathlib import Path

import pytest

import celgraph as cg

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))


@pytest.mark.parametrize("scene", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(scene, tmp_path):
    shutil.copy(scene, tmp_path / scene.name)
    g = cg.load_scene(tmp_path / scene.name)
    assert g.validate() == []
    frames = cg.graph.parse_frames(g.frames)[:3]
    r = cg.Engine(tmp_path / "cache").run(g, frames=frames)
    assert r.status == "succeeded"
    writes = [n for n, s in g.nodes.items() if s.type == "Write"]
    for node in writes:
        for f in frames:
            assert Path(r.value(node, "file", f)["path"]).is_file()


def test_there_is_a_quickstart_example():
    assert any(p.name == "quickstart.json" for p in EXAMPLES)
    data = json.loads((Path(__file__).parent.parent / "examples" / "quickstart.json").read_text())
    assert data["celgraph"] == 1
