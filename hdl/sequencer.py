"""Compute sequencer: issues one scheduled weight per cycle to the whole PE array.

Per tile: read the group header, then per channel entry wait (one cycle at least) for the entry's
tile buffer to be full and issue its scheduled weights back to back, one per cycle; free the buffer
after the last. Per unit (see ``golden.config.UNIT_KIND``) the decoder gives the filter slot and the
start position; the following positions come from a counter that steps by ``(step_r, step_s)``
(next column, or the channel's stride-pattern period), until the unit's end: the kernel's end, the
row's end, or at once for single weights. The next unit's index is read while the current one
issues, so units follow each other without a bubble. Weights come from the weight buffer at a
running pointer (stored in schedule order, so no weight needs an address of its own).

At a tile's end the accumulator bank is handed to the drain as soon as the drain is idle, and the
next tile starts the cycle after in the other bank. Operands leave this unit registered (stage 1),
aligned with the weight buffer's and the decoder's read data. ``fresh`` marks a slot's first MAC in
a tile (tracked per bank in ``touched``) so the accumulators need no clearing.
Timing contract: ``golden/timing.py``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import UNIT_KIND, ArrayConfig, bits_for

from .decoder import channel_query, unit_query
from .layouts import config_layout, index_addr_bits
from .walker import TileCounter


def drain_request(cfg: ArrayConfig) -> wiring.Signature:
    """Sequencer's view of the hand-off of one finished tile to the drain."""
    db = cfg.dim_bits
    return wiring.Signature({
        "start": Out(1), "bank": Out(1), "g": Out(db), "ty": Out(db), "tx": Out(db), "mg": Out(cfg.count_bits),
        "idle": In(1),
    })


class ComputeSequencer(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        kb = bits_for(cfg.max_kernel - 1)
        super().__init__({
            "cfg": In(config_layout(cfg)), "start": In(1),
            "idx": Out(channel_query(cfg)), "unit": Out(unit_query(cfg)),
            "w_addr": Out(bits_for(cfg.weight_depth - 1)), "w_en": Out(1),
            "full": In(2), "consumed": Out(1), "consume_buf": Out(1),
            "drain": Out(drain_request(cfg)),
            # stage-1 operands (the weight itself is the weight buffer's read data)
            "op_valid": Out(1), "op_fresh": Out(1), "op_bank": Out(1), "op_buf": Out(1),
            "op_r": Out(kb), "op_s": Out(kb), "op_slot": Out(cfg.slot_bits),
            "touched": Out(cfg.acc_depth).array(2),
            "finished": Out(1), "load_stall": Out(1), "drain_stall": Out(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        c: data.View = self.cfg
        m.submodules.tiles = tiles = TileCounter(cfg)
        n, k, nu, ku = (Signal(cfg.count_bits, name=nm) for nm in ("n", "k", "nu", "ku"))
        r, s = Signal(cfg.pos_bits + 1), Signal(cfg.pos_bits + 1)  # position within the current unit
        slot = Signal(cfg.slot_bits)  # filter slot of the current unit
        first = Signal()  # the current cycle issues a unit's first position
        buf, bank = Signal(), Signal()
        wp, wbase = Signal.like(self.w_addr), Signal.like(self.w_addr)
        sp, sbase = Signal(index_addr_bits(cfg)), Signal(index_addr_bits(cfg))
        m.d.comb += [
            tiles.cfg.eq(self.cfg), tiles.reset.eq(self.start), tiles.n.eq(n),
            self.idx.mg.eq(tiles.mg), self.consume_buf.eq(buf),
            self.w_addr.eq(wp),
            self.drain.bank.eq(bank), self.drain.g.eq(tiles.g), self.drain.ty.eq(tiles.ty),
            self.drain.tx.eq(tiles.tx), self.drain.mg.eq(tiles.mg),
        ]
        issue = Signal()  # stage 0: an op is issued this cycle
        cur_r, cur_s, cur_slot = Signal.like(r), Signal.like(s), Signal.like(slot)  # its position and slot

        def read_entry(index):
            m.d.comb += [self.idx.en.eq(1), self.idx.k.eq(index), self.idx.addr.eq(tiles.gbase + 1 + index)]

        with m.FSM(name="sequencer"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "TILE"
            with m.State("TILE"):
                m.d.comb += [self.idx.en.eq(1), self.idx.header.eq(1), self.idx.addr.eq(tiles.gbase)]
                m.d.sync += [wp.eq(wbase), sp.eq(sbase)]
                for b in range(2):
                    with m.If(bank == b):
                        m.d.sync += self.touched[b].eq(0)
                m.next = "HEADER"
            with m.State("HEADER"):
                m.d.sync += [n.eq(self.idx.count), k.eq(0)]
                with m.If(self.idx.count == 0):
                    m.next = "TILE_END"
                with m.Else():
                    read_entry(0)
                    m.next = "ENTRY"
            with m.State("ENTRY"):
                m.d.sync += [nu.eq(self.idx.count), ku.eq(0), first.eq(1)]
                with m.If(self.full.bit_select(buf, 1)):
                    m.d.comb += [self.unit.en.eq(1), self.unit.addr.eq(sp), self.unit.kc.eq(0)]
                    m.next = "RUN"
                with m.Else():
                    m.d.comb += self.load_stall.eq(1)
            with m.State("RUN"):
                m.d.comb += [issue.eq(1), self.w_en.eq(1)]
                m.d.sync += [wp.eq(wp + 1), first.eq(0)]
                # current position and slot: the decoder's answer on a unit's first cycle, counters after
                m.d.comb += [cur_r.eq(Mux(first, self.unit.r0, r)), cur_s.eq(Mux(first, self.unit.s0, s)),
                             cur_slot.eq(Mux(first, self.unit.slot, slot))]
                with m.If(first & (ku + 1 < nu)):  # prefetch the next unit's index
                    m.d.comb += [self.unit.en.eq(1), self.unit.addr.eq(sp + 1), self.unit.kc.eq(ku + 1)]
                ns = Signal(cfg.pos_bits + 2)
                nr = Signal(cfg.pos_bits + 2)
                carry = Signal()
                m.d.comb += [ns.eq(cur_s + self.idx.step_s), carry.eq(ns >= c.s),
                             nr.eq(cur_r + self.idx.step_r + carry)]
                m.d.sync += [r.eq(nr), s.eq(Mux(carry, ns - c.s, ns)), slot.eq(cur_slot)]
                last = {"kernel": nr >= c.r, "row": carry, "single": 1}[UNIT_KIND[cfg.dataflow]]
                with m.If(last):
                    m.d.sync += [ku.eq(ku + 1), sp.eq(sp + 1), first.eq(1)]
                    with m.If(ku == nu - 1):
                        m.d.comb += self.consumed.eq(1)
                        m.d.sync += [buf.eq(~buf), k.eq(k + 1)]
                        with m.If(k + 1 < n):
                            read_entry(k + 1)
                            m.next = "ENTRY"
                        with m.Else():
                            m.next = "TILE_END"
            with m.State("TILE_END"):
                with m.If(self.drain.idle):
                    m.d.comb += [self.drain.start.eq(1), tiles.advance.eq(1)]
                    m.d.sync += bank.eq(~bank)
                    with m.If(tiles.last_in_group):
                        m.d.sync += [wbase.eq(wp), sbase.eq(sp)]
                    with m.If(tiles.last):
                        m.next = "FINISHED"
                    with m.Else():
                        m.next = "TILE"
                with m.Else():
                    m.d.comb += self.drain_stall.eq(1)
            with m.State("FINISHED"):
                m.d.comb += self.finished.eq(1)
                with m.If(self.start):
                    m.next = "TILE"
        with m.If(self.start):
            m.d.sync += [buf.eq(0), bank.eq(0), wbase.eq(0), sbase.eq(0)]

        # stage 1: operands registered, aligned with weight-buffer and decoder read data
        m.d.sync += [self.op_valid.eq(issue), self.op_r.eq(cur_r), self.op_s.eq(cur_s), self.op_slot.eq(cur_slot),
                     self.op_buf.eq(buf), self.op_bank.eq(bank)]
        slot1 = self.op_slot
        for b in range(2):
            with m.If(self.op_bank == b):
                m.d.comb += self.op_fresh.eq(~self.touched[b].bit_select(slot1, 1))
                with m.If(self.op_valid):
                    m.d.sync += self.touched[b].bit_select(slot1, 1).eq(1)
        return m
