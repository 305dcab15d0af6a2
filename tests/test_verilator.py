"""Verilator regressions: generated Verilog, cocotb testbench, golden model, exact to the bit and cycle.

Every layer is loaded with random idle cycles and read back under random backpressure; the cocotb
testbench fails on any output, cycle or counter mismatch (see ``sim/tb_accelerator.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.granularity import GRANULARITY_OF, headline_layer, pruned_layers
from golden import metrics
from golden.config import DATAFLOWS, ArrayConfig
from golden.lanes import WIDE_FEED
from golden.layer import Layer
from golden.prune import prune
from hdl.generate import generate
from sim.verilator import build, lint, run_layers
from tests.conftest import random_layer

DEFAULT = {}  # the generator's defaults: 4x4 PEs, 32 accumulators, 8/8/32-bit
ODD = dict(rows=2, cols=3, acc_depth=5, weight_bits=6, act_bits=5, acc_bits=16, max_kernel=3, max_stride=2, act_lanes=3,
           act_depth=2048, weight_depth=4096, index_depth=512, out_depth=2048, acc_pipeline=0, perf_bits=32,
           epilogue=0)  # the output stage is tests/test_output_stage.py's subject


def edge_layers(rng: np.random.Generator, params: dict) -> list[Layer]:
    """Random layers plus the edge cases of the quality bar, sized for ``params``' buffers."""
    cfg = ArrayConfig(**params)
    wb, ab = cfg.weight_bits, cfg.act_bits
    A = cfg.acc_depth
    lay = []
    mixed = dict(row_density=0.7, element_density=0.8)
    # C and M not multiples of the tile or the filter group, padding 0/1, stride 1/2
    for stride, pad in ((1, 0), (1, 1), (2, 0), (2, 1)):
        lay.append(random_layer(rng, A + 3, 3, 9, 7, stride=stride, padding=pad, kernel_density=0.5,
                                wbits=wb, abits=ab, **mixed))
    # all-zero kernels, channels and whole filters, plus a fully dense layer
    lay.append(random_layer(rng, A + 1, 4, 6, 6, padding=1, kernel_density=0.7, wbits=wb, abits=ab,
                            zero_filters=(0, A), zero_channels=(1, 3)))
    lay.append(random_layer(rng, 3, 2, 5, 5, kernel_density=1.0, wbits=wb, abits=ab))
    lay.append(random_layer(rng, 2, 2, 4, 4, kernel_density=0.0, wbits=wb, abits=ab))  # all zero
    # 1x1 and 2x2 kernels (smaller than max_kernel), single output pixel
    lay.append(random_layer(rng, 4, 5, 5, 6, r=1, s=1, kernel_density=0.6, wbits=wb, abits=ab))
    lay.append(random_layer(rng, 4, 3, 5, 5, r=2, s=2, stride=2, padding=1, kernel_density=0.6, wbits=wb, abits=ab))
    lay.append(random_layer(rng, 2, 3, 3, 3, kernel_density=1.0, wbits=wb, abits=ab))
    # accumulator extremes: most negative weight x most negative activation everywhere (wraps at 16 bits)
    w = np.full((2, 6, 3, 3), -(1 << (wb - 1)), np.int64)
    a = np.full((6, 4, 4), -(1 << (ab - 1)), np.int64)
    lay.append(Layer(w, a, 1, 1))
    lay.append(Layer(np.full_like(w, (1 << (wb - 1)) - 1), a, 1, 0))
    # random shapes and sparsities at every granularity
    for _ in range(4):
        lay.append(random_layer(rng, int(rng.integers(1, 2 * A + 2)), int(rng.integers(1, 7)),
                                int(rng.integers(3, 12)), int(rng.integers(3, 12)),
                                stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
                                kernel_density=float(rng.random()), row_density=float(rng.random()),
                                element_density=float(rng.random()), wbits=wb, abits=ab))
    # pruned by the golden pruner: strided (sigma 4 and 2), vector, element
    base = random_layer(rng, A + 2, 5, 7, 7, padding=1, wbits=wb, abits=ab)
    for gran, sp, kw in (("strided", 0.75, dict(sigma=4)), ("strided", 0.5, dict(sigma=2)),
                         ("vector", 0.6, {}), ("element", 0.8, {})):
        pruned = prune(base.weights, gran, sp, **kw).weights
        lay.append(Layer(pruned, base.activations, 1, 1))
    return lay


ODD_WIDE = dict(ODD, lanes=3, drain_lanes=2, act_rows=2)
"""The odd array with 3-lane PEs, a 2-wide drain (the last column of a 3-column row leaves a drain lane
idle) and a loader of 2 window rows of 3 positions per cycle (a window's last group of rows is partly
past it): one set of builds covers odd widths, the one-cycle accumulate and the wide datapath at
``V = 3`` (the slow randomized run covers the odd array at ``V = 1``)."""
SHAPES = {"default": DEFAULT, "odd-v3": ODD_WIDE}


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_random_and_edge_layers_bit_and_cycle_exact(dataflow, shape):
    cfg = ArrayConfig(dataflow=dataflow, **SHAPES[shape])
    rng = np.random.default_rng(7 if shape != "default" else 3)
    layers = edge_layers(rng, cfg.to_dict())
    results = run_layers(cfg, layers, name=f"regress-{shape}", seed=11, load_gap=0.3, backpressure=0.4)
    assert len(results) == len(layers)
    for res in results:
        assert res["outputs_match"] and res["cycles"] == res["predicted_cycles"]
        assert res["perf"] == res["predicted_perf"]


WIDE_V9 = dict(rows=3, cols=2, acc_depth=4, lanes=9, drain_lanes=2, weight_bits=6, act_bits=5, acc_bits=12,
               acc_pipeline=0, act_lanes=3, act_rows=3, act_depth=2048, weight_depth=2048, index_depth=512,
               out_depth=2048, perf_bits=32, epilogue=0)
"""9 lanes (a 3x3 kernel per cycle) on a small array (quick builds) whose 12-bit accumulators wrap inside
the adder tree, fed 3 window rows of 3 positions per cycle."""


@pytest.mark.parametrize("dataflow", [
    "kernel",  # nine lanes walking a kernel's positions in one cycle
    *(pytest.param(df, marks=pytest.mark.slow) for df in ("dense", "vector", "strided", "element"))])
def test_nine_lanes_bit_and_cycle_exact(dataflow):
    """V = 9 (``golden.lanes``): random and edge layers, every counter exact, under stalls. By default
    on kernel (V = 3 runs every dataflow: the odd-v3 shape above); the rest with ``-m slow``, and every
    dataflow at V = 1, 3, 9 in the 1000-case run of ``tests/test_regress.py``."""
    cfg = ArrayConfig(dataflow=dataflow, **WIDE_V9)
    edges = edge_layers(np.random.default_rng(9), cfg.to_dict())
    # stride 1 pad 0, stride 2 pad 1, zero filters and channels, 100 % dense, all zero, 1x1, 2x2 stride 2,
    # both accumulator extremes, a random layer, strided (sigma 4) and element pruning
    layers = [edges[k] for k in (0, 3, 4, 5, 6, 7, 8, 10, 11, 12, 16, 19)]
    results = run_layers(cfg, layers, name="wide", seed=9, load_gap=0.3, backpressure=0.4)
    assert len(results) == len(layers)
    for res in results:
        assert res["outputs_match"] and res["cycles"] == res["predicted_cycles"]
        assert res["perf"] == res["predicted_perf"]


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_generated_verilog_is_lint_clean(dataflow, shape):
    b = build(ArrayConfig(dataflow=dataflow, **SHAPES[shape]))
    proc = lint(b.verilog)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("dataflow", ["kernel", pytest.param("element", marks=pytest.mark.slow)])
def test_wide_array_verilog_is_lint_clean(dataflow, tmp_path):
    """The wide array of the benchmarks and the ECP5 build: V = 9 lanes, two window rows and four
    outputs per cycle (banked output buffer); every dataflow is linted at V = 3 above."""
    v_path, _ = generate(ArrayConfig(dataflow=dataflow, lanes=9, **WIDE_FEED), tmp_path)
    proc = lint(v_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def headline():
    """C=M=32, 16x16, 3x3, pad 1, and the dense array's cycles on it (the same for any weights)."""
    base = headline_layer()
    dense = run_layers(ArrayConfig(dataflow="dense"), [base], name="headline")[0]
    assert metrics.utilization(base, 16, dense["cycles"]) >= 0.85
    return base, dense["cycles"]


@pytest.mark.parametrize("dataflow", ["kernel", "vector", "strided", "element"])
def test_speedup_at_75_percent_of_own_granularity(headline, dataflow):
    """Every dataflow >= 3x over dense at 75 % sparsity of its own granularity (strided: sigma = 4)."""
    base, dense_cycles = headline
    layer = pruned_layers(base, 0.75, sigma=4)[GRANULARITY_OF[dataflow]]
    res = run_layers(ArrayConfig(dataflow=dataflow), [layer], name="headline")[0]
    assert dense_cycles / res["cycles"] >= 3.0
