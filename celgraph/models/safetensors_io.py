"""Safetensors files of celgraph's own networks: the state dict, with the architecture and
training facts as string metadata in the header (non-string values JSON-encoded)."""
from __future__ import annotations

import json
from pathlib import Path

import torch.nn as nn

from ..core.atomic import atomic_path


def save_tensors(tensors: dict, path, metadata: dict[str, str]) -> Path:
    """Write ``tensors`` with string ``metadata`` to ``path`` atomically (a reader never sees half a
    file; two writers never share a temporary file)."""
    from safetensors.torch import save_file
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def save_state(model: nn.Module, path, header: dict[str, str], metadata: dict | None = None) -> Path:
    """Write ``model``'s state dict to ``path`` (atomically) with ``header`` and then ``metadata``
    in the safetensors header."""
    meta = dict(header)
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_tensors(state, path, meta)


def read_metadata(path, fmt: str, what: str) -> dict:
    """The header metadata of a file of :func:`save_state`, JSON values decoded; ValueError unless
    its ``format`` is ``fmt`` (``what`` names the network in the message)."""
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        raw = f.metadata() or {}
    if raw.get("format") != fmt:
        raise ValueError(f"{path} is not a celgraph {what} weights file")
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except (json.JSONDecodeError, TypeError):
            meta[k] = v
    return meta
