"""ONNX exports of the networks, the ONNX Runtime path of the nodes (`runtime` param), and the
TensorRT checks on a machine without a GPU (docs/acceleration.md)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")          # the dev extra installs it (celgraph[onnx])

import celgraph as cg
from celgraph.models import accel, gapfill, pix2pix, sketch_unet
from celgraph.models.raft import load_raft, raft_large
from celgraph.core.hashing import file_digest
from celgraph.nodes import modelfiles
from celgraph.nodes.modelfiles import bundled_file
from celgraph.nodes.io import read_image

# |ONNX Runtime − torch| on fixed random inputs: U-Net outputs (logits, −1..1 colour) and RAFT flow (px)
UNET_TOL, FLOW_TOL = 1e-4, 1e-3


def _bundled(name: str) -> Path:
    path = bundled_file(name)
    assert path is not None, name
    return path


def _network(name: str):
    if name == "gap_unet":
        return gapfill.fuse_for_inference(gapfill.load_weights(_bundled("gapfill_gapunet.safetensors"))[0]), None
    if name == "lite":
        return gapfill.fuse_for_inference(gapfill.load_weights(_bundled("gapfill_lite.safetensors"))[0]), None
    if name == "sketch_unet":
        return sketch_unet.fuse_batchnorm(sketch_unet.load_weights(_bundled("sketch_unet.safetensors"))[0]), None
    if name == "pix2pix":
        return pix2pix.load_weights(_bundled("colorize_pix2pix.safetensors"))[0], None
    if name == "raft_small":
        return load_raft(_bundled("raft_small_toon.safetensors"))[0], 3
    torch.manual_seed(0)
    return raft_large().eval(), 2


@pytest.mark.parametrize("name", ["gap_unet", "lite", "sketch_unet", "pix2pix", "raft_small", "raft"])
def test_export_matches_torch_at_sizes_other_than_the_traced_one(name):
    torch.set_num_threads(1)
    model, iters = _network(name)
    module, spec = accel.spec_for(model, iters)
    assert spec.name == name
    net = accel.OrtNet(accel.export_onnx(module, spec), spec, threads=1)
    m = spec.multiple
    sizes = [(128, 192), (136, 256)] if name.startswith("raft") else [(2 * m, 3 * m), (5 * m, 2 * m)]
    tol = FLOW_TOL if name.startswith("raft") else UNET_TOL
    for size in sizes:                  # dynamic H and W: neither is the traced size
        assert accel.max_abs_diff(module, net, spec, size, seed=1) <= tol, (name, size)


def _raft_split(iters: int = 2):
    model = load_raft(_bundled("raft_small_toon.safetensors"))[0]
    graphs = accel.exports_for(model, iters)
    nets = [accel.OrtNet(accel.export_onnx(module, spec), spec, threads=1) for module, spec in graphs]
    return model, graphs, accel.RaftSplit(nets[0], nets[1], tag="test")


def test_raft_encoder_and_update_exports_match_torch_and_give_the_eager_flow():
    from celgraph.models.raft import raft_flow
    torch.set_num_threads(1)
    model, graphs, split = _raft_split()
    assert [spec.name for _, spec in graphs] == ["raft_small_encoder", "raft_small_update"]
    for (module, spec), net in zip(graphs, (split.encoder, split.update)):
        assert accel.max_abs_diff(module, net, spec, (136, 192), seed=1) <= FLOW_TOL, spec.name
    rng = np.random.default_rng(0)
    a = rng.random((130, 190, 3), np.float32)           # padded to 136×192 as the torch path pads
    b = np.roll(a, (2, -3), axis=(0, 1))
    ref = raft_flow(model, a, b, iters=2)
    out = raft_flow(model, a, b, iters=2, net=split)
    assert out.shape == ref.shape == (130, 190, 2)
    assert np.abs(out - ref).max() <= FLOW_TOL


def test_raft_split_encodes_each_frame_once_over_a_clip_with_a_feature_cache():
    from celgraph.models.raft import FeatureCache, raft_flow
    torch.set_num_threads(1)
    model, _, split = _raft_split()
    calls = []
    encode = split.encode
    split.encode = lambda image: calls.append(1) or encode(image)
    rng = np.random.default_rng(1)
    frames = [rng.random((128, 128, 3), np.float32) for _ in range(4)]
    cache = FeatureCache()
    pairs = [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3)]
    flows = [raft_flow(model, frames[i], frames[j], iters=2, net=split, cache=cache, keys=(i, j)) for i, j in pairs]
    assert len(calls) == 4                                # once per frame, not twice per pair
    for (i, j), flow in zip(pairs, flows):                # the cached encodings give the uncached flow
        assert np.array_equal(flow, raft_flow(model, frames[i], frames[j], iters=2, net=split))


def test_export_key_changes_with_weights_opset_shapes_and_iters():
    _, spec = accel.spec_for(load_raft(_bundled("raft_small_toon.safetensors"))[0], 8)
    base = accel.export_parts(spec, "a" * 64)
    key = accel.export_key(base)
    assert accel.export_key(accel.export_parts(spec, "b" * 64)) != key
    assert accel.export_key({**base, "opset": accel.OPSET + 1}) != key
    assert accel.export_key(accel.export_parts(spec, "a" * 64, shapes="static")) != key
    _, spec12 = accel.spec_for(load_raft(_bundled("raft_small_toon.safetensors"))[0], 12)
    assert accel.export_key(accel.export_parts(spec12, "a" * 64)) != key
    assert accel.export_key(accel.export_parts(spec, "a" * 64)) == key
    assert base["exporter"] == accel.EXPORTER and "torch" in accel.EXPORTER


def _exports(engine) -> list:
    return [e for e in engine.store.entries() if e.meta["made_by"].get("type") == modelfiles.ExportCache.id]


def _sketch_graph(weights: Path, runtime: str, frames: str) -> cg.Graph:
    g = cg.Graph(frames=frames)
    clip = g.add("SynthClip", seed=2, width=96, height=64)
    g.add("Sketch", name="sk", image=clip["image"], weights=str(weights), runtime=runtime)
    return g


def test_the_export_is_made_once_per_weights_file_in_the_engine_store(tmp_path, monkeypatch):
    made = []
    export = accel.export_onnx
    monkeypatch.setattr(accel, "export_onnx", lambda *a, **k: made.append(1) or export(*a, **k))
    src = _bundled("sketch_unet.safetensors")
    other = tmp_path / "other.safetensors"
    model, meta = sketch_unet.load_weights(src)
    with torch.no_grad():
        model.head.bias.add_(0.5)               # other weights: another export
    sketch_unet.save_weights(model, other, {"threshold": meta.get("threshold", 0.5)})
    cg.Engine(tmp_path / "cache").run(_sketch_graph(src, "onnxruntime", "1"), workers=1)
    assert len(made) == 1
    engine = cg.Engine(tmp_path / "cache")      # as a new process: no session in memory, the export on disk
    engine.run(_sketch_graph(src, "onnxruntime", "2"), workers=1)
    assert len(made) == 1 and len(_exports(engine)) == 1
    engine.run(_sketch_graph(other, "onnxruntime", "1"), workers=1)
    exports = _exports(engine)
    assert len(made) == 2 and len(exports) == 2
    assert {e.meta["made_by"]["memo"]["weights"] for e in exports} == {file_digest(src), file_digest(other)}


def _scene(runtime: str, out: str) -> dict:
    flow = {"backend": "raft_small", "iters": 3, "runtime": runtime}
    return {"celgraph": 1, "frames": "1-2", "nodes": {
        "clip": {"type": "SynthClip", "params": {"seed": 4, "width": 192, "height": 128}},
        "sketch": {"type": "Sketch", "inputs": {"image": "clip.image"}, "params": {"runtime": runtime}},
        "gaps": {"type": "GapFill", "inputs": {"lines": "clip.lines"}, "params": {"method": "model", "runtime": runtime}},
        "flow": {"type": "FlowRAFT", "inputs": {"image": "clip.image"}, "params": {"offsets": [1], **flow}},
        "colour": {"type": "Colorize", "inputs": {"lines": "clip.lines"}, "params": {"mode": "model", "runtime": runtime}},
        **{f"w_{n}": {"type": "Write", "inputs": {"image": f"{n}.{o}"},
                      "params": {"path": f"{out}/{n}.####.exr", "bit_depth": "float"}}
           for n, o in [("sketch", "lines"), ("gaps", "lines"), ("flow", "forward"), ("colour", "image")]}}}


def test_graph_run_with_onnxruntime_gives_the_torch_outputs_within_tolerance(tmp_path):
    """Two `graph run`s of one scene, runtime torch and onnxruntime, in separate caches (the runtime
    is not part of a task's key)."""
    script = Path(sys.executable).with_name("graph")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "celgraph.cli"]
    for runtime in ("torch", "onnxruntime"):
        scene = tmp_path / f"{runtime}.json"
        scene.write_text(json.dumps(_scene(runtime, runtime)))
        r = subprocess.run([*cmd, "run", str(scene), "--cache-dir", str(tmp_path / f"cache-{runtime}")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-2000:]
    for name, tol in [("sketch", UNET_TOL), ("flow", FLOW_TOL), ("colour", UNET_TOL)]:
        for f in (1, 2):
            a = read_image(tmp_path / "torch" / f"{name}.{f:04d}.exr")
            b = read_image(tmp_path / "onnxruntime" / f"{name}.{f:04d}.exr")
            assert np.abs(a - b).max() <= tol, (name, f, float(np.abs(a - b).max()))
    for f in (1, 2):            # thresholded logits: a pixel may flip only where a logit sits on the cut
        a = read_image(tmp_path / "torch" / f"gaps.{f:04d}.exr")
        b = read_image(tmp_path / "onnxruntime" / f"gaps.{f:04d}.exr")
        assert np.mean(a != b) <= 1e-3


def test_runtime_tensorrt_without_a_gpu_is_a_validation_error_naming_node_and_param():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: bench/gpu.py covers TensorRT there")
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", seed=1, width=64, height=64)
    g.add("GapFill", name="closer", lines=clip["lines"], method="model", runtime="tensorrt")
    with pytest.raises(cg.GraphInvalid) as e:
        g.run()
    issues = [i for i in e.value.issues if i.code == "runtime_unavailable"]
    assert issues and issues[0].node == "closer" and issues[0].field == "runtime"
    assert "tensorrt" in issues[0].message.lower()


def test_runtime_tensorrt_raises_naming_the_node_when_reached_at_compute():
    from celgraph.core import Context, Params
    from celgraph.nodes.lines import GapFill
    model = gapfill.fuse_for_inference(gapfill.gap_unet().eval())
    params = Params(runtime="tensorrt", device="auto", precision="fp32")
    ctx = Context("closer", GapFill(), params, 1, [1], Path.cwd())
    if modelfiles.runtime_problem("tensorrt", "auto") is None:
        pytest.skip("TensorRT and a GPU are here")
    with pytest.raises(RuntimeError, match=r"node 'closer' param runtime=tensorrt"):
        modelfiles.accelerated(ctx, _bundled("gapfill_gapunet.safetensors"), model, "cpu")


def test_auto_runs_torch_unless_the_table_names_an_installed_faster_runtime(monkeypatch):
    monkeypatch.setitem(modelfiles.AUTO_RUNTIME, "cpu", {"gap_unet": "onnxruntime"})
    assert modelfiles.resolve_runtime("auto", "gap_unet", "cpu") == "onnxruntime"
    assert modelfiles.resolve_runtime("auto", "sketch_unet", "cpu") == "torch"
    assert modelfiles.resolve_runtime("torch", "gap_unet", "cpu") == "torch"
    monkeypatch.setattr(modelfiles, "_installed", lambda module: False)
    assert modelfiles.resolve_runtime("auto", "gap_unet", "cpu") == "torch"


def test_onnxruntime_threads_follow_the_torch_thread_count():
    model, _ = _network("lite")
    module, spec = accel.spec_for(model)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert accel.OrtNet(accel.export_onnx(module, spec), spec).threads == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow          # minutes on 2 loaded cores: bfloat16 autocast of RAFT on a CPU is slow
def test_gpu_bench_dry_run_runs_every_path_on_the_cpu_and_leaves_the_results_file_alone():
    """bench/gpu.py --dry-run: every network in torch fp32 and reduced precision, the engine-built
    path (ONNX Runtime standing in for TensorRT where it is missing), GapFill end to end and the
    full-preset decomposition, at tiny sizes; the report goes to a temp file."""
    root = Path(__file__).resolve().parent.parent
    results = root / "bench" / "results" / "gpu.md"
    before = results.read_bytes() if results.exists() else None
    r = subprocess.run([sys.executable, str(root / "bench" / "gpu.py"), "--dry-run"], cwd=root,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    written = Path(r.stderr.strip().splitlines()[-1].removeprefix("wrote ").strip())
    assert written.is_file() and results.resolve() != written.resolve()
    text = written.read_text()
    for row in ("GapFill GapUNet", "Sketch U-Net", "pix2pix", "RAFT-small, 2 iters", "RAFT, 2 iters",
                "RAFT-small, 2 iters, encoder + update graphs", "RAFT, 2 iters, encoder + update graphs",
                "close_gaps", "decomposition alpha", "decomposition sprites", "whole scene"):
        assert row in text, row
    assert text.count("torch fp16 autocast") == 5           # five networks, one size each in the dry run
    engine_built = "TensorRT fp16" if accel.trt_available() else "stand-in for TensorRT fp16"
    assert text.count(engine_built) == 5 + 2                 # + RAFT-small and RAFT as encoder + update engines
    assert (results.read_bytes() if results.exists() else None) == before
