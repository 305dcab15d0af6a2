"""Output drain: moves a finished tile's accumulators into the output buffer.

Runs concurrently with the next tile's compute (which uses the other accumulator bank). Waits
``golden.timing.drain_flush`` cycles for the MAC pipeline to empty (and computes the tile's output
addresses in the first three), then writes ``drain_lanes`` outputs per cycle (consecutive columns of
one PE row, into as many banks of the output buffer, ``hdl.buffers``), filter slot outermost, then PE
row, then PE column, skipping PEs whose pixel lies outside the output (edge tiles). Slots no MAC
touched in the tile (all-zero filters) drain as 0. Output ``(m, y, x)`` goes to address
``m*E*F + y*F + x``, so the host reads the output buffer back as a dense ``(M, E, F)`` array. The
addresses, per output and per tile, advance by additions only: no multiplier anywhere (on the iCE40
the DSPs belong to the PEs).
Timing contract: ``golden/timing.py``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for
from golden.timing import DRAIN_SETUP, array_drain_latency, drain_flush

from .delay import delay_line, require
from .layouts import config_layout
from .replica import KEEP
from .signatures import drain_read, drain_request, drained, output_write

CHAIN_GROUP = 4
"""Chain registers (outputs of one PE row) driven by one copy of their load and shift enables."""


class Drain(wiring.Component):
    """Moves a finished tile's accumulators to the output buffer, ``drain_lanes`` outputs per cycle.

    Members
    -------
    cfg : In(config_layout(cfg))
        The latched layer configuration.
    req : In(drain_request(cfg))
        The sequencer's hand-off of a tile (its bank, whether it starts a row or group, ``mg``, and per
        bank the slots a MAC wrote in the tile: ``touched``, the others drain as 0) and ``idle``, this
        drain's answer.
    rd : Out(drain_read(cfg))
        The read request to every PE (``rd_addr``, ``rd_en``) and every PE's accumulator
        (``rd_data__<p>``), ``golden.timing.array_drain_latency`` after the request.
    out : Out(output_write(cfg)), or with the output stage Out(drained(cfg))
        The output write (``out_addr``, ``out_data__<l>``, ``out_en__<l>``): lane ``l`` at ``out_addr + l``;
        for the output stage also the outputs' filter ``out_filt`` (its parameters' address).
    active, quiet, empty : Out(1)
        A cycle of the scan (``drain_cycles``); nothing in flight but the last write; nothing in flight.
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "cfg": In(config_layout(cfg)), "req": In(drain_request(cfg)),
            "rd": Out(drain_read(cfg)),
            # ``drain_lanes`` outputs per cycle: lane l at out_addr + l (``hdl.buffers``), and for the
            # output stage the outputs' filter (output channel) within the run, its parameters' address
            "out": Out(drained(cfg) if cfg.epilogue else output_write(cfg)),
            "active": Out(1), "quiet": Out(1), "empty": Out(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        c: data.View = self.cfg
        db = cfg.dim_bits
        # registers set up by a tile's hand-off or its flush have no reset (only the FSM, ``idle`` and the
        # valid bits do): a reset net to every address register would be one of the design's widest
        bank = Signal(reset_less=True)
        mg, rv, cv = Signal(cfg.count_bits, reset_less=True), Signal(db, reset_less=True), Signal(db, reset_less=True)
        slot = Signal(cfg.slot_bits, reset_less=True)
        i, j = Signal(bits_for(cfg.rows - 1), reset_less=True), Signal(bits_for(cfg.cols - 1), reset_less=True)
        m.d.comb += self.rd.addr.eq(slot | (bank << cfg.slot_bits))
        # The scan (state RUN) names one output per cycle; it is written ``lat + 1`` cycles later, where
        # ``lat`` is the array's drain latency: D1: the read request of a slot's first output
        # (``rd_en``) is in the array's per-row copy registers; D2 .. D(lat): the PEs read (and with
        # ``acc_pipeline`` register) the slot; at the end of D(lat) every PE's accumulator of the slot is
        # loaded into one shift register per PE row; D(lat + 1): the output leaves the head of row 0's
        # register, and is masked if no MAC touched its slot. Row 0's register moves towards column 0
        # while its row drains; when a row's last output leaves, every row's register moves up a row (row r
        # takes row r + 1's), so the next PE row's outputs are at row 0's head. So each output comes from
        # one flip-flop, every PE's read data goes only to its own register, each register only to its
        # neighbours: no central ``rows*cols``:1 mux, nor a ``rows``:1 one (on the 8x4 wide array that mux
        # gathered the rows' heads from across the die and was its worst path, 68.54 MHz), and no block
        # RAM's read data reaches the output buffer in one cycle.
        lat = array_drain_latency(cfg)
        require("array_drain_latency(cfg)", lat, lat >= 2,
                "hdl.drain loads its chains from a slot's first read while that read is in flight")
        W = cfg.drain_lanes  # outputs per cycle: W columns of a row, lane l valid while j + l < cv
        # per output, what travels with it from the scan (D1, registered by RUN) to its write, ``lat`` later
        valid1 = Signal(W, name="valid1")
        m.d.sync += valid1.eq(0)
        load = delay_line(m, self.rd.en, lat - 1, name="load{k}", shape=1)[1:]  # a slot's first read is in flight
        valid = delay_line(m, valid1, lat, name="valid{k}", first=2)
        # whether the output is its row's last
        rowend = delay_line(m, Signal(name="rowend1", reset_less=True), lat, name="rowend{k}", first=2)
        addr_d = delay_line(m, Signal.like(self.out.addr, name="addr1", reset_less=True), lat, name="addr{k}", first=2)
        touched = delay_line(m, Signal(name="touched1", reset_less=True), lat, name="touched{k}", first=2)
        fbits = bits_for(cfg.param_depth - 1)
        filt = delay_line(m, Signal(fbits, name="filt1", reset_less=True), lat, name="filt{k}", first=2)
        fbase = Signal(fbits, reset_less=True)  # the tile's first filter
        slot1 = Signal.like(slot, reset_less=True)
        for b in range(2):  # the drain's bank may change from D2 on (the next tile's hand-off)
            with m.If(bank == b):
                m.d.comb += touched[0].eq(self.req.touched[b].bit_select(slot1, 1))
        chain = [[Signal(signed(cfg.acc_bits), name=f"chain{r}_{k}", reset_less=True) for k in range(cfg.cols)]
                 for r in range(cfg.rows)]
        # each row's load and shift enables are its own flip-flops (``hdl.replica``), decoded a cycle
        # ahead: one shared enable would be a net to every chain bit of the array (2k loads on an 8x8 array)
        # (one copy per row and CHAIN_GROUP columns: a row's chain is cols * acc_bits flip-flops)
        groups = range(-(-cfg.cols // CHAIN_GROUP))
        load_row = [[Signal(name=f"row{r}_g{g}_load", reset_less=True, attrs=KEEP) for g in groups]
                    for r in range(cfg.rows)]
        up_row = [[Signal(name=f"row{r}_g{g}_up", reset_less=True, attrs=KEEP) for g in groups]
                  for r in range(cfg.rows - 1)]
        shift0 = [Signal(name=f"row0_g{g}_shift", reset_less=True, attrs=KEEP) for g in groups]
        leaving = valid[lat - 1].any()  # an output leaves in the next cycle
        m.d.sync += [load_row[r][g].eq(load[-1]) for r in range(cfg.rows) for g in groups]
        m.d.sync += [up.eq(leaving & rowend[lat - 1]) for ups in up_row for up in ups]
        m.d.sync += [sh.eq(leaving & ~rowend[lat - 1]) for sh in shift0]
        for r in range(cfg.rows):
            for k in range(cfg.cols):
                g = k // CHAIN_GROUP
                with m.If(load_row[r][g]):  # a slot's values, as its previous slot's last output leaves
                    m.d.sync += chain[r][k].eq(self.rd.data[r * cfg.cols + k])
                if r + 1 < cfg.rows:  # a row's last output left: every row moves up one
                    with m.Elif(up_row[r][g]):
                        m.d.sync += chain[r][k].eq(chain[r + 1][k])
                if r == 0 and k + W < cfg.cols:  # row 0 moves W columns towards column 0 per output cycle
                    with m.Elif(shift0[g]):
                        m.d.sync += chain[r][k].eq(chain[r][k + W])
        m.d.comb += self.out.addr.eq(addr_d[lat])
        if cfg.epilogue:
            m.d.comb += self.out.filt.eq(filt[lat])
        for lane in range(W):
            m.d.comb += [self.out.en[lane].eq(valid[lat][lane]),
                         self.out.data[lane].eq(Mux(touched[lat], chain[0][lane], 0))]
        # nothing in flight but the last write: the layer's last output is written in this cycle
        quiet = self.req.idle
        for v in valid[:lat]:
            quiet = quiet & ~v.any()
        m.d.comb += [self.quiet.eq(quiet), self.empty.eq(quiet & ~valid[lat].any())]

        # Output addresses wrap modulo 2**len(out_addr); every address written is < out_depth, exact.
        # A tile (g, ty, tx) starts at m_base + y_base + x_base = g*acc_depth*E*F + ty*rows*F + tx*cols.
        # The tiles arrive in walk order (g outer, ty, tx inner), so each term is a running sum, restarted
        # when its coordinate is 0. The steps rows*F and acc_depth*E*F are the drain's own sums of a
        # previous tile: after slot 0 of any tile of a tile row that is not the last one, y_next =
        # y_base + rows*F (rv = rows there), and after any tile of a group that is not the last one,
        # m_next = m_base + acc_depth*E*F (mg = acc_depth there).
        ab = len(self.out.addr)
        m_base, y_base, x_base = (Signal(w, reset_less=True) for w in (ab, ab, db))
        m_next, y_next = Signal(ab, reset_less=True), Signal(ab, reset_less=True)
        rows_left, cols_left = Signal(db, reset_less=True), Signal(db, reset_less=True)  # E - ty*rows, F - tx*cols: > 0
        tile_addr = Signal(ab, reset_less=True)
        slot_addr, row_addr, addr = (Signal(ab, reset_less=True) for _ in range(3))
        # registered a cycle ahead, so the scan's decisions start at flip-flops: this output is its
        # row's last (j == cv - 1), its slot's last row (i == rv - 1), the tile's last slot
        # (slot == mg - 1), a slot's first (i == j == 0: read every PE's accumulator)
        jlast, ilast, slast, at0 = (Signal(reset_less=True) for _ in range(4))
        extra = drain_flush(cfg) - DRAIN_SETUP
        settle = Signal(range(max(extra, 2)), reset_less=True)  # at least one bit (a 0-bit vector does not lint)
        # "in IDLE" as a flip-flop of its own, set on the way into IDLE: the sequencer's hand-off
        # decision (and the tile walker it advances) then starts at a register, not at the state decode
        idle = Signal(init=1)
        m.d.comb += self.req.idle.eq(idle)
        # the hand-off is only latched (``IDLE``); the running sums step from those registers a cycle
        # later (``SETUP``), so the sequencer's hand-off decision drives a few enables, not the sums
        x0, y0, g0 = (Signal(name=nm, reset_less=True) for nm in ("x0", "y0", "g0"))
        # the chunk mapping (``golden.chunks``): a tile is ``rows*cols`` consecutive outputs, PE row ``i`` the
        # ``cols`` from ``p0 + i*cols`` (``x_base`` is then ``p0`` and ``cols_left`` the outputs from it on): a
        # row's outputs are ``cols`` addresses apart, and only the tile's last PE row may have fewer
        if cfg.chunks:
            cv0 = Signal.like(cv, reset_less=True)  # the first row's valid columns (every row's but the last)
            cv_last = Signal.like(cv, reset_less=True)  # the last row's
            tile_step = Mux(c.chunks, cfg.pes, cfg.cols)
            row_step = Signal(ab, reset_less=True)
            m.d.sync += row_step.eq(Mux(c.chunks, cfg.cols, c.f))
        else:  # every row of a tile alike
            tile_step, row_step = cfg.cols, c.f
        with m.FSM(name="drain"):
            with m.State("IDLE"):
                with m.If(self.req.start):
                    m.d.sync += idle.eq(0)
                    m.d.sync += [bank.eq(self.req.bank), mg.eq(self.req.mg), slot.eq(0), i.eq(0), j.eq(0),
                                 x0.eq(self.req.x0), y0.eq(self.req.y0), g0.eq(self.req.g0)]
                    m.next = "SETUP"
            with m.State("SETUP"):
                with m.If(x0):
                    m.d.sync += [x_base.eq(0), cols_left.eq(Mux(c.chunks, c.ef, c.f) if cfg.chunks else c.f)]
                    with m.If(y0):
                        m.d.sync += [y_base.eq(0), rows_left.eq(c.e)]
                        with m.If(g0):
                            m.d.sync += [m_base.eq(0), fbase.eq(0)]
                        with m.Else():
                            m.d.sync += [m_base.eq(m_next), fbase.eq(fbase + cfg.acc_depth)]
                    with m.Else():
                        m.d.sync += [y_base.eq(y_next), rows_left.eq(rows_left - cfg.rows)]
                with m.Else():
                    m.d.sync += [x_base.eq(x_base + tile_step), cols_left.eq(cols_left - tile_step)]
                m.next = "FLUSH1"
            with m.State("FLUSH1"):
                m.d.sync += [rv.eq(_at_most(rows_left, cfg.rows)),
                             cv.eq(_at_most(cols_left, cfg.cols)),
                             tile_addr.eq(y_base + x_base)]
                if cfg.chunks:
                    m.d.sync += cv0.eq(_at_most(cols_left, cfg.cols))
                    with m.If(c.chunks):
                        self._chunk_rows(m, cols_left, rv, cv_last)
                m.next = "FLUSH2"
            with m.State("FLUSH2"):
                m.d.sync += [addr.eq(m_base + tile_addr), m_next.eq(m_base), y_next.eq(y_base),
                             at0.eq(1), jlast.eq(cv <= W), ilast.eq(rv == 1), slast.eq(mg == 1)]
                m.next = "FLUSH3"
            with m.State("FLUSH3"):
                m.d.sync += [slot_addr.eq(addr), row_addr.eq(addr)]
                if extra:
                    m.d.sync += settle.eq(0)
                m.next = "SETTLE" if extra else "RUN"
            if extra:
                with m.State("SETTLE"):  # the rest of the MAC pipeline's depth beyond the three address cycles
                    m.d.sync += settle.eq(settle + 1)
                    with m.If(settle == extra - 1):
                        m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.active.eq(1), self.rd.en.eq(at0)]
                m.d.sync += [valid[0].eq(Cat(1, *(j + lane < cv for lane in range(1, W)))), rowend[0].eq(jlast),
                             slot1.eq(slot), addr_d[0].eq(addr), filt[0].eq(fbase + slot), at0.eq(0)]
                with m.If(jlast):
                    m.d.sync += [j.eq(0), i.eq(i + 1), addr.eq(row_addr + row_step), row_addr.eq(row_addr + row_step),
                                 jlast.eq(cv <= W), ilast.eq(i + 2 == rv)]
                    if cfg.chunks:  # the tile's last PE row may have fewer outputs
                        cv_next = Mux(c.chunks & (i + 2 == rv), cv_last, cv0)
                        m.d.sync += [cv.eq(cv_next), jlast.eq(cv_next <= W)]
                    with m.If(slot == 0):
                        m.d.sync += y_next.eq(y_next + c.f)
                    with m.If(ilast):
                        next_slot = slot_addr + c.ef
                        m.d.sync += [i.eq(0), slot.eq(slot + 1), addr.eq(next_slot), row_addr.eq(next_slot),
                                     slot_addr.eq(next_slot), m_next.eq(m_next + c.ef),
                                     ilast.eq(rv == 1), slast.eq(slot + 2 == mg), at0.eq(1)]
                        if cfg.chunks:
                            m.d.sync += [cv.eq(cv0), jlast.eq(cv0 <= W)]
                        with m.If(slast):
                            m.d.sync += idle.eq(1)
                            m.next = "IDLE"
                with m.Else():
                    m.d.sync += [j.eq(j + W), addr.eq(addr + W), jlast.eq(j + 2 * W >= cv)]
        return m

    def _chunk_rows(self, m: Module, left, rv, cv_last) -> None:
        """The chunk mapping's PE rows with outputs in a tile of ``left`` outputs from its first (``rv``, at
        most ``rows``) and the last one's outputs (``cv_last``), by compares with the constants ``n*cols``."""
        cfg = self._cfg
        m.d.sync += [rv.eq(1), cv_last.eq(_at_most(left, cfg.cols))]
        for n in range(2, cfg.rows + 1):
            with m.If(left > (n - 1) * cfg.cols):
                rest = left - (n - 1) * cfg.cols
                m.d.sync += [rv.eq(n), cv_last.eq(_at_most(rest, cfg.cols))]


def _at_most(value, n: int):
    """``min(value, n)`` for a constant ``n``: a tile's valid rows or columns, a PE row's outputs."""
    return Mux(value > n, n, value)
