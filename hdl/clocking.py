"""The design clock of a board build: the oscillator itself, or a PLL set as close as possible.

Pure arithmetic over each family's PLL limits (no gateware): :func:`plan_clock` picks the
parameters, and :class:`hdl.board_top.BoardTop` instantiates the primitive with them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClockPlan:
    """The design clock: the board oscillator itself, or a PLL output (``pll`` = primitive parameters)."""

    freq_hz: float
    pll: dict | None = None


def ice40_pll(f_in: float, f_out: float) -> tuple[dict, float]:
    """``SB_PLL40_PAD`` parameters (simple feedback) closest to ``f_out``; same search as ``icepll``."""
    best = None
    for divr in range(16):
        pfd = f_in / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                f = vco / 2 ** divq
                if not 16e6 <= f <= 275e6:
                    continue
                if best is None or abs(f - f_out) < abs(best[1] - f_out):
                    rng = next(i for i, top in enumerate((17e6, 26e6, 44e6, 66e6, 101e6, float("inf")), 1)
                               if pfd < top)
                    best = (dict(DIVR=divr, DIVF=divf, DIVQ=divq, FILTER_RANGE=rng), f)
    if best is None or abs(best[1] - f_out) > 0.1 * f_out:
        raise ValueError(f"the iCE40 PLL cannot make {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz "
                         f"(its output range is 16-275 MHz)")
    return best


def ecp5_pll(f_in: float, f_out: float) -> tuple[dict, float]:
    """``EHXPLLL`` parameters (feedback from CLKOP) closest to ``f_out``, VCO nearest 600 MHz."""
    best = None
    for clki in range(1, 129):
        pfd = f_in / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb in range(1, 81):
            f = pfd * clkfb
            if not 3.125e6 <= f <= 400e6:
                continue
            divs = [d for d in range(1, 129) if 400e6 <= f * d <= 800e6]
            if not divs:
                continue
            clkop = min(divs, key=lambda d: abs(f * d - 600e6))
            if best is None or abs(f - f_out) < abs(best[1] - f_out):
                best = (dict(CLKI_DIV=clki, CLKFB_DIV=clkfb, CLKOP_DIV=clkop, CLKOP_CPHASE=clkop - 1), f)
    if best is None:
        raise ValueError(f"the ECP5 PLL cannot make {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz")
    return best


def plan_clock(family: str, osc_hz: float, requested_hz: float) -> ClockPlan:
    """Run from the oscillator when it is the requested clock, else from a PLL set as close as possible."""
    if abs(requested_hz - osc_hz) < 1:
        return ClockPlan(osc_hz)
    params, f = (ice40_pll if family == "iCE40" else ecp5_pll)(osc_hz, requested_hz)
    return ClockPlan(f, params)
