"""Double-buffered activation tile register and the two-level, per-PE-row window mux.

Holds one input window of one channel for the whole pixel tile: ``tile_rows x tile_cols`` words
(enough for ``max_stride`` and ``max_kernel``). The loader fills one buffer while the PEs read the
other; it writes ``act_lanes`` consecutive columns of one row per cycle, lane ``l`` always at a
column ``v`` with ``v % act_lanes == l`` (the loader's columns start at 0 and step by the lane count).
PE (i, j) reads ``tile[buf][i*stride + r][j*stride + s]``, in two steps:

1. **row select, registered per PE row**: PE row ``i`` copies tile row ``i*stride + r`` of buffer
   ``buf`` into its own row register (a mux over the ``2 * max_stride * max_kernel`` rows it can
   ever address);
2. **column select, per PE**: PE ``(i, j)`` picks column ``j*stride + s`` of its row's register
   (a mux over ``max_stride * max_kernel`` columns) into its operand register.

Why: a flat mux from the whole tile to every PE makes every tile bit fan out to every PE that can
address it, across the die on a large array, and repeats the row selection in each PE of a row.
The row register localises the tile network: each tile bit feeds a few row registers, each row
register feeds only its own PE row, and the row selection is shared. The selects come in per PE row
(``r``, ``s``, ``rbuf``, ``stride`` are arrays: the array's per-row copies, see :mod:`hdl.array`), so
no select net spans the array either. The price is one cycle of latency on the activation path
(:data:`LATENCY`; the array delays the weight and control by the same register).

The write is registered once on the way in, decoded: one enable per tile row and buffer, one per
column (with its lane's write enable folded in), so each tile register's enable is one AND of two
flip-flops, and the activation buffer's read data drives one register per lane instead of every
tile register. A window is written at least three cycles before the PEs' row registers read it, and
a buffer is rewritten at the earliest three cycles after their last read (``golden/timing.py``), so
the delay is invisible.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for

from .replica import KEEP

LATENCY = 1
"""Cycles from ``rbuf``/``r``/``s`` to the matching ``act``: the row register."""


class ActivationTile(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        kb = bits_for(cfg.max_kernel - 1)
        sb = bits_for(cfg.max_stride)
        super().__init__({
            "we": In(1).array(cfg.act_lanes), "wbuf": In(1), "wrow": In(bits_for(cfg.tile_rows - 1)),
            "wcol": In(bits_for(cfg.tile_cols - 1)), "wdata": In(signed(cfg.act_bits)).array(cfg.act_lanes),
            "rbuf": In(1).array(cfg.rows), "r": In(kb).array(cfg.rows), "s": In(kb).array(cfg.rows),
            "stride": In(sb).array(cfg.rows),
            "act": Out(signed(cfg.act_bits)).array(cfg.rows, cfg.cols),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        lanes = cfg.act_lanes
        # data registers have no reset: the loader writes every window position before a PE reads it
        regs = [[[Signal(signed(cfg.act_bits), name=f"t{b}_{u}_{v}", reset_less=True) for v in range(cfg.tile_cols)]
                 for u in range(cfg.tile_rows)] for b in range(2)]
        row_en = [[Signal(name=f"row_en{b}_{u}") for u in range(cfg.tile_rows)] for b in range(2)]
        col_en = [Signal(name=f"col_en{v}") for v in range(cfg.tile_cols)]
        wdata = [Signal.like(self.wdata[lane], name=f"wdata{lane}", reset_less=True) for lane in range(lanes)]
        for b in range(2):
            m.d.sync += [row_en[b][u].eq((self.wbuf == b) & (self.wrow == u)) for u in range(cfg.tile_rows)]
        m.d.sync += [col_en[v].eq(self.we[v % lanes] & (self.wcol == v - v % lanes)) for v in range(cfg.tile_cols)]
        m.d.sync += [wdata[lane].eq(self.wdata[lane]) for lane in range(lanes)]
        for b in range(2):
            for u in range(cfg.tile_rows):
                for v in range(cfg.tile_cols):
                    with m.If(row_en[b][u] & col_en[v]):
                        m.d.sync += regs[b][u][v].eq(wdata[v % lanes])
        kb = len(self.r[0])
        sb = len(self.stride[0])
        for i in range(cfg.rows):
            # step 1: this PE row's tile row, registered (with the column choice that goes with it)
            row = [Signal(signed(cfg.act_bits), name=f"row{i}_{v}", reset_less=True) for v in range(cfg.tile_cols)]
            s_r = Signal.like(self.s[i], name=f"row{i}_s", reset_less=True, attrs=KEEP)
            stride_r = Signal.like(self.stride[i], name=f"row{i}_stride", reset_less=True, attrs=KEEP)
            m.d.sync += [s_r.eq(self.s[i]), stride_r.eq(self.stride[i])]
            row_sel = Signal(1 + sb + kb, name=f"row{i}_sel")
            m.d.comb += row_sel.eq(self.r[i] | (self.stride[i] << kb) | (self.rbuf[i] << (kb + sb)))
            with m.Switch(row_sel):
                for b in range(2):
                    for st in range(1, cfg.max_stride + 1):
                        for r in range(cfg.max_kernel):
                            with m.Case(r | (st << kb) | (b << (kb + sb))):
                                m.d.sync += [row[v].eq(regs[b][i * st + r][v]) for v in range(cfg.tile_cols)]
            # step 2: each PE's column, with the select registered alongside the row
            col_sel = Signal(sb + kb, name=f"row{i}_col_sel")
            m.d.comb += col_sel.eq(s_r | (stride_r << kb))
            for j in range(cfg.cols):
                with m.Switch(col_sel):
                    for st in range(1, cfg.max_stride + 1):
                        for s in range(cfg.max_kernel):
                            with m.Case(s | (st << kb)):
                                m.d.comb += self.act[i][j].eq(row[j * st + s])
                    with m.Default():
                        m.d.comb += self.act[i][j].eq(0)
        return m
