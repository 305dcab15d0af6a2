"""Double-buffered activation tile register and the two-level, per-PE-row window mux.

Holds one input window of one channel for the whole pixel tile (``TH x TW`` words at run time, up
to ``tile_rows x tile_cols`` for ``max_stride`` and ``max_kernel``). The loader fills one buffer
while the PEs read the other; it writes ``act_lanes`` consecutive columns of ``act_rows`` window rows
per cycle (row ``k`` at ``wrow[k]``), lane ``l`` always at a column ``v`` with ``v % act_lanes == l``
(the loader's columns start at 0 and step by the lane count). PE (i, j) reads
``window[buf][i*stride + r][j*stride + s]``, in two steps:

1. **row select, registered per PE row**: PE row ``i`` copies the window row ``i*stride + r`` of buffer
   ``buf`` into its own row register;
2. **column select, per PE**: PE ``(i, j)`` picks column ``j*stride + s`` of its row's register
   (a mux over ``max_stride * max_kernel`` columns) into its operand register.

How window rows are stored decides what step 1 muxes (:func:`row_layout`):

* ``max_stride == 1`` (**shared** rows): storage row ``u`` holds window row ``u``, and PE row ``i``
  selects among rows ``i .. i+R-1`` of both buffers: its neighbours' rows, so the network is local;
* ``max_stride > 1`` (**per-row** storage): PE row ``i`` has its own ``max_kernel`` storage rows, row
  ``(i, r)`` holding window row ``i*stride + r`` (the loader's write goes to every storage row that
  holds the window row it writes). A shared layout would make PE row ``i`` select among rows
  ``i*st + r`` for every stride ``st``: rows from the middle and the far end of the tile, a crossbar
  across the whole tile whose selects drive thousands of mux inputs (on an ECP5 4x4 array the worst
  path was such a select net, 10.7 ns of routing). Per-row storage costs ``rows*max_kernel -
  tile_rows`` rows more registers and makes every PE row's step 1 a ``2*max_kernel``:1 mux of its
  own registers.

The selects come in once, already one-hot (:func:`row_select`: read buffer and kernel row;
:func:`col_select`: stride and kernel column), from the sequencer's registers, and are copied into
registers of their own per PE row and per group of :data:`SELECT_GROUP` row-register columns
(``hdl.replica``), so no select net spans the array or a whole row register, no decoder sits
between a register and a long route, and each mux is an AND-OR of flip-flops. The price is two
cycles of latency on the activation path (``golden.timing.TILE_LATENCY``: with more, the activations
are registered again after the column mux; the array delays the weight and control by as many).

The write is registered twice on the way in: as the loader drives it (the column already decoded into
one-hot column enables with its lane's write enable folded in), then decoded into one enable per
storage row and buffer and copied per column, so each tile register's enable is one AND of two
flip-flops. With per-row storage the stages have copies (``hdl.replica``): stage 2 one per PE row,
stage 1 one per group of :data:`WRITE_GROUP` PE rows, a tree, so the write data and enables reach each PE
row's registers from registers of their own and no net fans out from one register to every PE row; the
loader's registers beside the activation buffer (``golden.timing.ACT_DATA_LATENCY``) are its root.
Padding positions come as the activation buffer's stale output with a flag (``wpad``) and are zeroed
in stage 2, so no LUT sits on the way from the buffer to the copies.
The PEs' row registers first read a window ``golden.timing.WINDOW_READ_SLACK`` cycles after its last
write would reach the storage straight from the activation buffer's read (with ``V = 9``, which issues
soonest; more with one lane), and a buffer is rewritten at the earliest two cycles after their last read
(the loader's setup cycle, the activation buffer's read), so the write's delay, and the loader's
``ACT_DATA_LATENCY`` registers in front of it, are invisible in the cycle count.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import chunks
from golden.config import ArrayConfig, bits_for
from golden.lanes import lane_taps
from golden.timing import TILE_LATENCY

from .delay import delay, require
from .replica import KEEP

READ_STAGES = 2
"""The read network's own registers: the selects' copies (stage B), the row register (stage A). The
rest of ``golden.timing.TILE_LATENCY`` follows the column mux."""

SELECT_GROUP = 4
"""Row-register columns driven by one copy of the row select."""

WRITE_GROUP = 3
"""PE rows whose copies of the write's second stage one copy of its first stage drives (per-row storage):
about the square root of the 8 rows of the largest arrays built, so neither level of the tree fans out
far (on the 8x8 ECP5 array one register into 8 rows' copies took 10.1 ns of routing)."""


def _any(values: list) -> Value:
    """OR of ``values`` (AND-OR muxes over one-hot selects)."""
    out = values[0]
    for value in values[1:]:
        out = out | value
    return out


def row_select_bit(cfg: ArrayConfig, buf: int, r: int) -> int:
    """The bit of the one-hot row select that reads kernel row ``r`` from buffer ``buf`` (the stride
    needs no bit of its own: with shared rows ``max_stride`` is 1, with per-row storage the storage row
    of a kernel row does not depend on it). The sequencer sets it, the tile reads it."""
    return buf * cfg.max_kernel + r


def col_select_bit(cfg: ArrayConfig, stride: int, s: int) -> int:
    """The bit of the one-hot column select for kernel column ``s`` under ``stride``."""
    return (stride - 1) * cfg.max_kernel + s


def row_select(cfg: ArrayConfig, buf: int, r: int) -> int:
    """The one-hot row select for kernel row ``r`` of buffer ``buf`` (:func:`row_select_bit`)."""
    return 1 << row_select_bit(cfg, buf, r)


def col_select(cfg: ArrayConfig, stride: int, s: int) -> int:
    """The one-hot column select for kernel column ``s`` under ``stride`` (:func:`col_select_bit`)."""
    return 1 << col_select_bit(cfg, stride, s)


def per_row_storage(cfg: ArrayConfig) -> bool:
    """Whether each PE row stores its own window rows (``max_stride > 1``, or the chunk mapping, whose PE rows
    read rows of different output rows: ``golden.chunks``; shared rows otherwise): then the
    write fans out to every PE row's copies, and the loader registers it beside the activation buffer
    first (``hdl.loader``)."""
    return cfg.max_stride > 1 or bool(cfg.chunks)


def row_layout(cfg: ArrayConfig) -> tuple[list[dict[int, int]], list[dict[tuple[int, int], int]]]:
    """How window rows are stored: ``(holds, reads)``.

    ``holds[q]`` maps each stride to the window row storage row ``q`` holds under it; ``reads[i]``
    maps ``(stride, r)`` to the storage row PE row ``i`` reads for kernel row ``r``.
    """
    strides = range(1, cfg.max_stride + 1)
    if not per_row_storage(cfg):  # shared rows: max_stride is 1
        holds = [{st: u for st in strides} for u in range(cfg.tile_rows)]
        reads = [{(st, r): i * st + r for st in strides for r in range(cfg.max_kernel)} for i in range(cfg.rows)]
    else:  # per-row storage: row (i, r) is storage row i*max_kernel + r
        holds = [{st: i * st + r for st in strides} for i in range(cfg.rows) for r in range(cfg.max_kernel)]
        reads = [{(st, r): i * cfg.max_kernel + r for st in strides for r in range(cfg.max_kernel)}
                 for i in range(cfg.rows)]
    return holds, reads


class ActivationTile(wiring.Component):
    """The double-buffered activation window and its per-PE-row read network (see the module's text).

    Members
    -------
    we, wpad, wdata : In(1), In(1), In(signed(act_bits)), each ``.array(act_ports)``
        The write: port ``k * act_lanes + l`` writes row ``wrow[k]``, column ``wcol + l``; ``wdata``, or 0
        where ``wpad`` (a padding position: ``wdata`` is the activation buffer's stale output).
    wbuf, wrow, wcol : In(1), In(..).array(act_rows), In(..)
        The written buffer, window rows and first column.
    row_sel, col_sel : In(2 * max_kernel).array(lanes, rows), In(max_stride * max_kernel).array(lanes)
        Each lane's one-hot selects (:func:`row_select`, :func:`col_select`); the row selects once per PE
        row (equal copies, from registers of their own: ``hdl.sequencer``).
    stride : In(bits_for(max_stride))
        The layer's stride (static during a run).
    chunks, split : In(1), In(cols).array(2, rows) (arrays built with ``chunks``)
        The layer runs in the chunk mapping (static during a run): ``wrow`` is then the storage row
        ``i*max_kernel + r``; per buffer and PE row, the PEs that read segment B (column ``j*stride + s +
        max_kernel - 1``, ``golden.chunks``), fixed while the PEs read the buffer.
    act : Out(signed(act_bits)).array(lanes, rows, cols)
        Each lane's activation for PE ``(i, j)``, ``golden.timing.TILE_LATENCY`` after the selects.
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        sb = bits_for(cfg.max_stride)
        super().__init__({
            # write port ``k*act_lanes + l``: row ``wrow[k]``, column ``wcol + l`` (``ArrayConfig.act_ports``)
            "we": In(1).array(cfg.act_ports), "wpad": In(1).array(cfg.act_ports), "wbuf": In(1),
            "wrow": In(bits_for(chunks.write_rows(cfg) - 1)).array(cfg.act_rows),
            "wcol": In(bits_for(chunks.storage_columns(cfg) - 1)),
            "wdata": In(signed(cfg.act_bits)).array(cfg.act_ports),
            "row_sel": In(2 * cfg.max_kernel).array(cfg.lanes, cfg.rows),
            "col_sel": In(cfg.max_stride * cfg.max_kernel).array(cfg.lanes), "stride": In(sb),
            "act": Out(signed(cfg.act_bits)).array(cfg.lanes, cfg.rows, cfg.cols),
            **({"chunks": In(1), "split": In(cfg.cols).array(2, cfg.rows)} if cfg.chunks else {}),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        lanes, cols, nrows = cfg.act_lanes, chunks.storage_columns(cfg), cfg.act_rows
        require("TILE_LATENCY", TILE_LATENCY, TILE_LATENCY >= READ_STAGES,
                f"hdl.tile's read network has {READ_STAGES} register stages (the selects' copies, the row register)")
        holds, reads = row_layout(cfg)
        per_row = per_row_storage(cfg)
        # data registers have no reset: the loader writes every window position before a PE reads it
        regs = [[[Signal(signed(cfg.act_bits), name=f"t{b}_{q}_{v}", reset_less=True) for v in range(cols)]
                 for q in range(len(holds))] for b in range(2)]

        # with per-row storage (each storage row belongs to one PE row) the write fans out as a tree: stage 1
        # once per group of WRITE_GROUP PE rows, stage 2 once per PE row; once each otherwise. One register
        # driving every PE row's copy was a net across the die at each level it was tried (the 8x8 ECP5
        # array: the buffer bit into every row's stage 2, 9.7 ns of routing; the activation register into
        # every row's stage 1, 10.1 ns; on the 288-MAC array the write data, 13.4 ns)
        owners = [q // cfg.max_kernel for q in range(len(holds))] if per_row else [0] * len(holds)
        copies = cfg.rows if per_row else 1  # stage 2
        group = [i // WRITE_GROUP for i in range(copies)] if per_row else [0]  # stage 1's copy of each
        attrs = KEEP if per_row else {}

        # write stage 1: the loader's write, registered once per copy
        def stage1(c: int) -> tuple:
            sfx = f"_c{c}" if per_row else ""
            wbuf = Signal.like(self.wbuf, name=f"wbuf1{sfx}", attrs=attrs)
            wrow = [Signal.like(self.wrow[k], name=f"wrow1_{k}{sfx}", attrs=attrs) for k in range(nrows)]
            # column v of row k is written: its port writes, at the lane group that holds it (one-hot,
            # decoded here)
            wcol_hot = [[Signal(name=f"wcol1_{k}_{v}{sfx}", attrs=attrs) for v in range(cols)] for k in range(nrows)]
            m.d.sync += [wcol_hot[k][v].eq(self.we[k * lanes + v % lanes] & (self.wcol == v - v % lanes))
                         for k in range(nrows) for v in range(cols)]
            # the data as it leaves the activation buffer's block RAM and its padding flag: the zeroing is
            # stage 2's, so the RAM's output (its slowest pin, no output register) reaches every copy
            # through routing only (the 8x8 ECP5 array's worst path had the AND's LUT on it)
            wdata = [Signal.like(self.wdata[p], name=f"wdata1_{p}{sfx}", reset_less=True, attrs=attrs)
                     for p in range(cfg.act_ports)]
            wpad = [Signal(name=f"wpad1_{p}{sfx}", reset_less=True, attrs=attrs) for p in range(cfg.act_ports)]
            m.d.sync += [wbuf.eq(self.wbuf), *(wrow[k].eq(self.wrow[k]) for k in range(nrows))]
            m.d.sync += [wdata[p].eq(self.wdata[p]) for p in range(cfg.act_ports)]
            m.d.sync += [wpad[p].eq(self.wpad[p]) for p in range(cfg.act_ports)]
            return wbuf, wrow, wcol_hot, (wdata, wpad)
        first = [stage1(c) for c in range(group[-1] + 1)]

        # write stage 2: decoded enables (per storage row and buffer, per column) and the data
        # the stride (static during a run) per PE row, for the row decode of the write
        stride_w = [Signal.like(self.stride, name=f"row{i}_stride_w", reset_less=True, attrs=KEEP)
                    for i in range(cfg.rows if per_row else 0)]
        m.d.sync += [sw.eq(self.stride) for sw in stride_w]
        # and whether the layer runs in the chunk mapping, whose writes name the storage row itself
        chunks_w = [Signal(name=f"row{i}_chunks_w", reset_less=True, attrs=KEEP)
                    for i in range(cfg.rows if cfg.chunks else 0)]
        m.d.sync += [cw.eq(self.chunks) for cw in chunks_w]

        def row_hit(q: int, i: int, row):
            """``row`` is the window row storage row ``q`` holds (under PE row ``i``'s copy of the stride), or in
            the chunk mapping ``row`` is ``q``."""
            targets = holds[q]
            if len(set(targets.values())) == 1:
                hit = row == targets[1]
            else:
                hit = 0
                for st, u in targets.items():
                    hit = hit | ((stride_w[i] == st) & (row == u))
            return Mux(chunks_w[i], row == q, hit) if cfg.chunks else hit

        # per written row k of the cycle (a storage row holds one window row, so at most one k hits it)
        row_en = [[[Signal(name=f"row_en{k}_{b}_{q}" if nrows > 1 else f"row_en{b}_{q}") for q in range(len(holds))]
                   for b in range(2)] for k in range(nrows)]
        col_en = [[[Signal(name=f"col_en{c}_{k}_{v}" if nrows > 1 else f"col_en{c}_{v}", attrs=attrs)
                    for v in range(cols)] for k in range(nrows)] for c in range(copies)]
        data2 = [[Signal.like(self.wdata[p], name=f"wdata{c}_{p}", reset_less=True, attrs=attrs)
                  for p in range(cfg.act_ports)] for c in range(copies)]
        for q, i in enumerate(owners):
            wbuf, wrow, _, _ = first[group[i]]
            for k in range(nrows):
                hit = Signal(name=f"row_hit{k}_{q}" if nrows > 1 else f"row_hit{q}")
                m.d.comb += hit.eq(row_hit(q, i, wrow[k]))
                m.d.sync += [row_en[k][b][q].eq(hit & (wbuf == b)) for b in range(2)]
        for c in range(copies):
            _, _, wcol_hot, (wdata, wpad) = first[group[c]]
            m.d.sync += [col_en[c][k][v].eq(wcol_hot[k][v]) for k in range(nrows) for v in range(cols)]
            m.d.sync += [data2[c][p].eq(Mux(wpad[p], 0, wdata[p])) for p in range(cfg.act_ports)]
        for b in range(2):
            for q, c in enumerate(owners):
                for v in range(cols):
                    for k in range(nrows):
                        with m.If(row_en[k][b][q] & col_en[c][k][v]):
                            m.d.sync += regs[b][q][v].eq(data2[c][k * lanes + v % lanes])

        for lane in range(cfg.lanes):
            self._read(m, lane, regs, reads, per_row)
        return m

    def _read(self, m: Module, lane: int, regs: list, reads: list, per_row: bool) -> None:
        """Lane ``lane``'s read network: its selects' copies, a row register per PE row, a column mux
        per PE. Every lane has its own (the lanes of a cycle read different kernel positions), over the
        kernel rows and columns the dataflow can give that lane (``golden.lanes.lane_taps``): with one
        lane all of them; at ``V = 9`` a kernel lane reads at most three rows and two columns (lanes 6-8
        one position each, a 2:1 buffer mux), an element lane up to every one: the area of
        unstructured lanes."""
        cfg = self._cfg
        cols = chunks.storage_columns(cfg)
        pre = f"l{lane}_" if cfg.lanes > 1 else ""
        # stage B: the one-hot selects, copied per PE row (the column choice) and per group of
        # SELECT_GROUP columns (the row choice): a select driving a whole row register is a net of
        # hundreds of loads (on the ECP5 4x4 array 6 ns of routing), a group's copy drives
        # SELECT_GROUP * act_bits of them
        K = cfg.max_kernel
        taps_r, taps_s = lane_taps(cfg.dataflow, K, cfg.lanes)[lane]  # the kernel rows and columns it reads
        if not taps_r:  # a lane no cycle can fill (e.g. vector at V = 8: rows of 3 fill 6 lanes, of 2 only 3 rows)
            m.d.comb += [self.act[lane][i][j].eq(0) for i in range(cfg.rows) for j in range(cfg.cols)]
            return
        for i in range(cfg.rows):
            if per_row:  # the storage row does not depend on the stride
                cands = [(b, reads[i][(1, r)], row_select_bit(cfg, b, r)) for b in range(2) for r in taps_r]
            else:  # shared rows: max_stride is 1
                cands = [(b, q, row_select_bit(cfg, b, r))
                         for b in range(2) for (_, r), q in reads[i].items() if r in taps_r]
            groups = range(-(-cols // SELECT_GROUP))
            hot = [[Signal(name=f"{pre}row{i}_g{g}_sel{k}", reset_less=True, attrs=KEEP)
                    for k in range(len(cands))] for g in groups]
            for g in groups:
                m.d.sync += [hot[g][k].eq(self.row_sel[lane][i][bit]) for k, (_, _, bit) in enumerate(cands)]
            col_keys = [(st, s) for st in range(1, cfg.max_stride + 1) for s in taps_s]
            col_hot_b = [Signal(name=f"{pre}row{i}_colsel{k}_b", reset_less=True, attrs=KEEP)
                         for k in range(len(col_keys))]
            m.d.sync += [col_hot_b[k].eq(self.col_sel[lane][col_select_bit(cfg, st, s)])
                         for k, (st, s) in enumerate(col_keys)]
            # stage A: this PE row's window row (AND-OR over the one-hot lines), and its column choice
            row = [Signal(signed(cfg.act_bits), name=f"{pre}row{i}_{v}", reset_less=True) for v in range(cols)]
            for v in range(cols):
                terms = [Mux(hot[v // SELECT_GROUP][k], regs[b][q][v], 0) for k, (b, q, _) in enumerate(cands)]
                m.d.sync += row[v].eq(_any(terms))
            col_hot = [Signal(name=f"{pre}row{i}_colsel{k}", reset_less=True, attrs=KEEP)
                       for k in range(len(col_keys))]
            m.d.sync += [col_hot[k].eq(col_hot_b[k]) for k in range(len(col_keys))]
            in_b = self._segment_b(m, lane, i, col_keys, col_hot_b) if cfg.chunks else None
            for j in range(cfg.cols):
                terms = [Mux(col_hot[k], row[j * st + s], 0) for k, (st, s) in enumerate(col_keys)]
                if in_b is not None:  # the chunk mapping: segment A's column, or B's (``golden.chunks.pe_column``)
                    sel_a, sel_b = in_b[j]
                    terms = [Mux(sel[k], row[chunks.pe_column(cfg, j, s, st, half)], 0)
                             for half, sel in ((False, sel_a), (True, sel_b)) for k, (st, s) in enumerate(col_keys)]
                act = _any(terms)
                m.d.comb += self.act[lane][i][j].eq(delay(m, act, TILE_LATENCY - READ_STAGES, name=f"{pre}act{i}_{j}",
                                                          shape=signed(cfg.act_bits), reset_less=True))

    def _segment_b(self, m: Module, lane: int, i: int, col_keys: list, col_hot_b: list) -> list:
        """The chunk mapping's column selects of PE row ``i`` (stage A, per PE ``j``: ``(segment A's,
        segment B's)``, each one-hot over ``col_keys`` or 0): the column select ANDed with whether PE ``j``
        reads segment B of the buffer being read, so each PE's mux stays an AND-OR of flip-flops. The
        buffer is the row select's (its bits ``max_kernel ..``); the flags are fixed while the PEs read it
        (the loader sets them in a window's setup, after the buffer's last read)."""
        cfg = self._cfg
        K = cfg.max_kernel
        pre = f"l{lane}_" if cfg.lanes > 1 else ""
        second = self.row_sel[lane][i][K:2 * K].any()  # reading buffer 1
        split_b = Signal(cfg.cols, name=f"{pre}row{i}_split_b", reset_less=True, attrs=KEEP)
        m.d.sync += split_b.eq(Mux(second, self.split[1][i], self.split[0][i]) & self.chunks.replicate(cfg.cols))
        out = []
        for j in range(cfg.cols):
            sel = [[Signal(name=f"{pre}pe{i}_{j}_col{half}sel{k}", reset_less=True) for k in range(len(col_keys))]
                   for half in "ab"]
            m.d.sync += [sel[0][k].eq(col_hot_b[k] & ~split_b[j]) for k in range(len(col_keys))]
            m.d.sync += [sel[1][k].eq(col_hot_b[k] & split_b[j]) for k in range(len(col_keys))]
            out.append(sel)
        return out
