"""Data layouts of the array's host interface, derived from one :class:`ArrayConfig`.

These layouts are the single description of how fields are packed into the flat Verilog ports;
the manifest records the field offsets and the cocotb side packs through them.
"""

from __future__ import annotations

from amaranth.lib import data

from golden.config import ArrayConfig, bits_for
from golden.dataflow import WordLayout
from golden.encode import load_targets
from golden.epilogue import INIT_CODES, MULT_BITS, SHIFT_BITS

CONFIG_FIELDS = ("c", "h", "w", "m", "r", "s", "stride", "pad", "e", "f", "tiles_y", "tiles_x", "groups",
                 "hw", "ef", "th", "tw", "ystep", "xstep", "ystep_addr", "pad_addr", "mg_last")
"""Run-time layer fields, in packing order (low bits first).

The first thirteen are the layer's dimensions and tile/group counts; the rest are products the
control logic would otherwise form at run time (``golden.encode.EncodedLayer.runtime_config``
computes them): ``hw = H*W`` (one channel plane of the activation buffer), ``ef = E*F``, the window
``th x tw = ((rows-1)*stride + R) x ((cols-1)*stride + S)``, the input rows/columns between adjacent
tiles ``ystep = rows*stride``, ``xstep = cols*stride``, the activation-address distance between
vertically adjacent tiles ``ystep_addr = ystep*W``, how far the first window's origin ``(-pad, -pad)``
lies before its plane ``pad_addr = pad*W + pad``, and the filters of the last group ``mg_last``.
With them the loader, drain and tile walker need no multiplier: everything else advances by additions.
"""

PERF_FIELDS = ("busy_cycles", "mac_cycles", "load_stall_cycles", "drain_cycles", "drain_stall_cycles",
               "tile_loads", "act_reads", "weight_reads", "index_reads", "output_writes")
"""Performance counters, in packing order; same names as ``golden.timing.Counters``."""



def config_widths(cfg: ArrayConfig) -> dict[str, int]:
    """Width of every configuration field, wide enough for any layer that passes ``Layer.check_fits``.

    The bounds: ``C*H*W <= act_depth`` (so ``H*W``, ``W`` and a plane offset fit the activation
    buffer), ``M*E*F <= out_depth``, ``R, S <= max_kernel``, ``pad < max_kernel``, ``stride <= max_stride``.
    The host packs through these widths and refuses a value that does not fit (``host.packing.Packing.pack``).
    """
    widths = {name: cfg.dim_bits for name in CONFIG_FIELDS}  # dimensions and counts
    widths.update(
        hw=bits_for(cfg.act_depth), ef=bits_for(cfg.out_depth),
        th=bits_for(cfg.tile_rows), tw=bits_for(cfg.tile_cols),
        ystep=bits_for(cfg.rows * cfg.max_stride), xstep=bits_for(cfg.cols * cfg.max_stride),
        ystep_addr=bits_for(cfg.rows * cfg.max_stride * cfg.act_depth),
        pad_addr=bits_for((cfg.max_kernel - 1) * (cfg.act_depth + 1)),
        mg_last=bits_for(cfg.acc_depth),
    )
    if cfg.epilogue:  # the output stage (``golden.epilogue.INIT_CODES``)
        widths.update(init=bits_for(max(INIT_CODES.values())), requant=1, relu=1)
    return widths


def config_layout(cfg: ArrayConfig) -> data.StructLayout:
    """Run-time layer configuration, unsigned fields (widths: :func:`config_widths`)."""
    return data.StructLayout(config_widths(cfg))


def perf_layout(cfg: ArrayConfig) -> data.StructLayout:
    """Counters, ``cfg.perf_bits`` each (48 by default: 2**48 cycles is ~32 days at 100 MHz)."""
    return data.StructLayout({name: cfg.perf_bits for name in PERF_FIELDS})


def load_data_bits(cfg: ArrayConfig) -> int:
    widths = [cfg.act_bits, cfg.weight_word_bits]
    if cfg.has_index:
        widths += [cfg.chan_index_bits, cfg.unit_index_bits]
    if cfg.epilogue:  # partial sums and biases, requantization words
        widths += [cfg.acc_bits, MULT_BITS + SHIFT_BITS]
    return max(widths)


def load_layout(cfg: ArrayConfig) -> data.StructLayout:
    """One load-stream word: which buffer (``target``, see ``golden.encode.LOAD_TARGETS``) and the word."""
    return data.StructLayout({"data": load_data_bits(cfg), "target": bits_for(max(load_targets(cfg).values()))})


def index_addr_bits(cfg: ArrayConfig) -> int:
    return bits_for(cfg.index_depth - 1)


def word_struct(layout: WordLayout) -> data.StructLayout:
    """The Amaranth view of a packed index word (``golden.dataflow``): the same fields, least
    significant first, so the decoder unpacks exactly what the encoder packed."""
    return data.StructLayout(dict(layout.fields))
