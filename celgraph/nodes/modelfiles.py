"""What the nodes that run a trained network share: where their bundled weights are, the check of
the weights file a node is set to read, and loading the model once per process onto the device
its `device` param asks for."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..core import Context, Issue
from ..core.hashing import file_digest


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


def model_device(ctx: Context) -> str:
    """The node's `device` param resolved: "auto" is the engine's choice (a GPU when there is one),
    "cuda" without a GPU is an error naming the fix."""
    want = ctx.params.device
    if want == "auto":
        return ctx.device
    if want == "cuda":
        import torch        # only nodes that run a network get here
        if not torch.cuda.is_available():
            raise RuntimeError("device=cuda but no CUDA GPU is available (use auto or cpu)")
    return want


def load_model(ctx: Context, kind: str, path: Path, load: Callable[[str], Any]) -> tuple[Any, str]:
    """(``load(device)``, device): the model in ``path`` on the device of the node's `device` param,
    loaded once per process and file content (the engine's object cache), or afresh without one."""
    device = model_device(ctx)
    if ctx.objects is None:
        return load(device), device
    return ctx.objects.get((kind, file_digest(path), device), lambda: load(device)), device
