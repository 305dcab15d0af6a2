"""The multipliers of two neighbouring PEs, one DSP block per lane (``ArrayConfig.dsp_packing`` 2).

Weights are broadcast: PEs ``(i, 2k)`` and ``(i, 2k + 1)`` multiply the same weight per lane by their own
activations, so one 18x18 multiply of the weight by both activations packed side by side gives both products
(:class:`hdl.packed_multiplier.PackedMultiplier`, the arithmetic in ``golden.dsp_packing``). This block is
what the two PEs' own multipliers would have been (``hdl.pe``, ``multipliers=False``): per lane the
operands, registered in the fabric first with ``acc_pipeline`` (:func:`hdl.pe.lane_operand`), then the
packed multiply with the multiplier's latency, then the corrected products' own registers
(``golden.timing.PACKED_PRODUCT_LATENCY``: the adder after the DSP block gets a cycle of its own instead of
sharing one with the PE's adder tree). Each PE gets its products in the stage ``golden.timing.pe_sum_stage``
says, and results do not change; the pipeline is one cycle deeper, which the timing model counts. What
changes is area: half the DSP blocks, for the correction's soft logic (docs/fpga.md, "Two int8 products
per DSP").
"""

from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig
from golden.timing import PACKED_PRODUCT_LATENCY

from .delay import delay
from .packed_multiplier import PackedMultiplier
from .pe import lane_operand


class SharedMultipliers(wiring.Component):
    """Per lane ``w * a1`` and ``w * a2`` for two PEs that share the weight, from one DSP multiply.

    Members
    -------
    weight : In(signed(weight_bits)).array(lanes)
        Each lane's weight, the same for both PEs (the array's row copy).
    act1, act2 : In(signed(act_bits)).array(lanes)
        Each lane's activation of the first PE (the even column) and of the second.
    product1, product2 : Out(signed(act_bits + weight_bits)).array(lanes)
        Each lane's products for the first and the second PE, ``golden.timing.pe_sum_stage`` cycles after
        their operands (the stage the PEs' adder trees take them in).
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        act, prod = signed(cfg.act_bits), signed(cfg.act_bits + cfg.weight_bits)
        super().__init__({
            "weight": In(signed(cfg.weight_bits)).array(cfg.lanes),
            "act1": In(act).array(cfg.lanes), "act2": In(act).array(cfg.lanes),
            "product1": Out(prod).array(cfg.lanes), "product2": Out(prod).array(cfg.lanes),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        for lane in range(cfg.lanes):
            pre = f"l{lane}_" if cfg.lanes > 1 else ""
            mul = PackedMultiplier(cfg.act_bits, cfg.weight_bits)
            m.submodules[f"{pre}mul"] = mul
            m.d.comb += [mul.w.eq(lane_operand(m, cfg, self.weight[lane], f"{pre}weight_op")),
                         mul.a1.eq(lane_operand(m, cfg, self.act1[lane], f"{pre}act1_op")),
                         mul.a2.eq(lane_operand(m, cfg, self.act2[lane], f"{pre}act2_op"))]
            for k, (product, port) in enumerate(((mul.p1, self.product1), (mul.p2, self.product2)), 1):
                m.d.comb += port[lane].eq(delay(m, product, PACKED_PRODUCT_LATENCY, name=f"{pre}p{k}",
                                                reset_less=True))
        return m
