"""Array (generate-time) and layer (run-time) parameters, shared by golden, hdl and sim.

One source of truth, like Gemmini's configuration object: ``hdl`` builds from an
:class:`ArrayConfig`, the manifest JSON is its ``to_dict()``, and the golden model reads the same
object to predict cycles. Every field is validated up front with a message that names the
parameter and the fix, because a wrong width found only in simulation costs a Verilator build.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .dataflow import DATAFLOW_TABLE, bits_for, dataflow_of
from .dsp_packing import fits as packing_fits
from .words import chan_word, unit_word, weight_word

DATAFLOWS = tuple(DATAFLOW_TABLE)
"""Dataflows the generator can build (one index decoder + encoder each): see ``golden.dataflow``."""


FEED_RULE = ((1, {"act_lanes": 2, "act_rows": 1, "drain_lanes": 2}),
             (5, {"act_lanes": 3, "act_rows": 1, "drain_lanes": 4}),
             (9, {"act_lanes": 6, "act_rows": 2, "drain_lanes": 4}))
"""``(from V, feed)``: the loader and drain an array of ``V``-lane PEs gets unless told otherwise
(:func:`feed_for`); each row holds from its ``V`` up to the next row's."""


def feed_for(lanes: int, cols: int) -> dict[str, int]:
    """The default loader and drain (``act_lanes``, ``act_rows``, ``drain_lanes``) of an array of
    ``lanes``-wide PEs and ``cols`` PE columns: the feed follows the lanes, so a wide array is not
    starved by a loader built for one MAC per PE.

    The rule (:data:`FEED_RULE`, derived on the golden model with ``golden.lanes.predict`` on the
    headline layer of ``bench.granularity`` on a 4x4 array): at each ``V`` the cheapest feed (fewest
    activation read ports, then drain lanes) whose cycles are within 5 % of the widest feed's on the
    dense and on the 75 % kernel-pruned layer. A 3x3 kernel takes ``ceil(9 / V)`` MAC cycles, so the
    feed can only need to change where that count does (9, 5, 3, 3, 2, 2, 2, 2, 1). One layer kind the
    headline layer cannot show sets the drain at ``V = 1``: a first layer with few input channels
    computes a tile in fewer cycles than one output per cycle takes to drain it (VGG-16's conv1, C = 3,
    kernel-pruned to 75 %: 1.69x over dense with 1 drain lane, 3.32x with 2, 3.89x with 4, by
    ``bench.shapes``), so ``V = 1`` drains 2 outputs per cycle, the fewest that clear issue 24's 3x:

    ======  =====================  ===================================================
    ``V``   act_lanes x act_rows   drain_lanes
    ======  =====================  ===================================================
    1-4     2 x 1                  2 (the ``V = 1`` array's feed; 1 drain lane up to issue 24)
    5-8     3 x 1                  4
    >= 9    6 x 2                  4 (``golden.lanes.WIDE_FEED``, chosen by ``bench.lanes``
                                   against issue 13's targets at 75 and 90 %)
    ======  =====================  ===================================================

    ``drain_lanes`` is then capped at the largest power of two <= ``cols`` (one output-buffer bank per
    lane, columns of one PE row). Explicit values (``--act-lanes`` ...) override the rule field by field.
    """
    feed = next(f for v, f in reversed(FEED_RULE) if lanes >= v)
    return {**feed, "drain_lanes": min(feed["drain_lanes"], 1 << (max(cols, 1).bit_length() - 1))}


def _check_int(name: str, value: object, lo: int, hi: int | None = None, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {rng}, not {value}{'; ' + hint if hint else ''}")


@dataclass(frozen=True)
class ArrayConfig:
    """Generate-time parameters of one PE array.

    Attributes
    ----------
    dataflow : which sequencer/decoder to build (see ``golden.dataflow``).
    rows, cols : PE array shape; PE (i, j) owns output pixel (y0 + i, x0 + j) of a pixel tile.
    acc_depth : accumulators per PE = filters processed together (one filter group).
    act_bits, weight_bits : signed operand widths.
    acc_bits : accumulator width; accumulation wraps modulo ``2**acc_bits`` (two's complement).
    max_kernel : largest R and S the tile register and position counters support.
    max_stride : largest convolution stride the tile mux supports.
    lanes : multiply lanes per PE (``V``): a cycle issues up to ``V`` scheduled positions of one kernel,
        their products summed into one accumulator slot (``golden.lanes`` says which positions share a
        cycle); a weight word holds ``V`` weights.
    act_lanes : activations of one window row the tile loader reads per cycle (default: by
        :func:`feed_for`, which follows ``lanes``);
    act_rows : window rows it reads at once (default: by :func:`feed_for`): ``act_rows * act_lanes``
        read ports on the activation buffer (each a copy of its block RAM), and a window of ``TH x TW`` takes
        ``ceil(TH / act_rows) * ceil(TW / act_lanes)`` cycles to load (``golden.timing.Loader``).
    drain_lanes : outputs the drain writes per cycle (``W``: consecutive columns of one PE row, into
        ``W`` banks of the output buffer, ``hdl.buffers``); a power of two, at most ``cols`` (default: by
        :func:`feed_for`). A tile of
        ``M_g`` filters drains in ``M_g * rows * ceil(cols / W)`` cycles: wide PEs compute a tile in so
        few cycles that one output per cycle would be their limit (``golden.lanes``).
    act_depth, weight_depth, index_depth, out_depth : buffer depths in words.
    acc_pipeline : 1 registers the accumulator read and forwards the sums in flight (one more cycle of
        MAC latency, ~4 ``acc_bits`` registers per PE, no block RAM inside the accumulate loop: for high
        clocks); 0 reads, adds and writes the accumulator RAM in one cycle (smallest; see ``hdl.pe``).
    epilogue : 1 builds the drain's output stage (``hdl.epilogue``): a pass's sums start from a bias
        per output channel or from partial sums loaded into the output buffer, and the int8 epilogue
        (ReLU, requantization, saturation to ``act_bits``) can be applied on the way out
        (``golden.epilogue.OutputStage``); ``W`` times two multipliers (``golden.epilogue.MULT_BITS``
        wide) and a ``param_depth``-word parameter memory. 0: the outputs are the raw sums. On by
        default, because a layer with more channels than the buffers hold runs in channel chunks, which
        need the partial sums (``golden.passes``); a board turns it off in its build defaults where it
        cannot afford it or was measured without it (``constraints/<board>.json``, ``reasons``).
    param_depth : output channels of a pass the output stage holds a bias and requantization for
        (with ``epilogue``; a layer with more runs in filter passes).
    perf_bits : width of each performance counter; 48 never wraps in practice, a small FPGA can save
        area with fewer (a run whose counts do not fit is reported by ``golden.check``, not wrapped silently).
    dsp_packing : products per multiplier: 1, or 2 for two neighbouring PE columns sharing one 18x18
        multiplier per lane (the weight is broadcast, so both multiply it: ``golden.dsp_packing``, built by
        ``hdl.shared_multipliers``); half the DSP blocks for a small soft correction, the same outputs, and
        one pipeline register more (``golden.timing.PACKED_PRODUCT_LATENCY``, which the timing model counts:
        a cycle per layer). 8-bit operands at most (``golden.dsp_packing.fits``);
        with an odd ``cols`` the last column keeps its own multipliers.
    chunks : 1 also builds the chunk mapping of output pixels (``golden.chunks``): PE rows take runs of
        ``cols`` consecutive outputs in raster order, so an output that is not a multiple of the array's
        shape wastes fewer PE slots; the host picks the faster mapping per layer. It stores each PE row's
        window rows on their own (``hdl.tile``), ``max_kernel - 1`` columns wider, and its loader fills them
        piece by piece.
    """

    dataflow: str = "kernel"
    rows: int = 4
    cols: int = 4
    acc_depth: int = 32
    act_bits: int = 8
    weight_bits: int = 8
    acc_bits: int = 32
    max_kernel: int = 3
    max_stride: int = 2
    lanes: int = 1
    act_lanes: int | None = None
    act_rows: int | None = None
    drain_lanes: int | None = None
    act_depth: int = 8192
    weight_depth: int = 16384
    index_depth: int = 4096
    out_depth: int = 8192
    acc_pipeline: int = 1
    epilogue: int = 1
    param_depth: int = 256
    perf_bits: int = 48
    dsp_packing: int = 1
    chunks: int = 1

    def __post_init__(self) -> None:
        dataflow_of(self.dataflow)  # raises for an unknown name
        _check_int("rows", self.rows, 1, 64)
        _check_int("cols", self.cols, 1, 64)
        _check_int("max_kernel", self.max_kernel, 1, 15)
        _check_int("lanes", self.lanes, 1, self.max_kernel ** 2,
                   hint="a cycle issues positions of one kernel, at most max_kernel**2 of them")
        for name, value in feed_for(self.lanes, self.cols).items():  # unset feed fields follow the lanes
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen: resolved once, so to_dict() is concrete
        _check_int("acc_depth", self.acc_depth, 1, 4096)
        _check_int("act_bits", self.act_bits, 2, 32)
        _check_int("weight_bits", self.weight_bits, 2, 32)
        _check_int("max_stride", self.max_stride, 1, 4)
        _check_int("act_lanes", self.act_lanes, 1, 8)
        _check_int("act_rows", self.act_rows, 1, 4)
        _check_int("drain_lanes", self.drain_lanes, 1, self.cols,
                   hint="the drain writes columns of one PE row per cycle")
        if self.drain_lanes & (self.drain_lanes - 1):
            raise ValueError(f"drain_lanes must be a power of two (output-buffer banks), not {self.drain_lanes}")
        _check_int("act_depth", self.act_depth, 1, 1 << 24)
        _check_int("weight_depth", self.weight_depth, 1, 1 << 24)
        _check_int("index_depth", self.index_depth, 2, 1 << 24)
        _check_int("out_depth", self.out_depth, 1, 1 << 24)
        if self.out_depth % self.drain_lanes:
            raise ValueError(f"out_depth must be a multiple of drain_lanes={self.drain_lanes} (one bank per lane), "
                             f"not {self.out_depth}")
        _check_int("acc_pipeline", self.acc_pipeline, 0, 1)
        _check_int("epilogue", self.epilogue, 0, 1)
        _check_int("param_depth", self.param_depth, 1, 1 << 16)
        _check_int("perf_bits", self.perf_bits, 16, 64)
        need = self.act_bits + self.weight_bits
        _check_int("acc_bits", self.acc_bits, need, 64,
                   hint=f"a product of {self.weight_bits}-bit weights and {self.act_bits}-bit activations "
                        f"needs at least {need} bits")
        _check_int("dsp_packing", self.dsp_packing, 1, 2, hint="products per multiplier (2: PE column pairs share one)")
        _check_int("chunks", self.chunks, 0, 1)
        if self.dsp_packing == 2:
            if self.cols < 2:
                raise ValueError("dsp_packing 2 shares a multiplier between neighbouring PE columns; it needs "
                                 f"cols >= 2, not {self.cols}")
            packing_fits(self.act_bits, self.weight_bits, what="dsp_packing 2", fix="use dsp_packing 1")

    # --- derived sizes (used by hdl, golden and the manifest alike) ---
    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def packed_pairs(self) -> int:
        """PE column pairs per PE row that share their multipliers (``dsp_packing`` 2), 0 otherwise."""
        return self.cols // 2 if self.dsp_packing == 2 else 0

    @property
    def multipliers(self) -> int:
        """Multipliers of the array, ``PEs x lanes``: what an ideal cycle count or a utilization divides by."""
        return self.pes * self.lanes

    def changed(self) -> dict[str, object]:
        """The parameters that differ from the default array's (``ArrayConfig()``), in field order: what a
        summary line must name besides the shape (a feed that follows ``lanes`` counts as changed)."""
        default = ArrayConfig()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    def with_lanes(self, lanes: int, **changes) -> ArrayConfig:
        """This array with ``lanes``-wide PEs (and ``changes``): the feed fields that follow this array's
        lanes (equal to :func:`feed_for` of them) follow the new lanes; a feed set apart from the rule stays.
        ``dataclasses.replace`` would keep the old lanes' feed, starving a wide variant of a narrow run."""
        follows = feed_for(self.lanes, self.cols)
        kept = {k: getattr(self, k) for k, v in follows.items() if getattr(self, k) != v}
        return replace(self, lanes=lanes, **{k: kept.get(k) for k in follows}, **changes)

    @property
    def shape(self) -> str:
        """``ROWSxCOLS``, with ``-vV`` for wide PEs: the array's part of build and result names."""
        return f"{self.rows}x{self.cols}" + (f"-v{self.lanes}" if self.lanes > 1 else "")

    @property
    def tile_rows(self) -> int:
        """Rows of the activation tile register: enough for the largest stride and kernel."""
        return (self.rows - 1) * self.max_stride + self.max_kernel

    @property
    def tile_cols(self) -> int:
        return (self.cols - 1) * self.max_stride + self.max_kernel

    @property
    def act_ports(self) -> int:
        """Activation-buffer read ports (and tile write lanes): port ``k*act_lanes + l`` reads column
        ``v + l`` of window row ``u + k`` in a load cycle at ``(u, v)``."""
        return self.act_rows * self.act_lanes

    @property
    def weight_word_bits(self) -> int:
        """Width of one weight-buffer word: ``lanes`` weights (``golden.words.weight_word``)."""
        return weight_word(self).width

    @property
    def dim_bits(self) -> int:
        """Width of every runtime dimension field in the configuration struct."""
        return bits_for(max(self.act_depth, self.out_depth, self.acc_depth, self.max_kernel, self.max_stride,
                            self.tile_rows, self.tile_cols))

    @property
    def slot_bits(self) -> int:
        return bits_for(self.acc_depth - 1)

    @property
    def chan_bits(self) -> int:
        """Bits of a channel number: a channel holds at least one pixel, so C <= act_depth."""
        return bits_for(self.act_depth - 1)

    @property
    def pos_bits(self) -> int:
        """Bits of a kernel row/column, of a stride-pattern step and phase (all <= max_kernel)."""
        return bits_for(self.max_kernel)

    @property
    def count_bits(self) -> int:
        """Bits of an entry's unit count (units of one channel in one group) and of a group's entry count."""
        return bits_for(max(self.acc_depth * self.max_kernel ** 2, self.act_depth))

    @property
    def chan_index_bits(self) -> int:
        """Width of one channel-index word (``golden.words.chan_word``)."""
        return chan_word(self).width

    @property
    def unit_index_bits(self) -> int:
        """Width of one unit-index word (``golden.words.unit_word``)."""
        return unit_word(self).width

    @property
    def has_index(self) -> bool:
        """Whether this dataflow stores an index (the dense one derives everything from counters)."""
        return dataflow_of(self.dataflow).indexed

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ArrayConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown array parameter(s) {', '.join(unknown)}; the manifest is from another version")
        return cls(**d)
