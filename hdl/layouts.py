"""Data layouts of the array's ports and packed words, as Amaranth struct layouts.

Every layout here is a view of one ``golden.words.WordLayout`` (:func:`word_struct`): the same fields,
least significant first, so the gateware unpacks exactly what the encoder and the host pack, and the
manifest records the host ports' field offsets from the same layouts.
"""

from __future__ import annotations

from amaranth.hdl import signed
from amaranth.lib import data

from golden.config import ArrayConfig, bits_for
from golden.words import WordLayout, config_word, load_word, perf_word


def word_struct(layout: WordLayout) -> data.StructLayout:
    """The Amaranth view of a packed word: its fields in order (signed ones ``signed``), reserved ones
    included, so a field's slice is the bits the packer put it in."""
    return data.StructLayout({name: signed(width) if name in layout.signed else width
                              for name, width in layout.fields})


def word_view(layout: WordLayout, value) -> data.View:
    """``value`` (a packed word's bits) viewed through ``layout``: its fields by name."""
    return data.View(word_struct(layout), value)


def config_layout(cfg: ArrayConfig) -> data.StructLayout:
    """Run-time layer configuration (``golden.words.config_word``)."""
    return word_struct(config_word(cfg))


def perf_layout(cfg: ArrayConfig) -> data.StructLayout:
    """Performance counters (``golden.words.perf_word``)."""
    return word_struct(perf_word(cfg))


def load_layout(cfg: ArrayConfig) -> data.StructLayout:
    """One load-stream word (``golden.words.load_word``): which buffer (``target``) and the word."""
    return word_struct(load_word(cfg))


def index_addr_bits(cfg: ArrayConfig) -> int:
    return bits_for(cfg.index_depth - 1)
