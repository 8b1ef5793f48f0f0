"""NodeType: a static descriptor (data) plus a pure compute function.

A node type declares its whole interface as class attributes — id, version, category, typed
inputs/outputs/params and flags — and implements `compute`. The same descriptor validates
scene.json, drives the Python API, builds host panels and is served over gRPC (`describe()`).

    class Blur(NodeType):
        '''Gaussian blur.'''
        id, version, category = "celgraph.Blur", 1, "Filter"
        inputs = [In("image", Image)]
        outputs = [Out("image", Image)]
        params = [Float("size", 2.0, min=0, max=100, help="sigma in pixels")]

        def compute(self, ctx, image):
            return {"image": cv2.GaussianBlur(image, (0, 0), ctx.params.size)}

Scopes: a "frame" node computes one frame per task; its inputs arrive as values at that frame,
or as {frame: value} dicts for the inputs named in `frames_needed`. A "clip" node computes the
whole frame range in one task: every input arrives as {frame: value} and every output is returned
as {frame: value}; downstream per-frame tasks read slices.
"""
from __future__ import annotations

import inspect
import pathlib
from dataclasses import dataclass
from typing import Any, Callable, Collection

from .errors import Cancelled, Issue
from .params import Param, ParamError
from .types import PortType


@dataclass(frozen=True)
class In:
    name: str
    type: PortType
    optional: bool = False
    help: str = ""


@dataclass(frozen=True)
class Out:
    name: str
    type: PortType
    help: str = ""


class Params(dict):
    """Normalised params of a node instance; readable as attributes (ctx.params.max_gap)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class NodeType:
    id: str = ""
    version: int = 1
    category: str = "Other"
    inputs: list[In] = []
    outputs: list[Out] = []
    params: list[Param] = []
    scope: str = "frame"            # "frame" or "clip"
    device: str = "cpu"             # "cpu", "any" (uses a GPU when there is one) or "cuda"
    deterministic: bool = True      # same inputs → bit-identical outputs on CPU
    thread_safe: bool = True        # may run concurrently with other tasks (numpy/torch release the GIL)
    side_effect: bool = False       # writes outside the store: a cache hit counts only if verify() agrees

    def uses_torch(self, params) -> bool:
        """Whether a task with these params computes with torch. Such computes run on the process's
        one torch thread (see engine/task.py); override where a param picks a non-torch method."""
        return self.device != "cpu"

    # ---- descriptor helpers -------------------------------------------------------------
    @classmethod
    def name(cls) -> str:
        """Short name used in scene files ("GapFill" for "celgraph.GapFill")."""
        return cls.id.rsplit(".", 1)[-1]

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def input(cls, name: str) -> In | None:
        return next((i for i in cls.inputs if i.name == name), None)

    @classmethod
    def output(cls, name: str) -> Out | None:
        return next((o for o in cls.outputs if o.name == name), None)

    @classmethod
    def param(cls, name: str) -> Param | None:
        return next((p for p in cls.params if p.name == name), None)

    @classmethod
    def describe(cls) -> dict:
        return {
            "id": cls.id, "name": cls.name(), "version": cls.version, "category": cls.category,
            "doc": cls.doc(), "scope": cls.scope, "device": cls.device,
            "deterministic": cls.deterministic, "side_effect": cls.side_effect,
            "inputs": [{"name": i.name, "type": i.type.name, "optional": i.optional, "help": i.help,
                        "accepts": [i.type.name, *i.type.accepts]} for i in cls.inputs],
            "outputs": [{"name": o.name, "type": o.type.name, "help": o.help} for o in cls.outputs],
            "params": [p.describe() for p in cls.params],
        }

    # ---- hooks a node type may override -------------------------------------------------
    def check(self, ctx: "CheckContext") -> list[Issue]:
        """Extra validation beyond param types/ranges (e.g. input files exist), reading ctx.params.
        Cheap; no compute."""
        return []

    def frames_needed(self, ctx: "Context") -> dict[str, list[int]]:
        """Per-frame nodes: input name → frames read, for inputs needed at other frames than
        ctx.frame (like OpenFX GetFramesNeeded). Inputs not named are read at ctx.frame."""
        return {}

    def fingerprint(self, ctx: "Context") -> Any:
        """JSON-able description of what the task reads from outside the graph (file digests)."""
        return None

    def verify(self, ctx: "Context", outputs: dict) -> bool:
        """Side-effect nodes: are the cached outputs still true of the world (file still there)?"""
        return True

    def compute(self, ctx: "Context", **inputs) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} does not implement compute()")


def normalize_params(node_type: type[NodeType], raw: dict, node: str | None = None) -> tuple[Params, list[Issue]]:
    """Raw scene params → checked values with defaults filled in, plus the problems found."""
    issues: list[Issue] = []
    out = Params()
    for name in raw:
        if node_type.param(name) is None:
            known = ", ".join(p.name for p in node_type.params) or "none"
            issues.append(Issue("unknown_param", f"{node_type.name()} has no param '{name}' (params: {known})",
                                node, name))
    for p in node_type.params:
        value = raw.get(p.name, p.default)
        try:
            out[p.name] = p.check(value)
        except ParamError as e:
            issues.append(Issue(e.code, str(e), node, p.name))
    return out, issues


@dataclass
class CheckContext:
    """What every hook can see: the node's name, its normalised params, the scene's frames and folder."""
    node: str
    params: Params
    frames: list[int]
    base_dir: pathlib.Path

    def resolve(self, path: str) -> pathlib.Path:
        p = pathlib.Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


class Context(CheckContext):
    """What a task sees while it computes: params, frame, clip frames, progress and cancellation."""

    def __init__(self, node: str, node_type: NodeType, params: Params, frame: int | None,
                 frames: list[int], base_dir: pathlib.Path, objects=None, device: "str | Callable[[], str]" = "cpu",
                 on_progress: Callable[[float, str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None,
                 input_keys: dict[str, dict[int, str]] | None = None,
                 memo: Callable[..., Any] | None = None, wants: Collection[str] | None = None):
        super().__init__(node, params, frames, base_dir)
        self.type = node_type
        self.frame = frame
        self.objects = objects
        self._device = device
        self._on_progress = on_progress
        self._cancelled = cancelled
        self._input_keys = input_keys or {}
        self._memo = memo
        self._wants = None if wants is None else frozenset(wants)

    def wants(self, output: str) -> bool:
        """Whether anyone reads this output in this run (a consumer that runs, or the request). A
        node may leave out outputs nobody wants — above all costly, optional ones such as previews;
        one that returns every output regardless works as well (they are all stored)."""
        if self.type is not None and self.type.output(output) is None:
            raise KeyError(f"{type(self.type).__name__} has no output '{output}'")
        return self._wants is None or output in self._wants

    @property
    def device(self) -> str:
        """"cpu" or "cuda", from the node type's device preference; decided on first use, so a node
        that never asks (e.g. FlowRAFT with the DIS backend) never imports torch."""
        if callable(self._device):
            self._device = self._device()
        return self._device

    def input_key(self, name: str, frame: int | None = None) -> str:
        """Content key of the value an input receives at a frame (default: this task's frame)."""
        keys = self._input_keys.get(name, {})
        return keys[self.frame if frame is None else frame]

    def cached(self, parts: Any, compute: Callable[[], Any], owner: "type[NodeType] | None" = None,
               ram: bool = True) -> Any:
        """A sub-result with its own cache entry, keyed by this node type + version + `parts`.

        For work a node repeats across its tasks — FlowRAFT's (frame, target frame) pairs, shared
        by different offset lists and by later nodes. `parts` must name everything the result
        depends on (use `input_key` for input values, never node names). `owner`: file the entry
        under another node type (e.g. FlowRAFT) so that type's own tasks share it. `ram=False`: keep
        it on disk only (checkpoints: large, and read back only when a run resumes)."""
        if self._memo is None:
            return compute()
        return self._memo(parts, compute, owner, ram)

    def progress(self, done: float, total: float = 1.0, message: str = "") -> None:
        """Report progress inside a long compute; also a point where cancellation is honoured."""
        if self._on_progress is not None:
            self._on_progress(min(max(done / total if total else 0.0, 0.0), 1.0), message)
        self.check_cancelled()

    def check_cancelled(self) -> None:
        if self._cancelled is not None and self._cancelled():
            raise Cancelled(f"cancelled inside node '{self.node}'")
