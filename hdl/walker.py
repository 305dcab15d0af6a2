"""Tile iteration shared by the loader and the compute sequencer.

Both walk tiles in the same order (filter group outermost, then tile row, then tile column) and
both need the same bookkeeping: where the current group's index starts (``gbase``) and how many
filters it has (``mg``). One implementation, instantiated twice, keeps them from drifting apart; so
does :func:`header_states`, the states in which both spend ``golden.timing.HEADER_CYCLES`` on a tile's
group header.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig
from golden.timing import HEADER_CYCLES, STREAM_LATENCY

from .delay import require
from .layouts import config_layout, index_addr_bits


def header_states(m: Module, ent, *, restart: Callable[[], None], header: Callable[[], None],
                  wait: Callable[[], None] = lambda: None, before_wait: Callable[[], None] = lambda: None) -> None:
    """A walker's FSM states for a tile's group header: ``golden.timing.HEADER_CYCLES`` cycles, one each.

    ``TILE`` restarts the entry stream ``ent`` (and runs ``restart()``: the walker's other restarts and
    per-tile steps), then ``STREAM_LATENCY - 1`` states wait for the stream, the last named ``HWAIT``
    (``wait()`` runs there; ``before_wait()`` in the state before it), and in ``HEADER`` the header is at
    the stream's head: it is popped, and ``header()`` runs (and chooses the next state). Call inside the
    walker's ``m.FSM()``, after its ``IDLE``.
    """
    waits = STREAM_LATENCY - 1
    require("STREAM_LATENCY", STREAM_LATENCY, waits >= 1,
            "the walkers set up a tile (the loader its window's edges) while the stream's header is in flight")
    names = [f"HWAIT{k}" for k in range(1, waits)] + ["HWAIT"]
    states = ["TILE", *names, "HEADER"]
    require("HEADER_CYCLES", HEADER_CYCLES, len(states) == HEADER_CYCLES,
            "a walker spends a state on the restart, then the stream's latency, on a tile's header")
    for k, state in enumerate(states[:-1]):
        with m.State(state):
            if state == "TILE":
                m.d.comb += ent.restart.eq(1)
                restart()
            if state == "HWAIT":
                wait()
            if states[k + 1] == "HWAIT":
                before_wait()
            m.next = states[k + 1]
    with m.State("HEADER"):
        m.d.comb += ent.next.eq(1)
        header()


class TileCounter(wiring.Component):
    """Current tile ``(g, ty, tx)``; ``advance`` moves to the next one.

    ``n`` must hold the current group's entry count when ``advance`` is pulsed on its last tile: the
    next group's index then starts ``1 + n`` words later (header + entries). The walkers only ever ask
    whether a coordinate is 0 (to restart a running sum) or the last one, so those are the outputs,
    as flip-flops: ``x0, y0, g0`` (``tx``, ``ty``, ``g`` is 0) and ``last_in_group``, ``last``.

    Members
    -------
    cfg : In(config_layout(cfg))
        The latched layer configuration (tile and group counts).
    reset, advance : In(1)
        Back to the first tile; on to the next tile.
    n : In(count_bits)
        The current group's entry count (read when ``advance`` leaves the group's last tile).
    x0, y0, g0 : Out(1)
        The tile's column, row, group is the first.
    gbase : Out(index_addr_bits(cfg))
        The current group's first index word.
    mg : Out(count_bits)
        The current group's filter count.
    last_in_group, last : Out(1)
        The tile is its group's last; the run's last.
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "cfg": In(config_layout(cfg)), "reset": In(1), "advance": In(1), "n": In(cfg.count_bits),
            "x0": Out(1), "y0": Out(1), "g0": Out(1), "gbase": Out(index_addr_bits(cfg)),
            "mg": Out(cfg.count_bits), "last_in_group": Out(1), "last": Out(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        c: data.View = self.cfg
        # "last tile column / row / group" are flip-flops, updated with the counters (compares of the
        # counters against the configuration run in parallel with the advance decision), so the
        # sequencer's and loader's end-of-tile decisions start at a register
        # set up by ``reset`` (and ``init``), not by the domain's reset
        x_last, y_last, g_last = (Signal(reset_less=True) for _ in range(3))
        init = Signal()  # the cycle after reset: the latched configuration is valid
        m.d.sync += init.eq(self.reset)
        m.d.comb += [
            # every group but the last is full: no need to form M - g*acc_depth
            self.mg.eq(Mux(g_last, c.mg_last, cfg.acc_depth)),
            self.last_in_group.eq(y_last & x_last),
            self.last.eq(y_last & x_last & g_last),
        ]
        db = cfg.dim_bits
        tx, ty, g = (Signal(db, reset_less=True) for _ in range(3))
        with m.If(self.reset):
            # the configuration is latched in this same cycle: nothing here may depend on it
            m.d.sync += [g.eq(0), ty.eq(0), tx.eq(0), self.gbase.eq(0), self.x0.eq(1), self.y0.eq(1), self.g0.eq(1)]
        with m.Elif(init):
            m.d.sync += [x_last.eq(c.tiles_x == 1), y_last.eq(c.tiles_y == 1), g_last.eq(c.groups == 1)]
        with m.Elif(self.advance):
            with m.If(x_last):
                m.d.sync += [tx.eq(0), self.x0.eq(1), x_last.eq(c.tiles_x == 1)]
                with m.If(y_last):
                    m.d.sync += [ty.eq(0), self.y0.eq(1), y_last.eq(c.tiles_y == 1), g.eq(g + 1), self.g0.eq(0),
                                 g_last.eq(g + 2 == c.groups), self.gbase.eq(self.gbase + 1 + self.n)]
                with m.Else():
                    m.d.sync += [ty.eq(ty + 1), self.y0.eq(0), y_last.eq(ty + 2 == c.tiles_y)]
            with m.Else():
                m.d.sync += [tx.eq(tx + 1), self.x0.eq(0), x_last.eq(tx + 2 == c.tiles_x)]
        return m
