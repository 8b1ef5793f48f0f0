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
           "default_profile", "RAFT_MIN_SIDE", "exports_for", "network_name",
           "RaftPair", "RaftEncoder", "RaftUpdate", "RaftSplit"]

OPSET = 17
EXPORTER = f"torch-{torch.__version__.split('+')[0]}-torchscript"
RUNTIMES = ("torch", "onnxruntime", "tensorrt")
RAFT_MIN_SIDE = 128      # px: below this RAFT's coarsest correlation level is 1 px wide, a branch the export lacks


@dataclass(frozen=True)
class NetSpec:
    """How a network exports: input names and channel counts, output names, H/W multiple (of the
    frame), and the inputs' scale (RAFT's update graph takes 1/8-resolution encodings)."""
    name: str
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[str, ...]
    multiple: int
    iters: int | None = None            # RAFT: refinement iterations fixed in the export
    input_scale: int = 1                # the inputs are H/input_scale × W/input_scale of the frame

    def example(self, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Fixed random inputs for an H×W frame (multiples of :attr:`multiple`), in each input's range
        (images 0..255, the rest 0..1)."""
        g = torch.Generator().manual_seed(seed)
        h, w = h // self.input_scale, w // self.input_scale
        return tuple(torch.rand(1, c, h, w, generator=g) * (255.0 if name.startswith("image") else 1.0)
                     for name, c in self.inputs)

    def profile(self, frame_profile: dict) -> dict:
        """A TensorRT shape profile of frames {"min"|"opt"|"max": [H, W]} → of this graph's inputs."""
        return {k: [int(v) // self.input_scale for v in hw] for k, hw in frame_profile.items()}


class RaftPair(nn.Module):
    """RAFT with its iteration count fixed: (image1, image2) B×3×H×W 0..255 → flow B×2×H×W."""

    def __init__(self, model: nn.Module, iters: int):
        super().__init__()
        self.model, self.iters = model, int(iters)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        return self.model(image1, image2, iters=self.iters, test_mode=True)[1]


class RaftEncoder(nn.Module):
    """RAFT's two encoders on one frame: image B×3×H×W 0..255 → (fmap B×D×H/8×W/8, net B×Hd×H/8×W/8,
    inp B×Cd×H/8×W/8), ``RAFT.features`` and ``RAFT.context``. A frame is encoded once and its
    encodings serve every pair it belongs to (as the torch path's FeatureCache does)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor):
        net, inp = self.model.context(image)
        return self.model.features(image), net, inp


class RaftUpdate(nn.Module):
    """RAFT's correlation pyramid and update loop with the iteration count fixed: (fmap1, fmap2, net,
    inp) of :class:`RaftEncoder` (fmap2 of the target frame, the rest of the source) → flow B×2×H×W."""

    def __init__(self, model: nn.Module, iters: int):
        super().__init__()
        self.model, self.iters = model, int(iters)

    def forward(self, fmap1, fmap2, net, inp) -> torch.Tensor:
        return self.model.refine(fmap1, fmap2, net, inp, iters=self.iters, test_mode=True)[1]


class RaftSplit:
    """RAFT as its two exported graphs (ONNX Runtime or TensorRT nets of :class:`RaftEncoder` and
    :class:`RaftUpdate`): ``raft.raft_flow(..., net=split)`` encodes each frame once
    (``encode``, cached per frame with a FeatureCache) and runs ``refine`` per pair. ``tag`` names
    the runtime and exports in cache keys, so its encodings never mix with another runtime's."""

    def __init__(self, encoder, update, tag: str):
        self.encoder, self.update, self.tag = encoder, update, tag

    def encode(self, image: torch.Tensor):
        return tuple(self.encoder(image))

    def refine(self, fmap1, fmap2, net, inp) -> torch.Tensor:
        return self.update(fmap1, fmap2, net, inp)


def network_name(model: nn.Module) -> str:
    """The name a network goes by in AUTO_RUNTIME tables and export keys (NetSpec.name of its whole export)."""
    if type(model).__name__ == "RAFT":
        return "raft_small" if model.small else "raft"
    return spec_for(model)[1].name


def spec_for(model: nn.Module, iters: int | None = None) -> tuple[nn.Module, NetSpec]:
    """(module to export, its :class:`NetSpec`) for a celgraph network in eval mode."""
    kind = type(model).__name__
    if kind == "RAFT":
        if not iters:
            raise ValueError("a RAFT export needs its iteration count (iters ≥ 1)")
        name = "raft_small" if model.small else "raft"
        return RaftPair(model, iters).eval(), NetSpec(name, (("image1", 3), ("image2", 3)), ("flow",), 8, int(iters))
    if kind in ("GapUNet", "LightUNet"):
        cin = model.cin if kind == "GapUNet" else model.enc1[0].depthwise.in_channels
        return model, NetSpec(getattr(model, "arch", "") or kind.lower(), (("x", cin),), ("out",), model.stride)
    if kind == "SketchUNet":
        return model, NetSpec("sketch_unet", (("x", model.cin),), ("out",), model.stride)
    if kind == "UNetGenerator":
        return model, NetSpec("pix2pix", (("x", model.cin),), ("out",), model.stride)
    raise TypeError(f"no ONNX export is defined for a {kind}")


def exports_for(model: nn.Module, iters: int | None = None) -> list[tuple[nn.Module, NetSpec]]:
    """The graphs the nodes export and run for a network: RAFT as its encoder and its update loop
    (:class:`RaftEncoder`, :class:`RaftUpdate`: a frame's encodings are reused across its pairs), every
    other network whole (:func:`spec_for`)."""
    if type(model).__name__ != "RAFT":
        return [spec_for(model)]
    if not iters:
        raise ValueError("a RAFT export needs its iteration count (iters ≥ 1)")
    name, d = ("raft_small", 128) if model.small else ("raft", 256)
    hd, cd = model.hidden_dim, model.context_dim
    return [(RaftEncoder(model).eval(), NetSpec(f"{name}_encoder", (("image", 3),), ("fmap", "net", "inp"), 8)),
            (RaftUpdate(model, iters).eval(),
             NetSpec(f"{name}_update", (("fmap1", d), ("fmap2", d), ("net", hd), ("inp", cd)), ("flow",), 8,
                     int(iters), input_scale=8))]


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
    for o in spec.outputs:          # an output's own dim names: RAFT's encodings are 1/8 of the frame
        dyn[o] = {0: "batch", 2: "height", 3: "width"} if spec.input_scale == 1 and len(spec.outputs) == 1 \
            else {0: "batch", 2: f"{o}_height", 3: f"{o}_width"}
    buf = io.BytesIO()
    dev = next(model.parameters()).device
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")          # the tracer's notes on shape arithmetic
        torch.onnx.export(model, tuple(t.to(dev) for t in spec.example(h, w)), buf, dynamo=False, opset_version=OPSET, input_names=names,
                          output_names=list(spec.outputs), dynamic_axes=dyn, do_constant_folding=True)
    return buf.getvalue()


def max_abs_diff(model: nn.Module, net, spec: NetSpec, size: tuple[int, int], seed: int = 0) -> float:
    """Largest |torch − net| over the outputs for fixed random inputs of an H×W frame (``size``)."""
    dev = next(model.parameters()).device
    x = tuple(t.to(dev) for t in spec.example(*size, seed=seed))
    with torch.inference_mode():
        refs, outs = model(*x), net(*x)
    refs, outs = (refs, outs) if isinstance(refs, tuple) else ((refs,), (outs,))
    worst = 0.0
    for name, ref, out in zip(spec.outputs, refs, outs):
        ref, out = ref.float().cpu().numpy(), out.float().cpu().numpy()
        if ref.shape != out.shape:
            raise AssertionError(f"{spec.name}: output {name} shape {out.shape} differs from torch's {ref.shape}")
        worst = max(worst, float(np.abs(ref - out).max()))
    return worst


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

    def __call__(self, *inputs: torch.Tensor):
        """The output tensor (a tuple of them for a graph with several outputs)."""
        feed = {name: np.ascontiguousarray(t.detach().float().cpu().numpy())
                for (name, _), t in zip(self.spec.inputs, inputs)}
        outs = [torch.from_numpy(o) for o in self.session.run(list(self.spec.outputs), feed)]
        return outs[0] if len(outs) == 1 else tuple(outs)


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
    up to 4K (RAFT: frames of 128 px up to 1080p, its level-0 correlation volume grows with (H·W)²;
    opt 1024×440), given for the graph's inputs (RAFT's update graph: 1/8 of the frame)."""
    if spec.name.startswith("raft"):
        return spec.profile({"min": [RAFT_MIN_SIDE, RAFT_MIN_SIDE], "opt": [440, 1024], "max": [1088, 1920]})
    return spec.profile({"min": [spec.multiple] * 2, "opt": [1088, 1920], "max": [2176, 3840]})


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

    def __call__(self, *inputs: torch.Tensor):
        """The output tensor (a tuple of them for a graph with several outputs), on the GPU."""
        xs = [t.detach().to("cuda", torch.float32).contiguous() for t in inputs]
        for (name, _), x in zip(self.spec.inputs, xs):
            self.context.set_input_shape(name, tuple(x.shape))
            self.context.set_tensor_address(name, x.data_ptr())
        outs = []
        for name in self.spec.outputs:
            outs.append(torch.empty(tuple(self.context.get_tensor_shape(name)), device="cuda", dtype=torch.float32))
            self.context.set_tensor_address(name, outs[-1].data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError(f"TensorRT failed to run the {self.spec.name} engine on inputs {[x.shape for x in xs]}")
        return outs[0] if len(outs) == 1 else tuple(outs)
