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

With ``dsp_packing`` 2 a PE may leave its multiplies to :mod:`hdl.shared_multipliers`, which serves two
neighbouring PEs from one DSP block per lane: it then takes the products instead of the operands, in the
stage its own multipliers would have delivered them (``golden.timing.pe_sum_stage`` after the op), so
everything from the adder tree on is the same PE.

The drain's read takes ``golden.timing.pe_drain_latency`` cycles: the RAM's register (``acc_pipeline``
0) or the registered read address and a read-data register next to the PE (1). Every register chain
here is as long as ``golden.timing`` says (``pe_latency``, ``pe_sum_stage``...); the accumulate loop's
read, forwarding and write-back are built for one read register and one running-sum register, and say
so at elaboration if the table asks for others.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig
from golden.timing import (
    ACC_READ_LATENCY,
    ADDER_LEVELS_PER_STAGE,
    MULTIPLIER_LATENCY,
    PE_DRAIN_DATA_LATENCY,
    PE_OPERAND_LATENCY,
    RUNNING_SUM_LATENCY,
    adder_tree_latency,
    pe_latency,
    pe_sum_stage,
    product_latency,
)

from .delay import delay, delay_line, require
from .multiplier import RegisteredMultiplier
from .replica import KEEP


def lane_operand(m: Module, cfg: ArrayConfig, value, name: str):
    """A lane's operand as its multiplier takes it: with ``acc_pipeline`` registered in the fabric first
    (``golden.timing.PE_OPERAND_LATENCY``: the tile's column mux and the route to the DSP block get a cycle of
    their own), else ``value`` itself. Shared by the PE's own multipliers and :mod:`hdl.shared_multipliers`."""
    if not cfg.acc_pipeline:
        return value
    return delay(m, value, PE_OPERAND_LATENCY, name=name, reset_less=True, attrs=KEEP)


class ProcessingElement(wiring.Component):
    """One PE: per cycle the sum of ``lanes`` products into one slot of a double-banked accumulator file.

    Members
    -------
    valid : In(1)
        The operands are an op to accumulate.
    fresh : In(1)
        The op is its slot's first in the tile: it replaces the slot instead of adding to it.
    addr : In(slot_bits + 1)
        The op's accumulator: the bank in the top bit, the slot below.
    weight : In(signed(weight_bits)).array(lanes)
        Each lane's weight.
    act : In(signed(act_bits)).array(lanes)
        Each lane's activation.
    drain_addr : In(slot_bits + 1)
        The drain's read: bank and slot (the bank the MACs do not use).
    drain_en : In(1)
        The drain reads ``drain_addr``.
    drain_data : Out(signed(acc_bits))
        The accumulator read ``golden.timing.pe_drain_latency`` cycles earlier.
    product : In(signed(act_bits + weight_bits)).array(lanes)
        Only with ``multipliers=False``, in place of ``weight`` and ``act``: each lane's product of the op
        ``golden.timing.pe_sum_stage`` cycles earlier (from :mod:`hdl.shared_multipliers`).
    """

    def __init__(self, cfg: ArrayConfig, *, multipliers: bool = True):
        self._cfg = cfg
        self._multipliers = multipliers
        addr_bits = cfg.slot_bits + 1
        if multipliers:
            operands = {"weight": In(signed(cfg.weight_bits)).array(cfg.lanes),
                        "act": In(signed(cfg.act_bits)).array(cfg.lanes)}
        else:
            operands = {"product": In(signed(cfg.act_bits + cfg.weight_bits)).array(cfg.lanes)}
        super().__init__({
            "valid": In(1), "fresh": In(1), "addr": In(addr_bits), **operands,
            "drain_addr": In(addr_bits), "drain_en": In(1), "drain_data": Out(signed(cfg.acc_bits)),
        })

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
        require("ACC_READ_LATENCY", ACC_READ_LATENCY, ACC_READ_LATENCY == 1,
                "hdl.pe reads a bank through its RAM's register or a registered read address")
        require("RUNNING_SUM_LATENCY", RUNNING_SUM_LATENCY, RUNNING_SUM_LATENCY == 1 or not fast,
                "hdl.pe forwards the write-backs of a running sum written a cycle after its register")
        # with lanes, the control waits for the adder tree first: stage k below counts from there; the
        # product is added in stage ``sum_stage``, and its slot read ``ACC_READ_LATENCY`` stages earlier,
        # with ``acc_pipeline`` one more (the running sum's start register)
        tree = adder_tree_latency(cfg)
        stages, sum_stage = pe_latency(cfg) - tree, pe_sum_stage(cfg)
        read_stage = sum_stage - ACC_READ_LATENCY - (1 if fast else 0)
        require("pe_sum_stage(cfg)", sum_stage, read_stage >= 0, "hdl.pe reads the slot before the product arrives")
        own = {"reset_less": True, "attrs": KEEP}
        valid_t, fresh_t, addr_t = (delay(m, getattr(self, name), tree, name=f"{name}_t{{k}}", first=0, **own)
                                    for name in ("valid", "fresh", "addr"))
        valid = delay_line(m, valid_t, stages, name="valid{k}", **own)
        fresh = delay_line(m, fresh_t, sum_stage, name="fresh{k}", **own)
        addr = delay_line(m, addr_t, stages, name="addr{k}", **own)
        # each lane's product (its own multipliers', or shared ones'), summed by the adder tree
        products = self._own_products(m) if self._multipliers else list(self.product)
        product = self._adder_tree(m, products)  # at stage 3 when fast, else 2 (after the tree's delay)

        sb = cfg.slot_bits
        # the accumulator file: bank b = memory b, its slot addressed by the low bits
        mems = [memory.Memory(shape=signed(cfg.acc_bits), depth=1 << sb, init=[]) for _ in range(2)]
        for b, mem in enumerate(mems):
            m.submodules[f"acc{b}"] = mem
        wps = [mem.write_port() for mem in mems]
        lutram = fast and self._has_lutram(platform)
        # each bank is read at the read stage for the MAC, or for the drain (never the same bank)
        rv, ra = valid[read_stage], addr[read_stage]
        read_addr = [Mux(rv & (ra[sb] == b), ra[:sb], self.drain_addr[:sb]) for b in range(2)]
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
                             rp.en.eq((rv & (ra[sb] == b)) | (self.drain_en & (self.drain_addr[sb] == b)))]
        # the drain's bank, with the RAM's data
        drain_bank = delay(m, self.drain_addr[sb], ACC_READ_LATENCY, name="drain_bank", **own)
        drained = Mux(drain_bank, rps[1].data, rps[0].data)
        if fast:  # registered next to the PE, which the drain's timing counts (``pe_drain_latency``)
            drain_data = delay(m, drained, PE_DRAIN_DATA_LATENCY, name="drain_data_r", shape=signed(cfg.acc_bits),
                               reset_less=True)
            m.d.comb += self.drain_data.eq(drain_data)
            write_stage, write_data = self._running_sum(m, valid, fresh, addr, rps, product, lutram, sum_stage)
        else:  # sum and write in the sum's stage
            m.d.comb += self.drain_data.eq(drained)
            total = Signal(signed(cfg.acc_bits))
            m.d.comb += total.eq(Mux(fresh[sum_stage], 0, Mux(addr[sum_stage][sb], rps[1].data, rps[0].data))
                                 + product)
            write_stage, write_data = sum_stage, total
        for b, wp in enumerate(wps):
            m.d.comb += [wp.addr.eq(addr[write_stage][:sb]), wp.data.eq(write_data),
                         wp.en.eq(valid[write_stage] & (addr[write_stage][sb] == b))]
        return m

    def _own_products(self, m: Module) -> list:
        """Per lane the operands (registered in the fabric first when fast, :func:`lane_operand`), the
        multiplier's registers (in the DSP block), and in an array with shared multipliers their products'
        register too (``golden.timing.product_latency``), so that this PE stays in lockstep with theirs."""
        cfg = self._cfg
        products = []
        for lane in range(cfg.lanes):
            pre = f"l{lane}_" if cfg.lanes > 1 else ""
            mul = RegisteredMultiplier(self.weight[lane].shape(), self.act[lane].shape())
            m.submodules[f"{pre}mul"] = mul
            weight, act = (lane_operand(m, cfg, port[lane], f"{pre}{name}_op")
                           for port, name in ((self.weight, "weight"), (self.act, "act")))
            m.d.comb += [mul.a.eq(weight), mul.b.eq(act)]
            products.append(delay(m, mul.p, product_latency(cfg) - MULTIPLIER_LATENCY, name=f"{pre}product",
                                  reset_less=True))
        return products

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
                     lutram: bool, s: int) -> tuple:
        """``acc_pipeline`` 1: the running-sum accumulator, adding in stage ``s``; returns the write stage
        and data. Stage numbers below are for ``s = 3`` (``golden.timing.pe_sum_stage``), the others move with it.

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
        m.d.sync += [cont.eq(valid[s] & (addr[s] == addr[s - 1])), fwd.eq(valid[s] & (addr[s] == addr[s - 2]))]
        read = Mux(addr[s - 1][sb], rps[1].data, rps[0].data)
        if not lutram:
            fwd3 = Signal(name="fwd3", reset_less=True, attrs=KEEP)
            acc_d = Signal.like(acc, name="acc_d", reset_less=True)
            m.d.sync += [fwd3.eq(valid[s + 1] & (addr[s + 1] == addr[s - 2])), acc_d.eq(acc)]
            read = Mux(fwd3, acc_d, read)
        m.d.sync += start.eq(Mux(fwd, acc, read))
        m.d.sync += acc.eq(Mux(fresh[s], 0, Mux(cont, acc, start)) + product)
        return s + RUNNING_SUM_LATENCY, acc
