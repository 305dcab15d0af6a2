"""The accelerator on a board: the UART host bridge (:mod:`hdl.bridge`) with the board's clock, reset and pins.

The host side of the bridge (sessions, serial and simulated links, the ``run`` command) is the
:mod:`host` package: ``python -m host.board run``; the board files are :mod:`hdl.boards`, the PLL
maths :mod:`hdl.clocking`.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from golden.config import ArrayConfig

from .boards import BoardSpec
from .bridge import HostBridge
from .clocking import ClockPlan


class BoardTop(Elaboratable):
    """Bridge + accelerator on a board: clock (PLL unless the oscillator is the requested clock),
    power-on reset, the USB-UART, status LEDs and the board's extra pin settings."""

    def __init__(self, cfg: ArrayConfig, spec: BoardSpec, *, clock: ClockPlan, baud: int):
        self.spec = spec
        self.clock = clock
        self.bridge = HostBridge(cfg, clk_freq=clock.freq_hz, baud=baud, word_register=spec.replicate)

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.clock.pll is not None:
            self._pll_domain(m, platform)
        uart = platform.request("uart", 0, dir="-")  # flow-control lines (ULX3S) stay unused
        m.submodules.bridge = br = self.bridge
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [br.rx.eq(rx.i), tx.o.eq(br.tx)]
        for what, (name, number) in self.spec.leds.items():
            m.submodules[f"led_{what}"] = led = io.Buffer("o", platform.request(name, number, dir="-"))
            m.d.comb += led.o.eq(getattr(br, what))
        for name, number, sub in self.spec.drive_high:
            pins = platform.request(name, number, dir="-")  # the other subsignals stay unused
            m.submodules[f"{name}_{sub}"] = pin = io.Buffer("o", getattr(pins, sub))
            m.d.comb += pin.o.eq(1)
        return m

    def _pll_domain(self, m: Module, platform) -> None:
        """``sync`` from the PLL, held in reset until the PLL has locked and 15 us have passed.

        The wait also covers the iCE40 block RAMs, which read as zero for ~3 us after configuration.

        ``pll_clk`` carries the design's clock constraint, so it is kept (``keep``): nextpnr finds a
        constraint's net by the names the netlist keeps, and in the flattened design Yosys kept only
        ``bridge.accel.array.clk`` of the clock net's names, so nextpnr ignored the constraint ("net
        'pll_clk' does not exist") and timed the clock at what it derived through the PLL instead.
        """
        pll_clk = Signal(name="pll_clk", attrs={"keep": 1})
        lock, lock_s = Signal(name="pll_lock"), Signal(name="pll_lock_s")
        clk_pin = platform.request(platform.default_clk, dir="-")
        p = self.clock.pll
        if platform.family == "iCE40":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"], p_FILTER_RANGE=p["FILTER_RANGE"],
                i_PACKAGEPIN=clk_pin.io, i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=pll_clk, o_LOCK=lock)
        else:
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_pin)
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{platform.default_clk_frequency / 1e6:g}",
                a_FREQUENCY_PIN_CLKOP=f"{self.clock.freq_hz / 1e6:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", **{f"p_{k}": v for k, v in p.items()},
                i_RST=0, i_STDBY=0, i_CLKI=clk_buf.i, i_CLKFB=pll_clk, i_PHASESEL0=0, i_PHASESEL1=0,
                i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=pll_clk, o_LOCK=lock)
        m.domains.por = ClockDomain(reset_less=True, local=True)
        m.domains.sync = cd_sync = ClockDomain()
        m.d.comb += [ClockSignal("por").eq(pll_clk), cd_sync.clk.eq(pll_clk)]
        m.submodules.lock_sync = FFSynchronizer(lock, lock_s, o_domain="por")
        delay = int(15e-6 * self.clock.freq_hz)
        timer = Signal(range(delay + 1))
        # ``rst`` is a flip-flop (the reset net's huge fan-out starts there, not at a compare) and is also
        # the timer's enable, so the timer's own decision is flip-flops too: with "count while
        # timer != delay" the compare sat next to ``rst`` at the array's centre and its result came back
        # to the timer, the ECP5 8x8 build's worst path (10.3 ns)
        rst = Signal(init=1)
        with m.If(~lock_s):
            m.d.por += [timer.eq(0), rst.eq(1)]
        with m.Elif(rst):
            m.d.por += [timer.eq(timer + 1), rst.eq(timer != delay - 1)]
        m.d.comb += cd_sync.rst.eq(rst)
        platform.add_clock_constraint(pll_clk, self.clock.freq_hz)
