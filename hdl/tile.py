"""Double-buffered activation tile register and the two-level, per-PE-row window mux.

Holds one input window of one channel for the whole pixel tile: ``tile_rows x tile_cols`` words
(enough for ``max_stride`` and ``max_kernel``). The loader fills one buffer while the PEs read the
other; it writes ``act_lanes`` consecutive columns of one row per cycle. PE (i, j) reads
``tile[buf][i*stride + r][j*stride + s]``, in two steps:

1. **row select, registered per PE row**: PE row ``i`` copies tile row ``i*stride + r`` of buffer
   ``buf`` into its own row register (a mux over the ``2 * max_stride * max_kernel`` rows it can
   ever address);
2. **column select, per PE**: PE ``(i, j)`` picks column ``j*stride + s`` of its row's register
   (a mux over ``max_stride * max_kernel`` columns) into its operand register.

Why: a flat mux from the whole tile to every PE makes every tile bit fan out to every PE that can
address it, across the die on a large array (the ECP5 8x8 array did not route that way), and
repeats the row selection in each PE of a row. The row register localises the tile network: each
tile bit feeds a few row registers, each row register feeds only its own PE row, and the row
selection is shared. The price is one cycle of latency on the activation path (the array delays
the weight and control by the same register, see :mod:`hdl.array`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for

LATENCY = 1
"""Cycles from ``rbuf``/``r``/``s`` to the matching ``act``: the row register."""


class ActivationTile(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        kb = bits_for(cfg.max_kernel - 1)
        super().__init__({
            "we": In(1).array(cfg.act_lanes), "wbuf": In(1), "wrow": In(bits_for(cfg.tile_rows - 1)),
            "wcol": In(bits_for(cfg.tile_cols - 1)), "wdata": In(signed(cfg.act_bits)).array(cfg.act_lanes),
            "rbuf": In(1), "r": In(kb), "s": In(kb), "stride": In(bits_for(cfg.max_stride)),
            "act": Out(signed(cfg.act_bits)).array(cfg.rows, cfg.cols),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        # data registers have no reset: the loader writes every window position before a PE reads it
        regs = [[[Signal(signed(cfg.act_bits), name=f"t{b}_{u}_{v}", reset_less=True) for v in range(cfg.tile_cols)]
                 for u in range(cfg.tile_rows)] for b in range(2)]
        # the write is registered once on the way in: the activation buffer's read data then drives one
        # register per lane instead of every tile register (the read side is two cycles behind a write
        # to the same buffer at the earliest, see golden/timing.py, so the delay is invisible)
        we = [Signal(name=f"we{lane}") for lane in range(cfg.act_lanes)]
        wdata = [Signal.like(self.wdata[lane], name=f"wdata{lane}", reset_less=True) for lane in range(cfg.act_lanes)]
        wbuf = Signal.like(self.wbuf, reset_less=True)
        wrow, wcol = Signal.like(self.wrow, reset_less=True), Signal.like(self.wcol, reset_less=True)
        m.d.sync += [wbuf.eq(self.wbuf), wrow.eq(self.wrow), wcol.eq(self.wcol)]
        m.d.sync += [we[lane].eq(self.we[lane]) for lane in range(cfg.act_lanes)]
        m.d.sync += [wdata[lane].eq(self.wdata[lane]) for lane in range(cfg.act_lanes)]
        for b in range(2):
            for u in range(cfg.tile_rows):
                for v in range(cfg.tile_cols):
                    for lane in range(min(cfg.act_lanes, v + 1)):  # lane l writes column wcol + l
                        with m.If(we[lane] & (wbuf == b) & (wrow == u) & (wcol == v - lane)):
                            m.d.sync += regs[b][u][v].eq(wdata[lane])
        kb = len(self.r)
        sb = len(self.stride)
        for i in range(cfg.rows):
            # step 1: this PE row's tile row, registered (with the column choice that goes with it)
            row = [Signal(signed(cfg.act_bits), name=f"row{i}_{v}", reset_less=True) for v in range(cfg.tile_cols)]
            s_r = Signal.like(self.s, name=f"row{i}_s", reset_less=True)
            m.d.sync += s_r.eq(self.s)
            row_sel = Signal(1 + sb + kb, name=f"row{i}_sel")
            m.d.comb += row_sel.eq(self.r | (self.stride << kb) | (self.rbuf << (kb + sb)))
            with m.Switch(row_sel):
                for b in range(2):
                    for st in range(1, cfg.max_stride + 1):
                        for r in range(cfg.max_kernel):
                            with m.Case(r | (st << kb) | (b << (kb + sb))):
                                m.d.sync += [row[v].eq(regs[b][i * st + r][v]) for v in range(cfg.tile_cols)]
            # step 2: each PE's column (the stride is static during a run, so it needs no delay)
            col_sel = Signal(sb + kb, name=f"row{i}_col_sel")
            m.d.comb += col_sel.eq(s_r | (self.stride << kb))
            for j in range(cfg.cols):
                with m.Switch(col_sel):
                    for st in range(1, cfg.max_stride + 1):
                        for s in range(cfg.max_kernel):
                            with m.Case(s | (st << kb)):
                                m.d.comb += self.act[i][j].eq(row[j * st + s])
                    with m.Default():
                        m.d.comb += self.act[i][j].eq(0)
        return m
