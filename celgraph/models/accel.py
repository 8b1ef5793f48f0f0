"""Accelerated inference of celgraph's networks: one ONNX export per network, run by ONNX Runtime
on the CPU or by a TensorRT engine built from the same export on a GPU.

* :func:`export_onnx` — ``torch.onnx.export`` with the legacy TorchScript exporter
  (``dynamo=False``; opset :data:`OPSET`). Measured with torch 2.13 CPU: it exports every network
  here with dynamic height and width, RAFT's correlation lookup (``grid_sample`` → ONNX
  ``GridSample``, opset ≥ 16) and its unrolled refinement loop included, in 1-6 s; the dynamo
  exporter also works (needs ``onnxscript``) but took 140 s for RAFT-small and failed on pix2pix,
  so it is not used. ``aten::atanh`` (pix2pix's residual) has no TorchScript symbolic: it is
  mapped to ONNX ``Atanh`` here. H and W stay multiples of the network's :attr:`NetSpec.multiple`;
  the callers pad as the torch path does.
* :func:`export_parts` / :func:`export_key` — what an export depends on: the network, the weights'
  content digest, the opset, the shapes policy (``dynamic`` H/W; RAFT: frames ≥ :data:`RAFT_MIN_SIDE` px), the exporter (torch version +
  exporter kind) and, for RAFT, the iteration count fixed in the export. Nodes keep exports in the
  engine's disk store under these parts (``celgraph.nodes.modelfiles``), so each is made once.
* :class:`OrtNet` / :class:`TrtNet` — callables with the torch module's calling convention
  (tensors in, tensor out), so the inference code of each network (``gapfill.close_gaps``,
  ``sketch_unet.predict``, ``pix2pix.colorize``, ``raft.raft_flow``) takes one as ``net=``.
* :func:`build_trt_engine` — a serialized TensorRT engine from the ONNX bytes, for one input shape
  profile and precision (fp32 / fp16); its cache parts (:func:`trt_parts`) add the GPU model and
  the TensorRT version. TensorRT is imported only here, lazily (``pip install tensorrt``).

Shapes (all float32): GapFill ``x`` B×C×H×W → ``out`` B×1×H×W (logits); Sketch ``x`` B×3×H×W →
B×1×H×W (logits); pix2pix ``x`` B×5×H×W → B×3×H×W (−1..1); RAFT ``image1``, ``image2``
B×3×H×W (0..255) → ``flow`` B×2×H×W (pixels, after ``iters`` refinements).
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ..core.hashing import canonical_json, sha256_text

__all__ = ["OPSET", "EXPORTER", "RUNTIMES", "NetSpec", "spec_for", "export_onnx", "export_parts", "export_key",
           "max_abs_diff", "OrtNet", "TrtNet", "ort_available", "trt_available", "build_trt_engine", "trt_parts",
           "default_profile", "RAFT_MIN_SIDE",
           "RaftPair"]

OPSET = 17
EXPORTER = f"torch-{torch.__version__.split('+')[0]}-torchscript"
RUNTIMES = ("torch", "onnxruntime", "tensorrt")
RAFT_MIN_SIDE = 128      # px: below this RAFT's coarsest correlation level is 1 px wide, a branch the export lacks


@dataclass(frozen=True)
class NetSpec:
    """How a network exports: input names and channel counts, output name, H/W multiple."""
    name: str
    inputs: tuple[tuple[str, int], ...]
    output: str
    multiple: int
    iters: int | None = None            # RAFT: refinement iterations fixed in the export

    def example(self, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Fixed random inputs of H×W (multiples of :attr:`multiple`), in each input's range."""
        g = torch.Generator().manual_seed(seed)
        scale = 255.0 if self.name.startswith("raft") else 1.0
        return tuple(torch.rand(1, c, h, w, generator=g) * scale for _, c in self.inputs)


class RaftPair(nn.Module):
    """RAFT with its iteration count fixed: (image1, image2) B×3×H×W 0..255 → flow B×2×H×W."""

    def __init__(self, model: nn.Module, iters: int):
        super().__init__()
        self.model, self.iters = model, int(iters)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        return self.model(image1, image2, iters=self.iters, test_mode=True)[1]


def spec_for(model: nn.Module, iters: int | None = None) -> tuple[nn.Module, NetSpec]:
    """(module to export, its :class:`NetSpec`) for a celgraph network in eval mode."""
    kind = type(model).__name__
    if kind == "RAFT":
        if not iters:
            raise ValueError("a RAFT export needs its iteration count (iters ≥ 1)")
        name = "raft_small" if model.small else "raft"
        return RaftPair(model, iters).eval(), NetSpec(name, (("image1", 3), ("image2", 3)), "flow", 8, int(iters))
    if kind in ("GapUNet", "LightUNet"):
        cin = model.cin if kind == "GapUNet" else model.enc1[0].depthwise.in_channels
        return model, NetSpec(getattr(model, "arch", "") or kind.lower(), (("x", cin),), "out", model.stride)
    if kind == "SketchUNet":
        return model, NetSpec("sketch_unet", (("x", model.cin),), "out", model.stride)
    if kind == "UNetGenerator":
        return model, NetSpec("pix2pix", (("x", model.cin),), "out", model.stride)
    raise TypeError(f"no ONNX export is defined for a {kind}")


def export_parts(spec: NetSpec, weights_digest: str, shapes: str = "dynamic") -> dict:
    """Everything an export depends on (the cache parts of :func:`export_key`)."""
    parts = {"export": spec.name, "weights": weights_digest, "opset": OPSET, "shapes": shapes, "exporter": EXPORTER}
    if spec.iters is not None:
        parts["iters"] = spec.iters
    return parts


def export_key(parts: dict) -> str:
    """SHA-256 of the canonical JSON of :func:`export_parts`."""
    return sha256_text(canonical_json(parts))


def _atanh(g, x):
    return g.op("Atanh", x)


def export_onnx(model: nn.Module, spec: NetSpec, size: tuple[int, int] | None = None) -> bytes:
    """The ONNX model (bytes) of ``model`` with dynamic H and W (batch too), traced at ``size``
    (default 8×multiple square-ish; any multiple of ``spec.multiple``)."""
    from torch.onnx import register_custom_op_symbolic
    register_custom_op_symbolic("aten::atanh", _atanh, 9)
    m = spec.multiple
    # RAFT: traced where every correlation level is ≥ 2 px (frames ≥ 128 px), so the export keeps the
    # align_corners=True lookup of :func:`raft.network._bilinear_sample` (raft_flow runs smaller frames on torch)
    h, w = size or ((256, 256) if spec.name.startswith("raft") else (max(64, 4 * m), max(96, 6 * m)))
    if h % m or w % m:
        raise ValueError(f"{spec.name}: export size {h}×{w} is not a multiple of {m}")
    names = [n for n, _ in spec.inputs]
    dyn = {n: {0: "batch", 2: "height", 3: "width"} for n in names}
    dyn[spec.output] = {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    dev = next(model.parameters()).device
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")          # the tracer's notes on shape arithmetic
        torch.onnx.export(model, tuple(t.to(dev) for t in spec.example(h, w)), buf, dynamo=False, opset_version=OPSET, input_names=names,
                          output_names=[spec.output], dynamic_axes=dyn, do_constant_folding=True)
    return buf.getvalue()


def max_abs_diff(model: nn.Module, net, spec: NetSpec, size: tuple[int, int], seed: int = 0) -> float:
    """Largest |torch − net| over the output for fixed random inputs of ``size`` (H, W)."""
    dev = next(model.parameters()).device
    x = tuple(t.to(dev) for t in spec.example(*size, seed=seed))
    with torch.inference_mode():
        ref = model(*x).float().cpu().numpy()
        out = net(*x).float().cpu().numpy()
    if ref.shape != out.shape:
        raise AssertionError(f"{spec.name}: output shape {out.shape} differs from torch's {ref.shape}")
    return float(np.abs(ref - out).max())


# ---------------------------------------------------------------- ONNX Runtime

def ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OrtNet:
    """An ONNX Runtime CPU session with the torch module's calling convention.

    ``threads``: intra-op threads (the caller passes the engine's torch thread count, so ORT uses
    the cores torch would); inter-op 1, sequential execution, all graph optimisations."""

    def __init__(self, onnx: bytes, spec: NetSpec, threads: int | None = None):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.spec, self.threads = spec, opts.intra_op_num_threads
        self.session = ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        feed = {name: np.ascontiguousarray(t.detach().float().cpu().numpy())
                for (name, _), t in zip(self.spec.inputs, inputs)}
        return torch.from_numpy(self.session.run([self.spec.output], feed)[0])


# ---------------------------------------------------------------- TensorRT

def trt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def trt_parts(onnx_parts: dict, precision: str, profile: dict) -> dict:
    """What a TensorRT engine depends on: its ONNX export, precision, shape profile, GPU model and
    TensorRT version (engines are not portable across either)."""
    import tensorrt as trt
    return {"onnx": export_key(onnx_parts), "precision": precision, "profile": profile,
            "gpu": torch.cuda.get_device_name(), "tensorrt": trt.__version__}


def default_profile(spec: NetSpec) -> dict:
    """The TensorRT input shape profile {"min"|"opt"|"max": [H, W]} (batch 1) nodes build: any frame
    up to 4K (RAFT: up to 1080p, its level-0 correlation volume grows with (H·W)²; opt 1024×440)."""
    if spec.name.startswith("raft"):
        return {"min": [64, 64], "opt": [440, 1024], "max": [1088, 1920]}
    return {"min": [spec.multiple] * 2, "opt": [1088, 1920], "max": [2176, 3840]}


def build_trt_engine(onnx: bytes, spec: NetSpec, precision: str = "fp32",
                     profile: dict | None = None, workspace_gib: float = 4.0) -> bytes:
    """A serialized TensorRT engine of the export. ``profile``: {"min"|"opt"|"max": [H, W]} of the
    inputs, batch 1 (default :func:`default_profile`)."""
    import tensorrt as trt
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision must be fp32 or fp16, not {precision!r}")
    profile = profile or default_profile(spec)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):    # TensorRT < 10 needs it
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse the {spec.name} export: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    prof = builder.create_optimization_profile()
    for name, c in spec.inputs:
        shape = {k: (1, c, *[int(v) for v in profile[k]]) for k in ("min", "opt", "max")}
        prof.set_shape(name, shape["min"], shape["opt"], shape["max"])
    config.add_optimization_profile(prof)
    data = builder.build_serialized_network(network, config)
    if data is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {spec.name} ({precision})")
    return bytes(data)


class TrtNet:
    """A TensorRT engine with the torch module's calling convention (CUDA tensors in and out)."""

    def __init__(self, engine: bytes, spec: NetSpec):
        import tensorrt as trt
        self.spec = spec
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(engine)
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not load the {spec.name} engine (another GPU or TensorRT version?)")
        self.context = self.engine.create_execution_context()

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        xs = [t.detach().to("cuda", torch.float32).contiguous() for t in inputs]
        for (name, _), x in zip(self.spec.inputs, xs):
            self.context.set_input_shape(name, tuple(x.shape))
            self.context.set_tensor_address(name, x.data_ptr())
        shape = tuple(self.context.get_tensor_shape(self.spec.output))
        out = torch.empty(shape, device="cuda", dtype=torch.float32)
        self.context.set_tensor_address(self.spec.output, out.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError(f"TensorRT failed to run the {self.spec.name} engine on inputs {[x.shape for x in xs]}")
        return out
