"""RAFT weights: reading official (``raft-things.pth`` ...), torchvision-named and celgraph's own
safetensors checkpoints into the network, the key maps between the namings, and writing ours.
Checkpoints are read safely (``torch.load(weights_only=True)``); nothing here downloads anything.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..safetensors_io import save_tensors
from .network import RAFT, VARIANTS

# --------------------------------------------------------------------------------------------
# Key names: official checkpoints, torchvision, aliases
# --------------------------------------------------------------------------------------------

# marker keys (after stripping `module.`), in our/upstream naming and in torchvision's
_MARKERS = {
    "large": ("update_block.mask.0.weight", "mask_predictor.convrelu.0.weight",
              "update_block.recurrent_block.convgru2.convz.weight", "update_block.gru.convz1.weight"),
    "small": ("fnet.layer1.0.conv3.weight", "feature_encoder.layer1.0.convnormrelu3.0.weight",
              "update_block.gru.convz.weight"),
}
_STEM_WIDTH = {64: "large", 32: "small"}
_TORCHVISION_PREFIXES = ("feature_encoder.", "context_encoder.", "mask_predictor.",
                         "update_block.motion_encoder.", "update_block.recurrent_block.")


def raft_key_map(variant: str) -> dict[str, str]:
    """Module paths, upstream → torchvision, for every module with state in either naming.

    Keys are module paths (a state-dict key minus its last ``.weight``/``.bias``/... part).
    The two upstream names of an aliased norm (``layerL.0.norm3`` and ``layerL.0.downsample.1``
    in the large model, ``norm4`` / ``downsample.1`` in the small) both map to torchvision's
    single ``downsample.1``; ``downsample.1`` comes first, so inverting the map with
    ``setdefault`` gives the canonical name.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    small = variant == "small"
    m: dict[str, str] = {}
    nconv = 3 if small else 2
    for o, t in (("fnet", "feature_encoder"), ("cnet", "context_encoder")):
        m[f"{o}.conv1"] = f"{t}.convnormrelu.0"
        m[f"{o}.norm1"] = f"{t}.convnormrelu.1"
        for layer in (1, 2, 3):
            for b in (0, 1):
                p, q = f"{o}.layer{layer}.{b}", f"{t}.layer{layer}.{b}"
                for k in range(1, nconv + 1):
                    m[f"{p}.conv{k}"] = f"{q}.convnormrelu{k}.0"
                    m[f"{p}.norm{k}"] = f"{q}.convnormrelu{k}.1"
                if b == 0 and layer > 1:
                    m[f"{p}.downsample.0"] = f"{q}.downsample.0"
                    m[f"{p}.downsample.1"] = f"{q}.downsample.1"
                    m[f"{p}.norm{nconv + 1}"] = f"{q}.downsample.1"      # alias
        m[f"{o}.conv2"] = f"{t}.conv"
    ub, me, rb = "update_block", "update_block.motion_encoder", "update_block.recurrent_block"
    if small:
        m[f"{ub}.encoder.convc1"] = f"{me}.convcorr1.0"
    else:
        m[f"{ub}.encoder.convc1"] = f"{me}.convcorr1.0"
        m[f"{ub}.encoder.convc2"] = f"{me}.convcorr2.0"
    m[f"{ub}.encoder.convf1"] = f"{me}.convflow1.0"
    m[f"{ub}.encoder.convf2"] = f"{me}.convflow2.0"
    m[f"{ub}.encoder.conv"] = f"{me}.conv.0"
    for g in "zrq":
        if small:
            m[f"{ub}.gru.conv{g}"] = f"{rb}.convgru1.conv{g}"
        else:
            m[f"{ub}.gru.conv{g}1"] = f"{rb}.convgru1.conv{g}"
            m[f"{ub}.gru.conv{g}2"] = f"{rb}.convgru2.conv{g}"
    m[f"{ub}.flow_head.conv1"] = f"{ub}.flow_head.conv1"
    m[f"{ub}.flow_head.conv2"] = f"{ub}.flow_head.conv2"
    if not small:
        m[f"{ub}.mask.0"] = "mask_predictor.convrelu.0"
        m[f"{ub}.mask.2"] = "mask_predictor.conv"
    return m


def _rename(state_dict: Mapping[str, Tensor], mapping: Mapping[str, str]) -> dict[str, Tensor]:
    """Rename module paths; keys the map does not know pass unchanged. Two keys landing on one
    name (an alias pair) must hold equal tensors; one is kept."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        path, _, leaf = key.rpartition(".")
        new = f"{mapping[path]}.{leaf}" if path in mapping else key
        if new in out:
            if out[new].shape != value.shape or not torch.equal(out[new], value):
                raise ValueError(f"aliased keys disagree: {key!r} and another key both give {new!r} "
                                 "with different values")
            continue
        out[new] = value
    return out


def to_torchvision_keys(state_dict: Mapping[str, Tensor], variant: str | None = None) -> dict[str, Tensor]:
    """Upstream-named state dict (``module.`` allowed) → torchvision naming, aliases merged."""
    sd = _strip_prefix(state_dict)
    return _rename(sd, raft_key_map(variant or detect_variant(sd)))


def from_torchvision_keys(state_dict: Mapping[str, Tensor], variant: str | None = None) -> dict[str, Tensor]:
    """torchvision-named state dict → upstream naming (aliases are filled in by load_raft)."""
    sd = _strip_prefix(state_dict)
    inverse: dict[str, str] = {}
    for orig, tv in raft_key_map(variant or detect_variant(sd)).items():
        inverse.setdefault(tv, orig)
    return _rename(sd, inverse)


def _strip_prefix(state_dict: Mapping[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def _is_torchvision(state_dict: Mapping[str, Tensor]) -> bool:
    return any(k.startswith(_TORCHVISION_PREFIXES) for k in state_dict)


def _guess_variant(state_dict: Mapping[str, Tensor]) -> tuple[str | None, str]:
    """(variant or None, the evidence in words)."""
    for variant, keys in _MARKERS.items():
        for k in keys:
            if k in state_dict:
                return variant, f"it has {k!r}"
    for k in ("fnet.conv1.weight", "feature_encoder.convnormrelu.0.weight",
              "cnet.conv1.weight", "context_encoder.convnormrelu.0.weight"):
        v = state_dict.get(k)
        if isinstance(v, Tensor) and v.dim() == 4 and int(v.shape[0]) in _STEM_WIDTH:
            return _STEM_WIDTH[int(v.shape[0])], f"{k!r} has {int(v.shape[0])} output channels"
    return None, "none of the marker keys is present"


def detect_variant(state_dict: Mapping[str, Tensor]) -> str:
    """'large' or 'small' from the keys (either naming, ``module.`` allowed).

    ``update_block.mask.0.weight`` (torchvision: ``mask_predictor.*``) means large,
    ``fnet.layer1.0.conv3.weight`` (torchvision: ``convnormrelu3``) means small; failing both,
    the width of the stem conv (64 vs 32). Raises ValueError when nothing tells.
    """
    variant, why = _guess_variant(_strip_prefix(state_dict))
    if variant is None:
        sample = ", ".join(list(state_dict)[:5])
        raise ValueError(f"cannot tell RAFT from RAFT-small weights: {why} "
                         f"({len(state_dict)} keys, first: {sample or 'none'})")
    return variant


def _aliases(model: nn.Module) -> dict[str, list[str]]:
    """state-dict key → the other keys naming the same tensor (a module registered twice)."""
    names: dict[int, list[str]] = defaultdict(list)
    for name, mod in model.named_modules(remove_duplicate=False):
        names[id(mod)].append(name)
    groups = [g for g in names.values() if len(g) > 1]
    out: dict[str, list[str]] = {}
    for key in model.state_dict():
        for g in groups:
            for p in g:
                if key.startswith(p + "."):
                    rest = key[len(p) + 1:]
                    out.setdefault(key, []).extend(f"{q}.{rest}" for q in g if q != p)
    return out


def read_raft_state_dict(source) -> dict[str, Tensor]:
    """A state dict from a path (``.pth``/``.pt`` via ``torch.load(weights_only=True)``,
    ``.safetensors``) or a mapping, unwrapped from a ``{"state_dict": ...}`` style container,
    with the ``module.`` prefix of DataParallel checkpoints stripped. Tensors stay on the CPU."""
    name = "state dict"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"RAFT weights not found: {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            obj = load_file(str(path), device="cpu")
        else:
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:     # pickle with code in it, or not a checkpoint at all
                raise ValueError(f"{path}: cannot read as a weights-only torch checkpoint: {e}") from e
    else:
        obj = source
    if not isinstance(obj, Mapping):
        raise ValueError(f"{name}: expected a mapping of tensors, got {type(obj).__name__}")
    if not all(isinstance(v, Tensor) for v in obj.values()):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f"{name}: {len(bad)} entries are not tensors (first: {bad[:3]})")
    return _strip_prefix(obj)


def _first(items: Sequence[str], n: int = 6, sep: str = ", ") -> str:
    head = sep.join(items[:n])
    return head + (f", … (+{len(items) - n} more)" if len(items) > n else "")


def load_raft(path_or_state_dict, device="cpu", variant: str | None = None) -> tuple[RAFT, str]:
    """Build RAFT or RAFT-small and fill it from a checkpoint; returns (model in eval mode, variant).

    Reads upstream checkpoints (``raft-things.pth`` ..., with or without ``module.``), our own
    safetensors files, and torchvision-named files. Either name of an aliased norm is enough
    (both are filled); ``num_batches_tracked`` is optional. ``variant`` ('large'/'small') is
    detected from the keys unless given. Every model tensor must be filled and every file key
    used: otherwise ValueError names the missing, unexpected and mis-shaped keys.
    """
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    name = str(path_or_state_dict) if isinstance(path_or_state_dict, (str, os.PathLike)) else "state dict"
    sd = read_raft_state_dict(path_or_state_dict)
    detected, why = _guess_variant(sd)
    torchvision = _is_torchvision(sd)
    if torchvision:
        sd = from_torchvision_keys(sd, variant or detected or "large")
    want = variant or detected
    if want is None:
        raise ValueError(f"{name}: cannot tell RAFT from RAFT-small weights: {why} "
                         f"({len(sd)} keys, first: {_first(list(sd), 5)}); pass variant=")

    model = RAFT(small=want == "small")
    target = model.state_dict()
    aliases = _aliases(model)
    filled: dict[str, Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    shapes: list[str] = []
    conflicts: list[str] = []
    for key, ref in target.items():
        found = [k for k in [key, *aliases.get(key, [])] if k in sd]
        used.update(found)
        if not found:
            if key.endswith("num_batches_tracked"):
                filled[key] = ref
            else:
                missing.append(key)
            continue
        src = sd[found[0]]
        for other in found[1:]:
            if sd[other].shape != src.shape or not torch.equal(sd[other], src):
                conflicts.append(f"{found[0]} ≠ {other}")
        if tuple(src.shape) != tuple(ref.shape):
            shapes.append(f"{found[0]}: file {list(src.shape)}, model {list(ref.shape)}")
            continue
        filled[key] = src
    unexpected = [k for k in sd if k not in used]

    if missing or unexpected or shapes or conflicts:
        label = {"large": "RAFT (large)", "small": "RAFT-small"}
        lines = [f"{name} does not fit {label[want]} (variant={want!r}, "
                 f"{'given' if variant else 'detected: ' + why})."]
        if torchvision:
            lines.append("torchvision naming: keys below are given in upstream (princeton-vl) names.")
        if detected is not None and detected != want:
            lines.append(f"The file looks like {label[detected]} weights ({why}); "
                         f"load it with variant={detected!r} or leave variant unset.")
        if missing:
            lines.append(f"missing ({len(missing)}): {_first(missing)}")
        if unexpected:
            lines.append(f"unexpected ({len(unexpected)}): {_first(unexpected)}")
        if shapes:
            lines.append(f"wrong shape ({len(shapes)}): {_first(shapes, 4, '; ')}")
        if conflicts:
            lines.append(f"aliased keys with different values ({len(conflicts)}): {_first(conflicts, 4, '; ')}")
        raise ValueError("\n  ".join(lines))

    model.load_state_dict(filled, strict=True)
    return model.to(device).eval(), want


def save_safetensors(model: RAFT, path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write the model's weights as safetensors (upstream naming, no ``module.``, one name per
    aliased tensor; :func:`load_raft` reads it back), atomically. Returns the path."""
    aliases = _aliases(model)
    tensors: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        if any(a in tensors for a in aliases.get(key, [])):
            continue
        tensors[key] = value.detach().to("cpu").contiguous().clone()
    meta = {"format": "pt", "model": "raft", "variant": model.variant, **(metadata or {})}
    return save_tensors(tensors, path, {k: str(v) for k, v in meta.items()})


def recommended_iters(path) -> int | None:
    """The refinement iterations a safetensors weights file recommends (its ``iters`` metadata,
    written by ``graph train flow``), or None (other files, or no such entry)."""
    if Path(path).suffix != ".safetensors":
        return None
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        value = (f.metadata() or {}).get("iters")
    return int(value) if value and value.isdigit() and int(value) > 0 else None
