"""The helpers node authors share: nodes/modelfiles.py and nodes/flowpairs.py."""
from pathlib import Path

import pytest

from celgraph.core import Context, Params, normalize_params
from celgraph.engine import ObjectCache
from celgraph.nodes import flowpairs
from celgraph.nodes.flow import FlowRAFT
from celgraph.nodes.modelfiles import load_model, model_device


def _ctx(params: dict, objects=None, base_dir=Path(".")):
    return Context("n", FlowRAFT(), Params(params), 1, [1, 2], base_dir, objects=objects, device="cpu")


def test_load_model_loads_once_per_file_content_and_device(tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"one")
    loads = []
    objects = ObjectCache()

    def load(device):
        loads.append(device)
        return object()
    first, device = load_model(_ctx({"device": "auto"}, objects), "net", weights, load)
    again, _ = load_model(_ctx({"device": "cpu"}, objects), "net", weights, load)
    assert device == "cpu" and again is first and loads == ["cpu"]
    weights.write_bytes(b"two")                       # new content: a new model
    assert load_model(_ctx({"device": "cpu"}, objects), "net", weights, load)[0] is not first
    load_model(_ctx({"device": "cpu"}), "net", weights, load)   # no object cache: loads afresh
    assert loads == ["cpu"] * 3


def test_device_cuda_without_a_gpu_is_an_error_naming_the_fix():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="use auto or cpu"):
        model_device(_ctx({"device": "cuda"}))


def test_flow_settings_resolve_auto_and_fingerprint_only_a_weights_file(tmp_path):
    params, issues = normalize_params(FlowRAFT, {})
    assert not issues and flowpairs.backend(params) == flowpairs.AUTO_BACKEND
    assert flowpairs.weights_digest(_ctx(dict(params, backend="dis"))) is None
    ctx = _ctx(dict(params, backend="raft", weights="missing.pth"), base_dir=tmp_path)
    assert [i.code for i in flowpairs.weight_issues(ctx)] == ["file_not_found"]
    (tmp_path / "missing.pth").write_bytes(b"x")
    assert flowpairs.weight_issues(ctx) == [] and len(flowpairs.weights_digest(ctx)) == 64
