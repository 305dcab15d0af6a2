"""Output drain: moves a finished tile's accumulators into the output buffer.

Runs concurrently with the next tile's compute (which uses the other accumulator bank). Waits
``golden.timing.drain_flush`` cycles for the MAC pipeline to empty (and computes the tile's output
addresses in the first three), then writes one output per cycle, filter slot outermost, then PE row,
then PE column, skipping PEs whose pixel lies outside the output (edge tiles). Slots no MAC
touched in the tile (all-zero filters) drain as 0. Output ``(m, y, x)`` goes to address
``m*E*F + y*F + x``, so the host reads the output buffer back as a dense ``(M, E, F)`` array. The
addresses, per output and per tile, advance by additions only: no multiplier anywhere (on the iCE40
the DSPs belong to the PEs).
Timing contract: ``golden/timing.py``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for
from golden.timing import drain_flush

from .layouts import config_layout
from .sequencer import drain_request


class Drain(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "cfg": In(config_layout(cfg)), "req": In(drain_request(cfg)),
            "touched": In(cfg.acc_depth).array(2),
            "rd_addr": Out(cfg.slot_bits + 1), "rd_en": Out(1),
            "rd_data": In(signed(cfg.acc_bits)).array(cfg.rows * cfg.cols),
            "out_addr": Out(bits_for(cfg.out_depth - 1)), "out_data": Out(signed(cfg.acc_bits)),
            "out_en": Out(1), "active": Out(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        c: data.View = self.cfg
        db = cfg.dim_bits
        bank = Signal()
        mg, rv, cv = Signal(cfg.count_bits), Signal(db), Signal(db)
        slot, i, j = Signal(cfg.slot_bits), Signal(bits_for(cfg.rows - 1)), Signal(bits_for(cfg.cols - 1))
        m.d.comb += self.rd_addr.eq(slot | (bank << cfg.slot_bits))
        # stage D1: pick PE (i, j)'s value, mask untouched slots. A slot is read from every PE at once
        # (``rd_en`` at its first output); the values go into one shift register per PE row, which
        # moves towards column 0 while its row drains, so each output comes from a row's head: a
        # ``rows``:1 mux, and every PE's read data goes only to its own register, not to a central
        # ``rows*cols``:1 mux (which on a large array gathers wires from the whole die).
        valid1, load1 = Signal(), Signal()
        i1 = Signal.like(i)
        slot1 = Signal.like(slot)
        addr1 = Signal.like(self.out_addr)
        touched1 = Signal()
        m.d.sync += [valid1.eq(0), load1.eq(self.rd_en)]
        chain = [[Signal(signed(cfg.acc_bits), name=f"chain{r}_{k}", reset_less=True) for k in range(cfg.cols)]
                 for r in range(cfg.rows)]
        pick = Signal(signed(cfg.acc_bits))
        with m.If(load1):  # the slot's first output, (0, 0), straight from its PE
            m.d.comb += pick.eq(self.rd_data[0])
            for r in range(cfg.rows):
                skip = 1 if r == 0 else 0  # row 0's head leaves now: load it shifted
                m.d.sync += [chain[r][k].eq(self.rd_data[r * cfg.cols + k + skip])
                             for k in range(cfg.cols - skip)]
        with m.Else():
            with m.Switch(i1):
                for r in range(cfg.rows):
                    with m.Case(r):
                        m.d.comb += pick.eq(chain[r][0])
                        with m.If(valid1):
                            m.d.sync += [chain[r][k].eq(chain[r][k + 1]) for k in range(cfg.cols - 1)]
        for b in range(2):
            with m.If(bank == b):
                m.d.comb += touched1.eq(self.touched[b].bit_select(slot1, 1))
        m.d.comb += [self.out_en.eq(valid1), self.out_addr.eq(addr1),
                     self.out_data.eq(Mux(touched1, pick, 0))]

        # Output addresses wrap modulo 2**len(out_addr); every address written is < out_depth, exact.
        # A tile (g, ty, tx) starts at m_base + y_base + x_base = g*acc_depth*E*F + ty*rows*F + tx*cols.
        # The tiles arrive in walk order (g outer, ty, tx inner), so each term is a running sum, restarted
        # when its coordinate is 0. The steps rows*F and acc_depth*E*F are the drain's own sums of a
        # previous tile: after slot 0 of any tile of a tile row that is not the last one, y_next =
        # y_base + rows*F (rv = rows there), and after any tile of a group that is not the last one,
        # m_next = m_base + acc_depth*E*F (mg = acc_depth there).
        ab = len(self.out_addr)
        m_base, y_base, x_base = Signal(ab), Signal(ab), Signal(db)
        m_next, y_next = Signal(ab), Signal(ab)
        rows_left, cols_left = Signal(db), Signal(db)  # E - ty*rows, F - tx*cols: > 0 for every tile
        tile_addr = Signal(ab)
        slot_addr, row_addr, addr = Signal(ab), Signal(ab), Signal(ab)
        # registered a cycle ahead, so the scan's decisions start at flip-flops: this output is its
        # row's last (j == cv - 1), its slot's last row (i == rv - 1), the tile's last slot
        # (slot == mg - 1), a slot's first (i == j == 0: read every PE's accumulator)
        jlast, ilast, slast, at0 = Signal(), Signal(), Signal(), Signal()
        extra = drain_flush(cfg) - 3
        settle = Signal(range(max(extra, 2)))  # at least one bit (a 0-bit vector does not lint)
        with m.FSM(name="drain"):
            with m.State("IDLE"):
                m.d.comb += self.req.idle.eq(1)
                with m.If(self.req.start):
                    m.d.sync += [bank.eq(self.req.bank), mg.eq(self.req.mg), slot.eq(0), i.eq(0), j.eq(0)]
                    with m.If(self.req.tx == 0):
                        m.d.sync += [x_base.eq(0), cols_left.eq(c.f)]
                        with m.If(self.req.ty == 0):
                            m.d.sync += [y_base.eq(0), rows_left.eq(c.e)]
                            with m.If(self.req.g == 0):
                                m.d.sync += m_base.eq(0)
                            with m.Else():
                                m.d.sync += m_base.eq(m_next)
                        with m.Else():
                            m.d.sync += [y_base.eq(y_next), rows_left.eq(rows_left - cfg.rows)]
                    with m.Else():
                        m.d.sync += [x_base.eq(x_base + cfg.cols), cols_left.eq(cols_left - cfg.cols)]
                    m.next = "FLUSH1"
            with m.State("FLUSH1"):
                m.d.sync += [rv.eq(Mux(rows_left > cfg.rows, cfg.rows, rows_left)),
                             cv.eq(Mux(cols_left > cfg.cols, cfg.cols, cols_left)),
                             tile_addr.eq(y_base + x_base)]
                m.next = "FLUSH2"
            with m.State("FLUSH2"):
                m.d.sync += [addr.eq(m_base + tile_addr), m_next.eq(m_base), y_next.eq(y_base),
                             at0.eq(1), jlast.eq(cv == 1), ilast.eq(rv == 1), slast.eq(mg == 1)]
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
                m.d.comb += [self.active.eq(1), self.rd_en.eq(at0)]
                m.d.sync += [valid1.eq(1), i1.eq(i), slot1.eq(slot), addr1.eq(addr), at0.eq(0)]
                with m.If(jlast):
                    m.d.sync += [j.eq(0), i.eq(i + 1), addr.eq(row_addr + c.f), row_addr.eq(row_addr + c.f),
                                 jlast.eq(cv == 1), ilast.eq(i + 2 == rv)]
                    with m.If(slot == 0):
                        m.d.sync += y_next.eq(y_next + c.f)
                    with m.If(ilast):
                        next_slot = slot_addr + c.ef
                        m.d.sync += [i.eq(0), slot.eq(slot + 1), addr.eq(next_slot), row_addr.eq(next_slot),
                                     slot_addr.eq(next_slot), m_next.eq(m_next + c.ef),
                                     ilast.eq(rv == 1), slast.eq(slot + 2 == mg), at0.eq(1)]
                        with m.If(slast):
                            m.next = "IDLE"
                with m.Else():
                    m.d.sync += [j.eq(j + 1), addr.eq(addr + 1), jlast.eq(j + 2 == cv)]
        return m
