"""Wide PEs (``V`` multiply lanes per PE), specified ahead of their RTL: issue rule, cycles, lane use.

With one MAC per PE per cycle every dataflow reaches about ``1/density``; with ``V`` lanes a cycle
issues up to ``V`` scheduled positions of **one kernel** ``W[m, c, :, :]`` (one filter slot, one
channel), their products summed into that slot's accumulator. Which positions a cycle can take is the
dataflow's unit structure (:class:`golden.dataflow.Unit`):

==========  ===========================================================================================
unit        cycles of one kernel with ``V`` lanes
==========  ===========================================================================================
KERNEL      ``ceil(n / V)`` for its ``n`` scheduled positions (``R*S``, or its channel's stride
            pattern), ``V`` at a time in schedule order: ``V = R*S`` is a kernel per cycle, ``V = S``
            a row per cycle (``dense``, ``kernel``, ``strided``)
ROW         ``k`` non-zero rows of ``S`` positions: ``ceil(k / floor(V/S))`` with ``V >= S`` (whole
            rows packed into a cycle), else ``k * ceil(S / V)`` (``vector``)
SINGLE      ``ceil(n / V)`` for its ``n`` non-zero weights (``element``): the lanes idle whenever
            ``n`` is not a multiple of ``V``, the compute cost of unstructured sparsity
==========  ===========================================================================================

:func:`predict` runs the exact timing recurrence of ``golden.timing`` with these MAC cycles and a
loader design (:class:`golden.timing.Loader`), so the design of the wide array (how fast its loader
must be) is chosen on the same model its RTL will be checked against. ``lane_ops`` counts the lanes
that carry a scheduled position (the RTL's active-lane counter); **lane utilization** = useful MACs /
(MAC cycles x V x PEs) (BRIEF §5).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .config import feed_for
from .dataflow import NO_PATTERN, Unit, dataflow_of
from .encode import EncodedLayer, _units, stride_pattern
from .metrics import useful_macs
from .timing import Counters, Loader, simulate

WIDE_FEED = feed_for(9, 4)
"""The loader and drain that keep ``V = 9`` lanes fed on a 4x4 array (``ArrayConfig`` fields, and its
default at ``V = 9``: ``golden.config.feed_for``): two rows
of a 3x3 window (``TW = 6``) per load cycle, four outputs per drain cycle. Chosen on this model by
``bench.lanes`` (the cheapest feed that meets issue 13's targets) and used for every wide array of the
benchmarks, the tests' headline checks and the ECP5 build (``docs/architecture.md``, "Wide PEs")."""


def kernel_cycles(unit: Unit, lengths: list[int], s: int, lanes: int) -> int:
    """MAC cycles of one kernel whose scheduled units have ``lengths`` positions each (see the table)."""
    if not lengths:
        return 0
    if unit is Unit.ROW:
        if lanes >= s:
            return -(-len(lengths) // (lanes // s))
        return len(lengths) * -(-s // lanes)
    if unit is Unit.SINGLE:
        return -(-len(lengths) // lanes)
    return sum(-(-n // lanes) for n in lengths)


def mac_cycles(enc: EncodedLayer, lanes: int) -> list[list[int]]:
    """MAC cycles of every channel entry (``[group][entry]``) with ``lanes`` lanes per PE."""
    ly, cfg = enc.layer, enc.cfg
    df = dataflow_of(cfg.dataflow)
    w = np.asarray(ly.weights, dtype=np.int64)
    out = []
    for g, ents in enumerate(enc.entries):
        wg = w[g * cfg.acc_depth:(g + 1) * cfg.acc_depth]
        row = []
        for c, _, _ in ents:
            pattern = stride_pattern(w[:, c]) if df.pattern else NO_PATTERN
            by_slot: dict[int, list[int]] = {}
            for slot, _, _, positions in _units(df, wg[:, c], pattern):
                by_slot.setdefault(slot, []).append(len(positions))
            row.append(sum(kernel_cycles(df.unit, lengths, ly.s, lanes) for lengths in by_slot.values()))
        out.append(row)
    return out


@functools.cache
def lane_taps(dataflow: str, max_kernel: int, lanes: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """Per lane, the kernel rows and the kernel columns it can ever read: ``((rows, cols), ...)``.

    The issue rule above fixes which positions a lane can be given, over every kernel size
    ``R, S <= max_kernel``, stride pattern and sparsity the encoder (``golden.encode._issues``) can
    produce: a structured unit puts few positions on each lane (``kernel`` at ``V = R*S``: lane ``l`` is
    ``divmod(l, S)`` for the three possible ``S``; ``vector``: column ``l % S``), an unstructured one
    almost any (``element``: lane ``l`` takes any position from the ``l``-th on). The tile gives each
    lane a read network over exactly these rows and columns (``hdl.tile``), so the structure of a
    dataflow shows up in its area; ``tests/golden/test_lanes.py`` checks the sets against the encoder's issues.
    """
    df = dataflow_of(dataflow)
    K, V = max_kernel, lanes
    taps: list[set[tuple[int, int]]] = [set() for _ in range(V)]
    for s in range(1, K + 1):
        n = K * s  # the positions of a K x S kernel: any R < K gives a prefix of them
        if df.unit is Unit.KERNEL:  # the j-th scheduled position goes to lane j % V
            walks = [(sigma, phi) for sigma in range(1, n + 1) for phi in range(sigma)] if df.pattern else [NO_PATTERN]
            for sigma, phi in walks:
                for j, p in enumerate(range(phi, n, sigma)):
                    taps[j % V].add(divmod(p, s))
        elif df.unit is Unit.ROW and V >= s:  # word row g (any kernel row from the g-th) on lanes gS .. gS+S-1
            for lane in range(V // s * s):
                g, col = divmod(lane, s)
                taps[lane].update((r, col) for r in range(g, K))
        elif df.unit is Unit.ROW:  # a row's columns V at a time, any kernel row
            for col in range(s):
                taps[col % V].update((r, col) for r in range(K))
        else:  # Unit.SINGLE: the a-th non-zero (a <= p) of a word goes to lane a % V
            for p in range(n):
                for lane in range(min(p, V - 1) + 1):
                    taps[lane].add(divmod(p, s))
    return tuple((tuple(sorted({r for r, _ in t})), tuple(sorted({c for _, c in t}))) for t in taps)


@dataclass(frozen=True)
class Prediction:
    """The model's numbers for one layer on a ``lanes``-wide array with a given loader."""

    lanes: int
    counters: Counters
    lane_ops: int  # lanes carrying a scheduled position, summed over the MAC cycles (per PE)
    useful_macs: int
    pes: int

    @property
    def cycles(self) -> int:
        return self.counters.busy_cycles

    @property
    def lane_utilization(self) -> float:
        """Useful MACs / (MAC cycles x V x PEs)."""
        slots = self.counters.mac_cycles * self.lanes * self.pes
        return self.useful_macs / slots if slots else 0.0

    @property
    def utilization(self) -> float:
        """Useful MACs / (cycles x V x PEs): the fraction of every multiplier's cycles that did useful work."""
        return self.useful_macs / (self.cycles * self.lanes * self.pes) if self.cycles else 0.0


def predict(enc: EncodedLayer, lanes: int, loader: Loader | None = None, drain_width: int | None = None) -> Prediction:
    """Cycles and counters of ``enc`` (encoded for its dataflow) on ``lanes``-wide PEs, with a loader
    design (default: the array's) and a drain writing ``drain_width`` outputs of a PE row per cycle
    (default: the array's)."""
    if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= enc.cfg.max_kernel ** 2:
        raise ValueError(f"lanes must be an integer in [1, max_kernel**2={enc.cfg.max_kernel ** 2}], not {lanes!r}")
    cycles = mac_cycles(enc, lanes)
    counters = simulate(enc, mac_cycles=cycles, loader=loader, drain_width=drain_width)
    tiles = enc.tiles_y * enc.tiles_x
    lane_ops = sum(m for ents in enc.entries for _, _, m in ents) * tiles
    return Prediction(lanes, counters, lane_ops, useful_macs(enc.layer), enc.cfg.pes)
