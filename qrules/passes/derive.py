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


def scale_div(observers, divisor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first source's qparams with the scale divided by ``divisor`` (a division by
    a constant maps the input's range onto the output's)."""
    scale, zero_point = observers[0].calculate_qparams()
    return scale / divisor, zero_point
