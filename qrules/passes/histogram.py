"""HistogramObserver's range search on Python numbers.

torchao's ``HistogramObserver._non_linear_param_search`` walks two quantile bounds
inward in steps of 1e-5 and reads one element of a float32 cumulative-sum tensor per
step (a tensor index and a tensor comparison each time: ~22 ms per observer, 78% of
a 1k-node convert). This is the same walk on a list of floats. The cumulative sums are
float32 values, and torch compares a float32 tensor with a Python number in float32,
so each bound is compared as if rounded to float32; with that the walk visits
the same bins and asks for the same quantization errors, so the observer gets the
same range, bit for bit.

Pure: no torch import. The quantization error of a candidate range is the observer's
own method, passed in by the adapter.
"""

from __future__ import annotations

import struct
from typing import Callable, Sequence

_STEP = 1e-5  # torchao's granularity


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def _below(cumulative: float, bound: float) -> bool:
    """``cumulative < float32(bound)`` for a float32 ``cumulative``: rounding is
    monotonic, so it holds iff ``cumulative < bound`` and ``bound`` does not round
    down onto ``cumulative``. Most steps fail the first test and never round."""
    return cumulative < bound and _float32(bound) != cumulative


def _above(cumulative: float, bound: float) -> bool:
    """``cumulative > float32(bound)``, likewise."""
    return cumulative > bound and _float32(bound) != cumulative


def search_bins(cumulative: Sequence[float], total: float,
                error: Callable[[int, int], float]) -> tuple[int, int]:
    """The (start_bin, end_bin) torchao's search ends on.

    ``cumulative``: the histogram's cumulative sums (float32 values as floats);
    ``total``: ``histogram.sum().item()``; ``error(start, end)``: the quantization
    error of quantizing bins start..end."""
    bins = len(cumulative)
    alpha, beta = 0.0, 1.0
    start_bin, end_bin = 0, bins - 1
    norm_min = float("inf")
    while alpha < beta:
        next_alpha = alpha + _STEP
        next_beta = beta - _STEP
        low, high = next_alpha * total, next_beta * total
        left, right = start_bin, end_bin
        while left < end_bin and _below(cumulative[left], low):
            left += 1
        while right > start_bin and _above(cumulative[right], high):
            right -= 1
        next_start, next_end = start_bin, end_bin
        if left - start_bin > end_bin - right:
            next_start = left
            alpha = next_alpha
        else:
            next_end = right
            beta = next_beta
        if next_start == start_bin and next_end == end_bin:
            continue
        norm = error(next_start, next_end)
        if norm > norm_min:
            break
        norm_min = norm
        start_bin, end_bin = next_start, next_end
    return start_bin, end_bin
