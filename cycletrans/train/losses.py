"""The terms of the full objective (paper Eq. 3) and the identity loss (appendix 7.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as nnf


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """paper 4: least-squares GAN loss; D pushes real patches to 1 and fakes to 0, G pushes its fakes to 1."""
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    return nnf.mse_loss(scores.float(), target.float())


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """paper 3.2, Eq. 2: ||F(G(x)) - x||_1 (and its backward twin)."""
    return nnf.l1_loss(reconstructed.float(), original.float())


def identity_loss(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """appendix 7.1 / paper 5.2: ||G(y) - y||_1, keeps colour composition when input is already in the target domain."""
    return nnf.l1_loss(mapped.float(), original.float())
