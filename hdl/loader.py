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
from golden.timing import HEADER_CYCLES

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
        # window position (u, v) of lane 0; per lane, registered with the position (so the read's
        # enable and address, which go to the activation buffer's block RAM, come straight from
        # flip-flops): the lane's address, whether its column is a real one (< TW), and whether its
        # pixel is in bounds (else it is padding: 0). Every next value is one operation on registers:
        # each lane keeps its own address and row-start address (no ``+ lane`` after a sum), and the
        # column tests of the next position compare ``v`` with per-lane bounds shifted by the step,
        # set up once per layer (``tw``) or per entry (``vlo``, ``vhi``).
        u, v = Signal(ub, reset_less=True), Signal(vb, reset_less=True)
        u1 = Signal(ub, name="u1", reset_less=True)  # u + 1
        lane_addr = [Signal(abits, name=f"addr{lane}", reset_less=True) for lane in range(lanes)]
        row_addr = [Signal(abits, name=f"row_addr{lane}", reset_less=True) for lane in range(lanes)]
        base = [Signal(abits, name=f"tile_base{lane}", reset_less=True) for lane in range(lanes)]  # tile_base + lane
        live = [Signal(name=f"live{lane}", reset_less=True) for lane in range(lanes)]
        inb = [Signal(name=f"inb{lane}", reset_less=True) for lane in range(lanes)]
        row_in = Signal(name="row_in", reset_less=True)  # window row u is in bounds
        sb_ = vb + 2
        # per lane: column v + lanes + lane is real / in bounds iff v < tw_next / vlo_next <= v < vhi_next
        tw_next = [Signal(signed(sb_), name=f"tw_next{lane}", reset_less=True) for lane in range(lanes)]
        vlo_next = [Signal(signed(sb_), name=f"vlo_next{lane}", reset_less=True) for lane in range(lanes)]
        vhi_next = [Signal(signed(sb_), name=f"vhi_next{lane}", reset_less=True) for lane in range(lanes)]
        col0_in = [Signal(name=f"col0_in{lane}", reset_less=True) for lane in range(lanes)]  # column lane in bounds
        # v >= vlast_next: the group after the current one is its row's last
        vlast_next = Signal(signed(sb_), name="vlast_next", reset_less=True)
        row_vlast = Signal(name="row_vlast", reset_less=True)  # a row's first group is its last (lanes >= TW)
        th_last = Signal(ub, name="th_last", reset_less=True)  # TH - 1
        m.d.sync += [tw_next[lane].eq(c.tw - lanes - lane) for lane in range(lanes)]
        m.d.sync += [vlast_next.eq(c.tw - 2 * lanes), row_vlast.eq(lanes >= c.tw), th_last.eq(c.th - 1)]
        v_s = Signal(signed(sb_), name="v_s")  # v, signed, for the compares with the shifted bounds
        m.d.comb += v_s.eq(v)
        for lane in range(lanes):
            m.d.comb += self.act_addr[lane].eq(lane_addr[lane])

        def row_start(first_row, addrs, col0) -> None:
            """Move to column 0 of the window row after ``u`` (``first_row``: row 0) at the lanes' ``addrs``;
            ``col0[lane]``: column ``lane`` is in bounds."""
            nu_in = Signal(name="nu_in")
            if first_row:
                m.d.comb += nu_in.eq((ulo == 0) & (uhi != 0))
                m.d.sync += [u.eq(0), u1.eq(1), ulast.eq(th_last == 0)]
            else:
                m.d.comb += nu_in.eq((u1 >= ulo) & (u1 < uhi))
                m.d.sync += [u.eq(u1), u1.eq(u1 + 1), ulast.eq(u1 == th_last)]
            m.d.sync += [v.eq(0), row_in.eq(nu_in), vlast.eq(row_vlast)]
            m.d.sync += [lane_addr[lane].eq(addrs[lane]) for lane in range(lanes)]
            m.d.sync += [live[lane].eq(lane < c.tw) for lane in range(lanes)]
            m.d.sync += [inb[lane].eq(nu_in & col0[lane]) for lane in range(lanes)]

        def step_columns() -> None:
            """Move ``lanes`` columns right in the current window row."""
            m.d.sync += [v.eq(v + lanes), vlast.eq(v_s >= vlast_next)]
            m.d.sync += [lane_addr[lane].eq(lane_addr[lane] + lanes) for lane in range(lanes)]
            m.d.sync += [live[lane].eq(v_s < tw_next[lane]) for lane in range(lanes)]
            m.d.sync += [inb[lane].eq(row_in & (v_s >= vlo_next[lane]) & (v_s < vhi_next[lane]))
                         for lane in range(lanes)]

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
            with m.If(tiles.last):
                m.next = "FINISHED"
            with m.Else():
                m.next = "TILE"

        # "in ENTRY" and "in LOAD" as flip-flops of their own, kept with the FSM: the window's per-cycle
        # datapath (addresses, bounds, the read) is enabled by them, not by a decode of the state, so
        # the enable of its few dozen registers is a LUT or two from flip-flops
        in_entry, in_load = Signal(name="in_entry"), Signal(name="in_load")
        go = Signal()  # ENTRY, and the entry's buffer is free: pop the entry, start its window
        m.d.comb += go.eq(in_entry & ~self.full.bit_select(buf, 1))
        with m.If(in_entry):
            # the tile's column bounds, per lane, for the steps of its windows (the same every entry)
            m.d.sync += [vlo_next[lane].eq(vlo - lanes - lane) for lane in range(lanes)]
            m.d.sync += [vhi_next[lane].eq(vhi - lanes - lane) for lane in range(lanes)]
            m.d.sync += [col0_in[lane].eq((vlo <= lane) & (vhi > lane)) for lane in range(lanes)]
        with m.If(go):
            m.d.comb += ent.next.eq(1)
            # the entry's plane offset + the window origin, per lane
            first = [ent.chan + base[lane] for lane in range(lanes)]
            row_start(True, first, [(vlo <= lane) & (vhi > lane) for lane in range(lanes)])
            m.d.sync += [row_addr[lane].eq(first[lane]) for lane in range(lanes)]
        with m.If(in_load):
            for lane in range(lanes):
                m.d.comb += self.act_en[lane].eq(inb[lane])
                m.d.sync += [wlive[lane].eq(live[lane]), winb[lane].eq(inb[lane])]
            m.d.sync += [wrow.eq(u), wcol.eq(v)]
            with m.If(vlast):
                nxt = [row_addr[lane] + c.w for lane in range(lanes)]
                row_start(False, nxt, col0_in)
                m.d.sync += [row_addr[lane].eq(nxt[lane]) for lane in range(lanes)]
            with m.Else():
                step_columns()

        # HEADER and FILLED each follow a fixed step (TILE → HWAIT → HEADER, the window's last group →
        # FILLED) and last one cycle: their flags are registered copies of that step, so the tile walker's
        # advance and the buffer's full flag are decided from flip-flops
        in_hwait, in_header, in_filled = Signal(name="in_hwait"), Signal(name="in_header"), Signal(name="in_filled")
        m.d.sync += [in_header.eq(in_hwait), in_filled.eq(in_load & vlast & ulast)]
        m.d.comb += [self.filled.eq(in_filled), tiles.n.eq(Mux(in_header, ent.hcount, n)),
                     tiles.advance.eq((in_header & ent.hempty) | (in_filled & klast))]
        m.d.sync += in_hwait.eq(0)

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
                m.d.sync += in_hwait.eq(1)
                m.next = "HWAIT"
            assert HEADER_CYCLES == 3  # TILE (restart), HWAIT, HEADER
            with m.State("HWAIT"):  # the stream's latency
                # the window's in-bounds part: 0 <= y0 + u < H, 0 <= x0 + v < W
                m.d.sync += [edges[0].eq(-y0), edges[1].eq(c.h - y0), edges[2].eq(-x0), edges[3].eq(c.w - x0)]
                m.d.sync += [base[lane].eq(tile_base + lane) for lane in range(lanes)]
                m.next = "HEADER"
            with m.State("HEADER"):
                m.d.sync += [ulo.eq(clamp(edges[0], c.th)), uhi.eq(clamp(edges[1], c.th)),
                             vlo.eq(clamp(edges[2], c.tw)), vhi.eq(clamp(edges[3], c.tw))]
                m.d.comb += ent.next.eq(1)
                m.d.sync += [n.eq(ent.hcount), k.eq(0), klast.eq(ent.hcount == 1)]
                with m.If(ent.hempty):
                    next_tile()
                with m.Else():
                    m.d.sync += in_entry.eq(1)
                    m.next = "ENTRY"
            with m.State("ENTRY"):
                with m.If(go):
                    m.d.sync += [in_entry.eq(0), in_load.eq(1)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                with m.If(vlast & ulast):
                    m.d.sync += in_load.eq(0)
                    m.next = "FILLED"
            with m.State("FILLED"):
                m.d.sync += [buf.eq(~buf), k.eq(k + 1), klast.eq(k + 2 == n)]
                with m.If(~klast):
                    m.d.sync += in_entry.eq(1)
                    m.next = "ENTRY"
                with m.Else():
                    next_tile()
            with m.State("FINISHED"):
                m.d.comb += self.finished.eq(1)
                with m.If(self.start):
                    m.next = "TILE"
        with m.If(self.start):
            m.d.sync += [buf.eq(0), in_entry.eq(0), in_load.eq(0)]
        return m
