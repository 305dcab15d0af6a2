"""Output drain: moves a finished tile's accumulators into the output buffer.

Runs concurrently with the next tile's compute (which uses the other accumulator bank). Waits three
cycles for the MAC pipeline to empty (and computes the tile's output addresses meanwhile), then
writes one output per cycle, filter slot outermost, then
PE row, then PE column, skipping PEs whose pixel lies outside the output (edge tiles). Slots no MAC
touched in the tile (all-zero filters) drain as 0. Output ``(m, y, x)`` goes to address
``m*E*F + y*F + x``, so the host reads the output buffer back as a dense ``(M, E, F)`` array. The
address advances by additions only: no multiplier sits in the per-output path.
Timing contract: ``golden/timing.py``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for

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
        g, ty, tx = Signal(db), Signal(db), Signal(db)
        mg, rv, cv = Signal(cfg.count_bits), Signal(db), Signal(db)
        slot, i, j = Signal(cfg.slot_bits), Signal(bits_for(cfg.rows - 1)), Signal(bits_for(cfg.cols - 1))
        m.d.comb += self.rd_addr.eq(slot | (bank << cfg.slot_bits))
        # stage D1: read data of every PE is out; pick PE (i, j), mask untouched slots
        valid1 = Signal()
        pe1 = Signal(range(cfg.rows * cfg.cols))
        slot1 = Signal.like(slot)
        addr1 = Signal.like(self.out_addr)
        touched1 = Signal()
        m.d.sync += valid1.eq(0)
        pick = Signal(signed(cfg.acc_bits))
        with m.Switch(pe1):
            for p in range(cfg.rows * cfg.cols):
                with m.Case(p):
                    m.d.comb += pick.eq(self.rd_data[p])
            with m.Default():
                m.d.comb += pick.eq(0)
        for b in range(2):
            with m.If(bank == b):
                m.d.comb += touched1.eq(self.touched[b].bit_select(slot1, 1))
        m.d.comb += [self.out_en.eq(valid1), self.out_addr.eq(addr1),
                     self.out_data.eq(Mux(touched1, pick, 0))]

        # output addresses: products formed once per tile (FLUSH1), then only additions
        ef = Signal(2 * db)
        m.d.sync += ef.eq(c.e * c.f)  # the configuration is static during a run
        m_base, y_base = Signal(3 * db), Signal(2 * db)
        slot_addr, row_addr, addr = Signal(3 * db), Signal(3 * db), Signal(3 * db)
        rows_left = c.e - ty * cfg.rows
        cols_left = c.f - tx * cfg.cols
        with m.FSM(name="drain"):
            with m.State("IDLE"):
                m.d.comb += self.req.idle.eq(1)
                with m.If(self.req.start):
                    m.d.sync += [bank.eq(self.req.bank), g.eq(self.req.g), ty.eq(self.req.ty), tx.eq(self.req.tx),
                                 mg.eq(self.req.mg), slot.eq(0), i.eq(0), j.eq(0)]
                    m.next = "FLUSH1"
            with m.State("FLUSH1"):
                m.d.sync += [rv.eq(Mux(rows_left > cfg.rows, cfg.rows, rows_left)),
                             cv.eq(Mux(cols_left > cfg.cols, cfg.cols, cols_left)),
                             m_base.eq(g * cfg.acc_depth * ef), y_base.eq(ty * cfg.rows * c.f)]
                m.next = "FLUSH2"
            with m.State("FLUSH2"):
                m.d.sync += addr.eq(m_base + y_base + tx * cfg.cols)
                m.next = "FLUSH3"
            with m.State("FLUSH3"):
                m.d.sync += [slot_addr.eq(addr), row_addr.eq(addr)]
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.active.eq(1), self.rd_en.eq((i == 0) & (j == 0))]
                m.d.sync += [valid1.eq(1), pe1.eq(i * cfg.cols + j), slot1.eq(slot), addr1.eq(addr)]
                with m.If(j == cv - 1):
                    m.d.sync += [j.eq(0), i.eq(i + 1), addr.eq(row_addr + c.f), row_addr.eq(row_addr + c.f)]
                    with m.If(i == rv - 1):
                        m.d.sync += [i.eq(0), slot.eq(slot + 1), addr.eq(slot_addr + ef), row_addr.eq(slot_addr + ef),
                                     slot_addr.eq(slot_addr + ef)]
                        with m.If(slot == mg - 1):
                            m.next = "IDLE"
                with m.Else():
                    m.d.sync += [j.eq(j + 1), addr.eq(addr + 1)]
        return m
