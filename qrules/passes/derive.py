"""Derive functions for ``derived(...)`` specs (registered in semantics.registry)."""

from __future__ import annotations

import torch


def scale_product(observers) -> tuple[torch.Tensor, torch.Tensor]:
    """scale = product of the sources' scales (e.g. input × weight for a bias),
    zero point 0; per-channel when any source is per-channel."""
    scale = None
    for observer in observers:
        source_scale, _ = observer.calculate_qparams()
        source_scale = source_scale.to(torch.float32).reshape(-1)
        scale = source_scale if scale is None else scale * source_scale
    return scale, torch.zeros_like(scale, dtype=torch.int32)
