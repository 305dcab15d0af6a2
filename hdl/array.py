"""The PE array: ``rows x cols`` processing elements around one activation tile register.

Every PE receives the same broadcast operands (weight, slot, bank, ``fresh``) each cycle and its own
activation from the tile mux, so all PEs stay in lockstep under any sparsity pattern: the
dataflows never cause load imbalance, only differ in what they schedule.

No broadcast crosses the array in one cycle. The operands enter at stage 1 (the sequencer's
registers and the weight buffer's read data) and are fanned out in two registered steps:

* stage B: the weight is registered once, next to the weight buffer (its read data arrives late in
  the cycle), the control operands (valid, fresh, accumulator address) get one copy per PE row, and
  the tile its selects' decoded copies (:mod:`hdl.tile`);
* stage A: per PE row, the tile's row register, the row's weight and control; each PE then
  registers its own copies (:mod:`hdl.pe`).

The copies are deliberate (``hdl.replica``). The drain's read address and enable get one registered
copy per PE row as well (``golden.timing.ROW_COPY_LATENCY``), so the drain sees a PE's accumulator
``golden.timing.array_drain_latency`` cycles after it asks. With ``dsp_packing`` 2 the PEs of each
column pair take their products from one :class:`~hdl.shared_multipliers.SharedMultipliers` (one DSP block
per lane for both). Operands presented at the array's inputs
reach the PEs' accumulators after ``golden.timing.array_latency`` cycles: the weight and control wait
``TILE_LATENCY`` registers (stage B, then stage A and any more) for the tile's activation.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from golden.config import ArrayConfig
from golden.timing import ROW_COPY_LATENCY, TILE_LATENCY
from golden.words import weight_word

from .delay import delay
from .layouts import config_layout, word_view
from .pe import ProcessingElement
from .replica import KEEP
from .reset import ResetCopies
from .shared_multipliers import SharedMultipliers
from .signatures import drain_read, operands, tile_write
from .tile import ActivationTile


def pair_name(cfg: ArrayConfig, i: int, j: int) -> str | None:
    """The :class:`~hdl.shared_multipliers.SharedMultipliers` instance that multiplies for PE ``(i, j)``
    (``dsp_packing`` 2: columns ``2k`` and ``2k + 1`` share ``pair_{i}_{k}``), or ``None`` for a PE with its own."""
    return f"pair_{i}_{j // 2}" if j < 2 * cfg.packed_pairs else None


def multiplier_path(cfg: ArrayConfig, i: int, j: int, lane: int) -> str:
    """The module under the array that holds PE ``(i, j)``'s DSP block of ``lane``: ``pe_{i}_{j}.{lane}mul``
    (``hdl.multiplier``), or its column pair's packed multiplier's ``pair_{i}_{k}.{lane}mul.dsp``."""
    pre = f"l{lane}_" if cfg.lanes > 1 else ""
    pair = pair_name(cfg, i, j)
    return f"{pair}.{pre}mul.dsp" if pair else f"pe_{i}_{j}.{pre}mul"


class PEArray(wiring.Component):
    """``rows x cols`` PEs in lockstep around the activation tile; operands broadcast, accumulators drained.

    Members
    -------
    cfg : In(config_layout(cfg))
        The latched layer configuration (the tile reads its stride).
    tile : In(tile_write(cfg))
        The loader's tile write (signals ``tile_we__<p>`` ...), on to the tile's ``we``, ``wdata`` ...
    op : In(operands(cfg, prefix=""))
        The sequencer's stage-1 operands (signals ``valid``, ``fresh``, ``slot``, ``bank``,
        ``row_sel__<l>__<i>``, ``col_sel__<l>``, ``weight``): an op to accumulate, its slot's first in the
        tile, where, each lane's one-hot tile selects (``hdl.tile``), and the weight buffer's read data,
        one weight per lane (``golden.words.weight_word``).
    drain : In(drain_read(cfg))
        The drain's read request, to every PE (``drain_addr``, ``drain_en``), and PE ``(i, j)``'s
        accumulator ``drain_data__<i * cols + j>``, ``golden.timing.array_drain_latency`` after it.
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "cfg": In(config_layout(cfg)),
            "tile": In(tile_write(cfg)),
            "op": In(operands(cfg, prefix="")),
            "drain": In(drain_read(cfg)),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        # the weight and control operands are delayed by the tile's latency (stage B, then stage A and any
        # more registers: ``TILE_LATENCY`` in all), the drain's request by its per-row copies
        # (``ROW_COPY_LATENCY``)
        m.submodules.tile = tile = ActivationTile(cfg)
        for p in range(cfg.act_ports):
            m.d.comb += [tile.we[p].eq(self.tile.we[p]), tile.wpad[p].eq(self.tile.pad[p]),
                         tile.wdata[p].eq(self.tile.data[p])]
        m.d.comb += [tile.wbuf.eq(self.tile.buf), tile.wcol.eq(self.tile.col),
                     *(tile.wrow[k].eq(self.tile.row[k]) for k in range(cfg.act_rows))]
        if cfg.chunks:  # the chunk mapping's mode and segment flags (``golden.chunks``)
            m.d.comb += [tile.chunks.eq(self.tile.chunks),
                         *(tile.split[b][i].eq(self.tile.split[b][i]) for b in range(2) for i in range(cfg.rows))]
        # stage B: the weights next to their buffer
        wb = cfg.weight_bits
        weight_b = [Signal(signed(wb), name="weight_b" if cfg.lanes == 1 else f"l{lane}_weight_b", reset_less=True)
                    for lane in range(cfg.lanes)]
        word = word_view(weight_word(cfg), self.op.weight)
        m.d.sync += [w.eq(word[f"lane{lane}"]) for lane, w in enumerate(weight_b)]
        addr_bits = cfg.slot_bits + 1
        def copy(value, i: int, name: str, n: int = 1) -> Signal:
            """Row ``i``'s registered copy of ``value``, ``n`` cycles ago."""
            return delay(m, value, n, name=f"row{i}_{name}", reset_less=True, attrs=KEEP)

        for lane in range(cfg.lanes):
            m.d.comb += [tile.row_sel[lane][i].eq(self.op.row_sel[lane][i]) for i in range(cfg.rows)]
            m.d.comb += tile.col_sel[lane].eq(self.op.col_sel[lane])
        m.d.comb += tile.stride.eq(self.cfg.stride[:len(tile.stride)])
        # ``fresh`` (a register of the sequencer's) is registered once here, at stage B, then copied per row
        # at stage A
        fresh_b = Signal(name="fresh_b", reset_less=True)
        m.d.sync += fresh_b.eq(self.op.fresh)
        row_reset = ResetCopies(m)
        for i in range(cfg.rows):
            # stage B: this row's copies of the control operands (the tile makes its selects' own)
            valid_b = copy(self.op.valid, i, "valid_b")
            addr_b = copy((self.op.slot | (self.op.bank << cfg.slot_bits))[:addr_bits], i, "addr_b")
            # stage A: aligned with the tile's row register
            a = TILE_LATENCY - 1
            valid, fresh, addr = copy(valid_b, i, "valid", a), copy(fresh_b, i, "fresh", a), copy(addr_b, i, "addr", a)
            weights = [copy(w, i, "weight" if cfg.lanes == 1 else f"l{lane}_weight", a)
                       for lane, w in enumerate(weight_b)]
            # the drain's read request, one copy per row
            drain_addr, drain_en = (copy(port, i, name, ROW_COPY_LATENCY)
                                    for port, name in ((self.drain.addr, "drain_addr"), (self.drain.en, "drain_en")))
            for j in range(cfg.cols):
                shared = pair_name(cfg, i, j)  # its multipliers are its column pair's (``dsp_packing``)
                pe = ProcessingElement(cfg, multipliers=not shared)
                m.submodules[f"pe_{i}_{j}"] = row_reset(f"row{i}", pe)  # a reset copy per row (``hdl.reset``)
                acts = [tile.act[lane][i][j] for lane in range(cfg.lanes)]
                if shared:  # one DSP per lane for PEs (i, 2k) and (i, 2k + 1): the weight once, both activations
                    second = j % 2
                    if not second:
                        pair = m.submodules[shared] = SharedMultipliers(cfg)
                        m.d.comb += [pair.weight[lane].eq(w) for lane, w in enumerate(weights)]
                    act_in, product = (pair.act2, pair.product2) if second else (pair.act1, pair.product1)
                    operands = [*(act_in[lane].eq(a) for lane, a in enumerate(acts)),
                                *(pe.product[lane].eq(product[lane]) for lane in range(cfg.lanes))]
                else:
                    operands = [*(pe.weight[lane].eq(w) for lane, w in enumerate(weights)),
                                *(pe.act[lane].eq(a) for lane, a in enumerate(acts))]
                m.d.comb += [
                    pe.valid.eq(valid), pe.fresh.eq(fresh), pe.addr.eq(addr), *operands,
                    pe.drain_addr.eq(drain_addr), pe.drain_en.eq(drain_en),
                    self.drain.data[i * cfg.cols + j].eq(pe.drain_data),
                ]
        return m
