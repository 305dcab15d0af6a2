"""Compute sequencer: issues one scheduled weight per cycle to the whole PE array.

Per tile: read the group header, then per channel entry wait (one cycle at least) for the entry's
tile buffer to be full and issue its ``nk * R * S`` weights back to back, one per cycle; free the
buffer after the last. Per scheduled kernel the filter slot comes from the decoder, the kernel
positions ``(r, s)`` from counters, the weight from the weight buffer at a running pointer (weights
are stored in schedule order, so no weight needs an address of its own).

At a tile's end the accumulator bank is handed to the drain as soon as the drain is idle, and the
next tile starts the cycle after in the other bank. Operands leave this unit registered (stage 1),
aligned with the weight buffer's and the decoder's read data. ``fresh`` marks a slot's first MAC in
a tile (tracked per bank in ``touched``) so the accumulators need no clearing.
Timing contract: ``golden/timing.py``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for

from .decoder import channel_query, slot_query
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
            "idx": Out(channel_query(cfg)), "slot": Out(slot_query(cfg)),
            "w_addr": Out(bits_for(cfg.weight_depth - 1)), "w_en": Out(1),
            "full": In(2), "consumed": Out(1), "consume_buf": Out(1),
            "drain": Out(drain_request(cfg)),
            # stage-1 operands (the slot itself is the decoder's answer, ``slot.slot``)
            "op_valid": Out(1), "op_fresh": Out(1), "op_bank": Out(1), "op_buf": Out(1),
            "op_r": Out(kb), "op_s": Out(kb),
            "touched": Out(cfg.acc_depth).array(2),
            "finished": Out(1), "load_stall": Out(1), "drain_stall": Out(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        c: data.View = self.cfg
        m.submodules.tiles = tiles = TileCounter(cfg)
        n, k, nk, kc = (Signal(cfg.count_bits, name=nm) for nm in ("n", "k", "nk", "kc"))
        r, s = Signal.like(self.op_r), Signal.like(self.op_s)
        buf, bank = Signal(), Signal()
        wp, wbase = Signal.like(self.w_addr), Signal.like(self.w_addr)
        sp, sbase = Signal(index_addr_bits(cfg)), Signal(index_addr_bits(cfg))
        m.d.comb += [
            tiles.cfg.eq(self.cfg), tiles.reset.eq(self.start), tiles.n.eq(n),
            self.idx.mg.eq(tiles.mg), self.consume_buf.eq(buf),
            self.w_addr.eq(wp), self.slot.addr.eq(sp), self.slot.kc.eq(kc),
            self.drain.bank.eq(bank), self.drain.g.eq(tiles.g), self.drain.ty.eq(tiles.ty),
            self.drain.tx.eq(tiles.tx), self.drain.mg.eq(tiles.mg),
        ]
        issue = Signal()  # stage 0: an op is issued this cycle

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
                m.d.sync += [nk.eq(self.idx.count), kc.eq(0), r.eq(0), s.eq(0)]
                with m.If(self.full.bit_select(buf, 1)):
                    m.next = "RUN"
                with m.Else():
                    m.d.comb += self.load_stall.eq(1)
            with m.State("RUN"):
                m.d.comb += [issue.eq(1), self.w_en.eq(1), self.slot.en.eq((r == 0) & (s == 0))]
                m.d.sync += wp.eq(wp + 1)
                with m.If(s == c.s - 1):
                    m.d.sync += [s.eq(0), r.eq(r + 1)]
                    with m.If(r == c.r - 1):
                        m.d.sync += [r.eq(0), kc.eq(kc + 1), sp.eq(sp + 1)]
                        with m.If(kc == nk - 1):
                            m.d.comb += self.consumed.eq(1)
                            m.d.sync += [buf.eq(~buf), k.eq(k + 1)]
                            with m.If(k + 1 < n):
                                read_entry(k + 1)
                                m.next = "ENTRY"
                            with m.Else():
                                m.next = "TILE_END"
                with m.Else():
                    m.d.sync += s.eq(s + 1)
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
        m.d.sync += [self.op_valid.eq(issue), self.op_r.eq(r), self.op_s.eq(s), self.op_buf.eq(buf),
                     self.op_bank.eq(bank)]
        slot1 = self.slot.slot
        for b in range(2):
            with m.If(self.op_bank == b):
                m.d.comb += self.op_fresh.eq(~self.touched[b].bit_select(slot1, 1))
                with m.If(self.op_valid):
                    m.d.sync += self.touched[b].bit_select(slot1, 1).eq(1)
        return m
