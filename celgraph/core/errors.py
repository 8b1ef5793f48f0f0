"""Errors are values with a stable code and the node they concern."""
from __future__ import annotations

from dataclasses import asdict, dataclass

# The stable validation codes. Hosts and scripts may switch on them; never rename one.
CODES = {
    "bad_version": "the scene's format version is not supported",
    "bad_scene": "the scene file is not valid JSON or not shaped like a scene",
    "bad_frames": "a frame range is malformed or empty",
    "unknown_type": "a node's type is not registered",
    "unknown_param": "a param is not declared by the node type",
    "param_type": "a param value has the wrong type",
    "param_out_of_range": "a param value is outside its min/max or choices",
    "unknown_input": "a link goes into an input the node type does not have",
    "missing_input": "a required input has no link",
    "unknown_node": "a link names a node that is not in the scene",
    "unknown_output": "a link names an output the upstream node does not have",
    "bad_link": "a link is not written as 'node.output'",
    "type_mismatch": "a link joins ports of incompatible types",
    "cycle": "the links form a cycle",
    "file_not_found": "a file a node reads does not exist",
    "bad_path": "an output path has no known format, or no frame pattern for a multi-frame scene",
    "unknown_target": "a requested target is not a node of the scene",
    "path_not_allowed": "a path a server job would read or write is outside the server's allowed folders",
    "bad_label": "a job label is too long",
    "runtime_unavailable": "a node's runtime param names an inference runtime (or a GPU) this machine lacks",
}


@dataclass(frozen=True)
class Issue:
    code: str
    message: str
    node: str | None = None
    field: str | None = None     # the param or input concerned, if any

    def __str__(self) -> str:
        where = f"{self.node}" + (f".{self.field}" if self.field else "") if self.node else "scene"
        return f"[{self.code}] {where}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


class CelgraphError(Exception):
    """Base of every error celgraph raises on purpose."""


class GraphInvalid(CelgraphError):
    """The scene failed validation; `issues` lists every problem found, not just the first."""

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        super().__init__("scene is invalid:\n" + "\n".join(f"  {i}" for i in self.issues))


class NodeFailed(CelgraphError):
    """A node raised while computing. Names the node, its type and the frame."""

    def __init__(self, node: str, type_id: str, frame, exc: BaseException):
        self.node, self.type_id, self.frame, self.exc = node, type_id, frame, exc
        at = "clip" if frame is None else f"frame {frame}"
        super().__init__(f"node '{node}' ({type_id}) failed at {at}: {type(exc).__name__}: {exc}")

    def to_dict(self) -> dict:
        return {"node": self.node, "type": self.type_id, "frame": self.frame,
                "exception": type(self.exc).__name__, "message": str(self.exc)}


class Cancelled(CelgraphError):
    """The run was cancelled (Ctrl-C or API). Finished work stays cached; nothing is half-written."""
