"""Shared fixtures: random layers with controlled structure."""

from __future__ import annotations

import os

import numpy as np

from golden.layer import Layer
from sim.verilator import QUICK_BUILD_ENV

# the suite's layers are small, so its Verilator builds (14) dominate: compile them unoptimised
# (a 4x4 array builds in 27 s instead of 64 s; see sim.verilator.QUICK_BUILD_ENV)
os.environ.setdefault(QUICK_BUILD_ENV, "1")


EPILOGUE_ARRAY = dict(rows=2, cols=2, acc_depth=4, drain_lanes=2, act_depth=200, weight_depth=512, index_depth=256,
                      out_depth=600, epilogue=1, param_depth=16, perf_bits=32)
"""The output-stage tests' array (one Verilator build for all of them): 2 drain lanes (partial sums read
across banks), 32-bit accumulators (two partial products per lane), an activation buffer that holds
one output row of 6 of 11 channels (channel chunks) and small parameter memories."""


def random_layer(rng: np.random.Generator, m: int, c: int, h: int, w: int, r: int = 3, s: int = 3,
                 stride: int = 1, padding: int = 0, kernel_density: float = 1.0, wbits: int = 8,
                 abits: int = 8, zero_filters=(), zero_channels=(), row_density: float = 1.0,
                 element_density: float = 1.0) -> Layer:
    """Random signed weights/activations with zeros at three granularities.

    Whole kernels survive with probability ``kernel_density``, kernel rows with ``row_density`` and
    single weights with ``element_density``.
    """
    wmax, amax = 1 << (wbits - 1), 1 << (abits - 1)
    weights = rng.integers(-wmax, wmax, (m, c, r, s))
    keep = rng.random((m, c)) < kernel_density
    weights = weights * keep[:, :, None, None]
    weights = weights * (rng.random((m, c, r)) < row_density)[:, :, :, None]
    weights = weights * (rng.random((m, c, r, s)) < element_density)
    for f in zero_filters:
        weights[f] = 0
    for ch in zero_channels:
        weights[:, ch] = 0
    acts = rng.integers(-amax, amax, (c, h, w))
    return Layer(weights.astype(np.int64), acts.astype(np.int64), stride, padding)
