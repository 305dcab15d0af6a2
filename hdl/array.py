"""The PE array: ``rows x cols`` processing elements around one activation tile register.

Every PE receives the same broadcast operands (weight, slot, bank, ``fresh``) each cycle and its own
activation from the tile mux, so all PEs stay in lockstep under any sparsity pattern: the
dataflows never cause load imbalance, only differ in what they schedule.

The broadcast operands are registered once per PE row (stage A), in step with the tile's per-row
register (:mod:`hdl.tile`): the weight buffer's output then drives ``rows`` registers instead of
every PE's multiplier input, and each row's copy stays local to its row. Operands presented at the
array's inputs reach the PEs' accumulators after :meth:`PEArray.latency` cycles.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for

from .layouts import config_layout
from .pe import ProcessingElement
from .tile import LATENCY as TILE_LATENCY
from .tile import ActivationTile


class PEArray(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        kb = bits_for(cfg.max_kernel - 1)
        super().__init__({
            "cfg": In(config_layout(cfg)),
            "tile_we": In(1).array(cfg.act_lanes), "tile_buf": In(1), "tile_row": In(bits_for(cfg.tile_rows - 1)),
            "tile_col": In(bits_for(cfg.tile_cols - 1)), "tile_data": In(signed(cfg.act_bits)).array(cfg.act_lanes),
            "valid": In(1), "fresh": In(1), "slot": In(cfg.slot_bits), "bank": In(1),
            "buf": In(1), "r": In(kb), "s": In(kb), "weight": In(signed(cfg.weight_bits)),
            "drain_addr": In(cfg.slot_bits + 1), "drain_en": In(1),
            "drain_data": Out(signed(cfg.acc_bits)).array(cfg.rows * cfg.cols),
        })

    @staticmethod
    def latency(cfg: ArrayConfig) -> int:
        """Cycles from operands at the array's inputs to the accumulator write taking effect."""
        return TILE_LATENCY + ProcessingElement.latency(cfg)

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        m.submodules.tile = tile = ActivationTile(cfg)
        for lane in range(cfg.act_lanes):
            m.d.comb += [tile.we[lane].eq(self.tile_we[lane]), tile.wdata[lane].eq(self.tile_data[lane])]
        m.d.comb += [tile.wbuf.eq(self.tile_buf), tile.wrow.eq(self.tile_row), tile.wcol.eq(self.tile_col),
                     tile.rbuf.eq(self.buf), tile.r.eq(self.r), tile.s.eq(self.s), tile.stride.eq(self.cfg.stride)]
        for i in range(cfg.rows):
            # stage A: this row's copy of the broadcast operands, aligned with the tile's row register
            valid, fresh = Signal(name=f"row{i}_valid"), Signal(name=f"row{i}_fresh", reset_less=True)
            addr = Signal(cfg.slot_bits + 1, name=f"row{i}_addr", reset_less=True)
            weight = Signal.like(self.weight, name=f"row{i}_weight", reset_less=True)
            m.d.sync += [valid.eq(self.valid), fresh.eq(self.fresh), weight.eq(self.weight),
                         addr.eq(self.slot | (self.bank << cfg.slot_bits))]
            for j in range(cfg.cols):
                pe = ProcessingElement(cfg)
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.valid.eq(valid), pe.fresh.eq(fresh), pe.addr.eq(addr),
                    pe.weight.eq(weight), pe.act.eq(tile.act[i][j]),
                    pe.drain_addr.eq(self.drain_addr), pe.drain_en.eq(self.drain_en),
                    self.drain_data[i * cfg.cols + j].eq(pe.drain_data),
                ]
        return m
