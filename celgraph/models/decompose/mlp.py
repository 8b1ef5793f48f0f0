"""The coordinate MLP of ToonDecompose (``IMLP``) and its positional encoding.

Every learned part of the decomposition is this network: Linear layers with LeakyReLU(0.2)
between them and no activation after the last one. ``layers`` counts the Linear layers (input and
output layers included), as the upstream code does.

Initialisation draws from an explicit ``torch.Generator`` with PyTorch's default distribution for
Linear layers (U(−1/√fan_in, 1/√fan_in) for weights and biases), so two runs with one seed build
bit-identical networks without touching torch's global random state (other tasks may be using it
in other threads).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class IMLP(nn.Module):
    """B×n_in → B×n_out: ``layers`` Linear layers of width ``hidden`` with LeakyReLU(0.2) between."""

    def __init__(self, n_in: int, n_out: int, layers: int, hidden: int, generator: torch.Generator | None = None):
        super().__init__()
        if layers < 1:
            raise ValueError("an IMLP needs at least one layer")
        dims = [n_in] + [hidden] * (layers - 1) + [n_out]
        mods: list[nn.Module] = []
        for i in range(layers):
            # skip_init: no draw from torch's global generator (reset_parameters fills them)
            mods.append(nn.utils.skip_init(nn.Linear, dims[i], dims[i + 1]) if generator is not None
                        else nn.Linear(dims[i], dims[i + 1]))
            if i < layers - 1:
                mods.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*mods)
        if generator is not None:
            reset_parameters(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.no_grad()
def reset_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Linear initialisation, drawn from ``generator``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features) if m.in_features > 0 else 0.0
            # kaiming_uniform_(a=√5) on the weight is U(−1/√fan_in, 1/√fan_in), like the bias
            m.weight.copy_(torch.rand(m.weight.shape, generator=generator, device=generator.device)
                           .mul_(2 * bound).sub_(bound))
            m.bias.copy_(torch.rand(m.bias.shape, generator=generator, device=generator.device)
                         .mul_(2 * bound).sub_(bound))


def positional_encoding(x: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """B×C → B×(2·C·L): sin(c·b_j) for every channel and frequency b_j = 2^j·π/2 (j < L), then the
    cos block in the same order (channel-major). The raw input is not appended (as upstream)."""
    freqs = (2.0 ** torch.arange(n_freqs, dtype=x.dtype, device=x.device)) * (math.pi / 2)
    xb = (x[:, :, None] * freqs).flatten(1)
    return torch.cat([torch.sin(xb), torch.cos(xb)], dim=1)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
