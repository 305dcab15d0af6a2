"""Processing element: one MAC per cycle into a double-banked accumulator file.

Pipeline, counted from the operands at the PE's inputs (the array's per-row stage A registers):

* stage 1: operands registered (so the tile mux and the multiplier are in different cycles);
* stage 2: ``weight * act`` → product register (the DSP block's own registers hold operands and
  product);
* then ``(fresh ? 0 : acc) + product`` is formed and written back, wrapping to ``acc_bits``.

``fresh`` marks a slot's first MAC in a tile, which replaces the clear of the accumulator between
tiles, so the drain of the previous tile (port ``drain_addr``/``drain_data``, other bank) never
competes with a clear. The two banks are two memories with one read and one write port each: the
MACs of a tile read and write one bank while the drain reads the other (the sequencer starts a tile
in a bank only after the drain has emptied it), so each bank's read port serves whichever of the two
uses it. One read port per memory is what every RAM primitive has (a shared file with a MAC and a
drain read port is duplicated by synthesis), and a bank of ``acc_depth`` words fits LUT RAM, so a
board can keep the accumulators next to their PE instead of in a block RAM row (``hdl.synth``).

How ``acc`` (the slot's current value) is obtained is the one generate-time choice
(``ArrayConfig.acc_pipeline``):

* ``0``, read-modify-write through the RAM: the accumulator RAM is read in stage 1 through a port
  transparent to the write, and the sum is formed and written in stage 2, so back-to-back MACs into
  one slot see each other without forwarding. Smallest (latency 2), but the RAM's clock-to-output,
  the adder and the RAM's write setup form one loop: on an ECP5 that loop alone is ~10 ns.
* ``1``, registered read with forwarding: the RAM is read in stage 1 and its output registered,
  the sum is formed in stage 3, registered (``sum1``) and written back in stage 4. A read therefore
  misses the sums of the three ops ahead of it; they are kept (``sum1..sum3`` with their
  addresses) and the newest one with the same address replaces the RAM value. The hit flags are
  computed a stage early, so stage 3 is flip-flops → 5:1 mux → adder → flip-flop. Two more cycles of
  latency and ~5 ``acc_bits`` registers per PE buy an accumulate loop without a RAM in it.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig

from .replica import KEEP


class ProcessingElement(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        addr_bits = cfg.slot_bits + 1
        super().__init__({
            "valid": In(1), "fresh": In(1), "addr": In(addr_bits),
            "weight": In(signed(cfg.weight_bits)), "act": In(signed(cfg.act_bits)),
            "drain_addr": In(addr_bits), "drain_en": In(1), "drain_data": Out(signed(cfg.acc_bits)),
        })

    @staticmethod
    def latency(cfg: ArrayConfig) -> int:
        """Cycles from operands at the PE's inputs to their accumulator write taking effect."""
        return 4 if cfg.acc_pipeline else 2

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        # valid, fresh and address travel with the operands, in this PE's own registers (``KEEP``: every
        # PE computes the same control, and one merged copy would drive every PE's datapath, see
        # hdl.replica). No register here has a reset: nothing reads a data register before a valid op
        # wrote it, which lets Yosys put the operand and product registers inside the DSP block
        # (SB_MAC16 / MULT18X18D registers have no synchronous reset), and a valid bit left over from
        # before a reset only completes an accumulation the next layer overwrites (its first MAC per
        # slot is ``fresh``), so a reset net need not reach every PE.
        # (kept registers are never removed, so only the stages this accumulator uses are made)
        stages, fresh_stages = (5, 3) if cfg.acc_pipeline else (2, 2)
        valid = [self.valid] + [Signal(name=f"valid{k}", reset_less=True, attrs=KEEP) for k in range(1, stages + 1)]
        fresh = [self.fresh] + [Signal(name=f"fresh{k}", reset_less=True, attrs=KEEP)
                                for k in range(1, fresh_stages + 1)]
        addr = [self.addr] + [Signal.like(self.addr, name=f"addr{k}", reset_less=True, attrs=KEEP)
                              for k in range(1, stages + 1)]
        m.d.sync += [valid[k].eq(valid[k - 1]) for k in range(1, stages + 1)]
        m.d.sync += [fresh[k].eq(fresh[k - 1]) for k in range(1, fresh_stages + 1)]
        m.d.sync += [addr[k].eq(addr[k - 1]) for k in range(1, stages + 1)]
        weight1 = Signal.like(self.weight, reset_less=True, attrs=KEEP)
        act1 = Signal.like(self.act, reset_less=True)
        m.d.sync += [weight1.eq(self.weight), act1.eq(self.act)]
        product2 = Signal(signed(cfg.weight_bits + cfg.act_bits), reset_less=True)
        m.d.sync += product2.eq(weight1 * act1)

        sb = cfg.slot_bits
        acc_in = Signal(signed(cfg.acc_bits))  # the slot's value before this MAC, in the sum's stage
        total = Signal(signed(cfg.acc_bits))
        # the accumulator file: bank b = memory b, its slot addressed by the low bits
        mems = [memory.Memory(shape=signed(cfg.acc_bits), depth=1 << sb, init=[]) for _ in range(2)]
        for b, mem in enumerate(mems):
            m.submodules[f"acc{b}"] = mem
        wps = [mem.write_port() for mem in mems]
        rps = [mem.read_port(transparent_for=() if cfg.acc_pipeline else (wps[b],)) for b, mem in enumerate(mems)]
        # reads (stage 1): the MAC's bank for the MAC, the other for the drain (never the same bank)
        drain_bank = Signal(reset_less=True, attrs=KEEP)  # bank of the drain's read, a cycle later with its data
        m.d.sync += drain_bank.eq(self.drain_addr[sb])
        for b, rp in enumerate(rps):
            mac_here = valid[1] & (addr[1][sb] == b)
            m.d.comb += [rp.addr.eq(Mux(mac_here, addr[1][:sb], self.drain_addr[:sb])),
                         rp.en.eq(mac_here | (self.drain_en & (self.drain_addr[sb] == b)))]
        mac_data = Mux(addr[2][sb], rps[1].data, rps[0].data)  # stage 2: the MAC's read
        m.d.comb += self.drain_data.eq(Mux(drain_bank, rps[1].data, rps[0].data))
        if cfg.acc_pipeline:  # sum in stage 3, write in stage 4
            product3 = Signal.like(product2, reset_less=True)
            m.d.sync += product3.eq(product2)
            m.d.comb += total.eq(Mux(fresh[3], 0, acc_in) + product3)
            mem3 = Signal.like(acc_in, reset_less=True)
            m.d.sync += mem3.eq(mac_data)
            sums = [Signal.like(acc_in, name=f"sum{k}", reset_less=True) for k in range(1, 4)]  # 1, 2, 3 cycles ago
            m.d.sync += [sums[0].eq(total), sums[1].eq(sums[0]), sums[2].eq(sums[1])]
            # in stage 2: which of the ops at stages 3, 4, 5 (whose sums will be sum1..sum3) hit this address
            hits = [Signal(name=f"hit{k}", reset_less=True, attrs=KEEP) for k in range(1, 4)]
            m.d.sync += [hits[k].eq(valid[3 + k] & (addr[3 + k] == addr[2])) for k in range(3)]
            with m.If(hits[0]):
                m.d.comb += acc_in.eq(sums[0])
            with m.Elif(hits[1]):
                m.d.comb += acc_in.eq(sums[1])
            with m.Elif(hits[2]):
                m.d.comb += acc_in.eq(sums[2])
            with m.Else():
                m.d.comb += acc_in.eq(mem3)
            write_stage, write_data = 4, sums[0]
        else:  # read in stage 1 (transparent to the write of the op ahead), sum and write in stage 2
            m.d.comb += [acc_in.eq(mac_data), total.eq(Mux(fresh[2], 0, acc_in) + product2)]
            write_stage, write_data = 2, total
        for b, wp in enumerate(wps):
            m.d.comb += [wp.addr.eq(addr[write_stage][:sb]), wp.data.eq(write_data),
                         wp.en.eq(valid[write_stage] & (addr[write_stage][sb] == b))]
        return m
