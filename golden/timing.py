"""Exact cycle and performance-counter model of the array (the timing contract).

The array runs three processes that hand buffers to each other (see docs/architecture.md):

* the **loader** fills the two activation tile buffers, alternately, one window per channel entry:
  per tile it spends 3 cycles reading the group header (restart of its index stream, the stream's
  latency, the header); per entry it waits until its buffer is
  free, then takes ``1 + ceil(TH/K)*ceil(TW/L) + 1`` cycles (setup, ``L = act_lanes`` window positions
  of ``K = act_rows`` rows per cycle, last write); in the chunk mapping (``golden.chunks``) the window is
  its sub-windows, each at least :data:`SUB_WINDOW_GAP` cycles after the one before, and a tile's first
  entry waits :data:`CHUNK_TILE_SETUP` cycle more;
  the buffer is *full* from the cycle after that;
* the **compute sequencer** per tile spends 3 cycles on the header, then per entry waits in one
  cycle (two for strided with ``lanes`` > 1: :func:`entry_cycles`) for its buffer to be full and
  issues its scheduled weights back to back, one MAC cycle each
  (with ``lanes`` > 1, up to ``lanes`` positions of one kernel per cycle: ``golden.lanes``, counted in
  ``EncodedLayer.mac_cycles``); the buffer is free from
  the cycle after the last MAC. At the end of a tile it hands the accumulator bank to the drain as
  soon as the drain is idle and starts the next tile the cycle after;
* the **drain** waits :func:`drain_flush` cycles for the MAC pipeline to empty, then writes
  ``drain_lanes`` outputs per cycle, columns of one PE row (``M_g`` filters x valid rows x
  ``ceil(valid columns / drain_lanes)`` cycles) and is idle one cycle after its last one.

``done`` rises :func:`drain_tail` cycles after the last drain becomes idle, when its last output has
been written (and the loader has walked every tile).
Cycle 1 is the first cycle ``busy`` is high (the cycle after ``start``), so the returned count
equals the number of busy cycles.

Deliberately written as a recurrence over events, not as a cycle-by-cycle simulation: it is the
specification the RTL's FSMs are checked against, and it is fast enough for design-space sweeps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from . import chunks
from .dataflow import dataflow_of
from .encode import EncodedLayer

# --- stage latencies: the one table of the pipeline depths; hdl/ builds its registers from it ---

STREAM_LATENCY = 2
"""``hdl.prefetch``: cycles from an index stream's restart to its first word at the head (the block
RAM's read, the landing register)."""

TILE_LATENCY = 2
"""``hdl.tile``: cycles from the one-hot selects to the activation at the PE (the selects' copies,
the per-row register)."""

ACT_DATA_LATENCY = 1
"""``hdl.loader``: registers of the activation buffer's read data (and of the write's enables, row and
column with it) between the block RAM and the tile's write, so the RAM's late output (5.8 ns into a 10 ns
cycle on an ECP5, after the mux of a deep buffer's blocks) ends at flip-flops beside it, and the next
cycle carries the write towards the PE rows (on the 8x8 ECP5 array that route from the RAM was the worst
path, 10.28 ns). Built where the tile's write fans out to per-row copies (``hdl.tile.per_row_storage``);
with shared rows the tile's single first stage is that register already. Not in the cycle count: the
window reaches the tile's storage that much later, but the buffer's ``full`` flag does not wait for it;
the PEs' row registers first read a window at least :data:`WINDOW_READ_SLACK` cycles after its last write
would have reached the storage without these registers (``tests/hdl/test_latency_table.py`` checks the
RTL at 0 and 1)."""

WINDOW_READ_SLACK = 1
"""``hdl.tile``, ``hdl.sequencer``: the most :data:`ACT_DATA_LATENCY` can be without a cycle in the count."""

MULTIPLIER_LATENCY = 2
"""``hdl.multiplier``: the operand registers and the product register (inside the DSP block)."""

ROW_COPY_LATENCY = 1
"""``hdl.array``: the drain's read request, registered once per PE row."""


ADDER_LEVELS_PER_STAGE = 2
"""``hdl.pe``: adder levels of the lanes' adder tree between two of its registers."""


def adder_tree_latency(cfg) -> int:
    """``hdl.pe``: the registers of the adder tree that sums a PE's ``lanes`` products: one per
    :data:`ADDER_LEVELS_PER_STAGE` of its ``ceil(log2(lanes))`` levels (none with one lane)."""
    levels = (cfg.lanes - 1).bit_length()
    return -(-levels // ADDER_LEVELS_PER_STAGE)


PE_OPERAND_LATENCY = 1
"""``hdl.pe`` with ``acc_pipeline``: the operand registers in the fabric next to the PE, in front of the
multiplier's own (the tile's column mux and the route to the DSP block get a cycle of their own)."""

RUNNING_SUM_LATENCY = 1
"""``hdl.pe`` with ``acc_pipeline``: the running sum's register; the accumulator is written from it."""

ACC_READ_LATENCY = 1
"""``hdl.pe``: an accumulator bank's read: the RAM's register, or with LUT RAM the registered read address."""

PE_DRAIN_DATA_LATENCY = 1
"""``hdl.pe`` with ``acc_pipeline``: the drain's read data registered next to the PE."""


PACKED_PRODUCT_LATENCY = 1
"""``hdl.shared_multipliers`` with ``dsp_packing`` 2: the corrected products registered after the one adder
that follows the DSP block (``hdl.packed_multiplier``), before the PEs' adder trees; a column with its own
multipliers in such an array delays its products alike, so the PEs stay in lockstep. Without it the wide
preset's worst path ran from the DSP through the correction's adder and two adder-tree levels (107.11 MHz);
with it the packed preset reaches the unpacked one's clock (110.90 against 111.01 MHz, ``docs/fpga.md``)."""


def product_latency(cfg) -> int:
    """``hdl.pe``: cycles from a lane's operands at the multiplier to its product at the adder tree: the
    multiplier's, and with ``dsp_packing`` 2 :data:`PACKED_PRODUCT_LATENCY`."""
    return MULTIPLIER_LATENCY + (PACKED_PRODUCT_LATENCY if cfg.dsp_packing > 1 else 0)


def pe_sum_stage(cfg) -> int:
    """``hdl.pe``: the stage, counted after the adder tree's delay, in which the product is added to its
    slot: with ``acc_pipeline`` the fabric operand registers, and the product (:func:`product_latency`)."""
    return (PE_OPERAND_LATENCY if cfg.acc_pipeline else 0) + product_latency(cfg)


def pe_latency(cfg) -> int:
    """``hdl.pe``: cycles from operands at a PE's inputs to their accumulator write taking effect:
    the lanes' adder tree and :func:`pe_sum_stage`, plus with ``acc_pipeline`` the running sum's
    register (without it the sum is written in its own stage)."""
    return adder_tree_latency(cfg) + pe_sum_stage(cfg) + (RUNNING_SUM_LATENCY if cfg.acc_pipeline else 0)


def pe_drain_latency(cfg) -> int:
    """``hdl.pe``: cycles from a drain read request to the accumulator's data: the bank's read, and
    with ``acc_pipeline`` a read-data register."""
    return ACC_READ_LATENCY + (PE_DRAIN_DATA_LATENCY if cfg.acc_pipeline else 0)


def array_latency(cfg) -> int:
    """``hdl.array``: cycles from operands at the array's inputs to the accumulator write."""
    return TILE_LATENCY + pe_latency(cfg)


def array_drain_latency(cfg) -> int:
    """``hdl.array``: cycles from the drain's request to a PE's accumulator data."""
    return ROW_COPY_LATENCY + pe_drain_latency(cfg)


HEADER_CYCLES = 1 + STREAM_LATENCY
"""Cycles the loader and the sequencer spend on a tile's group header: the restart of the index
stream, the stream's latency less one (waiting), the cycle the header is at the head."""

LOAD_OVERHEAD = 2  # setup cycle + the write of the last window position

SUB_WINDOW_GAP = 2
"""``hdl.loader`` in the chunk mapping (``golden.chunks``): the fewest cycles from one sub-window's first
positions to the next one's. A sub-window is set up in two steps (its edges and port addresses, then its
in-bounds rows and columns) while the one before it loads, and starts in that one's last read cycle: a
sub-window of one read cycle leaves a cycle's gap."""

CHUNK_TILE_SETUP = 1
"""``hdl.loader`` in the chunk mapping: cycles a tile's first entry pops later than with tiles. Its first
sub-window is set up from the header's last cycle on (the walk's new start is in its registers from then),
so it is ready a cycle after the tile mapping's window would start; a later entry's first sub-window is set
up while the entry before it loads."""

PATTERN_LATENCY = 1
"""``hdl.sequencer`` with ``lanes`` > 1 and a stride pattern (strided): cycles from an entry's pattern at the
index stream's head to the registers that hold its lanes' start positions (``phi + l*sigma``, a divmod by
``S`` per lane) and whether its units go on past one cycle: the pattern's own register, then
``PATTERN_LATENCY - 1`` registers after the starts' tables and adds. From the stream's head in the entry's
one cycle that was the wide strided array's critical path on the ECP5 (85.5 MHz); with the pattern's
register it reaches 89-98 MHz, and a second register (2) did not help: the tables and adds of ten lanes,
spread over the die, are a long path even between registers (84.63 MHz, ``docs/fpga.md``)."""


def entry_cycles(cfg) -> int:
    """``hdl.sequencer``: cycles an entry takes besides its MAC cycles and its wait for a full buffer:
    the pop, and with ``lanes`` > 1 and a stride pattern :data:`PATTERN_LATENCY` before it."""
    return 1 + (PATTERN_LATENCY if dataflow_of(cfg.dataflow).pattern and cfg.lanes > 1 else 0)

DRAIN_SETUP = 4  # cycles the drain takes to set up a tile's output addresses after the hand-off


PSUM_LATENCY = 2
"""``hdl.buffers``: cycles from a partial-sum read of the output buffer to its words: the block RAMs'
read, the landing register. ``hdl.epilogue`` reads its bias and requantization memories alike."""

EPILOGUE_STAGES = {"base": PSUM_LATENCY, "sum": 1, "multiply": MULTIPLIER_LATENCY, "products": 1,
                   "round": 1, "shift": 1, "saturate": 1}
"""``hdl.epilogue``: the output stage's pipeline, in order, in cycles per stage: the read of an output's
bias or partial sum (the sum waits for it), the add, the multiplier's operand and product registers (in
the DSP blocks), the partial products' sum with the rounding term, the rounding add, the shift, the
saturation."""

EPILOGUE_LATENCY = sum(EPILOGUE_STAGES.values())
"""``hdl.epilogue``: cycles from an output leaving the drain to its write into the output buffer with
``epilogue`` (:data:`EPILOGUE_STAGES`)."""


LATENCY_TABLE = (
    ("STREAM_LATENCY", "`hdl.prefetch` (fixed)"),
    ("ACT_DATA_LATENCY", "`hdl.loader` (at most `WINDOW_READ_SLACK`)"),
    ("HEADER_CYCLES", "`hdl.walker.header_states` (1 + `STREAM_LATENCY`)"),
    ("TILE_LATENCY", "`hdl.tile` (at least 2), `hdl.array`"),
    ("MULTIPLIER_LATENCY", "`hdl.multiplier` (2 on the ECP5 DSP block)"),
    ("PE_OPERAND_LATENCY", "`hdl.pe`, with `acc_pipeline`"),
    ("PACKED_PRODUCT_LATENCY", "`hdl.shared_multipliers`, `hdl.pe`, with `dsp_packing` 2"),
    ("RUNNING_SUM_LATENCY", "`hdl.pe`, with `acc_pipeline` (fixed)"),
    ("ACC_READ_LATENCY", "`hdl.pe` (fixed)"),
    ("PE_DRAIN_DATA_LATENCY", "`hdl.pe`, with `acc_pipeline`"),
    ("ROW_COPY_LATENCY", "`hdl.array`"),
    ("ADDER_LEVELS_PER_STAGE", "`hdl.pe` adder tree (levels per register)"),
    ("PATTERN_LATENCY", "`hdl.sequencer`, strided with `lanes` > 1 (at least 1)"),
    ("SUB_WINDOW_GAP", "`hdl.loader`, the chunk mapping (fixed)"),
    ("CHUNK_TILE_SETUP", "`hdl.loader`, the chunk mapping (fixed)"),
    ("PSUM_LATENCY", "`hdl.buffers`, `hdl.epilogue`"),
    ("EPILOGUE_STAGES", "`hdl.epilogue`, per stage"),
    ("EPILOGUE_LATENCY", "`hdl.epilogue` (the stages' sum)"),
)
"""The table's entries and the blocks that build them ("fixed": the only value the block's structure
takes; it refuses another at elaboration), for :func:`latencies_markdown`."""


def latencies_markdown() -> str:
    """:data:`LATENCY_TABLE` with each entry's value, as the markdown table of docs/architecture.md
    (a test checks the document against it, so the doc cannot drift from the code)."""
    lines = ["| entry | cycles | built by |", "|---|---|---|"]
    for name, built_by in LATENCY_TABLE:
        value = globals()[name]
        cycles = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        lines.append(f"| `{name}` | {cycles} | {built_by} |")
    return "\n".join(lines) + "\n"


def drain_tail(cfg) -> int:
    """Cycles from the drain's idle to its last output write: its read (the array's per-row copy of
    the request and the PE's read), and its output stage, less the cycle in which the drain turns idle;
    with ``epilogue`` plus the epilogue's pipeline."""
    return array_drain_latency(cfg) + (EPILOGUE_LATENCY if cfg.epilogue else 0)


def drain_flush(cfg) -> int:
    """Cycles the drain waits after the hand-off before its first read: the array's latency from
    operands to accumulator write, less the cycles the drain's own read request spends before the read
    (its per-row copy, and with ``acc_pipeline`` the PE's read-address register), but at least the
    :data:`DRAIN_SETUP` cycles its address setup takes."""
    return max(DRAIN_SETUP, array_latency(cfg) - (array_drain_latency(cfg) - 1))


@dataclass(frozen=True)
class Counters:
    """Performance counters of one run; names match the RTL's ``perf`` struct fields."""

    busy_cycles: int = 0
    mac_cycles: int = 0
    load_stall_cycles: int = 0
    drain_cycles: int = 0
    drain_stall_cycles: int = 0
    tile_loads: int = 0
    act_reads: int = 0
    weight_reads: int = 0
    index_reads: int = 0
    output_writes: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _in_bounds(ly, y0: int, x0: int, th: int, tw: int) -> int:
    """In-bounds input pixels of a ``th x tw`` window at ``(y0, x0)`` (padding positions are not read)."""
    ny = max(0, min(y0 + th, ly.h) - max(y0, 0))
    nx = max(0, min(x0 + tw, ly.w) - max(x0, 0))
    return ny * nx


def _tile_work(enc: EncodedLayer, loader: Loader, drain_width: int) -> list[tuple[int, int, int]]:
    """Per tile of a filter group, in walk order: cycles to load one entry's window, its in-bounds input
    pixels (``act_reads``), drain cycles per filter. Every group has the same tiles."""
    ly, cfg = enc.layer, enc.cfg
    if enc.chunks:
        out = []
        for t in range(enc.tiles_x):
            subs = chunks.sub_windows(ly, cfg, t)
            reads = [-(-ly.r // loader.rows) * -(-sw.tw // loader.words) for sw in subs]
            load = loader.overhead + sum(reads) + sum(max(0, SUB_WINDOW_GAP - n) for n in reads[:-1])
            reads = sum(_in_bounds(ly, sw.y0, sw.x0, ly.r, sw.tw) for sw in subs)
            drain = sum(-(-n // drain_width) for n in chunks.outputs(ly.e, ly.f, cfg, t))
            out.append((load, reads, drain))
        return out
    th, tw = (cfg.rows - 1) * ly.stride + ly.r, (cfg.cols - 1) * ly.stride + ly.s
    load = loader.window_cycles(th, tw)
    out = []
    for ty in range(enc.tiles_y):
        for tx in range(enc.tiles_x):
            reads = _in_bounds(ly, ty * cfg.rows * ly.stride - ly.padding, tx * cfg.cols * ly.stride - ly.padding,
                               th, tw)
            rows_valid = min(cfg.rows, ly.e - ty * cfg.rows)
            cols_valid = min(cfg.cols, ly.f - tx * cfg.cols)
            out.append((load, reads, rows_valid * -(-cols_valid // drain_width)))
    return out


@dataclass(frozen=True)
class Loader:
    """How the tile loader fills a window: ``words`` activations of one window row per cycle,
    ``rows`` window rows at a time, ``overhead`` cycles per window besides those (setup, last write),
    into ``buffers`` tile buffers in flight. The RTL's loader is :meth:`of` its configuration; other
    values describe loader designs the model can evaluate before they are built (``golden.lanes``)."""

    words: int
    rows: int = 1
    overhead: int = LOAD_OVERHEAD
    buffers: int = 2

    @classmethod
    def of(cls, cfg) -> Loader:
        return cls(words=cfg.act_lanes, rows=cfg.act_rows)

    def window_cycles(self, th: int, tw: int) -> int:
        """Cycles from a window load's start to its buffer being full."""
        return -(-th // self.rows) * -(-tw // self.words) + self.overhead


def simulate(enc: EncodedLayer, *, mac_cycles: list[list[int]] | None = None,
             loader: Loader | None = None, drain_width: int | None = None) -> Counters:
    """Exact counter values (``busy_cycles`` = cycles from ``start`` to ``done``) for ``enc``.

    ``mac_cycles[g][k]`` (MAC cycles of entry ``k`` of group ``g``; default: the encoding's, one per
    scheduled weight with one lane, ``golden.lanes``' rule with several)
    ``loader`` (default: the array's) and ``drain_width`` (outputs the drain writes per cycle, of one PE
    row; default: the array's ``drain_lanes``) let ``golden.lanes`` evaluate designs the RTL does not
    build yet through this same recurrence; with the defaults the result is the RTL's contract.
    """
    ly, cfg = enc.layer, enc.cfg
    loader = loader or Loader.of(cfg)
    drain_width = drain_width or cfg.drain_lanes
    work = _tile_work(enc, loader, drain_width)
    nbuf = loader.buffers
    extra = entry_cycles(cfg) - 1  # cycles before an entry can pop, besides its wait for the window
    full_vis: list[int] = []  # per global entry: first cycle the sequencer sees its buffer full
    free_vis: list[int] = []  # per global entry: first cycle its buffer is free for entry + nbuf
    loading = 1  # cycle the loader starts its next tile
    seq = 1  # cycle the sequencer starts its next tile
    drain_idle = 1  # first cycle the drain is idle
    c = dict(mac=0, weights=0, stall=0, drain=0, dstall=0, loads=0, act=0, index=0)

    # The loader runs ahead of the sequencer; both walk the same entries. Entry by entry, loader
    # first: the loader's entry e waits only for the sequencer's entry e - nbuf to free its buffer.
    for g, (load_cycles, reads, drain_rows) in ((g, w) for g in range(enc.groups) for w in work):
        ents = enc.entries[g]
        tl = loading + HEADER_CYCLES
        ts = seq + HEADER_CYCLES
        for k, (_, _, weights) in enumerate(ents):
            macs = (enc.mac_cycles if mac_cycles is None else mac_cycles)[g][k]
            e = len(full_vis)
            ready = tl + (CHUNK_TILE_SETUP if enc.chunks and k == 0 else 0)  # the first sub-window's setup
            start = max(ready, free_vis[e - nbuf] if e >= nbuf else 0)
            tl = start + load_cycles
            full_vis.append(tl)
            c["loads"] += 1
            c["act"] += reads
            leave = max(ts + extra, full_vis[e])
            c["stall"] += leave - ts - extra
            last = leave + macs
            c["mac"] += macs
            c["weights"] += weights
            free_vis.append(last + 1)
            ts = last + 1
        loading = tl
        t = ts
        # hand the bank to the drain, start the next tile the cycle after
        handoff = max(t, drain_idle)
        c["dstall"] += handoff - t
        n_drain = enc.group_filters(g) * drain_rows  # cycles
        c["drain"] += n_drain
        drain_idle = handoff + 1 + drain_flush(cfg) + n_drain
        seq = handoff + 1
        if cfg.has_index:
            c["index"] += 2 * (1 + len(ents)) + sum(units for _, units, _ in ents)
    return Counters(busy_cycles=max(drain_idle + drain_tail(cfg), loading), mac_cycles=c["mac"],
                    load_stall_cycles=c["stall"],
                    drain_cycles=c["drain"], drain_stall_cycles=c["dstall"], tile_loads=c["loads"],
                    act_reads=c["act"], weight_reads=c["weights"], index_reads=c["index"],
                    output_writes=ly.m * ly.e * ly.f)


def cycles(enc: EncodedLayer) -> int:
    """Exact number of cycles from ``start`` to ``done`` (busy cycles)."""
    return simulate(enc).busy_cycles


def traffic(enc: EncodedLayer) -> dict[str, int]:
    """Exact performance-counter values of a run of ``enc``."""
    return simulate(enc).to_dict()
