"""Fixtures shared by the test packages: the arrays the RTL tests build and the layer sets they run.

The plain helpers (layer generators, array parameters used in ``parametrize``) are in
``tests/support.py``; test modules never import each other.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from sim.verilator import QUICK_BUILD_ENV

from .support import EPILOGUE_ARRAY, ODD_WIDE, WIDE_V9, edge_layers, output_stage_layers

# the suite's layers are small, so its Verilator builds dominate: compile them unoptimised
# (a 4x4 array builds in 27 s instead of 64 s; see sim.verilator.QUICK_BUILD_ENV)
os.environ.setdefault(QUICK_BUILD_ENV, "1")


@pytest.fixture
def epilogue_array() -> dict:
    """The output-stage tests' array parameters (one Verilator build for all of them)."""
    return dict(EPILOGUE_ARRAY)


@pytest.fixture
def odd_wide_array() -> dict:
    """A 2x3 array of 3-lane PEs with odd widths (one Verilator build per dataflow)."""
    return dict(ODD_WIDE)


@pytest.fixture
def wide_v9_array() -> dict:
    """A small 3x2 array of 9-lane PEs."""
    return dict(WIDE_V9)


@pytest.fixture(scope="session")
def output_stage_layer_set() -> list:
    """Every output-stage init and edge case (seed 7), for the epilogue array."""
    return output_stage_layers(np.random.default_rng(7))


@pytest.fixture(scope="session")
def edge_layer_set():
    """``edge_layers`` for an array's parameters, cached per parameter set and seed."""
    cache: dict = {}

    def get(params: dict, seed: int = 0) -> list:
        key = (tuple(sorted(params.items())), seed)
        if key not in cache:
            cache[key] = edge_layers(np.random.default_rng(seed), params)
        return cache[key]

    return get
