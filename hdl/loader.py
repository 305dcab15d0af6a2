"""Tile loader: fills the activation tile buffers, one channel window per schedule entry.

Walks the same schedule as the sequencer (through its own decoder port) and runs ahead of it by up
to two windows, alternating between the two tile buffers. Per entry it waits in ``ENTRY`` until its
buffer is free, spends one cycle computing the window's start address, then one cycle per
``act_lanes`` consecutive positions of a window row (``TH x TW``, runtime sizes), one activation-buffer
read port per lane: in-bounds positions are read, padding positions write 0 without a read. The write
lags the read by one cycle, so a window takes ``1 + TH*ceil(TW/L) + 1`` cycles and the buffer is
reported full in its last cycle (``filled``). Several lanes matter at high sparsity, when a channel's
few scheduled weights take fewer cycles than loading its window.
Timing contract: ``golden/timing.py``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for

from .decoder import channel_query
from .layouts import config_layout
from .walker import TileCounter


class TileLoader(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "cfg": In(config_layout(cfg)), "start": In(1),
            "idx": Out(channel_query(cfg)),
            "act_addr": Out(bits_for(cfg.act_depth - 1)).array(cfg.act_lanes), "act_en": Out(1).array(cfg.act_lanes),
            "act_data": In(signed(cfg.act_bits)).array(cfg.act_lanes),
            "tile_we": Out(1).array(cfg.act_lanes), "tile_buf": Out(1), "tile_row": Out(bits_for(cfg.tile_rows - 1)),
            "tile_col": Out(bits_for(cfg.tile_cols - 1)), "tile_data": Out(signed(cfg.act_bits)).array(cfg.act_lanes),
            "full": In(2), "filled": Out(1), "finished": Out(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        c: data.View = self.cfg
        m.submodules.tiles = tiles = TileCounter(cfg)
        db = cfg.dim_bits
        n = Signal(cfg.count_bits)  # entries in the current tile
        k = Signal(cfg.count_bits)  # current entry
        buf = Signal()  # buffer being filled
        th = Signal(db)
        tw = Signal(db)
        m.d.comb += [
            tiles.cfg.eq(self.cfg), tiles.reset.eq(self.start),
            th.eq((cfg.rows - 1) * c.stride + c.r), tw.eq((cfg.cols - 1) * c.stride + c.s),
            self.idx.mg.eq(tiles.mg), self.tile_buf.eq(buf),
        ]
        # window position (u, v) at input pixel (y, x), linear address addr
        u, v = Signal(db), Signal(db)
        y, x, x0 = Signal(signed(db + 2)), Signal(signed(db + 2)), Signal(signed(db + 2))
        awidth = 2 * db + 3
        addr, row_addr = Signal(signed(awidth)), Signal(signed(awidth))
        # window origin: one product per cycle (TILE: y0, x0; HEADER: y0*W + x0; ENTRY: c*H*W + that)
        y0 = Signal(signed(db + 2))
        hw = Signal(2 * db)
        tile_base = Signal(signed(awidth))
        m.d.sync += hw.eq(c.h * c.w)  # the configuration is static during a run
        lanes = cfg.act_lanes
        # lane l covers window column v + l: a real column (< TW) and an in-bounds pixel, or padding
        live = [Signal(name=f"live{lane}") for lane in range(lanes)]
        inb = [Signal(name=f"inb{lane}") for lane in range(lanes)]
        for lane in range(lanes):
            m.d.comb += [live[lane].eq(v + lane < tw),
                         inb[lane].eq(live[lane] & (y >= 0) & (y < c.h) & (x + lane >= 0) & (x + lane < c.w)),
                         self.act_addr[lane].eq(addr + lane)]
        # write stage: one cycle behind the read
        wlive = [Signal(name=f"wlive{lane}") for lane in range(lanes)]
        winb = [Signal(name=f"winb{lane}") for lane in range(lanes)]
        wrow, wcol = Signal.like(self.tile_row), Signal.like(self.tile_col)
        m.d.comb += [self.tile_row.eq(wrow), self.tile_col.eq(wcol)]
        for lane in range(lanes):
            m.d.comb += [self.tile_we[lane].eq(wlive[lane]),
                         self.tile_data[lane].eq(self.act_data[lane] & winb[lane].replicate(cfg.act_bits))]
            m.d.sync += wlive[lane].eq(0)

        def next_tile():
            m.d.comb += tiles.advance.eq(1)
            with m.If(tiles.last):
                m.next = "FINISHED"
            with m.Else():
                m.next = "TILE"

        def read_entry(index):
            m.d.comb += [self.idx.en.eq(1), self.idx.k.eq(index), self.idx.addr.eq(tiles.gbase + 1 + index)]

        with m.FSM(name="loader"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "TILE"
            with m.State("TILE"):
                m.d.comb += [self.idx.en.eq(1), self.idx.header.eq(1), self.idx.addr.eq(tiles.gbase)]
                m.d.sync += [y0.eq(tiles.ty * (cfg.rows * c.stride) - c.pad),
                             x0.eq(tiles.tx * (cfg.cols * c.stride) - c.pad)]
                m.next = "HEADER"
            with m.State("HEADER"):
                m.d.sync += tile_base.eq(y0 * c.w + x0)
                m.d.comb += tiles.n.eq(self.idx.count)
                m.d.sync += [n.eq(self.idx.count), k.eq(0)]
                with m.If(self.idx.count == 0):
                    next_tile()
                with m.Else():
                    read_entry(0)
                    m.next = "ENTRY"
            with m.State("ENTRY"):
                with m.If(~self.full.bit_select(buf, 1)):
                    start = self.idx.chan * hw + tile_base
                    m.d.sync += [u.eq(0), v.eq(0), y.eq(y0), x.eq(x0), addr.eq(start), row_addr.eq(start)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                for lane in range(lanes):
                    m.d.comb += self.act_en[lane].eq(inb[lane])
                    m.d.sync += [wlive[lane].eq(live[lane]), winb[lane].eq(inb[lane])]
                m.d.sync += [wrow.eq(u), wcol.eq(v)]
                with m.If(v + lanes >= tw):
                    m.d.sync += [v.eq(0), u.eq(u + 1), y.eq(y + 1), x.eq(x0),
                                 addr.eq(row_addr + c.w), row_addr.eq(row_addr + c.w)]
                    with m.If(u == th - 1):
                        m.next = "FILLED"
                with m.Else():
                    m.d.sync += [v.eq(v + lanes), x.eq(x + lanes), addr.eq(addr + lanes)]
            with m.State("FILLED"):
                m.d.comb += [self.filled.eq(1), tiles.n.eq(n)]
                m.d.sync += [buf.eq(~buf), k.eq(k + 1)]
                with m.If(k + 1 < n):
                    read_entry(k + 1)
                    m.next = "ENTRY"
                with m.Else():
                    next_tile()
            with m.State("FINISHED"):
                m.d.comb += self.finished.eq(1)
                with m.If(self.start):
                    m.next = "TILE"
        with m.If(self.start):
            m.d.sync += buf.eq(0)
        return m
