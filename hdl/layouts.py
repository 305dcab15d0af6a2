"""Data layouts of the array's host interface, derived from one :class:`ArrayConfig`.

These layouts are the single description of how fields are packed into the flat Verilog ports;
the manifest records the field offsets and the cocotb side packs through them.
"""

from __future__ import annotations

from amaranth.lib import data

from golden.config import ArrayConfig, bits_for

CONFIG_FIELDS = ("c", "h", "w", "m", "r", "s", "stride", "pad", "e", "f", "tiles_y", "tiles_x", "groups")
"""Run-time layer fields, in packing order (low bits first)."""

PERF_FIELDS = ("busy_cycles", "mac_cycles", "load_stall_cycles", "drain_cycles", "drain_stall_cycles",
               "tile_loads", "act_reads", "weight_reads", "index_reads", "output_writes")
"""Performance counters, in packing order; same names as ``golden.timing.Counters``."""

PERF_BITS = 48
"""Counter width: 2**48 cycles is ~32 days at 100 MHz, so no reachable run wraps (the golden model never does)."""


def config_layout(cfg: ArrayConfig) -> data.StructLayout:
    """Run-time layer configuration: every field ``dim_bits`` wide, unsigned."""
    return data.StructLayout({name: cfg.dim_bits for name in CONFIG_FIELDS})


def perf_layout() -> data.StructLayout:
    return data.StructLayout({name: PERF_BITS for name in PERF_FIELDS})


def load_data_bits(cfg: ArrayConfig) -> int:
    widths = [cfg.act_bits, cfg.weight_bits]
    if cfg.has_index:
        widths += [cfg.chan_index_bits, cfg.unit_index_bits]
    return max(widths)


def load_layout(cfg: ArrayConfig) -> data.StructLayout:
    """One load-stream word: which buffer (``target``, see ``golden.encode.LOAD_TARGETS``) and the word."""
    return data.StructLayout({"data": load_data_bits(cfg), "target": 2})


def index_addr_bits(cfg: ArrayConfig) -> int:
    return bits_for(cfg.index_depth - 1)
