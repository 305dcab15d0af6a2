"""The dataflow contract as data: what each ``--sparsity`` schedules, stores and pairs with.

Every place that differs between dataflows reads it from here: the encoder (``golden.encode``), the
timing model, the index decoder and sequencer (``hdl/``), the benchmarks' pruning pairing and the
index-word layouts. Adding a dataflow means adding a :class:`Dataflow` row, not an ``if`` in each of
them.

A dataflow schedules **units**: runs of weights of one filter slot and one channel (see
``golden.encode``). :class:`Unit` says what one unit covers.

The index words' layouts follow from a dataflow's row (``golden.words``: ``chan_word``, ``unit_word``,
which read :attr:`Dataflow.pattern`, :attr:`Dataflow.unit_position` and :func:`unit_groups`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config imports this module
    from .config import ArrayConfig


def bits_for(n: int) -> int:
    """Bits needed to hold the unsigned values ``0 .. n`` (at least 1)."""
    return max(1, int(n).bit_length())


class Unit(enum.Enum):
    """What one scheduled unit covers."""

    KERNEL = "kernel"  # a kernel's positions, stepping by its channel's stride pattern (NO_PATTERN: every one)
    ROW = "row"  # one kernel row: S positions from column 0
    SINGLE = "single"  # one weight at its own (r, s)


@dataclass(frozen=True)
class Dataflow:
    """One dataflow: its schedule, its index and the pruning granularity that matches it.

    Attributes
    ----------
    name : the ``--sparsity`` name.
    unit : what a scheduled unit covers.
    skips_zero_units : whether an all-zero unit is left out of the schedule (``dense``: never).
    indexed : whether an index is stored (``dense`` derives its schedule from counters).
    pattern : whether channel entries carry a stride pattern ``(phase, step)`` (``strided``).
    unit_position : what a unit-index word names besides the slot: its start row (``r``) and column
        (``s``); with lanes one per row or weight the unit word's cycle issues (:func:`unit_groups`).
    pruning : the ``golden.prune`` granularity whose zeros this dataflow names (None: the baseline).
    summary : one line for the README and ``--help``.
    """

    name: str
    unit: Unit
    skips_zero_units: bool
    indexed: bool
    pattern: bool
    unit_position: tuple[str, ...]
    pruning: str | None
    summary: str


DATAFLOW_TABLE: dict[str, Dataflow] = {d.name: d for d in (
    Dataflow("dense", Unit.KERNEL, False, False, False, (), None, "every kernel, every position"),
    Dataflow("kernel", Unit.KERNEL, True, True, False, (), "kernel", "non-zero kernels W[m,c,:,:]"),
    Dataflow("vector", Unit.ROW, True, True, False, ("r",), "vector", "non-zero kernel rows W[m,c,r,:]"),
    Dataflow("strided", Unit.KERNEL, True, True, True, (), "strided",
             "non-zero kernels at their channel's stride-pattern positions"),
    Dataflow("element", Unit.SINGLE, True, True, False, ("r", "s"), "element", "non-zero weights"),
)}
"""Every dataflow the generator builds, by name."""

EXPLOITED_BY: dict[str, tuple[str, str]] = {
    **{d.pruning: (d.name, "its own dataflow") for d in DATAFLOW_TABLE.values() if d.pruning},
    "block": ("kernel", "a TETRIS block zeroes whole kernels, which the kernel dataflow skips"),
    "balanced": ("element", "at most k non-zero weights per kernel, indexed one by one; the bound fills the lanes"),
    "filter": ("kernel", "the layer is a smaller dense one (golden.compact); host.net does not compact "
                         "networks, so the kernel dataflow skips the zero kernels instead"),
    "channel": ("kernel", "the layer is a smaller dense one (golden.compact); host.net does not compact "
                          "networks, so the kernel dataflow skips the zero kernels instead"),
}
"""For every ``golden.prune`` granularity: the dataflow that exploits its zeros, and why that one. The
single place the accuracy study (``bench.accuracy``) and anything else pairing a granularity with the
array reads; the inverse of :attr:`Dataflow.pruning` plus the granularities no dataflow is named after."""


def dataflow_for(granularity: str) -> str:
    """The dataflow that exploits ``granularity`` (:data:`EXPLOITED_BY`); ``ValueError`` naming the choices."""
    try:
        return EXPLOITED_BY[granularity][0]
    except KeyError:
        raise ValueError(f"no dataflow exploits granularity {granularity!r}; choose one of "
                         f"{', '.join(EXPLOITED_BY)}") from None


def dataflow_of(name: str) -> Dataflow:
    """The descriptor of ``name``; ``ValueError`` naming the choices for an unknown one."""
    try:
        return DATAFLOW_TABLE[name]
    except KeyError:
        raise ValueError(f"unknown dataflow {name!r}; choose one of {', '.join(DATAFLOW_TABLE)}") from None


NO_PATTERN = (1, 0)
"""The stride pattern ``(sigma, phi)`` that keeps every position (``golden.encode.stride_pattern``): what
each channel of a dataflow without patterns walks, and where the search for the smallest one starts.
Its entry fields as the walkers read them: ``golden.words.NO_PATTERN_FIELDS``."""


def unit_groups(cfg: ArrayConfig) -> int:
    """Position groups one unit word names (``golden.encode``): 1, or with ``lanes`` > 1 what one cycle
    can issue: rows for ``Unit.ROW`` (``floor(V/S)``, at most ``min(V, max_kernel)``; with ``V < S`` a
    row takes several cycles and its word names one), weights for ``Unit.SINGLE`` (``V``). A kernel
    unit's positions are counted, not named."""
    unit = dataflow_of(cfg.dataflow).unit
    if cfg.lanes == 1 or unit is Unit.KERNEL:
        return 1
    return min(cfg.lanes, cfg.max_kernel) if unit is Unit.ROW else cfg.lanes

