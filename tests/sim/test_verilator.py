"""Verilator regressions: generated Verilog, golden model, exact to the bit and cycle.

Every layer is loaded with random idle cycles and read back under random backpressure, and any output,
cycle or counter mismatch fails. The layers run on the native driver (``sim.native``: the same Verilated
model and verdict as the cocotb testbench, a build in half the time); the cocotb testbench
(``sim/tb_accelerator.py``) runs the edge layers here and the output stage in ``test_output_stage.py``
on one small array, so the default suite compiles each array once.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.granularity import GRANULARITY_OF, headline_layer, pruned_layers
from golden import chunks, metrics
from golden.config import DATAFLOWS, ArrayConfig
from golden.encode import encode
from golden.lanes import WIDE_FEED
from golden.timing import simulate
from sim.native import run_layers_native
from sim.verilator import generated, lint, run_layers
from tests.support import DEFAULT, ODD, ODD_WIDE, WIDE_V9, assert_exact, random_layer

SHAPES = {"default": DEFAULT, "odd-v3": ODD_WIDE}


def _slow_unless(keep: str, values) -> list:
    """``values`` as parameters, all but ``keep`` marked ``slow``."""
    return [v if v == keep else pytest.param(v, marks=pytest.mark.slow) for v in values]


@pytest.mark.parametrize("shape,dataflow", [
    *((shape, df) if shape != "default" or df == "kernel" else pytest.param(shape, df, marks=pytest.mark.slow)
      for shape in sorted(SHAPES) for df in DATAFLOWS)])
def test_random_and_edge_layers_bit_and_cycle_exact(shape, dataflow, edge_layer_set):
    """Every dataflow on the odd 3-lane array; on the default array the default (kernel) dataflow, the
    others with ``-m slow`` (and all of them in ``sim.regress``'s long runs)."""
    cfg = ArrayConfig(dataflow=dataflow, **SHAPES[shape])
    layers = edge_layer_set(cfg.to_dict(), 7 if shape != "default" else 3)
    assert_exact(run_layers(cfg, layers, name=f"regress-{shape}", seed=11, load_gap=0.3, backpressure=0.4,
                             harness="native"), len(layers))


@pytest.mark.parametrize("dataflow", _slow_unless("strided", DATAFLOWS))
def test_nine_lanes_bit_and_cycle_exact(dataflow, edge_layer_set):
    """V = 9 (``golden.lanes``): random and edge layers, every counter exact, under stalls. By default on
    strided (nine lanes walking a kernel's positions in one cycle, three loader rows, wide load words;
    V = 3 runs every dataflow: the odd-v3 shape above); the rest with ``-m slow``, and every dataflow at
    V = 1, 3, 9 in the 1000-case run of ``tests/sim/test_regress.py``."""
    cfg = ArrayConfig(dataflow=dataflow, **WIDE_V9)
    edges = edge_layer_set(cfg.to_dict(), 9)
    # stride 1 pad 0, stride 2 pad 1, zero filters and channels, 100 % dense, all zero, 1x1, 2x2 stride 2,
    # both accumulator extremes, a random layer, strided (sigma 4) and element pruning
    layers = [edges[k] for k in (0, 3, 4, 5, 6, 7, 8, 10, 11, 12, 16, 19)]
    assert_exact(run_layers(cfg, layers, name="wide", seed=9, load_gap=0.3, backpressure=0.4, harness="native"),
                  len(layers))


PACKED = dict(ODD, lanes=3, drain_lanes=2, act_rows=2, weight_bits=8, act_bits=8, acc_bits=20, acc_pipeline=1,
              dsp_packing=2, chunks=0)
"""``dsp_packing`` 2 on the odd array: int8 operands (the packing's soft correction), operands registered in
the fabric first (``acc_pipeline``), two columns sharing multipliers and the third with its own; pixel tiles
only (``chunks`` 0, as the boards build it), so the suite runs an array without the chunk mapping too."""


def _chunk_layers(cfg: ArrayConfig, edges: list) -> list:
    """The edge layers the chunk mapping can take (output at least ``cols`` wide), and outputs that split a
    chunk at every PE of a row, end in a partial chunk, and split in the last output row."""
    rng = np.random.default_rng(13)
    wb, ab = cfg.weight_bits, cfg.act_bits
    shapes = [(5, 7, 1, 1), (4, 11, 1, 0), (9, 8, 2, 1), (6, 10, 2, 0), (7, 5, 1, 0)]  # (H, W, stride, pad)
    more = [random_layer(rng, cfg.acc_depth + 2, 2, h, w, stride=st, padding=pad, kernel_density=0.6,
                         wbits=wb, abits=ab) for h, w, st, pad in shapes]
    return [ly for ly in edges + more if chunks.usable(ly.f, cfg)]


@pytest.mark.parametrize("dataflow", _slow_unless("kernel", DATAFLOWS))
def test_chunk_mapping_bit_and_cycle_exact(dataflow, edge_layer_set):
    """The chunk mapping (``golden.chunks``) on every layer it can take, forced where the host would pick the
    tiles: on the odd 3-lane array (the build of the random and edge layers above), whose loader writes 3
    columns per cycle, so segment B's sub-windows start at aligning columns; under stalls."""
    cfg = ArrayConfig(dataflow=dataflow, **ODD_WIDE)
    layers = _chunk_layers(cfg, edge_layer_set(cfg.to_dict(), 7))
    assert len(layers) >= 12
    assert_exact(run_layers_native(cfg, layers, "chunks", seed=3, load_gap=0.3, backpressure=0.4, mapping="chunks"),
                 len(layers))


@pytest.mark.parametrize("dataflow", _slow_unless("kernel", DATAFLOWS))
def test_packed_multipliers_bit_and_cycle_exact(dataflow, edge_layer_set):
    """Column pairs sharing one multiplier per lane (``hdl.shared_multipliers``) give the same outputs and
    cycles as the golden model: the edge layers (accumulator extremes: every product -128 x -128, and
    -128 x 127) and random ones under stalls."""
    cfg = ArrayConfig(dataflow=dataflow, **PACKED)
    layers = edge_layer_set(cfg.to_dict(), 7)
    assert_exact(run_layers(cfg, layers, name="packed", seed=5, load_gap=0.3, backpressure=0.4, harness="native"),
                 len(layers))


def test_the_cocotb_testbench_runs_the_edge_layers(epilogue_array, edge_layer_set):
    """The cocotb testbench (the harness ``sim.run`` uses by default) on the output-stage array, whose
    model the output-stage tests share: the edge layers that fit its small buffers."""
    cfg = ArrayConfig(dataflow="kernel", **epilogue_array)
    layers = [ly for ly in edge_layer_set(cfg.to_dict(), 5) if ly.c * ly.h * ly.w <= cfg.act_depth][:8]
    assert len(layers) >= 6
    assert_exact(run_layers(cfg, layers, name="cocotb-edge", seed=2, load_gap=0.3, backpressure=0.4), len(layers))


LINTED = {"default-kernel": dict(DEFAULT, dataflow="kernel"), "v9-strided": dict(WIDE_V9, dataflow="strided"),
          **{f"odd-v3-{df}": dict(ODD_WIDE, dataflow=df) for df in DATAFLOWS},
          "packed-kernel": dict(PACKED, dataflow="kernel"),
          **{f"wide-{df}": dict(WIDE_FEED, lanes=9, dataflow=df) for df in DATAFLOWS}}
"""Every dataflow at V = 3 with odd widths, the default array, V = 9 and the packed multipliers; the
full-size wide array of the benchmarks and the ECP5 build (4x4, V = 9, two window rows, four outputs per
cycle) with ``-m slow``."""


@pytest.mark.parametrize("name", [n if not n.startswith("wide-") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in LINTED])
def test_generated_verilog_is_lint_clean(name):
    """The Verilog the models above are compiled from (``sim.verilator.generated``: generated once)."""
    v_path, _ = generated(ArrayConfig(**LINTED[name]))
    proc = lint(v_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _cycles(dataflow: str, layer, rtl: bool) -> int:
    """The headline layer's cycles on the default array: the RTL's (exact to the model, asserted) or the
    model's."""
    cfg = ArrayConfig(dataflow=dataflow)
    predicted = simulate(encode(layer, cfg)).busy_cycles
    if rtl:
        res = run_layers(cfg, [layer], name="headline", harness="native")[0]
        assert res["outputs_match"] and res["cycles"] == predicted
    return predicted


@pytest.mark.parametrize("rtl", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["model", "rtl"])
@pytest.mark.parametrize("dataflow", ["kernel", "vector", "strided", "element"])
def test_speedup_at_75_percent_of_own_granularity(dataflow, rtl):
    """Every dataflow >= 3x over dense at 75 % sparsity of its own granularity (strided: sigma = 4), on
    the default array (C=M=32, 16x16, 3x3, pad 1). The cycle model is exact to the RTL (every RTL test
    asserts it), so the default run checks the claim on the model; ``-m slow`` runs the five arrays."""
    base = headline_layer()
    dense = _cycles("dense", base, rtl)
    assert metrics.utilization(base, 16, dense) >= 0.85
    layer = pruned_layers(base, 0.75, sigma=4)[GRANULARITY_OF[dataflow]]
    assert dense / _cycles(dataflow, layer, rtl) >= 3.0
