"""Index decoders: the per-dataflow part of the array (with the encoder in ``golden/encode.py``).

The loader and the compute sequencer walk the same schedule: per filter group a header (number of
channel entries ``n``), then entries (channel, number of units); per unit a filter slot and a start
position. Each walker reads the schedule as **streams** in walk order, through :func:`entry_stream`
and :func:`unit_stream` ports: ``restart`` at a tile's start names the group's first index word, the
head of the stream holds the group header ``golden.timing.STREAM_LATENCY`` cycles later, and each ``next``
moves the head to the following item from the next cycle on, with no bubble, however often the
walker pops (the element dataflow pops one unit per cycle). The walkers never wait for an index
word in the middle of a tile, whatever the dataflow, so the walkers, their timing and the datapath
are shared.

Why streams and not random access: a block RAM's read data arrives late in the cycle (5.8 ns of a
10 ns cycle on an ECP5), so no decision may depend on it in the cycle it arrives. The walkers only
ever read the index in order, so the decoder reads ahead (:mod:`hdl.prefetch`) into a three-word queue
of registers and the walkers see registers only.

* :class:`DenseDecoder` answers from counters: ``n = C``, entry ``k`` = ``(k*H*W, M_g)``, units
  = filter slots ``0 .. M_g-1`` per entry. No index memory, no index reads.
* :class:`IndexedDecoder` reads the channel index (one read port and queue per walker) and the unit
  index (one, for the sequencer), loaded through ``wr``; the words are unpacked through the layouts
  the encoder packs them with (``golden.words.chan_header``, ``chan_word``, ``unit_word``).

An entry names its channel by the channel's plane offset in the activation buffer (``c*H*W``, see
``golden/encode.py``), so the loader adds it to its window origin and never multiplies. Besides the
channel, an entry carries its units' first position within the kernel (``phase_r, phase_s``) and the
step between positions (``step_r, step_s``): ``(0, 0)`` and ``(0, 1)`` (next column:
``golden.words.NO_PATTERN_FIELDS``) except for ``strided``, whose phase and step are the channel's
stride pattern ``phi`` and period ``sigma``, both as ``divmod(., S)``. A unit carries its slot and,
for ``vector`` and ``element``, its row (and column).

``index_reads`` counts the index words the walkers consume (pops); the queues read up to three words
past a tile's last item, which no walker consumes and the counter does not count.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from golden.config import ArrayConfig
from golden.dataflow import dataflow_of, unit_groups
from golden.timing import STREAM_LATENCY
from golden.words import NO_PATTERN_FIELDS, PATTERN_FIELDS, chan_header, chan_word, unit_word

from .buffers import BlockBanks
from .delay import require
from .layouts import word_view
from .prefetch import read_ahead
from .signatures import entry_stream, index_write, unit_stream


class _Decoder(wiring.Component):
    """The schedule's streams for one dataflow: the loader's and the sequencer's entries, the sequencer's units.

    Members
    -------
    channels : In(dim_bits)
        The layer's input channels ``C`` (the dense decoder's entries per group).
    loader, seq : In(entry_stream(cfg))
        The loader's and the sequencer's channel-entry streams (:func:`entry_stream`).
    unit : In(unit_stream(cfg))
        The sequencer's unit stream (:func:`unit_stream`).
    wr : In(index_write(cfg))
        The load's writes into the index memories (:func:`index_write`; unused by the dense decoder).
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "channels": In(cfg.dim_bits),
            "loader": In(entry_stream(cfg)),
            "seq": In(entry_stream(cfg)),
            "unit": In(unit_stream(cfg)),
            "wr": In(index_write(cfg)),
        })


class DenseDecoder(_Decoder):
    """Counter-based decoder for the dense dataflow: every channel, every filter, in order.

    Entry ``k``'s plane offset ``k*H*W`` is a running sum per stream, stepped by ``plane`` on each pop
    of an entry; the units of every entry are the slots ``0 .. M_g-1``. The sum wraps only after the
    last channel, whose offset ``(C-1)*H*W < act_depth`` still fits.
    """

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        for name, q in (("loader", self.loader), ("seq", self.seq)):
            at_header = Signal(name=f"{name}_at_header")  # the head is the header (else an entry)
            # plane offset of the entry at (or after) the head
            offset = Signal(cfg.chan_bits, name=f"{name}_offset", reset_less=True)
            m.d.comb += [q.valid.eq(1), q.hempty.eq(0), q.hcount.eq(self.channels),  # C >= 1: no group is empty
                         q.count.eq(q.mg), q.chan.eq(offset),
                         *(getattr(q, name).eq(value) for name, value in NO_PATTERN_FIELDS)]
            with m.If(q.restart):
                m.d.sync += [at_header.eq(1), offset.eq(0)]
            with m.Elif(q.next):
                m.d.sync += at_header.eq(0)
                with m.If(~at_header):
                    m.d.sync += offset.eq(offset + q.plane)
        u = self.unit
        slot = Signal(cfg.slot_bits, reset_less=True)
        slot_last = Signal(reset_less=True)  # slot == M_g - 1, registered ahead of its use
        # ``mg`` is read the cycle after ``restart``, not in it: the first restart of a run comes in the
        # cycle the tile walker latches the configuration, so its ``mg`` is still the previous run's
        # (``acc_depth``, which made a one-filter first group cycle through every slot)
        require("STREAM_LATENCY", STREAM_LATENCY, STREAM_LATENCY > 1,
                "the dense unit stream reads mg in the cycle after restart, before its first unit is at the head")
        restarted = Signal()
        m.d.sync += restarted.eq(u.restart)
        m.d.comb += [u.valid.eq(1), u.slot.eq(slot), u.count.eq(1)]
        m.d.comb += [pos.eq(0) for pos in (*u.r, *u.s)]
        with m.If(u.restart):
            m.d.sync += slot.eq(0)
        with m.Elif(restarted):  # no pop comes before the first unit reaches the head (STREAM_LATENCY > 1)
            m.d.sync += slot_last.eq(u.mg == 1)
        with m.Elif(u.next):
            with m.If(slot_last):
                m.d.sync += [slot.eq(0), slot_last.eq(u.mg == 1)]
            with m.Else():
                m.d.sync += [slot.eq(slot + 1), slot_last.eq(slot + 2 == u.mg)]
        return m


class IndexedDecoder(_Decoder):
    """Memory-based decoder: the channel index and the unit index as the encoder laid them out."""

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        chan_mem = BlockBanks(m, "chan_mem", cfg.chan_index_bits, cfg.index_depth)
        unit_mem = BlockBanks(m, "unit_mem", cfg.unit_index_bits, cfg.index_depth)
        cw = chan_mem.write_port()
        uw = unit_mem.write_port()
        m.d.comb += [
            cw.addr.eq(self.wr.addr), cw.data.eq(self.wr.data), cw.en.eq(self.wr.en & ~self.wr.unit),
            uw.addr.eq(self.wr.addr), uw.data.eq(self.wr.data), uw.en.eq(self.wr.en & self.wr.unit),
        ]
        df = dataflow_of(cfg.dataflow)
        for name, q in (("loader", self.loader), ("seq", self.seq)):
            ahead = read_ahead(m, chan_mem, restart=q.restart, start=q.addr, pop=q.next, name=f"{name}_chan",
                               pick=chan_mem.pick)
            entry, header = word_view(chan_word(cfg), ahead.head), word_view(chan_header(cfg), ahead.first)
            m.d.comb += [q.valid.eq(ahead.valid), q.chan.eq(entry.chan), q.count.eq(entry.count),
                         q.hcount.eq(header.count), q.hempty.eq(header.empty)]
            if df.pattern:
                m.d.comb += [getattr(q, field).eq(entry[field]) for field in PATTERN_FIELDS]
            else:
                m.d.comb += [getattr(q, field).eq(value) for field, value in NO_PATTERN_FIELDS]
        u = self.unit
        ahead = read_ahead(m, unit_mem, restart=u.restart, start=u.addr, pop=u.next, name="unit", pick=unit_mem.pick)
        word = word_view(unit_word(cfg), ahead.head)
        m.d.comb += [u.valid.eq(ahead.valid), u.slot.eq(word.slot)]
        groups = unit_groups(cfg)
        m.d.comb += u.count.eq(word.count if groups > 1 else 1)
        for g in range(groups):  # each group's row (rows and single weights) and column (single weights)
            for name in ("r", "s"):
                field = f"{name}{g}"
                value = word[field] if field in unit_word(cfg).names else 0
                m.d.comb += getattr(u, name)[g].eq(value)
        return m


def make_decoder(cfg: ArrayConfig) -> _Decoder:
    """The decoder of ``cfg.dataflow``."""
    return IndexedDecoder(cfg) if dataflow_of(cfg.dataflow).indexed else DenseDecoder(cfg)
