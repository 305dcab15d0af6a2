"""The PE's multiplier: ``p = a * b`` (signed), registered at its inputs and at its output.

Latency ``golden.timing.MULTIPLIER_LATENCY``: operands presented in cycle ``t`` are in the input
registers from ``t+1`` and their product in the output register from ``t+2`` (with a longer latency,
the product passes more output registers). The PE's pipeline is built around exactly these two
registers, because both FPGA families keep them inside the DSP block:

* generic (Verilog export, simulation, iCE40): plain registers around ``*``; on the iCE40, Yosys'
  ``ice40_dsp`` folds them into the ``SB_MAC16``;
* ECP5: Yosys maps ``*`` to a ``MULT18X18D`` *without* registers (it infers none) and would leave
  the three registers in the fabric, so the multiply's ~5 ns and the routing into and out of the
  DSP block would be one path. On an ECP5 platform the block is therefore instantiated with its
  own input and output registers (``REG_INPUTA/B_CLK``, ``REG_OUTPUT_CLK``), which nextpnr times as
  clocked ports.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Shape, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.timing import MULTIPLIER_LATENCY

from .delay import delay, require

ECP5_WIDTH = 18
"""Operand width of the ECP5 ``MULT18X18D``."""


def _is_ecp5(platform) -> bool:
    return getattr(platform, "family", None) == "ecp5"


class RegisteredMultiplier(wiring.Component):
    """``p`` = ``a * b`` of ``golden.timing.MULTIPLIER_LATENCY`` cycles ago; no reset (nothing reads ``p``
    before valid operands reached it).

    Members
    -------
    a : In(a_shape)
        Operand, signed.
    b : In(b_shape)
        Operand, signed.
    p : Out(signed(a_width + b_width))
        The exact product of the operands ``MULTIPLIER_LATENCY`` cycles earlier.
    """

    def __init__(self, a_shape: Shape, b_shape: Shape):
        a_shape, b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        if not (a_shape.signed and b_shape.signed):
            raise TypeError(f"multiplier operands must be signed, not {a_shape!r} and {b_shape!r}")
        self._widths = (a_shape.width, b_shape.width)
        super().__init__({"a": In(a_shape), "b": In(b_shape), "p": Out(signed(a_shape.width + b_shape.width))})

    def elaborate(self, platform) -> Module:
        m = Module()
        require("MULTIPLIER_LATENCY", MULTIPLIER_LATENCY, MULTIPLIER_LATENCY >= 1,
                "hdl.multiplier registers its operands at least")
        if _is_ecp5(platform) and max(self._widths) <= ECP5_WIDTH:
            require("MULTIPLIER_LATENCY", MULTIPLIER_LATENCY, MULTIPLIER_LATENCY == 2,
                    "the ECP5 MULT18X18D is built with its input and output registers")
            m.submodules.dsp = self._ecp5_dsp()
            return m
        # the operand registers, then the product's (``$like``: the name ``a1`` had before it was named,
        # kept so that the generated Verilog stays byte-identical)
        a1, b1 = (delay(m, port, 1, name=name, reset_less=True) for port, name in ((self.a, "$like"), (self.b, "b1")))
        p2 = delay(m, a1 * b1, MULTIPLIER_LATENCY - 1, name="p2", shape=self.p.shape(), reset_less=True)
        m.d.comb += self.p.eq(p2)
        return m

    def _ecp5_dsp(self) -> Instance:
        """A ``MULT18X18D`` with input and output registers on ``CLK0``, always enabled, never reset."""
        a = self.a.as_signed()
        b = self.b.as_signed()
        ports = {}
        for k in range(ECP5_WIDTH):  # sign-extended to the block's 18 bits
            ports[f"i_A{k}"] = a[min(k, len(a) - 1)]
            ports[f"i_B{k}"] = b[min(k, len(b) - 1)]
            ports[f"i_C{k}"] = Const(0, 1)
        for k in range(len(self.p)):
            ports[f"o_P{k}"] = self.p[k]
        for k in range(4):
            ports[f"i_CLK{k}"] = ClockSignal() if k == 0 else Const(0, 1)
            ports[f"i_CE{k}"] = Const(1 if k == 0 else 0, 1)
            ports[f"i_RST{k}"] = Const(0, 1)
        registers = {}
        for reg, clk in (("INPUTA", "CLK0"), ("INPUTB", "CLK0"), ("INPUTC", "NONE"), ("PIPELINE", "NONE"),
                         ("OUTPUT", "CLK0")):
            registers.update({f"p_REG_{reg}_CLK": clk, f"p_REG_{reg}_CE": "CE0", f"p_REG_{reg}_RST": "RST0"})
        return Instance(
            "MULT18X18D",
            i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
            p_GSR="DISABLED", p_RESETMODE="SYNC", p_MULT_BYPASS="DISABLED", p_CAS_MATCH_REG="FALSE",
            p_SOURCEB_MODE="B_SHIFT", p_HIGHSPEED_CLK="NONE",
            **{f"p_CLK{k}_DIV": "ENABLED" for k in range(4)},
            **registers, **ports)
