"""``python -m bench.shapes``: what bounds each ResNet/VGG layer, what each option of issue 24 buys.

On the golden model, for ResNet-18, VGG-16 and ResNet-50 at full size.

A design study made before the RTL changes, like ``bench.lanes``: issue 24 asks for 1x1 layers on the
lanes, loads and drains that keep up, and less edge waste, and wants the options measured first.

**Part 1** (the golden model, exact): every conv layer (and the fully connected layer, as a 1x1 conv) at
full size on the default 4x4 array at ``V = 1`` and ``V = 9`` (``ArrayConfig(lanes=9)``: its default
feed), unpruned on the dense dataflow and kernel-pruned 75 % on the kernel dataflow, in the passes the
buffers of the project's ResNet-18 run need (:data:`BUFFERS`, split by ``golden.passes.fit_or_plan`` as
``host.net`` does; the dense array on the same buffers), each pass timed by ``golden.timing.simulate``.
Per layer: cycles, ideal MAC cycles, the load- and drain-stall counters, utilization, lane utilization,
the kernel-75 % speedup and what bounds it (:func:`losses`).

**Part 2** (what-if models, :class:`Design`): the same recurrence (:func:`recurrence`, checked equal to
``golden.timing.simulate`` on every run of Part 1 and the sweep for today's design) with a loader that
fetches only the pixels read, more tile buffers, several channels per entry, wider loaders and drains,
lanes that take positions of several channels of one filter (issue 24's item 1) or kernels of several
filters of one channel, raster mapping and per-layer tile shapes. One table per option and one of
combinations, each row against issue 24's "Done means" the golden model can measure (:data:`TARGETS`,
bold where reached). A design the host would configure per layer (channels per entry, tile shape) takes
the fastest choice per run.

Simplifications: layers of equal shape are modelled once (the first one's weights) and counted ``n``
times (a kernel-pruned copy with other random weights differs by well under 1 %); activations are zeros
(the timing reads shapes and weights only); the weights are ``bench.layers``' random int8 kernels,
kernel-pruned by ``golden.prune``; the passes are planned for the array the design runs on, today's
plan otherwise. ``--quick`` leaves out VGG-16 (its conv1_1 target reads "-") and the per-layer
tile-shape searches.
"""

from __future__ import annotations

import functools
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from golden import passes as golden_passes
from golden.cli import Parser
from golden.config import ArrayConfig
from golden.encode import EncodedLayer, ImageWords, encode, pick_mapping
from golden.lanes import predict
from golden.layer import Layer
from golden.passes import Plan, band_layer, fit_or_plan
from golden.prune import prune
from golden.timing import HEADER_CYCLES, Counters, Loader, drain_flush, drain_tail, simulate

from .grid import DEFAULT_LAYERS, DEFAULT_PARAMS
from .layers import LayerSpec, dense_weights, layer_specs

# --- the networks, layer by layer (torchvision's names; input H x W before padding) ---------------------


def _conv(name: str, m: int, c: int, hw: int, k: int, stride: int = 1) -> LayerSpec:
    """A ``k x k`` conv with the padding that keeps ``hw / stride`` outputs (``k // 2``)."""
    return LayerSpec(name, m, c, hw, hw, k, k, stride, k // 2)


def _fc(name: str, m: int, c: int) -> LayerSpec:
    """A fully connected layer as ``host.net`` runs it: a 1x1 conv on a 1x1 input."""
    return LayerSpec(name, m, c, 1, 1, 1, 1, 1, 0)


def resnet18() -> list[LayerSpec]:
    """ResNet-18 at 224x224 (``bench.models.resnet18``): 7x7/2 stem, max pool, four stages of two basic
    blocks, 1x1/2 projections, a 1000-way fully connected layer."""
    out = [_conv("conv1", 64, 3, 224, 7, 2)]
    c, hw = 64, 56
    for stage, m in enumerate((64, 128, 256, 512), 1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            out.append(_conv(f"layer{stage}.{block}.conv1", m, c, hw, 3, stride))
            out.append(_conv(f"layer{stage}.{block}.conv2", m, m, hw // stride, 3))
            if stride != 1 or c != m:
                out.append(_conv(f"layer{stage}.{block}.downsample", m, c, hw, 1, stride))
            c, hw = m, hw // stride
    return [*out, _fc("fc", 1000, 512)]


def vgg16() -> list[LayerSpec]:
    """VGG-16 at 224x224 (``bench.models.vgg16``): thirteen 3x3 convs in five stages, a 1000-way fully
    connected layer after global pooling."""
    out, c, hw = [], 3, 224
    for stage, (m, n) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), 1):
        for i in range(1, n + 1):
            out.append(_conv(f"conv{stage}_{i}", m, c, hw, 3))
            c = m
        hw //= 2
    return [*out, _fc("fc", 1000, 512)]


def resnet50() -> list[LayerSpec]:
    """ResNet-50 v1.5 at 224x224 (torchvision): 7x7/2 stem 64, max pool, stages of [3, 4, 6, 3]
    bottlenecks 1x1 m -> 3x3 m (stride 2 in the first block of stages 2-4) -> 1x1 4m, a 1x1 projection
    (stride 2 from stage 2) in each stage's first block, m = 64, 128, 256, 512; 1000-way classifier."""
    out = [_conv("conv1", 64, 3, 224, 7, 2)]
    c, hw = 64, 56
    for stage, (m, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), 1):
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            out.append(_conv(f"layer{stage}.{block}.conv1", m, c, hw, 1))
            out.append(_conv(f"layer{stage}.{block}.conv2", m, m, hw, 3, stride))
            out.append(_conv(f"layer{stage}.{block}.conv3", 4 * m, m, hw // stride, 1))
            if block == 0:
                out.append(_conv(f"layer{stage}.{block}.downsample", 4 * m, c, hw, 1, stride))
            c, hw = 4 * m, hw // stride
    return [*out, _fc("fc", 1000, 2048)]


NETWORKS: dict[str, Callable[[], list[LayerSpec]]] = {"resnet18": resnet18, "vgg16": vgg16, "resnet50": resnet50}

BUFFERS = {"max_kernel": 7, "act_depth": 65536, "weight_depth": 65536, "index_depth": 16384, "out_depth": 65536}
"""The buffers of the project's ResNet-18 and VGG-16 runs (README, ``host.net --max-kernel 7 --act-depth
65536 ...``); ``max_kernel`` changes no cycle count, only which kernels fit (the 7x7 stems)."""

SPARSITY = 0.75
"""Kernel-pruned fraction of the sparse runs (issue 24's targets are at 75 %)."""

V_WIDE = 9

PES = ArrayConfig().pes
"""The default array's PEs (4x4): every utilization divides by them, whatever logical shape a design maps."""


@dataclass(frozen=True)
class Shape:
    """Layers of one shape: modelled once (the first one's weights), counted ``len(names)`` times."""

    spec: LayerSpec
    names: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def label(self) -> str:
        return self.names[0] + (f" (+{self.n - 1})" if self.n > 1 else "")

    @property
    def text(self) -> str:
        s = self.spec
        return f"{s.m}x{s.c}x{s.h}x{s.w} {s.r}x{s.s}/{s.stride}"

    @property
    def pointwise(self) -> bool:
        """A 1x1 conv (the fully connected layer excepted: its input is one pixel)."""
        return self.spec.r == 1 and self.spec.h > 1


def distinct(specs: Sequence[LayerSpec], prefix: str) -> list[Shape]:
    """``specs`` grouped by shape, in first-appearance order; the representative is named ``prefix.name``
    (``bench.layers.dense_weights`` seeds by name)."""
    groups: dict[tuple, list[LayerSpec]] = {}
    for s in specs:
        groups.setdefault((s.m, s.c, s.h, s.w, s.r, s.s, s.stride, s.padding), []).append(s)
    return [Shape(replace(g[0], name=f"{prefix}.{g[0].name}"), tuple(s.name for s in g)) for g in groups.values()]


# --- schedules and passes ------------------------------------------------------------------------------


def kernel_mask(weights: np.ndarray, dataflow: str) -> np.ndarray:
    """``(M, C)``: which kernels the dataflow schedules (``dense``: all; ``kernel``: the non-zero ones)."""
    nz = np.any(np.asarray(weights) != 0, axis=(2, 3))
    return np.ones_like(nz) if dataflow == "dense" else nz


def schedule(layer: Layer, cfg: ArrayConfig) -> EncodedLayer:
    """``golden.encode.encode``'s schedule (entries, MAC cycles) of a ``dense`` or ``kernel`` layer, without
    its images: counted from the kernel mask, since encoding every pass of VGG-16 packs ~10^8 words the
    timing never reads. :func:`check_schedule` holds it equal to ``encode``'s."""
    if cfg.dataflow not in ("dense", "kernel"):
        raise ValueError(f"schedule counts the dense and kernel dataflows only, not {cfg.dataflow!r}")
    mask = kernel_mask(layer.weights, cfg.dataflow)
    n = layer.r * layer.s
    per_kernel = -(-n // cfg.lanes)
    A = cfg.acc_depth
    entries, macs = [], []
    for g in range(-(-layer.m // A)):
        units = mask[g * A:(g + 1) * A].sum(axis=0)
        ents = [(int(c), int(u), int(u) * n) for c, u in enumerate(units) if u]
        entries.append(ents)
        macs.append([u * per_kernel for _, u, _ in ents])
    return pick_mapping(EncodedLayer(cfg, layer, entries, [], [], mac_cycles=macs))


def check_schedule() -> None:
    """:func:`schedule` against ``golden.encode`` (entries, MAC cycles, counters) and ``golden.lanes.predict``
    on small layers of every kind the study runs (3x3, 1x1/2, 7x7/2, FC; dense, kernel 75 %; V 1, 9)."""
    specs = (LayerSpec("check.a", 40, 5, 9, 9), LayerSpec("check.b", 36, 6, 9, 9, 1, 1, 2, 0),
             LayerSpec("check.c", 8, 3, 15, 15, 7, 7, 2, 3), LayerSpec("check.d", 70, 33, 1, 1, 1, 1, 1, 0))
    for spec in specs:
        for df in ("dense", "kernel"):
            w = dense_weights(spec)
            if df == "kernel":
                w = prune(w, "kernel", SPARSITY).weights
            ly = Layer(w, np.zeros((spec.c, spec.h, spec.w), dtype=np.int64), spec.stride, spec.padding)
            for v in (1, V_WIDE):
                cfg = ArrayConfig(dataflow=df, lanes=v, max_kernel=7)
                ours, theirs = schedule(ly, cfg), encode(ly, cfg)
                if (ours.entries, ours.mac_cycles) != (theirs.entries, theirs.mac_cycles) \
                        or simulate(ours) != simulate(theirs) or predict(theirs, v).counters != simulate(ours):
                    raise AssertionError(f"bench.shapes.schedule differs from golden.encode on {spec.name} {df} V={v}")
                counted, encoded = CountedImageWords(w, spec.s, cfg), ImageWords(w, spec.s, cfg)
                A = cfg.acc_depth
                for m0, m1, c0, c1 in ((0, spec.m, 0, spec.c), (A, spec.m, 1, spec.c - 1), (0, min(A, spec.m), 2, 3)):
                    if m0 < spec.m and counted(m0, m1, c0, c1) != encoded(m0, m1, c0, c1):
                        raise AssertionError(f"CountedImageWords differs from ImageWords on {spec.name} {df} V={v}")
                group = [counted(m0, min(m0 + A, spec.m), 0, spec.c) for m0 in range(0, spec.m, A)]
                small = replace(cfg, act_depth=spec.c * (spec.r + spec.stride) * (spec.w + 2 * spec.padding),
                                weight_depth=max(g[0] for g in group), index_depth=max(2, *(max(g[1:]) for g in group)),
                                out_depth=A * 2 * spec.f)  # one filter group, bands of two rows
                if not all(same_plan(fit_or_plan(ly, c), plan_of(ly, c)) for c in (cfg, small)):
                    raise AssertionError(f"plan_of differs from golden.passes.fit_or_plan on {spec.name} {df} V={v}")


def zeros(c: int, h: int, w: int) -> np.ndarray:
    """Activations that cost no memory: the timing reads only their shape."""
    return np.broadcast_to(np.zeros((), dtype=np.int8), (c, h, w))


@functools.cache
def weights(spec: LayerSpec, sparse: bool) -> np.ndarray:
    """The layer's int8 weights (``bench.layers``), kernel-pruned to :data:`SPARSITY` if ``sparse``; kept
    as ``int8`` (every run of a layer reads them, ~50 M weights over the three networks)."""
    w = dense_weights(spec)
    return (prune(w, "kernel", SPARSITY).weights if sparse else w).astype(np.int8)


class CountedImageWords(ImageWords):
    """``golden.encode.ImageWords`` of a ``dense`` or ``kernel`` layer counted from its kernel mask with
    NumPy: the planner asks for every (filter group, channel) cell of a layer, which ``ImageWords`` encodes
    one by one in Python (seconds for each 2048-channel layer of ResNet-50, per array). The planner's
    rule is unchanged: :func:`plan_of` runs ``golden.passes.plan`` itself with this counter in
    ``ImageWords``' place, and :func:`check_schedule` holds the counts and plans equal."""

    def __init__(self, weights: np.ndarray, s: int, cfg: ArrayConfig):
        super().__init__(weights, s, cfg)
        if cfg.dataflow not in ("dense", "kernel"):
            raise ValueError(f"CountedImageWords counts the dense and kernel dataflows only, not {cfg.dataflow!r}")
        A = cfg.acc_depth
        mask = kernel_mask(self.w, cfg.dataflow).astype(np.int64)
        units = np.add.reduceat(mask, np.arange(0, mask.shape[0], A), axis=0)  # (groups, C)
        self.per_unit = -(-self.w.shape[2] * s // cfg.lanes)  # weight words of one kernel
        self.units = np.pad(units.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # 2-D prefix sums
        self.entries = np.pad((units > 0).cumsum(0).cumsum(1), ((1, 0), (1, 0)))

    def __call__(self, m0: int, m1: int, c0: int, c1: int) -> tuple[int, int, int]:
        A = self.cfg.acc_depth
        if m0 % A or (m1 % A and m1 != self.w.shape[0]):
            raise ValueError(f"a filter chunk is whole filter groups of {A} (or ends with the layer), not [{m0}, {m1})")
        g0, g1 = m0 // A, -(-m1 // A)

        def box(t: np.ndarray) -> int:
            return int(t[g1, c1] - t[g0, c1] - t[g1, c0] + t[g0, c0])

        units = box(self.units)
        if not self.df.indexed:
            return units * self.per_unit, 0, 0
        return units * self.per_unit, g1 - g0 + box(self.entries), units


def trial_encode(layer: Layer, cfg: ArrayConfig) -> None:
    """``golden.encode.encode``'s verdict on whether ``layer`` fits ``cfg`` (``ValueError`` if not), from
    :class:`CountedImageWords` instead of packing every word of its images."""
    problems = [text for _, text in layer.fit_problems(cfg)]
    w, ci, ui = CountedImageWords(layer.weights, layer.s, cfg)(0, layer.m, 0, layer.c)
    if w > cfg.weight_depth or max(ci, ui) > cfg.index_depth:
        problems.append(f"the images need {w} weight and {max(ci, ui)} index words")
    if problems:
        raise ValueError("; ".join(problems))


def plan_of(layer: Layer, cfg: ArrayConfig) -> Plan | None:
    """``golden.passes.fit_or_plan(layer, cfg)`` (``None``: the layer runs whole), its rule unchanged, with
    its trial encode (which packs every weight word to see whether the images fit) and the planner's
    ``ImageWords`` replaced by their counted equivalents (:func:`trial_encode`, :class:`CountedImageWords`)."""
    return golden_passes.fit_or_plan(layer, cfg, fits=trial_encode, images=CountedImageWords)


def same_plan(a: Plan | None, b: Plan | None) -> bool:
    """Whether two answers of ``fit_or_plan`` run the same passes (the layer they split included: a 1x1
    strided layer runs subsampled, ``golden.passes.subsampled``)."""
    if a is None or b is None:
        return a is b
    return (a.chunk, a.band, a.channel_chunk, a.layer.stride, a.layer.h, a.layer.w) == \
        (b.chunk, b.band, b.channel_chunk, b.layer.stride, b.layer.h, b.layer.w)


@functools.cache
def passes(spec: LayerSpec, sparse: bool, cfg: ArrayConfig) -> tuple[Layer, ...]:
    """The layers the array runs for ``spec`` on ``cfg``: itself, or its passes (``golden.passes``, as
    ``host.net`` splits them), in the plan's order (filter chunk, band, channel chunk). Built with
    ``band_layer`` rather than ``Plan.passes``, whose later channel chunks carry partial sums computed by a
    full convolution the timing does not need."""
    ly = Layer(weights(spec, sparse), zeros(spec.c, spec.h, spec.w), spec.stride, spec.padding)
    pl = plan_of(ly, cfg)
    if pl is None:
        return (ly,)
    ly, cc = pl.layer, pl.channel_chunk  # the layer the plan splits (a 1x1 strided one runs subsampled)
    return tuple(band_layer(ly, m0, min(m0 + pl.chunk, ly.m), e0, min(e0 + pl.band, ly.e), c0, min(c0 + cc, ly.c))
                 for m0 in range(0, ly.m, pl.chunk) for e0 in range(0, ly.e, pl.band) for c0 in range(0, ly.c, cc))


def array(v: int, sparse: bool, **changes) -> ArrayConfig:
    """The 4x4 array at ``V = v`` (its default feed) on :data:`BUFFERS`, dense or kernel dataflow, with pixel
    tiles only (``chunks`` 0): the array the what-if designs start from; the chunk mapping as built is the
    design :data:`BUILT_CHUNKS`."""
    return ArrayConfig(dataflow="kernel" if sparse else "dense", lanes=v, **{**BUFFERS, "chunks": 0, **changes})


# --- a run's tally and what bounds it --------------------------------------------------------------------


@dataclass
class Tally:
    """Counters summed over a layer's passes, plus the MAC cycles spent on PEs past the output's edge."""

    cycles: int = 0
    mac: int = 0
    load_stall: int = 0
    drain_stall: int = 0
    edge: float = 0.0  # MAC cycles x the fraction of the pass's PE slots outside its output

    def add(self, busy: int, mac: int, load_stall: int, drain_stall: int, fill: float) -> None:
        self.cycles += busy
        self.mac += mac
        self.load_stall += load_stall
        self.drain_stall += drain_stall
        self.edge += mac * (1.0 - fill)


@dataclass(frozen=True)
class Run:
    """One layer (one instance) at one ``V``, dense or kernel 75 %: its tally and useful MACs."""

    shape: Shape
    v: int
    sparse: bool
    tally: Tally
    useful: int
    choice: tuple[int, int, int] = (4, 4, 1)  # the tile shape and channels per entry it ran with

    @property
    def ideal(self) -> int:
        return -(-self.useful // (PES * self.v))

    @property
    def utilization(self) -> float:
        return self.useful / (PES * self.v * self.tally.cycles)

    @property
    def lane_utilization(self) -> float:
        return self.useful / (PES * self.v * self.tally.mac) if self.tally.mac else 0.0


@functools.cache
def useful(spec: LayerSpec, sparse: bool) -> int:
    """Non-zero weights x output pixels (``golden.metrics.useful_macs``)."""
    return int(np.count_nonzero(weights(spec, sparse))) * spec.e * spec.f


def losses(run: Run) -> dict[str, float]:
    """Cycles by what they went to: useful work (``MAC``: the ideal cycles), the sequencer waiting for the
    loader or the drain (the stall counters), MAC cycles on PEs past the output's edge (``edge``), MAC
    cycles with idle lanes (``lanes``: the rest of the MAC cycles), and the remainder (``overhead``:
    headers, the cycle each entry ends with, the pipeline's fill and tail)."""
    t = run.tally
    return {"MAC": run.ideal, "loader": t.load_stall, "drain": t.drain_stall, "edge": t.edge,
            "lanes": max(0.0, t.mac - t.edge - run.ideal),
            "overhead": max(0, t.cycles - t.mac - t.load_stall - t.drain_stall)}


MINOR = 0.05
"""A loss below this share of the cycles does not bound a layer."""


def bound(run: Run) -> tuple[str, float]:
    """What keeps the layer from its ideal cycles: the largest loss of :func:`losses` and its share of the
    cycles, or ``MAC`` and the utilization when every loss is below :data:`MINOR`."""
    loss = losses(run)
    del loss["MAC"]
    name = max(loss, key=loss.get)
    share = loss[name] / run.tally.cycles
    return (name, share) if share >= MINOR else ("MAC", run.utilization)


def fill(layer: Layer, rows: int, cols: int) -> float:
    """Fraction of the PE slots of a rectangular-tile pass that hold an output pixel."""
    return layer.e * layer.f / (-(-layer.e // rows) * rows * -(-layer.f // cols) * cols)


_DENSE: dict[tuple, tuple] = {}


def dense_memo(fn: Callable[..., tuple], p: Layer, cfg: ArrayConfig, *extra: object) -> tuple:
    """``fn(p, cfg, *extra)``, computed once per pass shape on the dense dataflow: a dense pass's timing
    depends on its shape only, and most passes of a layer share one."""
    if cfg.dataflow != "dense":
        return fn(p, cfg, *extra)
    key = (fn.__name__, cfg, *extra, p.m, p.c, p.h, p.w, p.r, p.s, p.stride, p.padding)
    if key not in _DENSE:
        _DENSE[key] = fn(p, cfg, *extra)
    return _DENSE[key]


def golden_pass(p: Layer, cfg: ArrayConfig) -> tuple[int, int, int, int, float]:
    """``golden.timing.simulate`` of one pass: busy, MAC, load-stall and drain-stall cycles, and the PE-slot
    fill of the mapping it runs in."""
    enc = schedule(p, cfg)
    c: Counters = simulate(enc)
    filled = p.e * p.f / (enc.tiles_x * cfg.pes) if enc.chunks else fill(p, cfg.rows, cfg.cols)
    return c.busy_cycles, c.mac_cycles, c.load_stall_cycles, c.drain_stall_cycles, filled


def golden_run(shape: Shape, v: int, sparse: bool, cfg: ArrayConfig | None = None) -> Run:
    """Part 1: the golden model's counters of one layer, summed over its passes."""
    cfg = cfg or array(v, sparse)
    t = Tally()
    for p in passes(shape.spec, sparse, cfg):
        t.add(*dense_memo(golden_pass, p, cfg))
    return Run(shape, v, sparse, t, useful(shape.spec, sparse))


# --- what-if designs ---------------------------------------------------------------------------------------


LANES_OVER = ("kernel", "channels", "lane-banks", "filters", "banks")
MAPPINGS = ("tile", "raster", "chunks", "factor", "register", "built")


@dataclass(frozen=True)
class Design:
    """A loader, drain, issue rule and pixel mapping the RTL does not build (yet). Feed fields are
    *at least* values: an array keeps its own feed where it is wider (``drain=2`` leaves ``V = 9``'s 4).

    Attributes
    ----------
    compact : the loader fetches only the window rows and columns the PEs read (a kernel smaller than the
        stride skips the rest): ``rows*R`` instead of ``(rows-1)*stride + R`` rows, columns alike.
    act_lanes, act_rows : loader words per window row and window rows per cycle.
    buffers : tile buffers in flight (today 2: double-buffered).
    drain : outputs the drain writes per cycle; more than a PE row's ``cols`` drains ``drain // cols`` rows.
    channels : input channels per entry: ``channels`` windows loaded per entry (one setup), issued as one
        entry, one cycle of entry overhead.
    lanes_over : what one cycle's ``V`` lanes may take: ``kernel`` (today: positions of one kernel, each
        kernel ``ceil(R*S / V)`` cycles); ``channels`` (positions of one filter from any of the entry's
        channels: per filter ``ceil(positions over the entry's channels / V)``, issue 24's item 1; a lane
        reads any of the entry's channels); ``lane-banks`` (the same, lane ``j`` reading only the entry's
        channels ``j, j+V, ...``: per filter the most positions on one lane);
        ``filters`` (with ``R*S < V``: positions of one channel's kernels of several filters, each lane
        into its own accumulator slot: per channel ``ceil(kernels x R*S / V)``); ``banks`` (the same with
        the accumulators in ``V`` banks, slot ``s`` in bank ``s mod V``, one write per bank and cycle: per
        channel the most kernels x ``R*S`` of one bank).
    packed : the loader's ports read any words of the entry's windows (a channel-interleaved buffer), so
        ``k`` windows of ``TH x TW`` take ``ceil(k*TH*TW / ports)`` cycles.
    mapping : ``tile`` (rows x cols pixel tiles), ``raster`` (16 consecutive output pixels of a pass in
        raster order per tile), ``chunks`` (the raster mapping as the tile's read network can take it
        without a crossbar: PE row ``i`` takes ``cols`` consecutive outputs in raster order, of at most two
        output rows, into storage of its own, and the loader fills each PE row's window piece by piece, a
        ``R x span`` window per output-row segment of the row: no input pixel shared between PE rows is
        loaded once), ``factor`` (per layer the fastest of the rows x cols factorizations of the
        PEs: 1x16 ... 16x1; a tile register sized for all of them), ``register`` (per layer the fastest
        shape whose window fits today's tile register, ``ArrayConfig().tile_rows x tile_cols``).
    choices : channel counts per entry the host may choose from per layer (and per pruning): each run
        takes the fastest (``channels`` is then the largest, what the tile buffers must hold).
    acc_depth : accumulators per PE (filters per group; 0: the array's 32): a loaded window serves every
        filter of its group, so more filters per group is fewer loads per MAC (and longer drains).
    wide : field changes that apply at ``V > 1`` only (the wide array is its own build, ``--preset wide``).
    """

    name: str
    compact: bool = False
    act_lanes: int = 0
    act_rows: int = 0
    buffers: int = 2
    drain: int = 0
    channels: int = 1
    lanes_over: str = "kernel"
    packed: bool = False
    mapping: str = "tile"
    choices: tuple[int, ...] = ()
    acc_depth: int = 0
    wide: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        for name, value, allowed in (("lanes_over", self.lanes_over, LANES_OVER), ("mapping", self.mapping, MAPPINGS)):
            if value not in allowed:
                raise ValueError(f"Design {self.name!r}: {name} must be one of {', '.join(allowed)}, not {value!r}")

    def at(self, v: int) -> Design:
        """The design an array of ``v`` lanes gets: with :attr:`wide`'s changes when ``v > 1``."""
        return replace(self, **dict(self.wide), wide=()) if v > 1 and self.wide else self

    def loader(self, cfg: ArrayConfig) -> Loader:
        return Loader(words=max(cfg.act_lanes, self.act_lanes), rows=max(cfg.act_rows, self.act_rows),
                      buffers=self.buffers)

    def drain_width(self, cfg: ArrayConfig) -> int:
        return max(cfg.drain_lanes, self.drain)


TODAY = Design("today")

BUILT_CHUNKS = Design("chunk mapping as built (--chunks 1, the host picks per layer; golden model of the RTL)",
                      mapping="built")
"""The chunk mapping the RTL builds (``golden.chunks``): not a what-if model but the golden model of the array
with ``chunks`` 1, each pass in the mapping the cycle model says is faster."""


def span(n: int, stride: int, r: int, compact: bool) -> int:
    """Input rows (or columns) under ``n`` consecutive outputs: the window's extent, or with ``compact``
    and a kernel smaller than the stride only the ``n*r`` the PEs read."""
    return n * r if compact and r < stride else (n - 1) * stride + r


def load_cycles(loader: Loader, windows: Iterable[tuple[int, int]], k: int, packed: bool) -> int:
    """Cycles to load ``k`` channels of the ``TH x TW`` ``windows`` in one entry (one setup and last write):
    window by window, ``act_rows`` rows of ``act_lanes`` words a cycle; ``packed``: any ``act_rows x
    act_lanes`` of their words a cycle."""
    if packed:
        words = k * sum(th * tw for th, tw in windows)
        return -(-words // (loader.rows * loader.words)) + loader.overhead
    return k * sum(loader.window_cycles(th, tw) - loader.overhead for th, tw in windows) + loader.overhead


def drain_row_cycles(rows: int, cols: int, width: int, pe_cols: int) -> int:
    """Drain cycles of one filter's ``rows x cols`` valid outputs: ``width`` outputs of one PE row per
    cycle, or ``width // pe_cols`` whole rows per cycle when wider than a row."""
    if width > pe_cols:
        return -(-rows // (width // pe_cols))
    return rows * -(-cols // width)


def entries_of(mask_g: np.ndarray, n: int, v: int, k: int, lanes_over: str) -> list[tuple[int, int]]:
    """``(MAC cycles, channels)`` of one filter group's entries (``mask_g``: its ``(M_g, C)`` scheduled
    kernels of ``n`` positions), ``k`` scheduled channels per entry (the last may have fewer), the lanes
    filled as :attr:`Design.lanes_over` says."""
    chans = np.flatnonzero(mask_g.any(axis=0))
    if not len(chans):
        return []
    starts = np.arange(0, len(chans), k)
    kernels = mask_g[:, chans].astype(np.int64)
    if lanes_over == "channels":  # per filter and entry
        per = -(-np.add.reduceat(kernels, starts, axis=1) * n // v)
    elif lanes_over == "lane-banks":  # per filter and entry: its fullest lane
        per = np.stack([np.pad(kernels[:, a:a + k], ((0, 0), (0, -min(k, len(chans) - a) % v)))
                        .reshape(len(kernels), -1, v).sum(axis=1).max(axis=1) * n for a in starts], axis=1)
    elif lanes_over == "filters" and n < v:  # per channel, then summed over the entry's channels
        per = np.add.reduceat(-(-kernels.sum(axis=0, keepdims=True) * n // v), starts, axis=1)
    elif lanes_over == "banks" and n < v:  # per channel the fullest bank of slots s = b (mod v)
        banked = np.pad(kernels, ((0, -len(kernels) % v), (0, 0))).reshape(-1, v, len(chans)).sum(axis=0)
        per = np.add.reduceat(banked.max(axis=0, keepdims=True) * n, starts, axis=1)
    else:
        per = np.add.reduceat(kernels, starts, axis=1) * -(-n // v)
    widths = np.diff(np.append(starts, len(chans)))
    return [(int(m), int(c)) for m, c in zip(per.sum(axis=0), widths, strict=True)]


class _State:
    """The recurrence's state between tiles (``golden.timing.simulate``'s variables)."""

    __slots__ = ("loading", "seq", "drain_idle", "free", "mac", "stall", "dstall")

    def __init__(self, buffers: int):
        self.loading = self.seq = self.drain_idle = 1
        self.free: deque[int] = deque(maxlen=buffers)
        self.mac = self.stall = self.dstall = 0

    def times(self) -> tuple[int, ...]:
        return (self.loading, self.seq, self.drain_idle, *self.free)

    def counts(self) -> tuple[int, int, int]:
        return self.mac, self.stall, self.dstall

    def advance(self, dt: int, dcounts: tuple[int, int, int], times: int) -> None:
        self.loading += dt * times
        self.seq += dt * times
        self.drain_idle += dt * times
        self.free = deque((f + dt * times for f in self.free), maxlen=self.free.maxlen)
        self.mac, self.stall, self.dstall = (a + d * times for a, d in zip(self.counts(), dcounts, strict=True))


Windows = tuple[tuple[tuple[int, int], ...], ...]
"""What the loader may load per channel of a tile: alternative lists of ``TH x TW`` windows (it takes the
fastest)."""

Tile = tuple[int, Windows, int]
"""``(filter group, windows, drain cycles)``: one tile of a what-if run."""

Runs = list[tuple["Tile | Runs", int]]
"""Tiles as runs: ``(tile, repeat)`` or ``(runs, repeat)`` (a block of tiles repeated, e.g. a tile row)."""


def compress(tiles: Iterable[Tile], longest: int = 8) -> Runs:
    """``tiles`` as :data:`Runs`: equal consecutive tiles as one run, and repeated blocks of up to
    ``longest`` runs (a row of tiles and its edge tile, raster tiles' period) as one block run."""
    flat: list[tuple[Tile, int]] = []
    for t in tiles:
        if flat and flat[-1][0] == t:
            flat[-1] = (t, flat[-1][1] + 1)
        else:
            flat.append((t, 1))
    out: Runs = []
    i = 0
    while i < len(flat):
        period, reps = 1, 1
        for p in range(2, min(longest, (len(flat) - i) // 2) + 1):
            block = flat[i:i + p]
            r = 1
            while flat[i + r * p:i + (r + 1) * p] == block:
                r += 1
            if r > 1 and p * r > period * reps:
                period, reps = p, r
        if reps > 1:
            out.append((flat[i:i + period], reps))
        else:
            out.append(flat[i])
        i += period * reps
    return out


def recurrence(cfg: ArrayConfig, runs: Runs, entries: list[list[tuple[int, int]]], buffers: int,
               load: Callable[[Windows, int], int]) -> tuple[int, int, int, int]:
    """``golden.timing.simulate``'s recurrence (same loader, sequencer and drain rules) over tiles given as
    :data:`Runs`, group ``g``'s entries ``(MAC cycles, channels)`` in ``entries[g]``, an entry loading in
    ``load(windows, channels)`` cycles: busy, MAC, load-stall and drain-stall cycles. Its steps are all
    ``max`` and ``+``, so a state shifted in time steps to the shifted result: once one repeat of a run
    shifts every time of the state by the same ``dt`` (with its tile buffers all in use), the rest of the
    run is that shift repeated, exactly (what makes Part 2 fast enough to sweep). Equal to ``simulate``
    for today's design on every layer of Part 1 (:func:`check_today`)."""
    st = _State(buffers)
    flush = drain_flush(cfg)

    def tile(g: int, windows: Windows, drain: int) -> None:
        tl, ts = st.loading + HEADER_CYCLES, st.seq + HEADER_CYCLES
        free = st.free
        stall = 0
        cycles = {c: load(windows, c) for c in {c for _, c in entries[g]}}
        for m, c in entries[g]:
            tl = (max(tl, free[0]) if len(free) == buffers else tl) + cycles[c]
            if tl > ts:
                stall += tl - ts
                ts = tl
            ts += m + 1
            free.append(ts)
        st.stall += stall
        st.mac += sum(m for m, _ in entries[g])
        st.loading = tl
        handoff = max(ts, st.drain_idle)
        st.dstall += handoff - ts
        st.drain_idle = handoff + 1 + flush + drain
        st.seq = handoff + 1

    def play(items: Runs) -> None:
        for item, n in items:
            i = 0
            while i < n:
                full = len(st.free) == buffers
                t0, c0 = st.times(), st.counts()
                if isinstance(item[0], int):
                    tile(*item)
                else:
                    play(item)
                i += 1
                dts = {b - a for a, b in zip(t0, st.times(), strict=True)} if full else set()
                if len(dts) == 1 and i < n:
                    st.advance(dts.pop(), tuple(b - a for a, b in zip(c0, st.counts(), strict=True)), n - i)
                    break

    play(runs)
    return max(st.drain_idle + drain_tail(cfg), st.loading), st.mac, st.stall, st.dstall


def tile_pixels(p: Layer, cfg: ArrayConfig, design: Design) -> list[tuple[list[tuple[int, int]], int]]:
    """Per tile of one filter group: its output-row segments ``(outputs, input-row offset)`` and, as the
    second item, the number of output rows it spans; rectangular tiles or :attr:`Design.mapping` ``raster``."""
    if design.mapping == "chunks":
        return [(segs, len({y for _, y in segs})) for segs in _chunk_tiles(p, cfg)]
    if design.mapping != "raster":
        out = []
        for ty in range(-(-p.e // cfg.rows)):
            rows = min(cfg.rows, p.e - ty * cfg.rows)
            for tx in range(-(-p.f // cfg.cols)):
                out.append(([(min(cfg.cols, p.f - tx * cfg.cols), 0)] * rows, rows))
        return out
    out = []
    total = p.e * p.f
    for start in range(0, total, PES):
        end = min(start + PES, total)
        segs = []
        for y in range(start // p.f, (end - 1) // p.f + 1):
            segs.append((min(end, (y + 1) * p.f) - max(start, y * p.f), y))
        out.append((segs, len(segs)))
    return out


def _chunk_tiles(p: Layer, cfg: ArrayConfig) -> list[list[tuple[int, int]]]:
    """:attr:`Design.mapping` ``chunks``: per tile, the output-row segments ``(outputs, output row)`` of its PE
    rows, PE row by PE row (a row's chunk ends early where a third output row would begin)."""
    chunks, pos, total = [], 0, p.e * p.f
    while pos < total:
        y = pos // p.f
        end = min(pos + cfg.cols, total, (y + 2) * p.f)
        chunks.append([(min(end, (yy + 1) * p.f) - max(pos, yy * p.f), yy) for yy in range(y, (end - 1) // p.f + 1)])
        pos = end
    return [sum(chunks[t:t + cfg.rows], []) for t in range(0, len(chunks), cfg.rows)]


def whatif_pass(p: Layer, cfg: ArrayConfig, design: Design) -> tuple[int, int, int, int, float]:
    """One pass on ``design``: busy, MAC, load-stall, drain-stall cycles and the PE-slot fill."""
    loader = design.loader(cfg)
    width = design.drain_width(cfg)
    k = design.channels
    n = p.r * p.s
    mask = kernel_mask(p.weights, cfg.dataflow)
    A = cfg.acc_depth
    groups = -(-p.m // A)
    entries = [entries_of(mask[g * A:(g + 1) * A], n, cfg.lanes, k, design.lanes_over) for g in range(groups)]
    tiles: list[tuple[Windows, int]] = []
    if design.mapping == "chunks":
        th = span(1, p.stride, p.r, design.compact)
        for segs, _ in tile_pixels(p, cfg, design):
            each = tuple((th, span(m, p.stride, p.s, design.compact)) for m, _ in segs)
            tiles.append(((each,), sum(-(-m // width) for m, _ in segs)))
        filled = p.e * p.f / (len(tiles) * PES)
    elif design.mapping == "raster":
        for segs, nrows in tile_pixels(p, cfg, design):
            # each output-row segment's window, or their bounding box: the loader takes the faster
            th = span(1, p.stride, p.r, design.compact)
            cols = p.f if nrows > 1 else segs[0][0]
            box = (span(nrows, p.stride, p.r, design.compact), span(cols, p.stride, p.s, design.compact))
            each = tuple((th, span(m, p.stride, p.s, design.compact)) for m, _ in segs)
            tiles.append(((each, (box,)), sum(-(-m // width) for m, _ in segs)))
        filled = p.e * p.f / (len(tiles) * PES)
    else:
        window = ((span(cfg.rows, p.stride, p.r, design.compact), span(cfg.cols, p.stride, p.s, design.compact)),)
        tiles = [((window,), drain_row_cycles(rows, segs[0][0], width, cfg.cols))
                 for segs, rows in tile_pixels(p, cfg, design)]
        filled = fill(p, cfg.rows, cfg.cols)

    @functools.cache
    def load(windows: Windows, channels: int) -> int:
        return min(load_cycles(loader, w, channels, design.packed) for w in windows)

    seq = ((g, w, drain * min(A, p.m - g * A)) for g in range(groups) for w, drain in tiles)
    busy, mac, stall, dstall = recurrence(cfg, compress(seq), entries, loader.buffers, load)
    return busy, mac, stall, dstall, filled


def shapes_for(spec: LayerSpec, design: Design) -> list[tuple[int, int]]:
    """The logical tile shapes ``(rows, cols)`` a design may map ``spec`` on (``tile``/``raster``: 4x4)."""
    base = ArrayConfig()
    if design.mapping == "factor":
        return [(r, PES // r) for r in range(1, PES + 1) if PES % r == 0]
    if design.mapping != "register":
        return [(base.rows, base.cols)]
    fits = [(r, c) for r in range(1, PES + 1) for c in range(1, PES // r + 1)
            if (r, c) == (base.rows, base.cols)
            or ((r - 1) * spec.stride + spec.r <= base.tile_rows and (c - 1) * spec.stride + spec.s <= base.tile_cols)]
    return [(r, c) for r, c in fits if (r + 1, c) not in fits and (r, c + 1) not in fits]  # the maximal ones


def whatif_run(shape: Shape, v: int, sparse: bool, design: Design, base: ArrayConfig | None = None) -> Run:
    """Part 2: one layer on ``design``, in the passes of its plan; with a per-layer tile shape or channel
    count (:attr:`Design.choices`), the fastest (a shape planned for itself, ``golden.passes`` with its
    ``rows``): the host would choose per layer, and per pruning."""
    base = base or array(v, sparse)
    design = design.at(v)
    if design.mapping == "built":
        return golden_run(shape, v, sparse, replace(base, chunks=1, **({"acc_depth": design.acc_depth}
                                                                          if design.acc_depth else {})))
    if design.acc_depth:
        base = replace(base, acc_depth=design.acc_depth)
    best: tuple[Tally, tuple[int, int, int]] | None = None
    variants = [replace(design, channels=k, choices=()) for k in design.choices] or [design]
    for rows, cols in shapes_for(shape.spec, design):
        cfg = base if (rows, cols) == (base.rows, base.cols) else replace(
            base, rows=rows, cols=cols, drain_lanes=min(base.drain_lanes, 1 << (cols.bit_length() - 1)))
        for variant in variants:
            t = Tally()
            for p in passes(shape.spec, sparse, cfg):
                t.add(*dense_memo(whatif_pass, p, cfg, variant))
            if best is None or t.cycles < best[0].cycles:
                best = (t, (rows, cols, variant.channels))
    assert best is not None
    return Run(shape, v, sparse, best[0], useful(shape.spec, sparse), best[1])


# --- the study: runs, targets, options ------------------------------------------------------------------


class Study:
    """The layers of the networks and of the default sweep, and every run made of them (cached: the
    targets of one design share runs, and today's design is Part 1's)."""

    def __init__(self, networks: Sequence[str]):
        self.networks = {net: distinct(NETWORKS[net](), net) for net in networks}
        self.sweep = [Shape(spec, (spec.name,)) for spec in layer_specs(list(DEFAULT_LAYERS))]
        self._runs: dict[tuple, Run] = {}

    def run(self, net: str, shape: Shape, v: int, sparse: bool, design: Design | None = None) -> Run:
        """``shape`` of ``net`` (``sweep``: the default sweep's array and buffers) on the golden model
        (``design`` None) or on a design."""
        key = (net, shape.spec, v, sparse, design)
        if key not in self._runs:
            base = ArrayConfig(dataflow="kernel" if sparse else "dense", lanes=v, **{**DEFAULT_PARAMS, "chunks": 0}) \
                if net == "sweep" else array(v, sparse)
            self._runs[key] = golden_run(shape, v, sparse, base) if design is None \
                else whatif_run(shape, v, sparse, design, base)
        return self._runs[key]

    def layers(self, net: str, pick: Callable[[Shape], bool] = lambda s: True) -> list[Shape]:
        return [s for s in (self.sweep if net == "sweep" else self.networks[net]) if pick(s)]

    def speedup(self, net: str, v: int, design: Design | None, pick: Callable[[Shape], bool] = lambda s: True) -> float:
        """Dense over kernel-75 % cycles of the picked layers (each counted ``n`` times), same ``V``."""
        shapes = self.layers(net, pick)
        dense = sum(s.n * self.run(net, s, v, False, design).tally.cycles for s in shapes)
        return dense / sum(s.n * self.run(net, s, v, True, design).tally.cycles for s in shapes)

    def utilization(self, net: str, v: int, design: Design | None, sparse: bool = False,
                    pick: Callable[[Shape], bool] = lambda s: True, lanes: bool = False) -> float:
        """Useful MACs / (multipliers x cycles) of the picked layers; ``lanes``: x MAC cycles instead."""
        runs = [(s.n, self.run(net, s, v, sparse, design)) for s in self.layers(net, pick)]
        slots = sum(n * (r.tally.mac if lanes else r.tally.cycles) for n, r in runs) * PES * v
        return sum(n * r.useful for n, r in runs) / slots


@dataclass(frozen=True)
class Target:
    """One of issue 24's "Done means" on the golden model: a column of every option table."""

    label: str
    goal: float
    measure: Callable[[Study, Design | None], float]
    networks: tuple[str, ...]
    unit: str = "x"

    def cell(self, study: Study, design: Design | None) -> str:
        if any(n not in study.networks for n in self.networks):
            return "-"
        value = self.measure(study, design)
        text = f"{value:.2f}{self.unit}" if self.unit == "x" else f"{value:.3f}"
        return f"**{text}**" if value >= self.goal else text


def _named(*names: str) -> Callable[[Shape], bool]:
    return lambda s: any(n in s.names for n in names)


TARGETS = (
    Target("R50 1x1, V=9: dense lane util. >= 0.8", 0.8,
           lambda st, d: st.utilization("resnet50", V_WIDE, d, pick=lambda s: s.pointwise, lanes=True),
           ("resnet50",), ""),
    Target("R50 1x1, V=9: kernel 75 % >= 3x", 3.0,
           lambda st, d: st.speedup("resnet50", V_WIDE, d, lambda s: s.pointwise), ("resnet50",)),
    Target("R18 1x1/2, V=1: kernel 75 % >= 3x", 3.0,
           lambda st, d: st.speedup("resnet18", 1, d, lambda s: s.pointwise and s.spec.stride == 2), ("resnet18",)),
    Target("VGG conv1_1, V=1: kernel 75 % >= 3x", 3.0,
           lambda st, d: st.speedup("vgg16", 1, d, _named("conv1_1")), ("vgg16",)),
    Target("sweep 4x4, V=1: dense util. >= 0.9", 0.9, lambda st, d: st.utilization("sweep", 1, d), (), ""),
    Target("R18, V=1: dense util. >= 0.9", 0.9, lambda st, d: st.utilization("resnet18", 1, d), ("resnet18",), ""),
    Target("R18, V=9: dense util. >= 0.9", 0.9, lambda st, d: st.utilization("resnet18", V_WIDE, d),
           ("resnet18",), ""),
    Target("R18, V=9: kernel 75 % >= 3.3x", 3.3, lambda st, d: st.speedup("resnet18", V_WIDE, d), ("resnet18",)),
    Target("R50, V=9: kernel 75 % >= 3.3x", 3.3, lambda st, d: st.speedup("resnet50", V_WIDE, d), ("resnet50",)),
)
"""Issue 24's targets the golden model can measure (bold in a table: reached). Speedups are dense over
kernel-75 % cycles on the same design and ``V``, over the layers named, each counted as often as it occurs."""


@dataclass(frozen=True)
class Option:
    """One of issue 24's options: its designs (the first is today's) and what its table adds."""

    title: str
    designs: tuple[Design, ...]
    extra: tuple[Target | Note, ...] = ()


@dataclass(frozen=True)
class Note:
    """A column of an option table that is not a target: what a design chose, or a layer of interest."""

    label: str
    text: Callable[[Study, Design], str]
    networks: tuple[str, ...]

    def cell(self, study: Study, design: Design | None) -> str:
        if any(n not in study.networks for n in self.networks) or design is None:
            return "-"
        return self.text(study, design)


def chosen(net: str, v: int, sparse: bool, pick: Callable[[Shape], bool], what: Callable[[Run], str]) -> Note:
    """A note listing what the runs of ``net``'s picked layers chose (``what`` of each run, counted)."""
    def text(study: Study, design: Design) -> str:
        counts: dict[str, int] = {}
        for s in study.layers(net, pick):
            key = what(study.run(net, s, v, sparse, design))
            counts[key] = counts.get(key, 0) + s.n
        return ", ".join(f"{k} ({n})" for k, n in counts.items())
    kind = "kernel 75 %" if sparse else "dense"
    return Note(f"chosen, {net} {'1x1 ' if pick is _pointwise else ''}V={v} {kind} (layers)", text, (net,))


def _pointwise(s: Shape) -> bool:
    return s.pointwise


def _k(run: Run) -> str:
    return f"k={run.choice[2]}"


def _shape(run: Run) -> str:
    return f"{run.choice[0]}x{run.choice[1]}"


C3 = (Target("VGG conv1_1, V=9: kernel 75 %", 3.0, lambda st, d: st.speedup("vgg16", V_WIDE, d, _named("conv1_1")),
             ("vgg16",)),
      Target("VGG conv1_1, V=9: dense util.", 0.9,
             lambda st, d: st.utilization("vgg16", V_WIDE, d, pick=_named("conv1_1")), ("vgg16",), ""),
      Target("R18 conv1 (C=3, 7x7/2), V=1: kernel 75 %", 3.0,
             lambda st, d: st.speedup("resnet18", 1, d, _named("conv1")), ("resnet18",)))

KS = (1, 9, 36, 72, 144)
"""Channels per entry the host may choose from, per layer, with channel lanes: a filter keeps 9 of every 36
channels at 75 %, so ``k >= 36`` fills its ``V = 9`` lanes (the dense layer prefers ``k >= 9``)."""

KF = (1, 2, 4, 8)
"""Channels per entry the host may choose from, per layer, with filter lanes (a channel's kernels fill the
lanes; more channels per entry only amortize the loads)."""


def _ks(ks: tuple[int, ...]) -> str:
    return "/".join(map(str, ks))


def wide(**changes: object) -> tuple[tuple[str, object], ...]:
    """:attr:`Design.wide` from keywords."""
    return tuple(changes.items())


CHANNEL_LANES = {"lanes_over": "channels", "channels": max(KS), "choices": KS, "packed": True, "acc_depth": 64}
FILTER_LANES = {"lanes_over": "filters", "channels": max(KF), "choices": KF, "packed": True, "acc_depth": 64}
V1_SET = {"drain": 4, "mapping": "raster"}
"""The options that reach the ``V = 1`` targets (Combined)."""

OPTIONS = (
    Option("1. The loader fetches only the pixels the PEs read (R < stride). Today's golden.passes already runs a "
           "1x1 strided layer subsampled (the host sends the pixels it reads), which takes the same cycles",
           (TODAY, Design("compact windows", compact=True))),
    Option("2. The loader keeps up on little-work entries",
           (TODAY, Design("3 tile buffers", buffers=3), Design("4 tile buffers", buffers=4),
            Design("2 channels per entry", channels=2), Design("act_lanes 4", act_lanes=4),
            Design("act_lanes 8", act_lanes=8), Design("act_rows 2", act_rows=2),
            Design("acc_depth 64 at V=9", wide=wide(acc_depth=64)))),
    Option("3. The drain keeps up", (TODAY, Design("drain 2", drain=2), Design("drain 4", drain=4),
                                     Design("drain 8 (2 PE rows)", drain=8), Design("drain 16 (the tile)", drain=16)),
           C3),
    Option("4. Lanes for layers with fewer positions than lanes (at V=9; V=1 unchanged)",
           (TODAY,
            *(Design(f"channel lanes, k = {k}", wide=wide(lanes_over="channels", channels=k)) for k in (2, 4, 9)),
            *(Design(f"channel lanes, k = {k}, packed loader",
                     wide=wide(lanes_over="channels", channels=k, packed=True)) for k in (9, 36, 72)),
            Design(f"channel lanes, k in {_ks(KS)}, packed, acc_depth 64", wide=wide(**CHANNEL_LANES)),
            Design(f"channel lanes, lane j reads channels j mod 9 only, k in {_ks(KS)}, packed, acc_depth 64",
                   wide=wide(**{**CHANNEL_LANES, "lanes_over": "lane-banks"})),
            Design("filter lanes (per-lane accumulators), k = 1", wide=wide(lanes_over="filters")),
            Design(f"filter lanes, k in {_ks(KF)}, packed, acc_depth 64", wide=wide(**FILTER_LANES)),
            Design(f"filter lanes, accumulators in 9 banks (slot mod 9), k in {_ks(KF)}, packed, acc_depth 64",
                   wide=wide(**{**FILTER_LANES, "lanes_over": "banks"}))),
           (chosen("resnet50", V_WIDE, False, _pointwise, _k), chosen("resnet50", V_WIDE, True, _pointwise, _k))),
    Option("5. Edge waste", (TODAY, Design("(a) raster mapping", mapping="raster"),
                             Design("(a') raster in PE-row chunks of <= 2 output rows, loaded per PE row",
                                    mapping="chunks"),
                             Design("(a') the same, acc_depth 64 at V=9", mapping="chunks",
                                    wide=wide(acc_depth=64)),
                             BUILT_CHUNKS,
                             Design("(b) per-layer shape, factors of 16", mapping="factor"),
                             Design("(c) per-layer shape, today's tile register", mapping="register")),
           (chosen("resnet18", 1, False, lambda s: True, _shape),)),
    Option("Combined",
           (TODAY, Design("drain 4 + raster", **V1_SET),
            Design("drain 4 + raster; V=9: + filter lanes (per-lane accumulators), k in "
                   f"{_ks(KF)}, packed, acc_depth 64", **V1_SET, wide=wide(**FILTER_LANES)),
            Design("the same with banked accumulators", **V1_SET, wide=wide(**{**FILTER_LANES, "lanes_over": "banks"})),
            Design(f"drain 4 + raster; V=9: + channel lanes, k in {_ks(KS)}, packed, acc_depth 64",
                   **V1_SET, wide=wide(**CHANNEL_LANES))),
           (chosen("resnet50", V_WIDE, True, _pointwise, _k), *C3[:2])),
)


def ports(design: Design) -> str:
    """Activation read ports (``act_rows x act_lanes``) at ``V = 1`` and ``V = 9``, and the windows a tile
    buffer holds: what a design costs the loader and the tile."""
    cells = []
    for v in (1, V_WIDE):
        d = design.at(v)
        ld = d.loader(ArrayConfig(lanes=v))
        cells.append(f"{ld.rows * ld.words} ({d.buffers} x {d.channels})")
    return " / ".join(cells)


# --- tables -----------------------------------------------------------------------------------------------


def _bound_text(run: Run) -> str:
    name, share = bound(run)
    return f"{name} {share:.2f}"


def part1_table(study: Study, net: str, v: int) -> str:
    """Per layer: the dense and the kernel-75 % run on the golden model at ``V = v``."""
    lanes = v > 1
    head = ["layer", "n", "M x C x H x W R x S/stride", "dense cycles", "ideal", "load stall", "drain stall",
            "util.", *(["lane util."] if lanes else []), "bound (share)", "k75 cycles", "load stall", "drain stall",
            *(["lane util."] if lanes else []), "speedup", "bound (share)"]
    out = [f"{net}, V = {v} (cycles per layer; n layers of this shape; bound: the largest loss and its share of "
           f"the cycles, MAC and the utilization if every loss is under {MINOR:.0%}):", "",
           "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    tot = {k: 0 for k in ("d", "s", "ideal", "useful")}
    for shape in study.layers(net):
        d, s = study.run(net, shape, v, False), study.run(net, shape, v, True)
        tot["d"] += shape.n * d.tally.cycles
        tot["s"] += shape.n * s.tally.cycles
        tot["ideal"] += shape.n * d.ideal
        tot["useful"] += shape.n * d.useful
        out.append("| " + " | ".join([
            shape.label, str(shape.n), shape.text, f"{d.tally.cycles:,}", f"{d.ideal:,}", f"{d.tally.load_stall:,}",
            f"{d.tally.drain_stall:,}", f"{d.utilization:.3f}", *([f"{d.lane_utilization:.2f}"] if lanes else []),
            _bound_text(d), f"{s.tally.cycles:,}", f"{s.tally.load_stall:,}", f"{s.tally.drain_stall:,}",
            *([f"{s.lane_utilization:.2f}"] if lanes else []), f"{d.tally.cycles / s.tally.cycles:.2f}x",
            _bound_text(s)]) + " |")
    util = tot["useful"] / (PES * v * tot["d"])
    out.append(f"| **network** | | | {tot['d']:,} | {tot['ideal']:,} | | | {util:.3f} | "
               + ("| " if lanes else "") + f"| {tot['s']:,} | | | " + ("| " if lanes else "")
               + f"{tot['d'] / tot['s']:.2f}x | |")
    return "\n".join(out)


def option_table(study: Study, option: Option) -> str:
    cols = [*TARGETS, *option.extra]
    head = ["design", "read ports (buffers x windows), V=1 / V=9", *(t.label for t in cols)]
    out = [f"### {option.title}", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for design in option.designs:
        out.append("| " + " | ".join([design.name, ports(design), *(t.cell(study, design) for t in cols)]) + " |")
    return "\n".join(out)


def check_today(study: Study) -> int:
    """Today's design on the what-if recurrence against Part 1's golden runs, layer by layer (busy,
    MAC, stall counters): the what-if models start from the exact contract. Returns the runs compared."""
    n = 0
    for net in [*study.networks, "sweep"]:
        for shape in study.layers(net):
            for v in (1, V_WIDE):
                for sparse in (False, True):
                    g, w = study.run(net, shape, v, sparse), study.run(net, shape, v, sparse, TODAY)
                    if (g.tally.cycles, g.tally.mac, g.tally.load_stall, g.tally.drain_stall) != \
                            (w.tally.cycles, w.tally.mac, w.tally.load_stall, w.tally.drain_stall):
                        raise AssertionError(f"the what-if recurrence differs from golden.timing.simulate on "
                                             f"{net} {shape.label} V={v} sparse={sparse}")
                    n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m bench.shapes", description=__doc__.splitlines()[0])
    p.add_argument("--network", action="append", choices=sorted(NETWORKS),
                   help="Part 1 and the targets on this network only (repeatable; default: all three)")
    p.add_argument("--part", type=int, choices=(1, 2), help="print only Part 1 or Part 2 (default: both)")
    p.add_argument("--option", type=int, action="append", choices=range(1, len(OPTIONS) + 1),
                   help="Part 2: only this table (repeatable; 1-5 the options, 6 the combinations; default: all)")
    p.add_argument("--quick", action="store_true",
                   help="without VGG-16 and the per-layer tile-shape searches (option 5 b, c): 1.5 min instead of 2")
    args = p.parse_args(argv)
    if args.quick and args.network:
        p.error("--quick picks the networks (ResNet-18 and -50); give --network or --quick, not both")
    t0 = time.monotonic()
    check_schedule()
    study = Study(args.network or [n for n in NETWORKS if not (args.quick and n == "vgg16")])
    if args.part in (None, 1):
        print("## Part 1: what bounds each layer today (golden model, exact)\n")
        for net in study.networks:
            for v in (1, V_WIDE):
                print(part1_table(study, net, v), end="\n\n")
    if args.part in (None, 2):
        compared = check_today(study)
        print(f"## Part 2: options (what-if models; today's design equals golden.timing.simulate on all "
              f"{compared} runs of Part 1 and the sweep)\n")
        print(f"Default sweep ({', '.join(DEFAULT_LAYERS)}, 4x4, default buffers), dense V=1 utilization today: "
              f"{study.utilization('sweep', 1, None):.3f}.\n")
        for i, option in enumerate(OPTIONS, 1):
            if not args.option or i in args.option:
                if args.quick:
                    option = replace(option, designs=tuple(d for d in option.designs
                                                           if d.mapping not in ("factor", "register")))
                print(option_table(study, option), end="\n\n")
    print(f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
