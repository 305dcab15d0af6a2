"""The legal layer space of one array, and random draws from it with a coverage goal.

``sim.regress`` runs what this module draws; keeping the draw here (pure NumPy, no simulator) lets the
tests check the distribution and the coverage bookkeeping in milliseconds.

A *case* is one layer on one dataflow (and lane count) with its own stall pattern. Case ``i`` of a
run is a pure function of ``(array, seed, dataflows, lanes, i)``, so any failing case can be drawn
again alone (``sim.regress --case i``). It runs on the ``i mod n``-th of the run's ``n``
:func:`variants` (every dataflow at every lane count); the first cases of each variant are each drawn
to hit one :data:`BOUNDARIES` entry (in table order, those the array can reach at all), the rest are
free draws. A run of ``n * len(BOUNDARIES)`` cases or more therefore covers every reachable boundary
on every variant. What a run covered is measured on the drawn layers (:func:`covered`), not
taken from what was asked for.

Free draws: ``R, S`` uniform in ``1..max_kernel``, stride uniform in ``1..max_stride``, padding uniform
below ``max(R, S)``, output size ``E, F`` log-uniform in ``1..3*rows`` (``cols``), ``C`` log-uniform in
``1..48``, ``M`` log-uniform in ``1..2*acc_depth + 1``; weights from one of :data:`WEIGHT_KINDS` and
values from one of :data:`VALUE_KINDS`; load gaps and output backpressure from ``{0, 0.3, U(0, 0.6)}``.
A layer that does not fit the buffers, or would take more than ``max_cycles`` on the array, is shrunk
(``C`` or ``M`` by 10 %, else ``E, F``) until it does, keeping the dimensions a boundary fixed.

On an array with the output stage (``epilogue``) every layer also gets one of :data:`OUT_KINDS`
(uniform; drawn from the case's generator only there, so the cases of other arrays are unchanged):
biases of log-uniform magnitude up to the accumulator's range, partial sums over the whole range (the
add wraps), and multipliers and shifts uniform with their ends (0, the largest) forced in a quarter of
the channels each; two boundaries force the bias-with-epilogue and partial-sum kinds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from golden.config import ArrayConfig
from golden.encode import EncodedLayer, encode
from golden.epilogue import MULT_BITS, SHIFT_MAX, OutputStage
from golden.layer import Layer
from golden.passes import PASS_FLAGS, plan
from golden.prune import prune
from golden.timing import cycles as predicted_cycles

WEIGHT_KINDS = ("random", "dense", "zero", "kernel", "vector", "element", "strided", "filter", "channel", "balanced")
"""How a case's weights are made: ``random`` (kernels, rows and single weights kept with random
probabilities), ``dense`` (no zero weight at all), ``zero`` (all zero), or magnitude-pruned by
``golden.prune`` at that granularity to a sparsity drawn from ``U(0.3, 0.95)``."""

VALUE_KINDS = ("full", "small", "extreme", "min")
"""Weight and activation values: uniform over the signed range, in ``-3..3``, only the range's two
ends, or every value the most negative one (the largest product sums: accumulator extremes)."""

OUT_KINDS = ("none", "bias", "psum", "requant", "bias+requant", "psum+requant", "bias+requant+relu")
"""Output stages a case may have on an array built with ``epilogue`` (``golden.epilogue.OutputStage``)."""

DEFAULT_MAX_CYCLES = 60_000
"""Largest predicted run (cycles) of a drawn case; keeps a 1000-case run within minutes."""

PASSES_CYCLES = 4
"""A case larger than the buffers may take this many times ``max_cycles`` over all its passes."""


@dataclass(frozen=True)
class Shape:
    """The dimensions of a layer before it has values: output size ``E, F`` instead of ``H, W``."""

    m: int
    c: int
    e: int
    f: int
    r: int
    s: int
    stride: int
    padding: int

    @property
    def h(self) -> int:
        return max(1, (self.e - 1) * self.stride + self.r - 2 * self.padding)

    @property
    def w(self) -> int:
        return max(1, (self.f - 1) * self.stride + self.s - 2 * self.padding)


@dataclass(frozen=True)
class Boundary:
    """An edge of the layer space: ``hits`` says whether a case is on it, ``reachable`` whether the array
    admits it at all, ``force`` sets the dimensions (and the weight/value kinds) that put a draw on it."""

    hits: Callable[[Case, ArrayConfig], bool]
    reachable: Callable[[ArrayConfig], bool]
    force: Callable[[dict, np.random.Generator, ArrayConfig], None]


def _fill(enc: EncodedLayer) -> float:
    """Fullest schedule buffer (weights, channel index, unit index) as a fraction of its depth."""
    cfg = enc.cfg
    return max(len(enc.weight) / cfg.weight_depth, len(enc.chan_index) / cfg.index_depth,
               len(enc.unit_index) / cfg.index_depth)


def _set(**values) -> Callable[[dict, np.random.Generator, ArrayConfig], None]:
    def force(p: dict, rng: np.random.Generator, cfg: ArrayConfig) -> None:
        p.update({k: (v(rng, cfg) if callable(v) else v) for k, v in values.items()})
        p["fixed"] |= set(values)
    return force


def needs_passes(layer: Layer, cfg: ArrayConfig) -> bool:
    """Whether ``layer`` is larger than ``cfg``'s buffers (it runs as ``golden.passes``)."""
    return any(flag in PASS_FLAGS for flag, _ in layer.fit_problems(cfg))


def _force_passes(p: dict, rng: np.random.Generator, cfg: ArrayConfig) -> None:
    """A layer over the activation or the output buffer by 10 % to 2x (passes of bands or filter chunks)."""
    k = cfg.max_kernel
    r = int(rng.integers(1, k + 1))
    p.update(r=r, s=r, stride=1, padding=0, passes=True)
    over = float(rng.uniform(1.1, 2.0))
    if rng.random() < 0.5:  # activations: C channels of a square input
        side = max(cfg.rows + r, int(rng.integers(2, 5)) * cfg.rows + r - 1)
        c = max(1, math.ceil(over * cfg.act_depth / (side * side)))
        p.update(c=c, e=side - r + 1, f=side - r + 1, m=int(rng.integers(1, cfg.acc_depth + 1)))
    else:  # outputs: M filters of a square output
        m = int(rng.integers(cfg.acc_depth, 2 * cfg.acc_depth + 1))
        side = max(1, math.isqrt(math.ceil(over * cfg.out_depth / m)))
        p.update(m=m, e=side, f=max(1, math.ceil(over * cfg.out_depth / (m * side))), c=int(rng.integers(1, 4)))
    p["fixed"] |= {"r", "s", "stride", "padding", "c", "e", "f", "m", "passes"}


def _force_channel_passes(p: dict, rng: np.random.Generator, cfg: ArrayConfig) -> None:
    """A layer whose one output row of all input channels is over the activation buffer (channel chunks)."""
    r = min(3, cfg.max_kernel)
    f = int(rng.integers(1, 2 * cfg.cols + 1))
    row = r * (f + r - 1)  # one output row's input words per channel (padding 0)
    c = math.ceil(float(rng.uniform(1.1, 2.5)) * cfg.act_depth / row)
    p.update(r=r, s=r, stride=1, padding=0, c=c, f=f, e=int(rng.integers(1, cfg.rows + 1)),
             m=int(rng.integers(1, cfg.acc_depth + 1)), passes=True)
    p["fixed"] |= {"r", "s", "stride", "padding", "c", "e", "f", "m", "passes"}


def _one_filter_last_group(ly: Layer, cfg: ArrayConfig) -> bool:
    return ly.m > cfg.acc_depth and ly.m % cfg.acc_depth == 1 % cfg.acc_depth


def _force_padding(p: dict, rng: np.random.Generator, cfg: ArrayConfig) -> None:
    p["r"] = int(rng.integers(2, cfg.max_kernel + 1))
    p["padding"] = p["r"] - 1
    p["s"] = min(p["s"], p["r"])  # padding < max(R, S) holds with R the larger
    p["fixed"] |= {"r", "s", "padding"}


def _force_act_full(p: dict, rng: np.random.Generator, cfg: ArrayConfig) -> None:
    """Few channels and filters, and a plane as large as the activation buffer allows."""
    c = int(rng.integers(1, 4))
    side = math.isqrt(cfg.act_depth // c)
    e, f = side, cfg.act_depth // c // side
    m = max(1, min(int(rng.integers(1, 3)), cfg.out_depth // (e * f)))
    p.update(c=c, m=m, stride=1, padding=0, r=1, s=1, e=e, f=f)
    p["fixed"] |= {"c", "m", "e", "f", "r", "s", "stride", "padding"}


def _force_out_full(p: dict, rng: np.random.Generator, cfg: ArrayConfig) -> None:
    """Many filters and a plane that fills the output buffer, from one channel."""
    m = int(rng.integers(cfg.acc_depth, 2 * cfg.acc_depth + 1))
    side = max(1, math.isqrt(cfg.out_depth // m))
    p.update(c=1, m=m, e=side, f=max(1, cfg.out_depth // m // side))
    p["fixed"] |= {"c", "m", "e", "f"}


def _force_schedule_full(p: dict, rng: np.random.Generator, cfg: ArrayConfig) -> None:
    """One output pixel, full dense kernels, many filters, and as many channels as the weight and index
    buffers hold: the words one channel costs are measured on a one-channel layer by the encoder."""
    k = cfg.max_kernel
    m = int(rng.integers(max(1, cfg.acc_depth // 2), cfg.acc_depth + 1))
    one = encode(Layer(np.ones((m, 1, k, k), np.int64), np.zeros((1, k, k), np.int64)), cfg)
    per_channel = {"weight": (len(one.weight), cfg.weight_depth),
                   "unit": (len(one.unit_index), cfg.index_depth),
                   "chan": (len(one.chan_index) - 1, cfg.index_depth - 1),  # one header word, then entries
                   "act": (k * k, cfg.act_depth)}
    c = max(1, min(depth // words for words, depth in per_channel.values() if words > 0))
    p.update(e=1, f=1, r=k, s=k, stride=1, padding=0, m=m, c=c, weights="dense")
    p["fixed"] |= {"e", "f", "r", "s", "m", "c", "weights", "stride", "padding"}


BOUNDARIES: dict[str, Boundary] = {
    "M=1": Boundary(lambda k, cfg: k.layer.m == 1, lambda cfg: True, _set(m=1)),
    "C=1": Boundary(lambda k, cfg: k.layer.c == 1, lambda cfg: True, _set(c=1)),
    "R=1": Boundary(lambda k, cfg: k.layer.r == 1, lambda cfg: True, _set(r=1)),
    "S=1": Boundary(lambda k, cfg: k.layer.s == 1, lambda cfg: True, _set(s=1)),
    "E<rows": Boundary(lambda k, cfg: k.layer.e < cfg.rows, lambda cfg: cfg.rows > 1,
                       _set(e=lambda rng, cfg: int(rng.integers(1, cfg.rows)))),
    "F<cols": Boundary(lambda k, cfg: k.layer.f < cfg.cols, lambda cfg: cfg.cols > 1,
                       _set(f=lambda rng, cfg: int(rng.integers(1, cfg.cols)))),
    "chunk mapping": Boundary(lambda k, cfg: not needs_passes(k.layer, cfg) and encode(k.layer, cfg).chunks,
                              lambda cfg: bool(cfg.chunks),
                              _set(e=lambda rng, cfg: cfg.rows + 1, f=lambda rng, cfg: cfg.cols + 1)),
    "stride=2,R=1": Boundary(lambda k, cfg: k.layer.stride == 2 and k.layer.r == 1, lambda cfg: cfg.max_stride >= 2,
                             _set(stride=2, r=1)),
    "padding=R-1": Boundary(lambda k, cfg: k.layer.r > 1 and k.layer.padding == k.layer.r - 1,
                            lambda cfg: cfg.max_kernel >= 2, _force_padding),
    "one-filter last group": Boundary(lambda k, cfg: _one_filter_last_group(k.layer, cfg),
                                      lambda cfg: cfg.out_depth > cfg.acc_depth,
                                      _set(m=lambda rng, cfg: cfg.acc_depth * int(rng.integers(1, 3)) + 1)),
    "all-zero weights": Boundary(lambda k, cfg: not np.any(k.layer.weights), lambda cfg: True, _set(weights="zero")),
    "fully dense weights": Boundary(lambda k, cfg: bool(np.all(k.layer.weights)), lambda cfg: True,
                                    _set(weights="dense", values="full")),
    "extreme values": Boundary(lambda k, cfg: k.values in ("extreme", "min"), lambda cfg: True,
                               _set(values=lambda rng, cfg: ("extreme", "min")[int(rng.integers(2))],
                                    weights="dense")),
    "R=S=max_kernel": Boundary(lambda k, cfg: k.layer.r == k.layer.s == cfg.max_kernel, lambda cfg: True,
                               _set(r=lambda rng, cfg: cfg.max_kernel, s=lambda rng, cfg: cfg.max_kernel)),
    "stride=max_stride": Boundary(lambda k, cfg: k.layer.stride == cfg.max_stride, lambda cfg: True,
                                  _set(stride=lambda rng, cfg: cfg.max_stride)),
    "activation buffer >= 90 %": Boundary(
        lambda k, cfg: 0.9 * cfg.act_depth <= k.layer.c * k.layer.h * k.layer.w <= cfg.act_depth, lambda cfg: True,
        _force_act_full),
    "output buffer >= 90 %": Boundary(
        lambda k, cfg: 0.9 * cfg.out_depth <= k.layer.m * k.layer.e * k.layer.f <= cfg.out_depth,
        lambda cfg: True, _force_out_full),
    "schedule buffer >= 90 %": Boundary(
        lambda k, cfg: not needs_passes(k.layer, cfg) and _fill(encode(k.layer, cfg)) >= 0.9, lambda cfg: True,
                                        _force_schedule_full),
    "load gaps and backpressure": Boundary(lambda k, cfg: k.load_gap > 0 and k.backpressure > 0, lambda cfg: True,
                                           _set(load_gap=0.3, backpressure=0.3)),
    "bias, ReLU and requantization": Boundary(
        lambda k, cfg: k.layer.out is not None and k.layer.out.bias is not None and k.layer.out.relu,
        lambda cfg: bool(cfg.epilogue), _set(out="bias+requant+relu")),
    "partial sums": Boundary(lambda k, cfg: k.layer.out is not None and k.layer.out.psum is not None,
                             lambda cfg: bool(cfg.epilogue), _set(out="psum+requant")),
    "passes (bands, filter chunks)": Boundary(lambda k, cfg: needs_passes(k.layer, cfg), lambda cfg: True,
                                              _force_passes),
    "passes over input channels": Boundary(
        lambda k, cfg: needs_passes(k.layer, cfg) and plan(k.layer, cfg).channels > 0,
        lambda cfg: bool(cfg.epilogue), _force_channel_passes),
}
"""The boundaries every dataflow must see in a run, in the order a run draws them: the shape edges first
(the ones a short run must reach), then weights and values, the largest kernel and stride, the buffer
limits and stalls."""


@dataclass(frozen=True)
class Case:
    """One drawn layer on one dataflow, with the stall pattern it runs under."""

    index: int
    dataflow: str
    goal: str | None  # the boundary it was drawn to hit (None: a free draw)
    layer: Layer
    weights: str  # one of WEIGHT_KINDS
    values: str  # one of VALUE_KINDS
    stall_seed: int
    load_gap: float
    backpressure: float
    lanes: int = 1  # multiply lanes of the array it runs on

    @property
    def variant(self) -> str:
        """The array it runs on, as a label: the dataflow, with ``/vV`` for wide PEs."""
        return variant_label(self.dataflow, self.lanes)

    def config(self, cfg: ArrayConfig) -> ArrayConfig:
        """``cfg`` built for this case's dataflow and lanes."""
        return cfg.with_lanes(self.lanes, dataflow=self.dataflow)

    def describe(self) -> str:
        ly = self.layer
        out = ly.out
        stage = "" if out is None else " out " + ("+".join(n for n, on in (
            ("bias", out.bias is not None), ("psum", out.psum is not None), ("requant", out.requant),
            ("relu", out.relu)) if on) or "none")
        return (f"M={ly.m} C={ly.c} {ly.h}x{ly.w} {ly.r}x{ly.s} stride {ly.stride} pad {ly.padding} "
                f"weights {self.weights}/{self.values} gaps {self.load_gap:.2f}/{self.backpressure:.2f}{stage}")


def variant_label(dataflow: str, lanes: int) -> str:
    """``dataflow``, or ``dataflow/vV`` with ``V`` > 1 lanes."""
    return dataflow if lanes == 1 else f"{dataflow}/v{lanes}"


def variants(dataflows: Sequence[str], lanes: Sequence[int]) -> list[tuple[str, int]]:
    """The arrays of a run, in case order: every dataflow at the first lane count, then the next."""
    return [(df, v) for v in lanes for df in dataflows]


def reachable_boundaries(cfg: ArrayConfig) -> list[str]:
    """The boundaries an array built with ``cfg`` admits, in table order."""
    return [name for name, b in BOUNDARIES.items() if b.reachable(cfg)]


def covered(case: Case, cfg: ArrayConfig) -> list[str]:
    """The boundaries ``case`` is on (measured on its layer)."""
    c = case.config(cfg)
    return [name for name, b in BOUNDARIES.items() if b.reachable(c) and b.hits(case, c)]


def _log_int(rng: np.random.Generator, lo: int, hi: int) -> int:
    """An integer in ``lo..hi``, log-uniform (small values as likely per octave as large ones)."""
    return int(min(hi, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))))


def _stall(rng: np.random.Generator) -> float:
    pick = int(rng.integers(3))
    return (0.0, 0.3, float(rng.uniform(0.0, 0.6)))[pick]


def _values(rng: np.random.Generator, kind: str, bits: int, shape: tuple[int, ...]) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if kind == "full":
        return rng.integers(lo, hi + 1, shape)
    if kind == "small":
        return rng.integers(max(lo, -3), min(hi, 3) + 1, shape)
    if kind == "extreme":
        return np.where(rng.random(shape) < 0.5, lo, hi)
    return np.full(shape, lo)


def _nonzero(rng: np.random.Generator, w: np.ndarray, kind: str, bits: int) -> np.ndarray:
    """``w`` with every zero replaced by a non-zero value of the same kind."""
    while not np.all(w):
        fresh = _values(rng, kind, bits, w.shape)
        w = np.where(w == 0, fresh, w)
        if kind == "small" and not np.all(w):
            w = np.where(w == 0, 1, w)
    return w


def _weights(rng: np.random.Generator, kind: str, values: str, s: Shape, bits: int) -> np.ndarray:
    shape = (s.m, s.c, s.r, s.s)
    w = _values(rng, values, bits, shape)
    if kind == "zero":
        return np.zeros(shape, np.int64)
    if kind == "dense":
        return _nonzero(rng, w, values, bits)
    if kind == "random":
        w = w * (rng.random((s.m, s.c, 1, 1)) < rng.random())
        w = w * (rng.random((s.m, s.c, s.r, 1)) < rng.random())
        return w * (rng.random(shape) < rng.uniform(0.2, 1.0))
    try:
        return prune(_nonzero(rng, w, values, bits), kind, float(rng.uniform(0.3, 0.95))).weights
    except ValueError:  # e.g. a 1x1 kernel has no strided pattern to prune to
        return w


def _draw_params(rng: np.random.Generator, cfg: ArrayConfig) -> dict:
    k = cfg.max_kernel
    r, s = int(rng.integers(1, k + 1)), int(rng.integers(1, k + 1))
    return dict(fixed=set(), r=r, s=s, stride=int(rng.integers(1, cfg.max_stride + 1)),
                padding=int(rng.integers(0, max(r, s))), e=_log_int(rng, 1, 3 * cfg.rows),
                f=_log_int(rng, 1, 3 * cfg.cols), c=_log_int(rng, 1, 48), m=_log_int(rng, 1, 2 * cfg.acc_depth + 1),
                weights=WEIGHT_KINDS[int(rng.integers(len(WEIGHT_KINDS)))],
                values=VALUE_KINDS[int(rng.integers(len(VALUE_KINDS)))],
                load_gap=_stall(rng), backpressure=_stall(rng))


def _shrink(p: dict, names: Sequence[str]) -> bool:
    """Make the first of ``names`` that is not fixed and above 1 about 10 % smaller; False if none is."""
    for n in names:
        if n not in p["fixed"] and p[n] > 1:
            p[n] = max(1, min(p[n] - 1, int(p[n] * 0.9)))
            return True
    return False


def _shape(p: dict) -> Shape:
    return Shape(p["m"], p["c"], p["e"], p["f"], p["r"], p["s"], p["stride"], p["padding"])


def _fit(p: dict, cfg: ArrayConfig, rng: np.random.Generator, max_cycles: int) -> Layer | None:
    """Shrink the drawn dimensions until the layer fits ``cfg`` and ``max_cycles``; None if it cannot."""
    for _ in range(400):
        s = _shape(p)
        if s.padding >= max(s.r, s.s):
            p["padding"] = max(s.r, s.s) - 1
            continue
        passes = p.get("passes", False)  # larger than the buffers on purpose: it runs in passes
        if s.c * s.h * s.w > cfg.act_depth and not passes:
            if not _shrink(p, ("c", "e", "f")):
                return None
            continue
        if s.m * s.e * s.f > cfg.out_depth and not passes:
            if not _shrink(p, ("m", "e", "f")):
                return None
            continue
        layer = Layer(_weights(rng, p["weights"], p["values"], s, cfg.weight_bits).astype(np.int64),
                      _values(rng, p["values"], cfg.act_bits, (s.c, s.h, s.w)).astype(np.int64), s.stride, s.padding)
        if cfg.epilogue:
            out = _output_stage(rng, p, layer, cfg)
            if out is None:  # more filters than the parameter memory holds
                if not _shrink(p, ("m",)):
                    return None
                continue
            layer = replace(layer, out=out)
        if layer.e != s.e or layer.f != s.f:  # the input could not be made small enough: E, F grew
            p["e"], p["f"] = layer.e, layer.f
            p["fixed"] |= {"e", "f"}
            continue
        if passes:
            try:
                runs = plan(layer, cfg).passes
            except ValueError:
                return None
            if sum(predicted_cycles(encode(q.layer, cfg)) for q in runs) > PASSES_CYCLES * max_cycles:
                return None
            return layer
        try:
            enc = encode(layer, cfg)
        except ValueError:  # the weights or the index overflow their buffer
            if not _shrink(p, ("c", "m", "e", "f")):
                return None
            continue
        if predicted_cycles(enc) > max_cycles:
            if not _shrink(p, ("c", "m", "e", "f")):
                return layer  # every dimension is fixed by the boundary: run it as it is
            continue
        return layer
    return None


def _output_stage(rng: np.random.Generator, p: dict, layer: Layer, cfg: ArrayConfig) -> OutputStage | None:
    """An output stage of kind ``p["out"]`` (drawn here the first time) for ``layer``; ``None`` if it needs
    parameters for more filters than ``param_depth``."""
    if "out" not in p:
        p["out"] = OUT_KINDS[int(rng.integers(len(OUT_KINDS)))]
    kind, m = p["out"], layer.m
    if kind == "none":
        return OutputStage()
    if ("bias" in kind or "requant" in kind) and m > cfg.param_depth:
        return None
    top = cfg.acc_bits - 1
    fields = {}
    if "bias" in kind:
        mag = np.exp2(rng.uniform(0, top, m)).astype(np.int64)
        fields["bias"] = np.clip(mag * rng.choice([-1, 1], m), -(1 << top), (1 << top) - 1)
    if "psum" in kind:
        fields["psum"] = rng.integers(-(1 << top), 1 << top, (m, layer.e, layer.f), dtype=np.int64)
    if "requant" in kind:
        mult = rng.integers(0, 1 << MULT_BITS, m)
        shift = rng.integers(0, SHIFT_MAX + 1, m)
        ends = rng.random((2, m)) < 0.25
        fields["mult"] = np.where(ends[0], rng.choice([0, (1 << MULT_BITS) - 1], m), mult)
        fields["shift"] = np.where(ends[1], rng.choice([0, SHIFT_MAX], m), shift)
    return OutputStage(**fields, relu="relu" in kind)


def draw_case(cfg: ArrayConfig, seed: int, index: int, dataflows: Sequence[str],
              max_cycles: int = DEFAULT_MAX_CYCLES, lanes: Sequence[int] | None = None) -> Case:
    """Case ``index`` of the run ``(cfg, seed, dataflows, lanes)`` (see the module docstring; ``lanes``
    defaults to ``cfg.lanes``): it runs on the ``i mod n``-th of the run's :func:`variants`."""
    arrays = variants(dataflows, lanes or [cfg.lanes])
    df, v = arrays[index % len(arrays)]
    c = cfg.with_lanes(v, dataflow=df)
    goals = reachable_boundaries(c)
    j = index // len(arrays)
    goal = goals[j] if j < len(goals) else None
    for attempt in range(50):
        rng = np.random.default_rng([seed, index, attempt])
        p = _draw_params(rng, c)
        if goal is not None:
            BOUNDARIES[goal].force(p, rng, c)
        layer = _fit(p, c, rng, max_cycles)
        if layer is None:
            continue
        case = Case(index, df, goal, layer, p["weights"], p["values"], int(rng.integers(1 << 31)),
                    p["load_gap"], p["backpressure"], v)
        if goal is None or goal in covered(case, cfg):
            return case
    raise ValueError(f"could not draw case {index} ({variant_label(df, v)}, boundary {goal!r}) for this array in "
                     f"50 attempts; "
                     f"its buffers may be too small for the boundary")


def draw_cases(cfg: ArrayConfig, seed: int, count: int, dataflows: Sequence[str],
               max_cycles: int = DEFAULT_MAX_CYCLES, lanes: Sequence[int] | None = None) -> list[Case]:
    """Cases ``0 .. count-1`` of the run ``(cfg, seed, dataflows, lanes)``."""
    return [draw_case(cfg, seed, i, dataflows, max_cycles, lanes) for i in range(count)]
