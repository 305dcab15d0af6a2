"""Processing element: one MAC per cycle into a double-banked accumulator file.

``fresh`` marks a slot's first MAC in a tile, which replaces the clear of the accumulator between
tiles, so the drain of the previous tile (port ``drain_addr``/``drain_data``, other bank) never
competes with a clear. The two banks are two memories with one read and one write port each: the
MACs of a tile read and write one bank while the drain reads the other (the sequencer starts a tile
in a bank only after the drain has emptied it), so each bank's read port serves whichever of the two
uses it. One read port per memory is what every RAM primitive has (a shared file with a MAC and a
drain read port is duplicated by synthesis), and a bank of ``acc_depth`` words fits LUT RAM, so a
board can keep the accumulators next to their PE instead of in a block RAM row.

The multiplier (:mod:`hdl.multiplier`) registers its operands and its product (inside the DSP
block). Everything else is the one generate-time choice ``ArrayConfig.acc_pipeline``:

* ``0``, smallest (latency 2): operands straight into the multiplier (stage 1), product at stage 2;
  the slot is read in stage 1 through a port transparent to the write, and ``(fresh ? 0 : acc) +
  product`` is formed and written back in stage 2. The RAM's clock-to-output, the adder and the
  RAM's write setup form one loop (on an ECP5 ~10 ns), and the activation's path from the tile's
  column mux ends at the DSP block's input register.
* ``1``, for fast clocks (latency 4): the operands are registered in the fabric next to the PE first
  (stage 1: the column mux and the route to the DSP block are one cycle, the DSP block's input
  register is the next), the product arrives in stage 3, and the sum is a **running sum**: kept in a
  register (``acc``), written back a cycle later (stage 4) and read ahead. An op that follows an op on
  the same slot continues the running sum (``cont``: a kernel's positions are consecutive MACs into
  one slot); otherwise it starts from ``start``, the slot as read in stage 2, or ``acc`` itself for a
  slot whose write-back the read missed (``fwd``). All selects are registered a stage early, so the
  accumulate loop is flip-flops → 2:1 mux → adder → flip-flop, without a RAM. Where the target has
  LUT RAM (the default, and the ECP5), the read address is registered per bank in stage 1 and the RAM
  read asynchronously in stage 2; the iCE40 has no LUT RAM, so there the bank is a block RAM read
  through its own register (issued in stage 1), and one more write-back (``fwd3``) is forwarded.

The drain's read takes :meth:`drain_latency` cycles: the RAM's register (``acc_pipeline`` 0) or the
registered read address and a read-data register next to the PE (1).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig
from golden.timing import ADDER_LEVELS_PER_STAGE, adder_tree_latency, pe_drain_latency, pe_latency

from .multiplier import LATENCY as MUL_LATENCY
from .multiplier import RegisteredMultiplier
from .replica import KEEP


class ProcessingElement(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        addr_bits = cfg.slot_bits + 1
        super().__init__({
            "valid": In(1), "fresh": In(1), "addr": In(addr_bits),
            "weight": In(signed(cfg.weight_bits)).array(cfg.lanes), "act": In(signed(cfg.act_bits)).array(cfg.lanes),
            "drain_addr": In(addr_bits), "drain_en": In(1), "drain_data": Out(signed(cfg.acc_bits)),
        })

    @staticmethod
    def latency(cfg: ArrayConfig) -> int:
        """Cycles from operands at the PE's inputs to their accumulator write taking effect
        (``golden.timing.pe_latency``, which the stages below are built to)."""
        return pe_latency(cfg)

    @staticmethod
    def drain_latency(cfg: ArrayConfig) -> int:
        """Cycles from ``drain_addr``/``drain_en`` to the matching ``drain_data`` (``golden.timing``)."""
        return pe_drain_latency(cfg)

    @staticmethod
    def _has_lutram(platform) -> bool:
        """Whether the target keeps small memories in LUT RAM (read asynchronously). The iCE40 has none:
        an asynchronously read memory would become flip-flops there, so its banks are block RAMs with
        their own read registers."""
        return getattr(platform, "family", None) != "iCE40"

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        # valid, fresh and address travel with the operands, in this PE's own registers (``KEEP``: every
        # PE computes the same control, and one merged copy would drive every PE's datapath, see
        # hdl.replica). No register here has a reset: nothing reads a data register before a valid op
        # wrote it, which lets synthesis put the operand and product registers inside the DSP block
        # (whose registers have no synchronous reset), and a valid bit left over from before a reset
        # only completes an accumulation the next layer overwrites (its first MAC per slot is
        # ``fresh``), so a reset net need not reach every PE.
        fast = bool(cfg.acc_pipeline)
        # with lanes, the control waits for the adder tree first: stage k below counts from there
        tree = adder_tree_latency(cfg)
        stages = self.latency(cfg) - tree
        valid = [self._delayed(m, self.valid, tree, "valid_t")] + [
            Signal(name=f"valid{k}", reset_less=True, attrs=KEEP) for k in range(1, stages + 1)]
        fresh_stages = 3 if fast else 2  # the sum's stage
        fresh = [self._delayed(m, self.fresh, tree, "fresh_t")] + [
            Signal(name=f"fresh{k}", reset_less=True, attrs=KEEP) for k in range(1, fresh_stages + 1)]
        addr = [self._delayed(m, self.addr, tree, "addr_t")] + [
            Signal.like(self.addr, name=f"addr{k}", reset_less=True, attrs=KEEP) for k in range(1, stages + 1)]
        m.d.sync += [valid[k].eq(valid[k - 1]) for k in range(1, stages + 1)]
        m.d.sync += [fresh[k].eq(fresh[k - 1]) for k in range(1, fresh_stages + 1)]
        m.d.sync += [addr[k].eq(addr[k - 1]) for k in range(1, stages + 1)]
        # per lane the operands (registered in the fabric first when fast), then the DSP block's two
        # registers; the lanes' products summed by the adder tree
        assert MUL_LATENCY == 2
        products = []
        for lane in range(cfg.lanes):
            pre = f"l{lane}_" if cfg.lanes > 1 else ""
            mul = RegisteredMultiplier(self.weight[lane].shape(), self.act[lane].shape())
            m.submodules[f"{pre}mul"] = mul
            if fast:
                weight, act = (Signal.like(port[lane], name=f"{pre}{name}_op", reset_less=True, attrs=KEEP)
                               for port, name in ((self.weight, "weight"), (self.act, "act")))
                m.d.sync += [weight.eq(self.weight[lane]), act.eq(self.act[lane])]
            else:
                weight, act = self.weight[lane], self.act[lane]
            m.d.comb += [mul.a.eq(weight), mul.b.eq(act)]
            products.append(mul.p)
        product = self._adder_tree(m, products)  # at stage 3 when fast, else 2 (after the tree's delay)

        sb = cfg.slot_bits
        # the accumulator file: bank b = memory b, its slot addressed by the low bits
        mems = [memory.Memory(shape=signed(cfg.acc_bits), depth=1 << sb, init=[]) for _ in range(2)]
        for b, mem in enumerate(mems):
            m.submodules[f"acc{b}"] = mem
        wps = [mem.write_port() for mem in mems]
        lutram = fast and self._has_lutram(platform)
        # each bank is read at stage 1 for the MAC, or for the drain (never the same bank)
        read_addr = [Mux(valid[1] & (addr[1][sb] == b), addr[1][:sb], self.drain_addr[:sb]) for b in range(2)]
        if lutram:  # read address registered per bank, read asynchronously a cycle later
            rps = [mem.read_port(domain="comb") for mem in mems]
            for b, rp in enumerate(rps):
                raddr = Signal(sb, name=f"raddr{b}", reset_less=True, attrs=KEEP)
                m.d.sync += raddr.eq(read_addr[b])
                m.d.comb += rp.addr.eq(raddr)
        else:  # through the RAM's register, transparent to the write of the op ahead when not fast
            rps = [mem.read_port(transparent_for=() if fast else (wps[b],)) for b, mem in enumerate(mems)]
            for b, rp in enumerate(rps):
                m.d.comb += [rp.addr.eq(read_addr[b]),
                             rp.en.eq((valid[1] & (addr[1][sb] == b)) | (self.drain_en & (self.drain_addr[sb] == b)))]
        # the drain's bank, a cycle later with the RAM's data
        drain_bank = Signal(reset_less=True, attrs=KEEP)
        m.d.sync += drain_bank.eq(self.drain_addr[sb])
        drained = Mux(drain_bank, rps[1].data, rps[0].data)
        if fast:  # registered next to the PE, which the drain's timing counts (drain_latency)
            drain_data = Signal(signed(cfg.acc_bits), name="drain_data_r", reset_less=True)
            m.d.sync += drain_data.eq(drained)
            m.d.comb += self.drain_data.eq(drain_data)
            write_stage, write_data = self._running_sum(m, valid, fresh, addr, rps, product, lutram)
        else:  # sum and write in stage 2
            m.d.comb += self.drain_data.eq(drained)
            total = Signal(signed(cfg.acc_bits))
            m.d.comb += total.eq(Mux(fresh[2], 0, Mux(addr[2][sb], rps[1].data, rps[0].data)) + product)
            write_stage, write_data = 2, total
        for b, wp in enumerate(wps):
            m.d.comb += [wp.addr.eq(addr[write_stage][:sb]), wp.data.eq(write_data),
                         wp.en.eq(valid[write_stage] & (addr[write_stage][sb] == b))]
        return m

    @staticmethod
    def _delayed(m: Module, value: Signal, cycles: int, name: str) -> Signal:
        """``value`` ``cycles`` cycles ago (this PE's own registers, see ``hdl.replica``)."""
        for k in range(cycles):
            reg = Signal.like(value, name=f"{name}{k}", reset_less=True, attrs=KEEP)
            m.d.sync += reg.eq(value)
            value = reg
        return value

    def _adder_tree(self, m: Module, products: list) -> Signal:
        """The sum of the lanes' ``products``, pairwise, registered after every
        ``ADDER_LEVELS_PER_STAGE`` levels and after the last (``golden.timing.adder_tree_latency``
        registers in all; none with one lane). Widths grow a bit per level, so the sum is exact; the
        accumulator then wraps it like any sum."""
        level, depth, registered = list(products), 0, True
        while len(level) > 1:
            level = [level[k] + level[k + 1] if k + 1 < len(level) else level[k] for k in range(0, len(level), 2)]
            depth += 1
            registered = depth % ADDER_LEVELS_PER_STAGE == 0 or len(level) == 1
            if registered:
                regs = [Signal(signed(len(v)), name=f"tree{depth}_{k}", reset_less=True) for k, v in enumerate(level)]
                m.d.sync += [reg.eq(v) for reg, v in zip(regs, level, strict=True)]
                level = regs
        assert depth == 0 or registered
        return level[0]

    def _running_sum(self, m: Module, valid: list, fresh: list, addr: list, rps: list, product,
                     lutram: bool) -> tuple:
        """``acc_pipeline`` 1: the running-sum accumulator; returns the write stage and data.

        Stage 2 loads ``start``: the slot as read, unless a write-back the read missed was on the same
        slot: the op two ahead's (``fwd``: its sum is ``acc`` now) or, where the block RAM's read was
        issued a cycle earlier, the op three ahead's (``fwd3``: its sum is ``acc_d``, ``acc`` a cycle
        ago). Stage 3 adds the product to ``acc`` (the op ahead was on the same slot, ``cont``), to
        ``start``, or to 0 (``fresh``). Stage 4 writes ``acc`` back.
        """
        cfg = self._cfg
        sb = cfg.slot_bits
        acc = Signal(signed(cfg.acc_bits), name="acc", reset_less=True)
        start = Signal(signed(cfg.acc_bits), name="start", reset_less=True)
        # registered a stage early: the op now at stage 2 follows the op at stage 3 (``cont``, for
        # stage 3); the op now at stage 1 meets the op at stage 3 (``fwd``) or 4 (``fwd3``), for stage 2
        cont = Signal(name="cont", reset_less=True, attrs=KEEP)
        fwd = Signal(name="fwd", reset_less=True, attrs=KEEP)
        m.d.sync += [cont.eq(valid[3] & (addr[3] == addr[2])), fwd.eq(valid[3] & (addr[3] == addr[1]))]
        read = Mux(addr[2][sb], rps[1].data, rps[0].data)
        if not lutram:
            fwd3 = Signal(name="fwd3", reset_less=True, attrs=KEEP)
            acc_d = Signal.like(acc, name="acc_d", reset_less=True)
            m.d.sync += [fwd3.eq(valid[4] & (addr[4] == addr[1])), acc_d.eq(acc)]
            read = Mux(fwd3, acc_d, read)
        m.d.sync += start.eq(Mux(fwd, acc, read))
        m.d.sync += acc.eq(Mux(fresh[3], 0, Mux(cont, acc, start)) + product)
        return 4, acc
