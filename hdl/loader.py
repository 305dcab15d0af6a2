"""Tile loader: fills the activation tile buffers, one channel window per schedule entry.

Walks the same schedule as the sequencer (through its own entry stream, ``hdl.decoder``) and runs
ahead of it by up to two windows, alternating between the two tile buffers. Per tile it restarts the
stream and pops the group header; per entry it waits in ``ENTRY`` until its buffer is free, pops the
entry and spends that cycle computing the window's start address, then one cycle per
``act_lanes`` consecutive positions of a window row (``TH x TW``, runtime sizes), one activation-buffer
read port per lane: in-bounds positions are read, padding positions write 0 without a read. The write
lags the read by one cycle, so a window takes ``1 + TH*ceil(TW/L) + 1`` cycles and the buffer is
reported full in its last cycle (``filled``). Several lanes matter at high sparsity, when a channel's
few scheduled weights take fewer cycles than loading its window.

No multiplier anywhere (on the iCE40 the DSPs belong to the PEs, on the ECP5 one sat in the in-bounds
path): the window origin and its address are running sums over the tiles, stepped by the host-computed
``ystep``/``xstep``/``ystep_addr`` (``hdl.layouts.CONFIG_FIELDS``); the decoder answers an entry's
channel as its plane offset ``c*H*W``; and the window's in-bounds rows and columns are fixed once per
tile, so the per-cycle in-bounds test compares only the small window counters ``u``, ``v``.
Timing contract: ``golden/timing.py``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for

from .decoder import entry_stream
from .layouts import config_layout
from .walker import TileCounter


class TileLoader(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "cfg": In(config_layout(cfg)), "start": In(1),
            "ent": Out(entry_stream(cfg)),
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
        # only the FSM, ``buf`` and the write's live bits have a reset: every other register is set up by
        # the state that uses it (a reset net to all of them would be one of the design's widest)
        n = Signal(cfg.count_bits, reset_less=True)  # entries in the current tile
        k = Signal(cfg.count_bits, reset_less=True)  # current entry
        buf = Signal()  # buffer being filled
        # flags registered a cycle ahead, so no decision waits for a compare chain: the current entry is
        # the tile's last (k == n - 1), the window row's last lane group (v + lanes >= TW), the window's
        # last row (u == TH - 1)
        klast, vlast, ulast = (Signal(reset_less=True) for _ in range(3))
        ent = self.ent
        lanes = cfg.act_lanes
        m.d.comb += [
            tiles.cfg.eq(self.cfg), tiles.reset.eq(self.start),
            ent.mg.eq(tiles.mg), ent.plane.eq(c.hw), ent.addr.eq(tiles.gbase), self.tile_buf.eq(buf),
        ]
        # Window origin (y0, x0) in input pixels and its activation address relative to the channel's
        # plane, as running sums over the tiles (g outer, ty, tx inner): each TILE state steps them from
        # the previous tile's values, or restarts them at a row's / a group's first tile.
        y0, x0 = Signal(signed(db + 2), name="y0", reset_less=True), Signal(signed(db + 2), name="x0", reset_less=True)
        abits = len(self.act_addr[0])
        # addresses wrap modulo 2**abits: a window origin may lie before its plane (padding), but every
        # address actually read is in [0, act_depth), where the wrapped value is the true one
        tile_base = Signal(abits, reset_less=True)  # address of (y0, x0)
        row_base = Signal(abits, reset_less=True)  # address of (y0, -pad): the current tile row's first window
        # in-bounds window rows [ulo, uhi) and columns [vlo, vhi), fixed per tile: the distances from
        # the window origin to the input's edges in HWAIT, clamped to the window in HEADER (a subtract
        # and a clamp in one cycle is two carry chains in series)
        ub, vb = bits_for(cfg.tile_rows), bits_for(cfg.tile_cols + lanes)
        ulo, uhi = Signal(ub, name="ulo", reset_less=True), Signal(ub, name="uhi", reset_less=True)
        vlo, vhi = Signal(vb, name="vlo", reset_less=True), Signal(vb, name="vhi", reset_less=True)
        edges = [Signal(signed(db + 3), name=f"edge_{e}", reset_less=True) for e in ("top", "bottom", "left", "right")]
        # window position (u, v) of lane 0 and its linear address addr; per lane, registered with the
        # position (computed as the position is stepped, so the read's enable and address, which go to
        # the activation buffer's block RAM, come straight from flip-flops): the lane's address, whether
        # its column is a real one (< TW), and whether its pixel is in bounds (else it is padding: 0)
        u, v = Signal(ub, reset_less=True), Signal(vb, reset_less=True)
        addr, row_addr = Signal(abits, reset_less=True), Signal(abits, reset_less=True)
        lane_addr = [addr] + [Signal(abits, name=f"addr{lane}", reset_less=True) for lane in range(1, lanes)]
        live = [Signal(name=f"live{lane}", reset_less=True) for lane in range(lanes)]
        inb = [Signal(name=f"inb{lane}", reset_less=True) for lane in range(lanes)]
        for lane in range(lanes):
            m.d.comb += self.act_addr[lane].eq(lane_addr[lane])

        def goto(nu, nv, naddr) -> None:
            """Move lane 0 to window position ``(nu, nv)`` at activation address ``naddr``."""
            row_in = (nu >= ulo) & (nu < uhi)
            m.d.sync += [u.eq(nu), v.eq(nv), addr.eq(naddr)]
            m.d.sync += [lane_addr[lane].eq(naddr + lane) for lane in range(1, lanes)]
            m.d.sync += [live[lane].eq(nv + lane < c.tw) for lane in range(lanes)]
            m.d.sync += [inb[lane].eq(row_in & (nv + lane >= vlo) & (nv + lane < vhi)) for lane in range(lanes)]

        # write stage: one cycle behind the read
        wlive = [Signal(name=f"wlive{lane}") for lane in range(lanes)]
        winb = [Signal(name=f"winb{lane}", reset_less=True) for lane in range(lanes)]
        wrow, wcol = Signal.like(self.tile_row), Signal.like(self.tile_col)
        m.d.comb += [self.tile_row.eq(wrow), self.tile_col.eq(wcol)]
        for lane in range(lanes):
            m.d.comb += [self.tile_we[lane].eq(wlive[lane]),
                         self.tile_data[lane].eq(self.act_data[lane] & winb[lane].replicate(cfg.act_bits))]
            m.d.sync += wlive[lane].eq(0)

        def clamp(value, hi):
            """``min(max(value, 0), hi)`` for a signed ``value`` and a small unsigned ``hi``."""
            return Mux(value < 0, 0, Mux(value > hi, hi, value))

        def next_tile():
            m.d.comb += tiles.advance.eq(1)
            with m.If(tiles.last):
                m.next = "FINISHED"
            with m.Else():
                m.next = "TILE"

        with m.FSM(name="loader"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "TILE"
            with m.State("TILE"):
                m.d.comb += ent.restart.eq(1)
                with m.If(tiles.x0):
                    m.d.sync += x0.eq(-c.pad)
                    with m.If(tiles.y0):
                        m.d.sync += [y0.eq(-c.pad), row_base.eq(-c.pad_addr), tile_base.eq(-c.pad_addr)]
                    with m.Else():
                        m.d.sync += [y0.eq(y0 + c.ystep), row_base.eq(row_base + c.ystep_addr),
                                     tile_base.eq(row_base + c.ystep_addr)]
                with m.Else():
                    m.d.sync += [x0.eq(x0 + c.xstep), tile_base.eq(tile_base + c.xstep)]
                m.next = "HWAIT"
            with m.State("HWAIT"):  # the stream's latency
                # the window's in-bounds part: 0 <= y0 + u < H, 0 <= x0 + v < W
                m.d.sync += [edges[0].eq(-y0), edges[1].eq(c.h - y0), edges[2].eq(-x0), edges[3].eq(c.w - x0)]
                m.next = "HEADER"
            with m.State("HEADER"):
                m.d.sync += [ulo.eq(clamp(edges[0], c.th)), uhi.eq(clamp(edges[1], c.th)),
                             vlo.eq(clamp(edges[2], c.tw)), vhi.eq(clamp(edges[3], c.tw))]
                m.d.comb += [ent.next.eq(1), tiles.n.eq(ent.count)]
                m.d.sync += [n.eq(ent.count), k.eq(0), klast.eq(ent.count == 1)]
                with m.If(ent.empty):
                    next_tile()
                with m.Else():
                    m.next = "ENTRY"
            with m.State("ENTRY"):
                with m.If(~self.full.bit_select(buf, 1)):
                    m.d.comb += ent.next.eq(1)
                    start = ent.chan + tile_base  # the entry's plane offset + the window origin
                    goto(0, 0, start)
                    m.d.sync += [row_addr.eq(start), vlast.eq(lanes >= c.tw), ulast.eq(c.th == 1)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                for lane in range(lanes):
                    m.d.comb += self.act_en[lane].eq(inb[lane])
                    m.d.sync += [wlive[lane].eq(live[lane]), winb[lane].eq(inb[lane])]
                m.d.sync += [wrow.eq(u), wcol.eq(v)]
                with m.If(vlast):
                    goto(u + 1, 0, row_addr + c.w)
                    m.d.sync += [row_addr.eq(row_addr + c.w), vlast.eq(lanes >= c.tw), ulast.eq(u + 2 == c.th)]
                    with m.If(ulast):
                        m.next = "FILLED"
                with m.Else():
                    goto(u, v + lanes, addr + lanes)
                    m.d.sync += vlast.eq(v + 2 * lanes >= c.tw)
            with m.State("FILLED"):
                m.d.comb += [self.filled.eq(1), tiles.n.eq(n)]
                m.d.sync += [buf.eq(~buf), k.eq(k + 1), klast.eq(k + 2 == n)]
                with m.If(~klast):
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
