"""RAFT and RAFT-small optical flow in plain PyTorch, weight-compatible with the official checkpoints.

Three modules: network.py (the ``nn.Module`` tree and its factories), checkpoints.py (reading and
writing weights, the key maps between upstream and torchvision naming), inference.py (numpy frames
in, flow out). Import from here: ``from celgraph.models.raft import raft_small, load_raft, raft_flow``.
"""
from .checkpoints import (detect_variant, from_torchvision_keys, load_raft, raft_key_map, read_raft_state_dict,
                          recommended_iters, save_safetensors, to_torchvision_keys)
from .inference import FeatureCache, InputPadder, raft_flow
from .network import RAFT, VARIANTS, CorrBlock, coords_grid, raft_large, raft_small

__all__ = ["RAFT", "raft_large", "raft_small", "InputPadder", "CorrBlock", "coords_grid", "FeatureCache",
           "load_raft", "read_raft_state_dict", "detect_variant", "raft_key_map", "recommended_iters",
           "to_torchvision_keys", "from_torchvision_keys", "save_safetensors", "raft_flow", "VARIANTS"]
