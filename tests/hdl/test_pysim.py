"""Amaranth-simulator tests: units in isolation and the whole array on tiny layers (no Verilator)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from golden.config import DATAFLOWS, ArrayConfig
from golden.conv import conv2d
from golden.encode import encode
from golden.timing import STREAM_LATENCY, TILE_LATENCY, pe_drain_latency, pe_latency, simulate
from hdl.decoder import DenseDecoder, IndexedDecoder
from hdl.pe import ProcessingElement
from hdl.tile import ActivationTile, col_select, row_select
from sim.pysim import run_pysim
from tests.support import random_layer

SMALL = dict(rows=2, cols=2, acc_depth=4, act_depth=256, weight_depth=2048, index_depth=64, out_depth=256,
             epilogue=0)  # the output stage is tests/test_output_stage.py's subject


class _Platform:
    """Stands in for a board's platform where elaboration depends on the FPGA family."""

    def __init__(self, family: str):
        self.family = family


PE_VARIANTS = [(0, None), (1, None), (1, "iCE40")]
"""(acc_pipeline, FPGA family): the PE's accumulator variants (the running sum reads LUT RAM
asynchronously except on the iCE40, which has none and reads block RAM through its register)."""


def _run(dut, bench, family: str | None = None):
    sim = Simulator(Fragment.get(dut, _Platform(family)) if family else dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("acc_pipeline,family", PE_VARIANTS)
def test_pe_accumulates_back_to_back_and_wraps(acc_pipeline, family):
    cfg = ArrayConfig(acc_bits=16, acc_depth=4, acc_pipeline=acc_pipeline)
    pe = ProcessingElement(cfg)
    ops = [(1, 100, 100), (1, 100, 100), (1, 100, 100), (1, 100, 100), (2, -3, 5)]  # slot, w, a

    async def bench(ctx):
        for i, (slot, w, a) in enumerate(ops):
            ctx.set(pe.valid, 1)
            ctx.set(pe.fresh, int(i == 0 or slot == 2))
            ctx.set(pe.addr, slot)
            ctx.set(pe.weight[0], w)
            ctx.set(pe.act[0], a)
            await ctx.tick()
        ctx.set(pe.valid, 0)
        await ctx.tick().repeat(pe_latency(cfg) + 1)
        got = {}
        for slot in (1, 2):
            ctx.set(pe.drain_addr, slot)
            ctx.set(pe.drain_en, 1)
            await ctx.tick().repeat(pe_drain_latency(cfg))
            got[slot] = ctx.get(pe.drain_data)
        assert got[1] == 40000 - 65536  # 4 * 10000 wraps in 16 bits
        assert got[2] == -15

    _run(pe, bench, family)


@pytest.mark.parametrize("acc_pipeline,family", PE_VARIANTS)
@pytest.mark.parametrize("lanes", [1, 4, 9])
def test_pe_random_slot_sequences_with_bubbles(acc_pipeline, family, lanes):
    """Every distance between MACs into one slot (1, 2, 3, 4+ cycles, with bubbles) must accumulate:
    with ``acc_pipeline`` those are exactly the forwarding cases. With lanes, each op's products are
    summed (and the sum wraps in the 16-bit accumulator like any sum)."""
    cfg = ArrayConfig(acc_bits=16, acc_depth=4, acc_pipeline=acc_pipeline, lanes=lanes)
    pe = ProcessingElement(cfg)
    rng = np.random.default_rng(acc_pipeline)
    ops = []  # (valid, fresh, addr, weights, activations)
    seen: set[int] = set()
    for _ in range(400):
        addr = int(rng.integers(0, 8))
        valid = int(rng.random() < 0.8)
        fresh = int(valid and (addr not in seen or rng.random() < 0.05))
        if valid:
            seen.add(addr)
        ops.append((valid, fresh, addr, [int(v) for v in rng.integers(-128, 128, lanes)],
                    [int(v) for v in rng.integers(-128, 128, lanes)]))
    model = [0] * 8
    for valid, fresh, addr, w, a in ops:
        if valid:
            model[addr] = ((0 if fresh else model[addr]) + int(np.dot(w, a)) + 2**15) % 2**16 - 2**15

    async def bench(ctx):
        for valid, fresh, addr, w, a in ops:
            for port, value in ((pe.valid, valid), (pe.fresh, fresh), (pe.addr, addr)):
                ctx.set(port, value)
            for lane in range(lanes):
                ctx.set(pe.weight[lane], w[lane])
                ctx.set(pe.act[lane], a[lane])
            await ctx.tick()
        ctx.set(pe.valid, 0)
        await ctx.tick().repeat(pe_latency(cfg) + 1)
        for addr in sorted(seen):
            ctx.set(pe.drain_addr, addr)
            ctx.set(pe.drain_en, 1)
            await ctx.tick().repeat(pe_drain_latency(cfg))
            assert ctx.get(pe.drain_data) == model[addr], addr

    _run(pe, bench, family)


@pytest.mark.parametrize("max_stride,rows,lanes", [(2, 2, 1), (1, 3, 1), (3, 3, 1), (2, 2, 2)])
def test_tile_mux_picks_strided_window(max_stride, rows, lanes):
    """Every (stride, r, s) reaches every PE's activation after the tile's latency, for both row
    layouts (shared rows at max_stride 1, per-PE-row storage above); a window written under one
    stride is read under the same one, as in a run (the stride is static during a layer). With
    lanes, each lane reads its own position (lane 1 here the mirror of lane 0's)."""
    cfg = ArrayConfig(rows=rows, cols=2, max_kernel=3, max_stride=max_stride, lanes=lanes)
    tile = ActivationTile(cfg)

    async def bench(ctx):
        for stride in range(1, max_stride + 1):
            ctx.set(tile.stride, stride)
            for u in range(cfg.tile_rows):
                for v in range(0, cfg.tile_cols, cfg.act_lanes):
                    ctx.set(tile.wbuf, 1)
                    ctx.set(tile.wrow[0], u)
                    ctx.set(tile.wcol, v)
                    for lane in range(cfg.act_lanes):
                        ctx.set(tile.we[lane], int(v + lane < cfg.tile_cols))
                        ctx.set(tile.wdata[lane], 20 * (stride - 1) + u * 8 + v + lane)  # unique, fits 8 bits
                    await ctx.tick()
            for lane in range(cfg.act_lanes):
                ctx.set(tile.we[lane], 0)
            await ctx.tick().repeat(3)  # the write's two registers, the stride's copy
            for r in range(3):
                for s in range(3):
                    at = [(r, s), (2 - r, 2 - s)][:lanes]
                    for lane, (lr, ls) in enumerate(at):
                        for i in range(cfg.rows):  # every PE row's copy
                            ctx.set(tile.row_sel[lane][i], row_select(cfg, 1, lr))
                        ctx.set(tile.col_sel[lane], col_select(cfg, stride, ls))
                    await ctx.tick().repeat(TILE_LATENCY)  # the selects' copies, the per-row register
                    for lane, (lr, ls) in enumerate(at):
                        for i in range(cfg.rows):
                            for j in range(cfg.cols):
                                want = 20 * (stride - 1) + (i * stride + lr) * 8 + (j * stride + ls)
                                assert ctx.get(tile.act[lane][i][j]) == want, (stride, lr, ls, i, j, lane)

    _run(tile, bench)


@pytest.mark.parametrize("seed", [0, 1])
def test_index_streams_never_run_dry(seed):
    """Words come out in order from the restart address on, STREAM_LATENCY cycles after the restart,
    whatever the pop pattern (every cycle included), and a restart drops what was queued."""
    cfg = ArrayConfig(dataflow="element", **SMALL)
    dec = IndexedDecoder(cfg)
    rng = np.random.default_rng(seed)
    words = [int(x) for x in rng.integers(0, 2 ** cfg.unit_index_bits, cfg.index_depth)]

    async def bench(ctx):
        for addr, word in enumerate(words):  # fill the unit index
            ctx.set(dec.wr.en, 1)
            ctx.set(dec.wr.unit, 1)
            ctx.set(dec.wr.addr, addr)
            ctx.set(dec.wr.data, word)
            await ctx.tick()
        ctx.set(dec.wr.en, 0)
        for start in (int(rng.integers(0, 40)) for _ in range(6)):
            ctx.set(dec.unit.addr, start)
            ctx.set(dec.unit.restart, 1)
            await ctx.tick()
            ctx.set(dec.unit.restart, 0)
            await ctx.tick().repeat(STREAM_LATENCY - 1)
            pops = int(rng.integers(1, 20))
            expect = start
            while pops:
                pop = rng.random() < (0.9 if seed else 0.5)
                assert ctx.get(dec.unit.valid)
                assert ctx.get(dec.unit.slot) == words[expect] & ((1 << cfg.slot_bits) - 1)
                ctx.set(dec.unit.next, int(pop))
                await ctx.tick()
                expect += pop
                pops -= pop
            ctx.set(dec.unit.next, 0)
            await ctx.tick().repeat(int(rng.integers(0, 5)))

    _run(dec, bench)


def test_dense_streams_count_channels_and_slots():
    cfg = ArrayConfig(dataflow="dense", **SMALL)
    dec = DenseDecoder(cfg)

    async def bench(ctx):
        ctx.set(dec.channels, 3)
        for q in (dec.seq, dec.unit):
            ctx.set(q.mg, 2)
        ctx.set(dec.seq.plane, 20)
        ctx.set(dec.seq.restart, 1)
        ctx.set(dec.unit.restart, 1)
        await ctx.tick()
        ctx.set(dec.seq.restart, 0)
        ctx.set(dec.unit.restart, 0)
        await ctx.tick().repeat(STREAM_LATENCY - 1)
        got = []
        for k in range(4):  # header, then entries 0..2
            got.append((ctx.get(dec.seq.hcount if k == 0 else dec.seq.count), ctx.get(dec.seq.chan)))
            ctx.set(dec.seq.next, 1)
            await ctx.tick()
        assert got[0][0] == 3 and got[1:] == [(2, 0), (2, 20), (2, 40)]
        ctx.set(dec.seq.next, 0)
        slots = []
        for _ in range(5):
            slots.append(ctx.get(dec.unit.slot))
            ctx.set(dec.unit.next, 1)
            await ctx.tick()
        assert slots == [0, 1, 0, 1, 0]

    _run(dec, bench)


def test_dense_unit_stream_reads_mg_after_restart():
    """``mg`` is only valid from the cycle after ``restart`` (the tile walker latches the
    configuration in the cycle of the first restart): the slots must follow the later value."""
    cfg = ArrayConfig(dataflow="dense", **SMALL)
    dec = DenseDecoder(cfg)

    async def bench(ctx):
        ctx.set(dec.unit.mg, cfg.acc_depth)  # the previous run's value, still there at the restart
        ctx.set(dec.unit.restart, 1)
        await ctx.tick()
        ctx.set(dec.unit.restart, 0)
        ctx.set(dec.unit.mg, 1)  # this run: one filter
        await ctx.tick().repeat(STREAM_LATENCY - 1)
        slots = []
        for _ in range(3):
            slots.append(ctx.get(dec.unit.slot))
            ctx.set(dec.unit.next, 1)
            await ctx.tick()
        assert slots == [0, 0, 0]

    _run(dec, bench)


@pytest.mark.parametrize("c,h,w", [(2, 6, 5), (3, 4, 5), (11, 3, 3)])
def test_dense_one_filter_first_tile(c, h, w):
    """Issue 12's finding: dense, M = 1, C >= 2 drained wrong outputs for the first pixel tile."""
    rng = np.random.default_rng(c)
    cfg = ArrayConfig(dataflow="dense", **SMALL)
    ly = random_layer(rng, 1, c, h, w, padding=1)
    enc = encode(ly, cfg)
    res = run_pysim(enc)
    assert np.array_equal(res.outputs, conv2d(ly.weights, ly.activations, ly.stride, ly.padding, cfg.acc_bits))
    assert res.perf == simulate(enc).to_dict()


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("case", [
    dict(m=5, c=3, h=5, w=4, padding=1, kernel_density=0.6, row_density=0.6, element_density=0.7),
    dict(m=3, c=2, h=6, w=7, stride=2, kernel_density=0.5),
    dict(m=2, c=2, h=3, w=3, r=1, s=1, kernel_density=0.0),  # all-zero layer
])
def test_array_on_tiny_layers(dataflow, case):
    rng = np.random.default_rng(7)
    cfg = ArrayConfig(dataflow=dataflow, **SMALL)
    ly = random_layer(rng, **case)
    enc = encode(ly, cfg)
    res = run_pysim(enc)
    assert np.array_equal(res.outputs, conv2d(ly.weights, ly.activations, ly.stride, ly.padding, cfg.acc_bits))
    model = simulate(enc).to_dict()
    assert res.cycles == model["busy_cycles"]
    assert res.perf == model


@pytest.mark.parametrize("lanes,rows", [(1, 1), (3, 1), (2, 2), (1, 3)])
def test_loader_lanes_keep_results_and_timing_exact(lanes, rows):
    """Several window positions per load cycle, of one row (``act_lanes``) and of several (``act_rows``,
    here 2 and 3 on a 5-row window: the last group of rows is partly past the window)."""
    rng = np.random.default_rng(lanes + 10 * rows)
    cfg = ArrayConfig(dataflow="kernel", act_lanes=lanes, act_rows=rows, **SMALL)
    ly = random_layer(rng, 3, 2, 7, 6, stride=2, padding=1, kernel_density=0.5)
    enc = encode(ly, cfg)
    res = run_pysim(enc)
    assert np.array_equal(res.outputs, conv2d(ly.weights, ly.activations, ly.stride, ly.padding, cfg.acc_bits))
    assert res.perf == simulate(enc).to_dict() and res.cycles == res.perf["busy_cycles"]


@pytest.mark.parametrize("params,layer", [
    # windows taller than the buffer depths alone would size the counters for (review finding B1)
    (dict(dataflow="dense", rows=8, cols=1, acc_depth=1, act_depth=15, out_depth=15, weight_depth=16, index_depth=16),
     dict(shape=(1, 1, 3, 3), acts=(1, 3, 3), stride=2, padding=1)),
    (dict(dataflow="dense", rows=8, cols=1, acc_depth=1, max_kernel=1, max_stride=1, act_depth=7, out_depth=7,
          weight_depth=1), dict(shape=(1, 1, 1, 1), acts=(1, 7, 1), stride=1, padding=0)),
    # a stride wider than the depths' bits (B2)
    (dict(dataflow="kernel", rows=1, cols=1, acc_depth=1, max_kernel=1, max_stride=4, act_depth=3, out_depth=3),
     dict(shape=(1, 1, 1, 1), acts=(1, 1, 1), stride=4, padding=0)),
])
def test_tiny_buffers_with_large_windows(params, layer):
    from golden.layer import Layer
    rng = np.random.default_rng(1)
    ly = Layer(rng.integers(-9, 9, layer["shape"]), rng.integers(-9, 9, layer["acts"]), layer["stride"],
               layer["padding"])
    enc = encode(ly, ArrayConfig(**params))
    res = run_pysim(enc)
    assert np.array_equal(res.outputs, conv2d(ly.weights, ly.activations, ly.stride, ly.padding, 32))
    assert res.perf == simulate(enc).to_dict()


@pytest.mark.parametrize("acc_pipeline", [0, 1])
def test_drain_waits_exactly_the_array_latency(acc_pipeline):
    """The timing model's drain flush is the datapath's depth, less the cycle the drain's read request
    spends before its read (one fewer would drain stale sums), or the drain's address setup where
    that is longer."""
    from golden.timing import DRAIN_SETUP, array_drain_latency, array_latency, drain_flush
    cfg = ArrayConfig(acc_pipeline=acc_pipeline)
    assert drain_flush(cfg) == max(DRAIN_SETUP, array_latency(cfg) - (array_drain_latency(cfg) - 1))
