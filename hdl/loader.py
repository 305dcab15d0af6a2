"""Tile loader: fills the activation tile buffers, one channel window per schedule entry.

Walks the same schedule as the sequencer (through its own entry stream, ``hdl.decoder``) and runs
ahead of it by up to two windows, alternating between the two tile buffers. Per tile it restarts the
stream and pops the group header; per entry it waits in ``ENTRY`` until its buffer is free, pops the
entry and spends that cycle computing the window's start address, then one cycle per
``act_lanes`` consecutive positions of ``act_rows`` window rows (``TH x TW``, runtime sizes), one
activation-buffer read port per (row, lane) pair (``ArrayConfig.act_ports``): in-bounds positions are
read, padding positions write 0 without a read. The write lags the read by one cycle, so a window
takes ``1 + ceil(TH/K)*ceil(TW/L) + 1`` cycles and the buffer is reported full in its last cycle
(``filled``); the write itself leaves the loader ``golden.timing.ACT_DATA_LATENCY`` cycles later still,
from registers beside the activation buffer, which the PEs' first read of the window does not wait for.
Several ports matter at high sparsity and with wide PEs, when a channel's few MAC cycles take fewer
cycles than loading its window.

No multiplier anywhere (on the iCE40 the DSPs belong to the PEs, on the ECP5 one sat in the in-bounds
path): the window origin and its address are running sums over the tiles, stepped by the host-computed
``ystep``/``xstep``/``ystep_addr`` (``golden.words.CONFIG_FIELDS``); the decoder answers an entry's
channel as its plane offset ``c*H*W``; and the window's in-bounds rows and columns are fixed once per
tile, so the per-cycle in-bounds test compares only the small window counters ``u``, ``v``.
Timing contract: ``golden/timing.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, C, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for
from golden.timing import ACT_DATA_LATENCY, CHUNK_TILE_SETUP, SUB_WINDOW_GAP, WINDOW_READ_SLACK

from .delay import delay, require
from .layouts import config_layout
from .signatures import act_read, entry_stream, tile_write
from .tile import per_row_storage
from .walker import TileCounter, header_states


class TileLoader(wiring.Component):
    """Fills the two activation tile buffers, one channel window per schedule entry.

    Members
    -------
    cfg : In(config_layout(cfg))
        The latched layer configuration.
    start : In(1)
        Start a run (the first tile) from the next cycle.
    ent : Out(entry_stream(cfg))
        The loader's channel-entry stream from the decoder.
    act : Out(act_read(cfg))
        The activation buffer's reads, one per port (window row ``k`` x lane ``l``), and their data a
        cycle later (signals ``act_addr__<p>``, ``act_en__<p>``, ``act_data__<p>``).
    tile : Out(tile_write(cfg))
        The tile write, to ``hdl.array.PEArray``'s ``tile`` (signals ``tile_we__<p>`` ...).
    full : In(2)
        Per buffer: full, not yet consumed by the sequencer.
    filled, filled_buf : Out(1), Out(1)
        The buffer ``filled_buf`` is full from the next cycle (``tile_loads``); its last write may still be
        on the way to the tile (``golden.timing.ACT_DATA_LATENCY``).
    finished : Out(1)
        Every tile's windows are loaded.
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "cfg": In(config_layout(cfg)), "start": In(1),
            "ent": Out(entry_stream(cfg)),
            # per port ``k*act_lanes + l`` (window row ``k`` of the cycle's rows, lane ``l``)
            "act": Out(act_read(cfg)), "tile": Out(tile_write(cfg)),
            "full": In(2), "filled": Out(1), "filled_buf": Out(1), "finished": Out(1),
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
        # last rows (u + act_rows >= TH)
        klast, vlast, ulast = (Signal(reset_less=True) for _ in range(3))
        ent = self.ent
        lanes, nrows = cfg.act_lanes, cfg.act_rows
        ports = [(rk, lane) for rk in range(nrows) for lane in range(lanes)]  # port p = rk*lanes + lane
        m.d.comb += [
            tiles.cfg.eq(self.cfg), tiles.reset.eq(self.start),
            ent.mg.eq(tiles.mg), ent.plane.eq(c.hw), ent.addr.eq(tiles.gbase),
        ]
        # Window origin (y0, x0) in input pixels and its activation address relative to the channel's
        # plane, as running sums over the tiles (g outer, ty, tx inner): each TILE state steps them from
        # the previous tile's values, or restarts them at a row's / a group's first tile.
        y0, x0 = Signal(signed(db + 2), name="y0", reset_less=True), Signal(signed(db + 2), name="x0", reset_less=True)
        abits = len(self.act.addr[0])
        # addresses wrap modulo 2**abits: a window origin may lie before its plane (padding), but every
        # address actually read is in [0, act_depth), where the wrapped value is the true one
        tile_base = Signal(abits, reset_less=True)  # address of (y0, x0)
        row_base = Signal(abits, reset_less=True)  # address of (y0, -pad): the current tile row's first window
        # in-bounds window rows [ulo, uhi) and columns [vlo, vhi), fixed per tile: the distances from
        # the window origin to the input's edges in HWAIT, clamped to the window in HEADER (a subtract
        # and a clamp in one cycle is two carry chains in series)
        # the widest window: the tile's, or in the chunk mapping segment B's with its aligning columns
        wmax = cfg.tile_cols + (lanes - 1 if cfg.chunks else 0)
        ub, vb = bits_for(cfg.tile_rows), bits_for(wmax + lanes)
        ulo, uhi = Signal(ub, name="ulo", reset_less=True), Signal(ub, name="uhi", reset_less=True)
        vlo, vhi = Signal(vb, name="vlo", reset_less=True), Signal(vb, name="vhi", reset_less=True)
        edges = [Signal(signed(db + 3), name=f"edge_{e}", reset_less=True) for e in ("top", "bottom", "left", "right")]
        # window position (u, v) of port 0; per port, registered with the position (so the read's
        # enable and address, which go to the activation buffer's block RAM, come straight from
        # flip-flops): the port's address, whether its column is a real one (< TW), and whether its
        # pixel is in bounds (else it is padding: 0). Every next value is one operation on registers:
        # each port keeps its own address and row-start address (no ``+ lane`` after a sum), each row
        # of the cycle its own row counters, and the column tests of the next position compare ``v``
        # with per-lane bounds shifted by the step, set up once per layer (``tw``), and the
        # in-bounds columns are a mask shifted by the step, set up once per entry (``col_mask``).
        # (past the window by up to 2*act_rows - 1 rows in its last group: wide enough not to wrap)
        urb = bits_for(cfg.tile_rows + 2 * nrows)
        u = [Signal(urb, name=f"u{rk}", reset_less=True) for rk in range(nrows)]  # window row u + k
        u1 = [Signal(urb, name=f"u{rk}_next", reset_less=True) for rk in range(nrows)]  # u + k + act_rows
        v = Signal(vb, reset_less=True)
        lane_addr = [Signal(abits, name=f"addr{p}", reset_less=True) for p in range(len(ports))]
        row_addr = [Signal(abits, name=f"row_addr{p}", reset_less=True) for p in range(len(ports))]
        # tile_base + lane + k*W per port, from the per-layer offsets ``port_off``
        base = [Signal(abits, name=f"tile_base{p}", reset_less=True) for p in range(len(ports))]
        live = [Signal(name=f"live{lane}", reset_less=True) for lane in range(lanes)]  # column v + lane < TW
        row_live = [Signal(name=f"row_live{rk}", reset_less=True) for rk in range(nrows)]  # window row u + k < TH
        inb = [Signal(name=f"inb{p}", reset_less=True) for p in range(len(ports))]
        row_in = [Signal(name=f"row_in{rk}", reset_less=True) for rk in range(nrows)]  # window row u + k in bounds
        # per-layer constants, registered from the latched configuration (valid from the second cycle
        # of a run, before the first tile's HWAIT uses them): a port's offset in the activation buffer
        # from the window's origin and the address step from one group of rows to the next; multiples
        # of W as shift-and-add sums (no multiplier)
        def times_w(k: int):
            return sum((c.w << b) for b in range(k.bit_length()) if k >> b & 1) if k else 0
        port_off = [Signal(abits, name=f"port_off{p}", reset_less=True) for p in range(len(ports))]
        m.d.sync += [port_off[p].eq(lane + times_w(rk)) for p, (rk, lane) in enumerate(ports)]
        row_step = Signal(abits, name="row_step", reset_less=True)
        m.d.sync += row_step.eq(times_w(nrows))
        sb_ = vb + 2
        # per lane: column v + lanes + lane is real iff v < tw_next
        tw_next = [Signal(signed(sb_), name=f"tw_next{lane}", reset_less=True) for lane in range(lanes)]
        # which columns are in bounds, as masks instead of compares on the step's path (on the ECP5 two
        # compare chains from ``v`` into the in-bounds flags were the worst path of the 8x8 and the wide
        # array): ``col_mask`` bit j, column j of the tile's windows (set per entry), and ``col_ahead`` bit
        # i, column v + lanes + i (loaded at a row's start, shifted by the lanes with every step)
        mw = wmax + 2 * lanes
        col_mask = Signal(mw, name="col_mask", reset_less=True)
        col_ahead = Signal(mw, name="col_ahead", reset_less=True)

        def in_cols(j: int, nxt: SimpleNamespace | None = None):
            """Column ``j`` of the tile's windows is in bounds (from the tile's registered bounds, or the chunk
            mapping's next sub-window's, ``nxt``; none past the widest window, ``vhi <= wmax``)."""
            lo, hi = (nxt.vlo, nxt.vhi) if nxt else (vlo, vhi)
            return (lo <= j) & (hi > j) if j < wmax else C(0, 1)
        # v >= vlast_next: the group after the current one is its row's last
        vlast_next = Signal(signed(sb_), name="vlast_next", reset_less=True)
        row_vlast = Signal(name="row_vlast", reset_less=True)  # a row's first group is its last (lanes >= TW)
        th_lastr = Signal(signed(urb + 1), name="th_lastr", reset_less=True)  # TH - act_rows
        first_ulast = Signal(name="first_ulast", reset_less=True)  # a window's first rows are its last
        # the window's width: the layer's, or in the chunk mapping the current sub-window's (``golden.chunks``)
        chunked = c.chunks if cfg.chunks else C(0, 1)
        sub_tw = Signal(vb, name="sub_tw", reset_less=True)
        # and its first storage row and column (the tile's write addresses them directly)
        sub_row = Signal(len(self.tile.row[0]), name="sub_row", reset_less=True)
        sub_col = Signal(len(self.tile.col), name="sub_col", reset_less=True)
        # the chunk mapping's next sub-window, set up while the current one loads (``_chunk_walker``)
        shadow = SimpleNamespace(
            tw=Signal(vb, name="next_tw", reset_less=True), row=Signal.like(sub_row, name="next_row", reset_less=True),
            col=Signal.like(sub_col, name="next_col", reset_less=True), a=Signal(name="next_a", reset_less=True),
            flags=Signal(cfg.cols, name="next_flags", reset_less=True), last=Signal(name="next_last", reset_less=True),
            flag_row=Signal(bits_for(cfg.rows), name="next_flag_row", reset_less=True),
            ulo=Signal(ub, name="next_ulo", reset_less=True), uhi=Signal(ub, name="next_uhi", reset_less=True),
            vlo=Signal(vb, name="next_vlo", reset_less=True), vhi=Signal(vb, name="next_vhi", reset_less=True),
            row_vlast=Signal(name="next_row_vlast", reset_less=True))
        taking = Signal(name="taking")  # the loader takes the next sub-window this cycle
        tw = Mux(chunked, Mux(taking, shadow.tw, sub_tw), c.tw) if cfg.chunks else c.tw
        m.d.sync += [tw_next[lane].eq(tw - lanes - lane) for lane in range(lanes)]
        m.d.sync += [vlast_next.eq(tw - 2 * lanes), row_vlast.eq(lanes >= tw), th_lastr.eq(c.th - nrows),
                     first_ulast.eq(nrows >= c.th)]
        v_s = Signal(signed(sb_), name="v_s")  # v, signed, for the compares with the shifted bounds
        m.d.comb += v_s.eq(v)
        for p in range(len(ports)):
            m.d.comb += self.act.addr[p].eq(lane_addr[p])

        def row_start(first_row, addrs, nxt: SimpleNamespace | None = None) -> None:
            """Move to column 0 of the window rows after ``u`` (``first_row``: rows from 0, the tile's
            column bounds not yet in ``col_mask``) at the ports' ``addrs``; ``nxt``: from the chunk mapping's
            next sub-window's bounds (``shadow``) instead of the tile's."""
            lo, hi = (nxt.ulo, nxt.uhi) if nxt else (ulo, uhi)
            col0 = ([in_cols(lane, nxt) for lane in range(lanes)] if first_row else col_mask)
            for rk in range(nrows):
                nu_in = Signal(name=f"nu_in{rk}")
                if first_row:
                    m.d.comb += nu_in.eq((lo <= rk) & (hi > rk))
                    m.d.sync += [u[rk].eq(rk), u1[rk].eq(rk + nrows), row_live[rk].eq(rk < c.th)]
                else:
                    m.d.comb += nu_in.eq((u1[rk] >= ulo) & (u1[rk] < uhi))
                    m.d.sync += [u[rk].eq(u1[rk]), u1[rk].eq(u1[rk] + nrows), row_live[rk].eq(u1[rk] < c.th)]
                m.d.sync += row_in[rk].eq(nu_in)
                m.d.sync += [inb[rk * lanes + lane].eq(nu_in & col0[lane]) for lane in range(lanes)]
            m.d.sync += ulast.eq(first_ulast if first_row else u1[0] >= th_lastr)
            m.d.sync += [v.eq(0), vlast.eq(nxt.row_vlast if nxt else row_vlast)]
            if first_row:
                m.d.sync += col_ahead.eq(Cat(*(in_cols(j, nxt) for j in range(lanes, lanes + mw))))
            else:
                m.d.sync += col_ahead.eq(col_mask[lanes:])
            m.d.sync += [lane_addr[p].eq(addrs[p]) for p in range(len(ports))]
            m.d.sync += [live[lane].eq(lane < tw) for lane in range(lanes)]

        def step_columns() -> None:
            """Move ``lanes`` columns right in the current window rows."""
            m.d.sync += [v.eq(v + lanes), vlast.eq(v_s >= vlast_next)]
            m.d.sync += [lane_addr[p].eq(lane_addr[p] + lanes) for p in range(len(ports))]
            m.d.sync += [live[lane].eq(v_s < tw_next[lane]) for lane in range(lanes)]
            m.d.sync += [inb[p].eq(row_in[rk] & col_ahead[lane]) for p, (rk, lane) in enumerate(ports)]
            m.d.sync += col_ahead.eq(col_ahead[lanes:])

        # write stage: one cycle behind the read (the position's enables, row and column, registered with
        # the read), then ``ACT_DATA_LATENCY`` registers of the read data and of those, so the write leaves
        # the loader from flip-flops next to the activation buffer's block RAMs
        wlive = [Signal(name=f"wlive{p}") for p in range(len(ports))]
        winb = [Signal(name=f"winb{p}", reset_less=True) for p in range(len(ports))]
        wrow = [Signal.like(self.tile.row[rk], name=f"wrow{rk}") for rk in range(nrows)]
        wcol = Signal.like(self.tile.col)
        # (with shared window rows the tile's write has one copy, beside the buffer: no registers needed)
        lag = ACT_DATA_LATENCY if per_row_storage(cfg) else 0
        require("ACT_DATA_LATENCY", lag, 0 <= lag <= WINDOW_READ_SLACK,
                f"the PEs read a window {WINDOW_READ_SLACK} cycle(s) after its last write would reach the tile "
                "without these registers, and its full flag does not wait for them")
        m.d.comb += [self.tile.row[rk].eq(delay(m, wrow[rk], lag, name=f"wrow{rk}_d")) for rk in range(nrows)]
        m.d.comb += [self.tile.col.eq(delay(m, wcol, lag, name="wcol_d")),
                     self.tile.buf.eq(delay(m, buf, lag, name="wbuf_d"))]
        for p in range(len(ports)):
            m.d.comb += [self.tile.we[p].eq(delay(m, wlive[p], lag, name=f"wlive{p}_d")),
                         self.tile.pad[p].eq(delay(m, ~winb[p], lag, name=f"wpad{p}_d", reset_less=True)),
                         self.tile.data[p].eq(delay(m, self.act.data[p], lag, name=f"act_data{p}_d", reset_less=True))]
            m.d.sync += wlive[p].eq(0)

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
        in_hwait = Signal(name="in_hwait")

        def start_window(chan) -> None:
            """The entry's window (pixel tiles): its first positions at the entry's plane offset + the origin."""
            first = [chan + base[p] for p in range(len(ports))]
            row_start(True, first)
            m.d.sync += [row_addr[p].eq(first[p]) for p in range(len(ports))]
        if cfg.chunks:
            walker = self._chunk_walker(m, buf, tiles.x0, in_hwait, edges, base, port_off, shadow)
            m.d.comb += [go.eq(in_entry & ~self.full.bit_select(buf, 1) & (walker.ready | ~chunked)),
                         walker.take.eq(taking)]

            def take(chan) -> None:
                """Start the chunk mapping's next sub-window (``shadow``): its first positions, bounds, width,
                storage row and column (``taking``)."""
                m.d.comb += taking.eq(1)
                first = [chan + base[p] for p in range(len(ports))]
                row_start(True, first, shadow)
                m.d.sync += [row_addr[p].eq(first[p]) for p in range(len(ports))]
                m.d.sync += [ulo.eq(shadow.ulo), uhi.eq(shadow.uhi), sub_tw.eq(shadow.tw), sub_row.eq(shadow.row),
                             sub_col.eq(shadow.col), col_mask.eq(Cat(*(in_cols(j, shadow) for j in range(mw))))]
        else:
            m.d.comb += go.eq(in_entry & ~self.full.bit_select(buf, 1))
        with m.If(in_entry):
            # the tile's in-bounds columns, for the steps of its windows (the same every entry)
            m.d.sync += col_mask.eq(Cat(*(in_cols(j) for j in range(mw))))
        with m.If(go):
            m.d.comb += ent.next.eq(1)
            if cfg.chunks:
                m.d.sync += walker.chan.eq(ent.chan)
                with m.If(chunked):
                    take(ent.chan)
                with m.Else():
                    start_window(ent.chan)
            else:
                start_window(ent.chan)
        with m.If(in_load):
            for p, (rk, lane) in enumerate(ports):
                m.d.comb += self.act.en[p].eq(inb[p])
                m.d.sync += [wlive[p].eq(live[lane] & row_live[rk]), winb[p].eq(inb[p])]
            if cfg.chunks:  # the chunk mapping writes storage rows, from the sub-window's first row and column
                m.d.sync += [wrow[rk].eq(Mux(chunked, u[rk] + sub_row, u[rk])) for rk in range(nrows)]
                m.d.sync += wcol.eq(Mux(chunked, v + sub_col, v))
            else:
                m.d.sync += [wrow[rk].eq(u[rk]) for rk in range(nrows)]
                m.d.sync += wcol.eq(v)
            with m.If(vlast):
                step = c.w if nrows == 1 else row_step
                nxt = [row_addr[p] + step for p in range(len(ports))]
                row_start(False, nxt)
                m.d.sync += [row_addr[p].eq(nxt[p]) for p in range(len(ports))]
            with m.Else():
                step_columns()

        # HEADER and FILLED each follow a fixed step (TILE → HWAIT → HEADER, the window's last group →
        # FILLED) and last one cycle: their flags are registered copies of that step, so the tile walker's
        # advance and the buffer's full flag are decided from flip-flops
        in_header, in_filled = Signal(name="in_header"), Signal(name="in_filled")
        m.d.sync += [in_header.eq(in_hwait), in_filled.eq(in_load & vlast & ulast & (walker.last | ~chunked)
                                                           if cfg.chunks else in_load & vlast & ulast)]
        m.d.comb += [self.filled.eq(in_filled), self.filled_buf.eq(buf), tiles.n.eq(Mux(in_header, ent.hcount, n)),
                     tiles.advance.eq((in_header & ent.hempty) | (in_filled & klast))]
        m.d.sync += in_hwait.eq(0)

        with m.FSM(name="loader"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "TILE"

            def restart() -> None:  # TILE: step the window origin to this tile's
                if cfg.chunks:
                    m.d.comb += walker.tile.eq(1)
                with m.If(tiles.x0):
                    m.d.sync += x0.eq(-c.pad)
                    with m.If(tiles.y0):
                        m.d.sync += [y0.eq(-c.pad), row_base.eq(-c.pad_addr), tile_base.eq(-c.pad_addr)]
                    with m.Else():
                        m.d.sync += [y0.eq(y0 + c.ystep), row_base.eq(row_base + c.ystep_addr),
                                     tile_base.eq(row_base + c.ystep_addr)]
                with m.Else():
                    m.d.sync += [x0.eq(x0 + c.xstep), tile_base.eq(tile_base + c.xstep)]

            def wait() -> None:  # HWAIT: the window's in-bounds part: 0 <= y0 + u < H, 0 <= x0 + v < W
                m.d.sync += [edges[0].eq(-y0), edges[1].eq(c.h - y0), edges[2].eq(-x0), edges[3].eq(c.w - x0)]
                m.d.sync += [base[p].eq(tile_base + port_off[p]) for p in range(len(ports))]

            def header() -> None:
                m.d.sync += [ulo.eq(_clamp(edges[0], c.th)), uhi.eq(_clamp(edges[1], c.th)),
                             vlo.eq(_clamp(edges[2], tw)), vhi.eq(_clamp(edges[3], tw))]
                m.d.sync += [n.eq(ent.hcount), k.eq(0), klast.eq(ent.hcount == 1)]
                with m.If(ent.hempty):
                    next_tile()
                with m.Else():
                    m.d.sync += in_entry.eq(1)
                    m.next = "ENTRY"

            def before_wait() -> None:  # ``in_hwait`` is the HWAIT state as a flip-flop of its own
                m.d.sync += in_hwait.eq(1)

            header_states(m, ent, restart=restart, wait=wait, header=header, before_wait=before_wait)
            with m.State("ENTRY"):
                with m.If(go):
                    m.d.sync += [in_entry.eq(0), in_load.eq(1)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                with m.If(vlast & ulast):
                    m.d.sync += in_load.eq(0)
                    m.next = "FILLED"
                    if cfg.chunks:  # the chunk mapping: the next sub-window from this cycle on, if it is set up
                        with m.If(chunked & ~walker.last):
                            with m.If(walker.ready):
                                take(walker.chan)
                                m.d.sync += in_load.eq(1)
                                m.next = "LOAD"
                            with m.Else():
                                m.next = "SUB_WAIT"
            if cfg.chunks:
                require("SUB_WINDOW_GAP", SUB_WINDOW_GAP, SUB_WINDOW_GAP == 2,
                        "hdl.loader sets a sub-window up in two steps while the one before loads")
                require("CHUNK_TILE_SETUP", CHUNK_TILE_SETUP, CHUNK_TILE_SETUP == 1,
                        "hdl.loader sets a tile's first sub-window up from the header on")
                with m.State("SUB_WAIT"):  # the sub-window before took one cycle: its successor is not set up yet
                    with m.If(walker.ready):
                        take(walker.chan)
                        m.d.sync += in_load.eq(1)
                        m.next = "LOAD"
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

    def _chunk_walker(self, m: Module, buf, group_start, block, edges: list, base: list, port_off: list,
                      shadow: SimpleNamespace) -> SimpleNamespace:
        """The chunk mapping's sub-windows (``golden.chunks``), set up ahead of the loads.

        **The walk** over a tile's sub-windows: per PE row with outputs, segment B's sub-window if its chunk
        is split, then segment A's; the same for every entry of a tile (from a snapshot taken at the tile's
        start), continuing from tile to tile and restarting with each filter group. Its state is the chunk's
        start: output column ``x`` and row ``y``, input column ``X = x*stride`` and row ``Y = y*stride - pad``,
        ``Y``'s address ``Y*W``, the outputs from it to the layer's end, the PE row and its first storage row;
        every step is additions of the host's products (``fst``, ``cst``, ``wst``), no multiplier.

        **The setup** of the next sub-window runs while the current one loads, into ``shadow`` registers the
        loads do not read: step E (its edges, port addresses, width, first storage row and column, segment
        flags; after segment A the walk steps to the next PE row, or after the entry's last back to the
        snapshot for the next entry), step B the cycle after (its in-bounds rows and columns), then it is
        ``ready`` until the loader takes it (``take``: the first positions of the sub-window, in the last
        read cycle of the one before or in the entry's pop). E runs when the shadow is free (or being taken)
        and not in the tile's first two cycles (``block``: the walk's new state is not yet in its derived
        registers): so consecutive sub-windows start at least ``golden.timing.SUB_WINDOW_GAP`` cycles apart,
        and a tile's first entry pops ``golden.timing.CHUNK_TILE_SETUP`` cycle later than with tiles.

        Returns strobes ``tile`` (the TILE state), ``take``, and ``ready``, ``last`` (the sub-window taken is
        the entry's last: registered at ``take``), ``chan`` (the entry's plane offset, latched when it pops).
        """
        cfg = self._cfg
        c = self.cfg
        K, L, cols = cfg.max_kernel, cfg.act_lanes, cfg.cols
        db, abits = cfg.dim_bits, len(self.act.addr[0])
        w = SimpleNamespace(tile=Signal(name="walk_tile"), take=Signal(name="walk_take"),
                            ready=Signal(name="walk_ready"), last=Signal(name="walk_last", reset_less=True),
                            chan=Signal(abits, name="walk_chan", reset_less=True))
        rem_shape = signed(bits_for(cfg.out_depth) + 2)

        def state(pre: str) -> SimpleNamespace:
            return SimpleNamespace(
                X=Signal(len(c.fst), name=f"{pre}X", reset_less=True), x=Signal(db, name=f"{pre}x", reset_less=True),
                Y=Signal(signed(db + 2), name=f"{pre}Y", reset_less=True),
                raddr=Signal(abits, name=f"{pre}raddr", reset_less=True), y=Signal(db, name=f"{pre}y", reset_less=True),
                rem=Signal(rem_shape, name=f"{pre}rem", reset_less=True),
                i=Signal(bits_for(cfg.rows), name=f"{pre}i", reset_less=True),
                row=Signal.like(shadow.row, name=f"{pre}row", reset_less=True))
        cur, snap, nxt = state("walk_"), state("walk_tile_"), state("walk_next_")
        names = ("X", "x", "Y", "raddr", "y", "rem", "i", "row")

        def split(st: SimpleNamespace):
            """The chunk at ``st`` runs past its output row, and a next row exists."""
            return (c.fst - st.X < c.cst) & (st.y + 1 < c.e)

        # What a chunk's sub-windows follow from, registered from the walk's state a cycle after it changes:
        # segment A's PEs times the stride (``a*stride``), B's aligning columns (``golden.chunks.sub_windows``)
        # and whether the chunk is split; from the snapshot's when the walk returns to it.
        span = cfg.cols * cfg.max_stride + 1  # > every a*stride

        def derived(st: SimpleNamespace, pre: str) -> tuple:
            """The registers ``(a*stride, d, split)`` of the walk's state ``st`` and their next values."""
            a_st = Signal(len(c.fst), name=f"{pre}a_st", reset_less=True)
            d = Signal(range(L), name=f"{pre}d", reset_less=True)
            spl = Signal(name=f"{pre}split", reset_less=True)
            value = Mux(c.fst - st.X < c.cst, c.fst - st.X, c.cst)
            return a_st, d, spl, (value, (value + K - 1) % L if L & (L - 1) == 0 else
                                  Array(C((v + K - 1) % L, range(L)) for v in range(span))[value], split(st))

        *snap_d, snap_next = derived(snap, "walk_tile_")
        m.d.sync += [r.eq(v) for r, v in zip(snap_d, snap_next, strict=True)]
        a_st, d, cur_split, cur_next = derived(cur, "walk_")
        m.d.sync += [r.eq(v) for r, v in zip((a_st, d, cur_split), cur_next, strict=True)]

        # the tile's start: the snapshot, and the walk restarts from it
        with m.If(w.tile):  # a group's first tile starts at output (0, 0), a later one where the last ended
            first = dict(X=0, x=0, Y=-c.pad, raddr=c.pad - c.pad_addr, y=0, rem=c.ef)
            with m.If(group_start):
                m.d.sync += [getattr(r, n).eq(v) for r in (snap, cur) for n, v in first.items()]
            with m.Else():
                m.d.sync += [getattr(r, n).eq(getattr(nxt, n)) for r in (snap, cur) for n in first]
            m.d.sync += [snap.i.eq(0), snap.row.eq(0), cur.i.eq(0), cur.row.eq(0)]

        # the setup engine: E, then B, then ready until taken
        after_b = Signal(name="walk_after_b", reset_less=True)  # the next sub-window is segment A of B's row
        setting = Signal(name="walk_setting")  # B this cycle
        e_now = Signal(name="walk_e")
        m.d.comb += e_now.eq(c.chunks & ~block & ~w.tile & ~setting & (~w.ready | w.take))
        m.d.sync += setting.eq(e_now)
        with m.If(w.take):
            m.d.sync += w.ready.eq(0)
        with m.If(setting):
            m.d.sync += w.ready.eq(1)
        with m.If(w.tile):
            m.d.sync += [w.ready.eq(0), setting.eq(0), after_b.eq(0)]
        in_b = Signal(name="walk_in_b")
        m.d.comb += in_b.eq(~after_b & cur_split)
        b_start = a_st + K - 1
        with m.If(e_now):
            y_in = Mux(in_b, cur.Y + c.stride, cur.Y)
            x_in = Mux(in_b, -c.pad - d, cur.X - c.pad)
            addr = Mux(in_b, cur.raddr + c.wst - c.pad - d, cur.raddr + cur.X - c.pad)
            m.d.sync += [edges[0].eq(-y_in), edges[1].eq(c.h - y_in), edges[2].eq(-x_in), edges[3].eq(c.w - x_in)]
            m.d.sync += [base[p].eq(addr + port_off[p]) for p in range(len(base))]
            m.d.sync += [shadow.tw.eq(Mux(in_b, d + c.cst - a_st, a_st) - c.stride + c.s),
                         shadow.col.eq(Mux(in_b, b_start - d, 0)), shadow.row.eq(cur.row), after_b.eq(in_b),
                         shadow.flags.eq(Cat(*(cur_split & (cur.x + j >= c.f) for j in range(cols)))),
                         shadow.flag_row.eq(cur.i), shadow.a.eq(~in_b)]
            with m.If(~in_b):  # segment A: the PE row is done; on to the next, or back for the next entry
                wrap = cur.x + cols >= c.f
                stepped = dict(x=Mux(wrap, cur.x + cols - c.f, cur.x + cols),
                               X=Mux(wrap, cur.X + c.cst - c.fst, cur.X + c.cst), Y=Mux(wrap, cur.Y + c.stride, cur.Y),
                               raddr=Mux(wrap, cur.raddr + c.wst, cur.raddr), y=cur.y + wrap,
                               rem=cur.rem - cols, i=cur.i + 1, row=cur.row + K)
                live = (cur.i + 1 != cfg.rows) & (cur.rem > cols)
                m.d.sync += shadow.last.eq(~live)
                with m.If(live):
                    m.d.sync += [getattr(cur, n).eq(v) for n, v in stepped.items()]
                with m.Else():  # the next tile starts there; the next entry of this one at the snapshot
                    m.d.sync += [getattr(nxt, n).eq(v) for n, v in stepped.items()]
                    m.d.sync += [getattr(cur, n).eq(getattr(snap, n)) for n in names]
                    m.d.sync += [r.eq(v) for r, v in zip((a_st, d, cur_split), snap_d, strict=True)]
            with m.Else():
                m.d.sync += shadow.last.eq(0)
        with m.If(setting):  # B: the in-bounds rows and columns
            m.d.sync += [shadow.ulo.eq(_clamp(edges[0], c.th)), shadow.uhi.eq(_clamp(edges[1], c.th)),
                         shadow.vlo.eq(_clamp(edges[2], shadow.tw)), shadow.vhi.eq(_clamp(edges[3], shadow.tw)),
                         shadow.row_vlast.eq(L >= shadow.tw)]
        # the segment flags, per buffer and PE row: PE j reads segment B (``x + j >= F``) of a split chunk; set
        # when segment A is taken (into the buffer being loaded)
        flags = [[Signal(cols, name=f"split{b}_{i}", reset_less=True) for i in range(cfg.rows)] for b in range(2)]
        m.d.comb += self.tile.chunks.eq(c.chunks)
        m.d.comb += [self.tile.split[b][i].eq(flags[b][i]) for b in range(2) for i in range(cfg.rows)]
        with m.If(w.take):
            m.d.sync += w.last.eq(shadow.last)
            for b in range(2):
                for i in range(cfg.rows):
                    with m.If(shadow.a & (buf == b) & (shadow.flag_row == i)):
                        m.d.sync += flags[b][i].eq(shadow.flags)
        return w


def _clamp(value, hi):
    """``min(max(value, 0), hi)`` for a signed ``value`` and a small unsigned ``hi``."""
    return Mux(value < 0, 0, Mux(value > hi, hi, value))
