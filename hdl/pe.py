"""Processing element: one MAC per cycle into a double-banked accumulator file.

Pipeline, counted from the array's stage 1 (operands valid: weight buffer data and tile mux output):

* stage 1: operands registered (so the tile mux and the multiplier are in different cycles);
* stage 2: ``weight * act`` → product register (maps onto a DSP block with its registers); the
  accumulator read address ``addr`` is presented in the same cycle (sync read, transparent to the write);
* stage 3: ``(fresh ? 0 : acc) + product`` is written back, wrapping to ``acc_bits``.

Because the read port is transparent to the write port, back-to-back MACs into the same slot see
each other's results: the file needs no stall and no forwarding logic. ``fresh`` marks the first
MAC of a slot in a tile, which replaces the clear of the accumulator between tiles, so the drain of
the previous tile (port ``drain_addr``/``drain_data``, other bank) never competes with the clear.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig


class ProcessingElement(wiring.Component):
    LATENCY = 3
    """Cycles from operands at stage 1 to the accumulator write taking effect."""

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        addr_bits = cfg.slot_bits + 1
        super().__init__({
            "valid": In(1), "fresh": In(1), "addr": In(addr_bits),
            "weight": In(signed(cfg.weight_bits)), "act": In(signed(cfg.act_bits)),
            "drain_addr": In(addr_bits), "drain_en": In(1), "drain_data": Out(signed(cfg.acc_bits)),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        depth = 2 << cfg.slot_bits  # bank bit on top of the slot
        m.submodules.acc = acc = memory.Memory(shape=signed(cfg.acc_bits), depth=depth, init=[])
        wp = acc.write_port()
        rp = acc.read_port(transparent_for=(wp,))
        dp = acc.read_port()

        # stage 1: operand registers
        weight1, act1 = Signal.like(self.weight), Signal.like(self.act)
        valid1, fresh1 = Signal(), Signal()
        addr1 = Signal.like(self.addr)
        m.d.sync += [weight1.eq(self.weight), act1.eq(self.act), valid1.eq(self.valid), fresh1.eq(self.fresh),
                     addr1.eq(self.addr)]
        # stage 2: product register
        product = Signal(signed(cfg.weight_bits + cfg.act_bits))
        valid2, fresh2 = Signal(), Signal()
        addr2 = Signal.like(self.addr)
        m.d.sync += [product.eq(weight1 * act1), valid2.eq(valid1), fresh2.eq(fresh1), addr2.eq(addr1)]
        m.d.comb += [rp.addr.eq(addr2), rp.en.eq(valid2)]
        # stage 3
        product3 = Signal.like(product)
        valid3, fresh3 = Signal(), Signal()
        m.d.sync += [product3.eq(product), valid3.eq(valid2), fresh3.eq(fresh2), wp.addr.eq(addr2)]
        base = Signal(signed(cfg.acc_bits))
        m.d.comb += [
            base.eq(rp.data & ~fresh3.replicate(cfg.acc_bits)),
            wp.data.eq(base + product3),
            wp.en.eq(valid3),
            dp.addr.eq(self.drain_addr), dp.en.eq(self.drain_en), self.drain_data.eq(dp.data),
        ]
        return m
