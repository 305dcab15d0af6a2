"""Reset copies: each subsystem is reset by a registered copy of the domain's reset of its own.

A board holds the design in reset until its PLL has locked (``hdl.board_top``), from one flip-flop.
Every resettable register on the die (FSM states, valid bits, the tile buffers' full flags) loads its
reset value from that flip-flop, so its net reaches thousands of loads across the die, and on the
ECP5 the route from it was the worst path of the wide preset's element build (the sequencer's
``full`` flag: 10.06 ns, 8.64 of them routing, 57 ps short of 100 MHz; ``docs/fpga.md``). Here the
domain's reset drives one flip-flop per subsystem (and the subsystem's own few registers at the top
level), and each subsystem runs in a local copy of the domain whose reset is that flip-flop: a tree
of two levels, whose first level the placer puts next to the subsystem.

A copy is one cycle behind the domain's reset: a subsystem leaves reset one cycle after the top
level does. Nothing reaches a subsystem in that cycle: the array's work starts with ``start``, which
the host raises after loading (the loads write memories, which have no reset), and a board holds
reset for 15 us. The copies are deliberate replicas (``hdl.replica.KEEP``), so synthesis does not merge
them back into one flip-flop.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Elaboratable, Module, ResetSignal, Signal

from .replica import KEEP


class ResetCopies:
    """Gives each named subsystem of ``m`` a copy of ``domain`` reset by a registered copy of its reset.

    ``copies(name, elaboratable)`` returns ``elaboratable`` running in the domain ``<domain>_<name>``
    (created on first use of ``name``, so several elaboratables can share one copy: a PE row), for
    ``m.submodules``; the elaboratable's ports are the same objects as before.
    """

    def __init__(self, m: Module, domain: str = "sync"):
        self._m, self._domain = m, domain
        self._made: set[str] = set()

    def __call__(self, name: str, elaboratable: Elaboratable) -> Elaboratable:
        local = f"{self._domain}_{name}"
        if name not in self._made:
            self._made.add(name)
            m = self._m
            m.domains += (cd := ClockDomain(local, local=True))
            rst = Signal(name=f"rst_{name}", init=1, reset_less=True, attrs=KEEP)
            m.d[self._domain] += rst.eq(ResetSignal(self._domain))
            m.d.comb += [cd.clk.eq(ClockSignal(self._domain)), cd.rst.eq(rst)]
        return DomainRenamer({self._domain: local})(elaboratable)
