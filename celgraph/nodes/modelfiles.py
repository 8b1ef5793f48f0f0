"""What the nodes that run a trained network share: where their bundled weights are, the check of
the weights file a node is set to read, loading the model once per process onto the device its
`device` param asks for, and the `runtime` param (torch, ONNX Runtime or TensorRT) with the
network's ONNX export and TensorRT engine kept in the engine's disk store (docs/acceleration.md)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Callable

import importlib.util

import numpy as np

from ..core import CheckContext, Choice, Context, Issue
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


# ---- runtime: torch, ONNX Runtime or TensorRT ------------------------------------------------

RUNTIME_PARAM = Choice(
    "runtime", "auto", choices=("auto", "torch", "onnxruntime", "tensorrt"), hashed=False,
    help="what runs the network: torch; onnxruntime (CPU, pip install celgraph[onnx]); tensorrt (CUDA GPU, "
         "pip install tensorrt); auto = the fastest bench/accel.py measured on this device among those installed. "
         "Not in the cache key: the runtimes agree within the tolerances of docs/acceleration.md")

# What `auto` runs, per device and network (accel.NetSpec names): ONNX Runtime only where bench/accel.py
# (bench/results/accel.md, 2 shared cores) found it faster both called directly and through the engine,
# in every run. None qualifies on the CPU: directly, on 1 thread, ORT ran the U-Nets 1.3-1.6× faster
# (GapUNet, Sketch, pix2pix) and RAFT-small / RAFT slower (0.61-0.66×, 0.86-0.89×); through the engine
# the U-Net ratios were 0.79-1.37× across two runs (the node's own work and the cache writes dilute
# the network's share, and the machine's load decides the rest), and RAFT-small 0.47× — and still 0.34-0.60×
# once ORT, too, encoded each frame once (encoder + update graphs, bench/results/accel_raft.md): its update
# loop is the slow part. So auto is torch until a quieter machine
# shows a consistent win. A network missing here, or a runtime that cannot run, runs on torch. No
# GPU has been measured yet: on CUDA auto is torch until bench/gpu.py's TensorRT numbers say otherwise.
AUTO_RUNTIME: dict[str, dict[str, str]] = {
    "cpu": {},
    "cuda": {},
}


class ExportCache:
    """The identity ONNX exports and TensorRT engines are cached under (Context.cached's owner). Bump
    `version` if an export changes for the same parts."""
    id, version = "celgraph.Export", 1


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def runtime_problem(runtime: str, device: str) -> str | None:
    """Why `runtime` cannot run here with the node's `device` param, or None."""
    if runtime in ("onnxruntime", "tensorrt") and not _installed("onnx"):
        return "the onnx package (the exporter's) is not installed (pip install 'celgraph[onnx]'), or set runtime to torch"
    if runtime == "onnxruntime" and not _installed("onnxruntime"):
        return "onnxruntime is not installed (pip install 'celgraph[onnx]'), or set runtime to torch"
    if runtime == "tensorrt":
        if not _installed("tensorrt"):
            return "TensorRT is not installed (pip install tensorrt, on a machine with a CUDA GPU), or set runtime to torch"
        if device == "cpu":
            return "TensorRT runs on a CUDA GPU, but device is cpu"
        import torch        # only a node set to tensorrt gets here
        if not torch.cuda.is_available():
            return "TensorRT needs a CUDA GPU and this machine has none; set runtime to torch or onnxruntime"
    return None


def runtime_issues(ctx: CheckContext) -> list[Issue]:
    """The check of a node's `runtime` param (`auto` never fails: it falls back to torch)."""
    problem = runtime_problem(ctx.params["runtime"], ctx.params.get("device", "auto"))
    return [] if problem is None else [Issue("runtime_unavailable", f"runtime {ctx.params['runtime']}: {problem}",
                                             ctx.node, "runtime")]


def resolve_runtime(want: str, network: str, device: str) -> str:
    """The runtime a node runs with: `auto` resolved by AUTO_RUNTIME among the installed ones."""
    if want != "auto":
        return want
    pick = AUTO_RUNTIME.get(device, {}).get(network, "torch")
    return pick if pick == "torch" or runtime_problem(pick, device) is None else "torch"


def _once(ctx: Context, key, make: Callable[[], Any]) -> Any:
    return make() if ctx.objects is None else ctx.objects.get(key, make)


def accelerated(ctx: Context, path: Path, model, device: str, iters: int | None = None,
                precision: str = "fp32") -> tuple[Any, str, str]:
    """(net, device, runtime) for a loaded torch ``model``: the node's `runtime` param resolved; net
    is None for torch (run ``model`` itself), else an ONNX Runtime or TensorRT net to pass as
    ``net=`` to the model's inference function, on the returned device (cpu for ONNX Runtime). RAFT
    runs as two graphs, its encoder and its update loop (an ``accel.RaftSplit``), so a frame's
    encodings are computed once for all its pairs, as on torch.

    Each ONNX export is a cache entry of the engine's disk store keyed by accel.export_parts (weights
    digest, opset, shapes policy, exporter, RAFT iterations), each TensorRT engine one keyed by
    accel.trt_parts (the export, precision, shape profile, GPU model, TensorRT version): each is
    made once. ONNX Runtime uses as many threads as torch (the engine's torch thread policy)."""
    from ..models import accel      # torch: only nodes that run a network get here
    runtime = resolve_runtime(ctx.params.runtime, accel.network_name(model), device)
    if runtime == "torch":
        return None, device, runtime
    problem = runtime_problem(runtime, device)
    if problem is not None:
        raise RuntimeError(f"node '{ctx.node}' param runtime={runtime}: {problem}")
    nets = [_net(ctx, path, module, spec, runtime, precision) for module, spec in accel.exports_for(model, iters)]
    if len(nets) == 2:
        keys = [key for _, key in nets]
        net = accel.RaftSplit(nets[0][0], nets[1][0], tag=f"{runtime}:{keys[0]}:{keys[1]}")
    else:
        net = nets[0][0]
    return net, "cpu" if runtime == "onnxruntime" else "cuda", runtime


def _net(ctx: Context, path: Path, module, spec, runtime: str, precision: str) -> tuple[Any, str]:
    """(ONNX Runtime or TensorRT net, its cache key) of one exported graph, made once per process."""
    from ..models import accel
    parts = accel.export_parts(spec, file_digest(path))

    def onnx() -> bytes:
        data = ctx.cached(parts, lambda: np.frombuffer(accel.export_onnx(module, spec), np.uint8).copy(),
                          owner=ExportCache)
        return np.asarray(data).tobytes()

    if runtime == "onnxruntime":
        import torch
        threads = torch.get_num_threads()
        key = accel.export_key(parts)
        return _once(ctx, ("onnxruntime", key, threads), lambda: accel.OrtNet(onnx(), spec, threads)), key
    profile = accel.default_profile(spec)
    tparts = accel.trt_parts(parts, precision, profile)

    def engine() -> bytes:
        data = ctx.cached(tparts, lambda: np.frombuffer(accel.build_trt_engine(onnx(), spec, precision, profile),
                                                        np.uint8).copy(), owner=ExportCache)
        return np.asarray(data).tobytes()

    key = accel.export_key(tparts)
    return _once(ctx, ("tensorrt", key), lambda: accel.TrtNet(engine(), spec)), key
