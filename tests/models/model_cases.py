"""Inputs shared by the model tests."""

from __future__ import annotations

import torch


def pinhole(batch: int, focal: float, centre: float) -> torch.Tensor:
    """(B, 3, 3) intrinsics with focal length ``focal`` and principal point (centre, centre)."""
    K = torch.tensor([[focal, 0.0, centre], [0.0, focal, centre], [0.0, 0.0, 1.0]])
    return K.expand(batch, 3, 3).clone()
