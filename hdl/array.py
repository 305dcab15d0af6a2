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
copy per PE row as well, so the drain sees a PE's accumulator :meth:`PEArray.drain_latency` cycles
after it asks. Operands presented at the array's inputs reach the PEs' accumulators after
:meth:`PEArray.latency` cycles.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for
from golden.timing import ROW_COPY_LATENCY, TILE_LATENCY, array_drain_latency, array_latency

from .layouts import config_layout
from .pe import ProcessingElement
from .replica import KEEP
from .tile import ActivationTile


class PEArray(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "cfg": In(config_layout(cfg)),
            "tile_we": In(1).array(cfg.act_ports), "tile_buf": In(1),
            "tile_row": In(bits_for(cfg.tile_rows - 1)).array(cfg.act_rows),
            "tile_col": In(bits_for(cfg.tile_cols - 1)), "tile_data": In(signed(cfg.act_bits)).array(cfg.act_ports),
            "valid": In(1), "fresh": In(1), "slot": In(cfg.slot_bits), "bank": In(1),
            "row_sel": In(2 * cfg.max_kernel).array(cfg.lanes),
            "col_sel": In(cfg.max_stride * cfg.max_kernel).array(cfg.lanes),
            "weight": In(cfg.weight_word_bits),  # lane l in bits [l*wb, (l+1)*wb) (``golden.encode.pack_weights``)
            "drain_addr": In(cfg.slot_bits + 1), "drain_en": In(1),
            "drain_data": Out(signed(cfg.acc_bits)).array(cfg.rows * cfg.cols),
        })

    @staticmethod
    def latency(cfg: ArrayConfig) -> int:
        """Cycles from operands at the array's inputs to the accumulator write taking effect."""
        return array_latency(cfg)

    @staticmethod
    def drain_latency(cfg: ArrayConfig) -> int:
        """Cycles from ``drain_addr``/``drain_en`` to the matching ``drain_data``: row copy + the PE's read."""
        return array_drain_latency(cfg)

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        # the weight and control operands are delayed by the tile's latency (stages B and A below), the
        # drain's request by one per-row copy
        assert TILE_LATENCY == 2 and ROW_COPY_LATENCY == 1
        m.submodules.tile = tile = ActivationTile(cfg)
        for p in range(cfg.act_ports):
            m.d.comb += [tile.we[p].eq(self.tile_we[p]), tile.wdata[p].eq(self.tile_data[p])]
        m.d.comb += [tile.wbuf.eq(self.tile_buf), tile.wcol.eq(self.tile_col),
                     *(tile.wrow[k].eq(self.tile_row[k]) for k in range(cfg.act_rows))]
        # stage B: the weights next to their buffer
        wb = cfg.weight_bits
        weight_b = [Signal(signed(wb), name="weight_b" if cfg.lanes == 1 else f"l{lane}_weight_b", reset_less=True)
                    for lane in range(cfg.lanes)]
        m.d.sync += [w.eq(self.weight[lane * wb:(lane + 1) * wb]) for lane, w in enumerate(weight_b)]
        addr_bits = cfg.slot_bits + 1
        def copy(value, i: int, name: str) -> Signal:
            """Row ``i``'s registered copy of ``value``."""
            reg = Signal.like(value, name=f"row{i}_{name}", reset_less=True, attrs=KEEP)
            m.d.sync += reg.eq(value)
            return reg

        for lane in range(cfg.lanes):
            m.d.comb += [tile.row_sel[lane].eq(self.row_sel[lane]), tile.col_sel[lane].eq(self.col_sel[lane])]
        m.d.comb += tile.stride.eq(self.cfg.stride[:len(tile.stride)])
        # ``fresh`` arrives from a ``acc_depth``:1 mux (the sequencer's touched bits): registered once,
        # here, at stage B, then copied per row at stage A
        fresh_b = Signal(name="fresh_b", reset_less=True)
        m.d.sync += fresh_b.eq(self.fresh)
        for i in range(cfg.rows):
            # stage B: this row's copies of the control operands (the tile makes its selects' own)
            valid_b = copy(self.valid, i, "valid_b")
            addr_b = copy((self.slot | (self.bank << cfg.slot_bits))[:addr_bits], i, "addr_b")
            # stage A: aligned with the tile's row register
            valid, fresh, addr = copy(valid_b, i, "valid"), copy(fresh_b, i, "fresh"), copy(addr_b, i, "addr")
            weights = [copy(w, i, "weight" if cfg.lanes == 1 else f"l{lane}_weight") for lane, w in enumerate(weight_b)]
            # the drain's read request, one copy per row
            drain_addr, drain_en = copy(self.drain_addr, i, "drain_addr"), copy(self.drain_en, i, "drain_en")
            for j in range(cfg.cols):
                pe = ProcessingElement(cfg)
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.valid.eq(valid), pe.fresh.eq(fresh), pe.addr.eq(addr),
                    *(pe.weight[lane].eq(w) for lane, w in enumerate(weights)),
                    *(pe.act[lane].eq(tile.act[lane][i][j]) for lane in range(cfg.lanes)),
                    pe.drain_addr.eq(drain_addr), pe.drain_en.eq(drain_en),
                    self.drain_data[i * cfg.cols + j].eq(pe.drain_data),
                ]
        return m
