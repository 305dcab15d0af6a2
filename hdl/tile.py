"""Double-buffered activation tile register and the per-PE window mux.

Holds one input window of one channel for the whole pixel tile: ``tile_rows x tile_cols`` words
(enough for ``max_stride`` and ``max_kernel``). The loader fills one buffer while the PEs read the
other; it writes ``act_lanes`` consecutive columns of one row per cycle. PE (i, j) reads
``tile[buf][i*stride + r][j*stride + s]``: a mux over only the ``max_stride * max_kernel**2``
positions that PE can ever need, not over the whole tile.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for


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
        regs = [[[Signal(signed(cfg.act_bits), name=f"t{b}_{u}_{v}") for v in range(cfg.tile_cols)]
                 for u in range(cfg.tile_rows)] for b in range(2)]
        cur = [[Signal(signed(cfg.act_bits), name=f"cur_{u}_{v}") for v in range(cfg.tile_cols)]
               for u in range(cfg.tile_rows)]
        for b in range(2):
            for u in range(cfg.tile_rows):
                for v in range(cfg.tile_cols):
                    for lane in range(min(cfg.act_lanes, v + 1)):  # lane l writes column wcol + l
                        with m.If(self.we[lane] & (self.wbuf == b) & (self.wrow == u) & (self.wcol == v - lane)):
                            m.d.sync += regs[b][u][v].eq(self.wdata[lane])
        for u in range(cfg.tile_rows):
            for v in range(cfg.tile_cols):
                m.d.comb += cur[u][v].eq(Mux(self.rbuf, regs[1][u][v], regs[0][u][v]))
        kb = len(self.r)
        sel = Signal(len(self.stride) + 2 * kb)
        m.d.comb += sel.eq(self.s | (self.r << kb) | (self.stride << (2 * kb)))
        for i in range(cfg.rows):
            for j in range(cfg.cols):
                with m.Switch(sel):
                    for st in range(1, cfg.max_stride + 1):
                        for r in range(cfg.max_kernel):
                            for s in range(cfg.max_kernel):
                                with m.Case(s | (r << kb) | (st << (2 * kb))):
                                    m.d.comb += self.act[i][j].eq(cur[i * st + r][j * st + s])
                    with m.Default():
                        m.d.comb += self.act[i][j].eq(0)
        return m
