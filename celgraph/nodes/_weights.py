"""What the nodes that run a trained network share: where their bundled weights are, and the
check of the weights file a node is set to read."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..core import Issue


def bundled_file(name: str | None) -> Path | None:
    """celgraph/models/weights/NAME, or None when there is no such file (or no name)."""
    if name is None:
        return None
    path = Path(str(resources.files("celgraph.models") / "weights" / name))
    return path if path.is_file() else None


def weights_issues(path: Path | None, node: str, no_weights: str, param: str = "weights") -> list[Issue]:
    """The check of a node's weights file: ``no_weights`` says what to do when there is none to
    use (``path`` None: nothing set and nothing bundled)."""
    if path is None:
        return [Issue("file_not_found", no_weights, node, param)]
    if not path.is_file():
        return [Issue("file_not_found", f"weights file {path} does not exist", node, param)]
    return []
