"""The pipeline latencies are one table (``golden.timing``) that the gateware is built from.

Changing a number there changes the hardware and the timing model together, so a run stays bit- and
cycle-exact; a number the structure cannot follow is refused at elaboration, naming the table entry.
"""

from __future__ import annotations

import gc
import sys
import warnings

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module, Signal, UnusedElaboratable
from amaranth.sim import Simulator

import golden.timing
from golden.config import ArrayConfig
from golden.conv import conv2d
from golden.encode import encode
from golden.timing import simulate
from hdl.accelerator import Accelerator
from hdl.delay import LatencyError, delay, delay_line
from sim.pysim import run_pysim
from tests.support import EPILOGUE_ARRAY, output_stage_layers, random_layer

SMALL = dict(rows=2, cols=2, acc_depth=4, act_depth=256, weight_depth=2048, index_depth=64, out_depth=256,
             epilogue=0)


def set_latency(monkeypatch, **values) -> None:
    """Set ``golden.timing`` entries, and every ``hdl`` module's imported copy of them, for this test."""
    for name, value in values.items():
        assert hasattr(golden.timing, name), name
        monkeypatch.setattr(golden.timing, name, value)
        for modname, module in list(sys.modules.items()):
            if modname.startswith("hdl.") and hasattr(module, name):
                monkeypatch.setattr(module, name, value)


def test_delay_line_taps_lag_by_their_index():
    m = Module()
    value = Signal(8)
    taps = delay_line(m, value, 3, name="tap{k}")
    assert [tap.name for tap in taps[1:]] == ["tap1", "tap2", "tap3"]
    assert delay(m, value, 0, name="none") is value
    sim = Simulator(m)
    sim.add_clock(1e-6)
    seen = []

    async def bench(ctx):
        for t in range(8):
            ctx.set(value, 10 + t)
            await ctx.tick()
            seen.append([ctx.get(tap) for tap in taps[1:]])

    sim.add_testbench(bench)
    sim.run()
    assert seen[-1] == [17, 16, 15]


@pytest.mark.parametrize("dataflow,acc_pipeline,latencies", [
    ("kernel", 0, {"TILE_LATENCY": 3}),
    ("kernel", 1, {"MULTIPLIER_LATENCY": 3, "PE_OPERAND_LATENCY": 2}),
    ("element", 0, {"ROW_COPY_LATENCY": 2, "MULTIPLIER_LATENCY": 1}),
    ("kernel", 1, {"PE_DRAIN_DATA_LATENCY": 2, "PSUM_LATENCY": 3}),
])
def test_a_changed_latency_changes_the_hardware_and_the_model_alike(monkeypatch, dataflow, acc_pipeline, latencies):
    """Deeper (or shallower) pipelines from the table alone: outputs exact, every counter as predicted."""
    set_latency(monkeypatch, **latencies)
    cfg = ArrayConfig(dataflow=dataflow, acc_pipeline=acc_pipeline, **SMALL)
    ly = random_layer(np.random.default_rng(3), m=3, c=2, h=5, w=5, kernel_density=0.6, padding=1)
    enc = encode(ly, cfg)
    res = run_pysim(enc)
    assert np.array_equal(res.outputs, conv2d(ly.weights, ly.activations, ly.stride, ly.padding, 32))
    assert res.perf == simulate(enc).to_dict()


@pytest.mark.parametrize("lanes", [1, 9])
def test_the_activation_data_registers_cost_no_cycle(monkeypatch, lanes):
    """``ACT_DATA_LATENCY`` delays the tile's write, not the count: without the registers the RTL is
    exact on the same model, and at ``V = 9`` (where the PEs read a window soonest) the most the
    structure takes is ``WINDOW_READ_SLACK``."""
    set_latency(monkeypatch, ACT_DATA_LATENCY=0)
    cfg = ArrayConfig(dataflow="kernel", **SMALL)
    cfg = cfg.with_lanes(lanes) if lanes > 1 else cfg
    ly = random_layer(np.random.default_rng(5), m=3, c=4, h=5, w=5, kernel_density=0.3, padding=1)
    enc = encode(ly, cfg)
    res = run_pysim(enc)
    assert np.array_equal(res.outputs, conv2d(ly.weights, ly.activations, ly.stride, ly.padding, 32))
    assert res.perf == simulate(enc).to_dict()
    set_latency(monkeypatch, ACT_DATA_LATENCY=golden.timing.WINDOW_READ_SLACK + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)  # the blocks built before the refusal
        with pytest.raises(LatencyError, match="golden.timing.ACT_DATA_LATENCY"):
            Fragment.get(Accelerator(cfg), None)
        gc.collect()


@pytest.mark.parametrize("pattern_latency", [1, 3])
def test_strided_lanes_follow_the_pattern_latency(monkeypatch, pattern_latency):
    """The lanes' starts pass ``PATTERN_LATENCY - 1`` registers after the pattern's, whatever the number."""
    set_latency(monkeypatch, PATTERN_LATENCY=pattern_latency)
    cfg = ArrayConfig(dataflow="strided", lanes=3, **SMALL)
    ly = random_layer(np.random.default_rng(5), m=3, c=3, h=5, w=5, kernel_density=0.7, padding=1)
    enc = encode(ly, cfg)
    res = run_pysim(enc)
    assert np.array_equal(res.outputs, conv2d(ly.weights, ly.activations, ly.stride, ly.padding, 32))
    assert res.perf == simulate(enc).to_dict()


def test_the_output_stages_follow_their_table(monkeypatch):
    stages = dict(golden.timing.EPILOGUE_STAGES, round=2, saturate=3)
    set_latency(monkeypatch, EPILOGUE_STAGES=stages, EPILOGUE_LATENCY=sum(stages.values()))
    cfg = ArrayConfig(dataflow="kernel", **EPILOGUE_ARRAY)
    ly = output_stage_layers(np.random.default_rng(1))[2]  # bias + epilogue
    enc = encode(ly, cfg)
    res = run_pysim(enc)
    assert np.array_equal(res.outputs, ly.expected(cfg))
    assert res.perf == simulate(enc).to_dict()


@pytest.mark.parametrize("name,value,match", [
    ("STREAM_LATENCY", 3, "STREAM_LATENCY = 3: hdl.prefetch reads into one landing register"),
    ("TILE_LATENCY", 1, "TILE_LATENCY = 1: hdl.tile's read network has 2 register stages"),
    ("RUNNING_SUM_LATENCY", 2, "RUNNING_SUM_LATENCY = 2"),
    ("ACC_READ_LATENCY", 2, "ACC_READ_LATENCY = 2"),
])
def test_a_latency_the_structure_cannot_follow_is_refused_by_name(monkeypatch, name, value, match):
    set_latency(monkeypatch, **{name: value})
    with warnings.catch_warnings():
        # the blocks built before the refusal are never used: that is the point
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(LatencyError, match=f"golden.timing.{match}"):
            Fragment.get(Accelerator(ArrayConfig(acc_pipeline=1, **SMALL)), None)
        gc.collect()
