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
* ``1``, running sum: the sum is kept in a register (``acc``) and written back to the RAM a cycle
  later, every cycle; the RAM is read ahead (stage 1, asynchronously, into the register ``start``)
  for the op after next. An op that follows an op on the same slot continues the running sum
  (``cont``: a kernel's positions are consecutive MACs into one slot); otherwise it starts from
  ``start``, which takes ``acc`` instead of the RAM value when the op two ahead, whose write is not
  in the RAM yet, was on the same slot (``fwd``). Both flags are registered a stage early, so the
  accumulate loop is flip-flops → 2:1 mux → adder → flip-flop and no RAM is in it. Latency 3; two
  ``acc_bits`` registers (and the drain's read register) per PE.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig

from .multiplier import LATENCY as MUL_LATENCY
from .multiplier import RegisteredMultiplier
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
        return 3 if cfg.acc_pipeline else 2

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
        stages = 3 if cfg.acc_pipeline else 2
        valid = [self.valid] + [Signal(name=f"valid{k}", reset_less=True, attrs=KEEP) for k in range(1, stages + 1)]
        fresh = [self.fresh] + [Signal(name=f"fresh{k}", reset_less=True, attrs=KEEP) for k in (1, 2)]
        addr = [self.addr] + [Signal.like(self.addr, name=f"addr{k}", reset_less=True, attrs=KEEP)
                              for k in range(1, stages + 1)]
        m.d.sync += [valid[k].eq(valid[k - 1]) for k in range(1, stages + 1)]
        m.d.sync += [fresh[k].eq(fresh[k - 1]) for k in (1, 2)]
        m.d.sync += [addr[k].eq(addr[k - 1]) for k in range(1, stages + 1)]
        # stages 1 and 2: the operand and product registers, inside the DSP block (hdl.multiplier)
        m.submodules.mul = mul = RegisteredMultiplier(self.weight.shape(), self.act.shape())
        assert MUL_LATENCY == 2
        m.d.comb += [mul.a.eq(self.weight), mul.b.eq(self.act)]
        product2 = mul.p

        sb = cfg.slot_bits
        # the accumulator file: bank b = memory b, its slot addressed by the low bits
        mems = [memory.Memory(shape=signed(cfg.acc_bits), depth=1 << sb, init=[]) for _ in range(2)]
        for b, mem in enumerate(mems):
            m.submodules[f"acc{b}"] = mem
        wps = [mem.write_port() for mem in mems]
        lutram = cfg.acc_pipeline and self._has_lutram(platform)
        if lutram:  # read asynchronously in stage 1, into registers of this PE
            rps = [mem.read_port(domain="comb") for mem in mems]
            read_stage = 1
        else:  # read through the RAM's own register (stage 1 with acc_pipeline 0, else stage 0)
            rps = [mem.read_port(transparent_for=() if cfg.acc_pipeline else (wps[b],)) for b, mem in enumerate(mems)]
            read_stage = 0 if cfg.acc_pipeline else 1
        # the MAC's bank for the MAC, the other for the drain (never the same bank)
        for b, rp in enumerate(rps):
            mac_here = valid[read_stage] & (addr[read_stage][sb] == b)
            m.d.comb += rp.addr.eq(Mux(mac_here, addr[read_stage][:sb], self.drain_addr[:sb]))
            if not lutram:
                m.d.comb += rp.en.eq(mac_here | (self.drain_en & (self.drain_addr[sb] == b)))
        if lutram:  # the drain's read, registered here
            drain_data = Signal(signed(cfg.acc_bits), name="drain_data_r", reset_less=True)
            m.d.sync += drain_data.eq(Mux(self.drain_addr[sb], rps[1].data, rps[0].data))
            m.d.comb += self.drain_data.eq(drain_data)
        else:  # the RAM's registered data, the drain's bank a cycle after its request
            drain_bank = Signal(reset_less=True, attrs=KEEP)
            m.d.sync += drain_bank.eq(self.drain_addr[sb])
            m.d.comb += self.drain_data.eq(Mux(drain_bank, rps[1].data, rps[0].data))
        if cfg.acc_pipeline:
            write_stage, write_data = self._running_sum(m, valid, fresh, addr, rps, product2, lutram)
        else:  # read in stage 1 (transparent to the write of the op ahead), sum and write in stage 2
            total = Signal(signed(cfg.acc_bits))
            m.d.comb += total.eq(Mux(fresh[2], 0, Mux(addr[2][sb], rps[1].data, rps[0].data)) + product2)
            write_stage, write_data = 2, total
        for b, wp in enumerate(wps):
            m.d.comb += [wp.addr.eq(addr[write_stage][:sb]), wp.data.eq(write_data),
                         wp.en.eq(valid[write_stage] & (addr[write_stage][sb] == b))]
        return m

    @staticmethod
    def _has_lutram(platform) -> bool:
        """Whether the target keeps small memories in LUT RAM (read asynchronously). The iCE40 has none:
        an asynchronously read memory would become flip-flops there, so its banks are block RAMs with
        their own read registers."""
        return getattr(platform, "family", None) != "iCE40"

    def _running_sum(self, m: Module, valid: list, fresh: list, addr: list, rps: list, product2,
                     lutram: bool) -> tuple:
        """``acc_pipeline`` 1: the running-sum accumulator; returns the write stage and data.

        Stage 2 adds the product to ``acc`` (the op ahead was on the same slot, ``cont``) or to
        ``start`` (or to 0 on a slot's first MAC in the tile); stage 3 writes ``acc`` back. ``start``
        is the op's slot as read in stage 1 (LUT RAM, asynchronously) or stage 0 (block RAM, through
        its register), or, for a slot written back after that read, the running sum itself: ``acc``
        for the op two ahead (``fwd``), its previous value ``acc_d`` for the op three ahead (``fwd3``,
        block RAM only). Every select is registered a stage early.
        """
        cfg = self._cfg
        sb = cfg.slot_bits
        acc = Signal(signed(cfg.acc_bits), name="acc", reset_less=True)
        start = Signal(signed(cfg.acc_bits), name="start", reset_less=True)
        # the op now at stage 1 follows the op at stage 2 on the same slot (``cont``, for stage 2); the op
        # now at stage 0 meets the op at stage 2 (``fwd``) or 3 (``fwd3``), for stage 1
        cont = Signal(name="cont", reset_less=True, attrs=KEEP)
        fwd = Signal(name="fwd", reset_less=True, attrs=KEEP)
        m.d.sync += [cont.eq(valid[2] & (addr[2] == addr[1])), fwd.eq(valid[2] & (addr[2] == addr[0]))]
        read = Mux(addr[1][sb], rps[1].data, rps[0].data)
        if not lutram:
            fwd3 = Signal(name="fwd3", reset_less=True, attrs=KEEP)
            acc_d = Signal.like(acc, name="acc_d", reset_less=True)
            m.d.sync += [fwd3.eq(valid[3] & (addr[3] == addr[0])), acc_d.eq(acc)]
            read = Mux(fwd3, acc_d, read)
        m.d.sync += start.eq(Mux(fwd, acc, read))
        m.d.sync += acc.eq(Mux(fresh[2], 0, Mux(cont, acc, start)) + product2)
        return 3, acc
