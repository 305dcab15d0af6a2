"""Two PEs' products from one DSP multiply: ``p1 = w * a1`` and ``p2 = w * a2``, same latency as one multiplier.

Weights are broadcast, so two neighbouring PEs multiply the same weight by different activations; packing
both activations into the 18-bit port (``{a2, a1 sign-extended to K bits}``) makes one ``MULT18X18D``
compute both products, which overlap by a few bits that a small soft correction removes
(``golden.dsp_packing`` is the arithmetic and its derivation; this block builds it bit for bit).

Pipeline (``golden.timing.MULTIPLIER_LATENCY`` = 2 cycles, as :class:`hdl.multiplier.RegisteredMultiplier`):

* cycle ``t``: the packed operand goes to the DSP's input registers; the soft truncated product
  ``low = (w*a2) mod 2**m`` (6x6 bits for int8, from the operands' low bits) and ``s*w`` (``s = [a1 < 0]``)
  are formed and registered;
* cycle ``t+1``: the DSP multiplies; the offset ``T = 2**(m-1) - s*w - low`` is formed and registered;
* cycle ``t+2``: the DSP's output register holds ``P``; one ``n``-bit adder ``P[K+n-1:K] + T`` and slices give
  ``p1`` and ``p2`` (combinational after the DSP's output register, as the PE expects of a multiplier).

So only one adder follows the DSP, and the soft logic before it has a cycle of its own per stage.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.dsp_packing import ACT_BITS, PORT, WEIGHT_BITS, fits
from golden.timing import MULTIPLIER_LATENCY

from .delay import delay, require
from .multiplier import RegisteredMultiplier


def truncated_product(m: Module, w, a, bits: int, *, name: str) -> Signal:
    """``(w*a) mod 2**bits`` from the low ``bits`` bits of ``w`` and ``a``, as explicit partial products.

    Written as AND-and-shift-add, not ``*``: Yosys maps every ``$mul`` of 2x2 bits or more to a DSP block on
    the ECP5, and this product must stay in the fabric (the point is to save DSPs). Only the partial
    products' bits below ``bits`` are formed (the truncated low half: ~bits**2/2 ANDs), and each sum is
    cut to ``bits`` bits so no adder is wider than the result.
    """
    acc = Const(0, bits)
    for i in range(bits):
        partial = w[:bits - i] & a[i].replicate(bits - i)  # bit i of a times w, shifted by i, cut to bits
        acc = (acc + Cat(Const(0, i), partial))[:bits]
    low = Signal(bits, name=name)
    m.d.comb += low.eq(acc)
    return low


class PackedMultiplier(wiring.Component):
    """``p1 = w * a1`` and ``p2 = w * a2`` of ``golden.timing.MULTIPLIER_LATENCY`` cycles ago, from one DSP
    multiply (:class:`hdl.multiplier.RegisteredMultiplier` of the packed 18-bit operand by ``w``) and a soft
    correction (``golden.dsp_packing``); no reset, like the multiplier it replaces.

    ``act_bits`` and ``weight_bits`` must pack into the 18-bit port (``golden.dsp_packing.fits``, which raises
    ``ValueError`` otherwise: at most 8-bit activations with 8-bit weights).

    Members
    -------
    w : In(signed(weight_bits))
        The weight both products share (broadcast to the two PEs).
    a1 : In(signed(act_bits))
        The first PE's activation, signed.
    a2 : In(signed(act_bits))
        The second PE's activation, signed.
    p1 : Out(signed(act_bits + weight_bits))
        ``w * a1`` of the operands ``MULTIPLIER_LATENCY`` cycles earlier, exact.
    p2 : Out(signed(act_bits + weight_bits))
        ``w * a2`` of the same operands, exact.
    """

    def __init__(self, act_bits: int = ACT_BITS, weight_bits: int = WEIGHT_BITS):
        self.plan = fits(act_bits, weight_bits, PORT)
        n = self.plan.product_bits
        super().__init__({"w": In(signed(weight_bits)), "a1": In(signed(act_bits)), "a2": In(signed(act_bits)),
                          "p1": Out(signed(n)), "p2": Out(signed(n))})

    def elaborate(self, platform) -> Module:
        m = Module()
        plan = self.plan
        n, k, ov = plan.product_bits, plan.k, plan.overlap
        require("MULTIPLIER_LATENCY", MULTIPLIER_LATENCY, MULTIPLIER_LATENCY >= 1,
                "hdl.packed_multiplier registers its operands at least, like hdl.multiplier")
        # the DSP product: {a2, a1 sign-extended to k bits} x w (a concatenation: no adder before the DSP)
        m.submodules.dsp = dsp = RegisteredMultiplier(signed(PORT), self.w.shape())
        a1_field = Signal(signed(k), name="a1_field")
        m.d.comb += [a1_field.eq(self.a1), dsp.a.eq(Cat(a1_field, self.a2)), dsp.b.eq(self.w)]
        # the soft correction, alongside the DSP: stage 1 (the operand cycle) forms the truncated product and
        # s*w, stage 2 (the multiply cycle) the offset T from their registers, so that the one adder after the
        # DSP's output register reads registers only (forming 2**(m-1) - s*w in stage 1 instead, or the
        # truncated product as an adder tree, measured slower and larger on the ECP5)
        first = 1 if MULTIPLIER_LATENCY >= 2 else 0
        sw = delay(m, Mux(self.a1[-1], self.w, 0), first, name="sw", reset_less=True)  # s*w, s = [a1 < 0]
        if plan.soft:
            low = delay(m, truncated_product(m, self.w, self.a2, ov, name="low0"), first, name="low",
                        reset_less=True)
            offset = Const(1 << (ov - 1)) - sw - low  # T = 2**(m-1) - s*w - low (golden.dsp_packing.correction)
        else:
            offset = -sw
        # initial values: the correction of all-zero operands, so that p1 = p2 = 0 from power-up on
        offset = delay(m, offset, MULTIPLIER_LATENCY - first, name="offset", init=(1 << (ov - 1)) if plan.soft else 0,
                       reset_less=True)
        p = dsp.p
        field = p[k:k + n]  # P[k+n-1:k]: the upper product, plus the overlap and the cross term
        total = Signal(n, name="total")
        if plan.soft:
            low_out = delay(m, low, MULTIPLIER_LATENCY - first, name="low_out", reset_less=True)
            m.d.comb += [
                total.eq(field + offset),  # = (w*a1 + 2**(n-1))[n-1:k] and (w*a2 >> m), side by side
                self.p1.eq(Cat(p[:k], total[:ov - 1], ~total[ov - 1])),  # the bias 2**(n-1) removed: top bit flipped
                self.p2.eq(Cat(low_out, total[ov:])),
            ]
        else:
            m.d.comb += [
                total.eq(field + offset + p[n - 1]),  # + p[n-1]: undo the low product's sign extension
                self.p1.eq(p[:n]),
                self.p2.eq(total),
            ]
        return m
