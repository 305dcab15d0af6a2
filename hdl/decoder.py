"""Index decoders: the per-dataflow part of the array (with the encoder in ``golden/encode.py``).

The loader and the compute sequencer walk the same schedule: per filter group a header (number of
channel entries ``n``), then entries (channel ``c``, number of units); per unit a filter slot and a
start position. They ask the decoder through :func:`channel_query` and :func:`unit_query` ports, and
every answer arrives one cycle after the request (and holds while no new request is made), whatever
the dataflow, so the walkers, their timing and the datapath are shared. An entry's channel is
answered as the channel's plane offset in the activation buffer (``c*H*W``, see ``golden/encode.py``),
so the loader adds it to its window origin and never multiplies:

* :class:`DenseDecoder` answers from counters: ``n = C``, entry ``k`` = ``(k*H*W, M_g)``, unit ``kc``
  = filter slot ``kc``. No index memory, no index reads.
* :class:`IndexedDecoder` reads a channel-index memory (two read ports: loader and sequencer) and a
  unit-index memory, loaded through ``wr``; only the unpacking of the words differs between
  ``kernel``, ``vector``, ``strided`` and ``element``.

Besides the unit's start position, the channel answer carries the step between a unit's positions
(``step_r, step_s``): ``(0, 1)`` (next column) except for ``strided``, whose step is the channel's
stride-pattern period ``sigma`` as ``divmod(sigma, S)``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for

from .layouts import index_addr_bits


def channel_query(cfg: ArrayConfig) -> wiring.Signature:
    """Requester's view: ask for the group header (``header``) or entry ``k`` at index word ``addr``.

    ``mg`` (filters in the group) and ``plane`` (``H*W``) are context the counter-based dense decoder
    needs; a requester that does not use the ``chan`` answer may leave ``plane`` at 0.
    """
    return wiring.Signature({
        "en": Out(1), "header": Out(1), "k": Out(cfg.count_bits), "mg": Out(cfg.count_bits),
        "plane": Out(bits_for(cfg.act_depth)), "addr": Out(index_addr_bits(cfg)),
        "count": In(cfg.count_bits), "chan": In(cfg.chan_bits), "empty": In(1),
        "step_r": In(cfg.pos_bits), "step_s": In(cfg.pos_bits),
    })


def unit_query(cfg: ArrayConfig) -> wiring.Signature:
    """Requester's view: ask for unit ``kc`` of the current entry (unit-index word ``addr``)."""
    return wiring.Signature({
        "en": Out(1), "kc": Out(cfg.count_bits), "addr": Out(index_addr_bits(cfg)),
        "slot": In(cfg.slot_bits), "r0": In(cfg.pos_bits), "s0": In(cfg.pos_bits),
    })


def index_write(cfg: ArrayConfig) -> wiring.Signature:
    """Writer's view: one word into the channel index (``unit=0``) or the unit index (``unit=1``)."""
    return wiring.Signature({
        "en": Out(1), "unit": Out(1), "addr": Out(index_addr_bits(cfg)),
        "data": Out(max(cfg.chan_index_bits, cfg.unit_index_bits)),
    })


class _Decoder(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "channels": In(cfg.dim_bits),
            "loader": In(channel_query(cfg)),
            "seq": In(channel_query(cfg)),
            "unit": In(unit_query(cfg)),
            "wr": In(index_write(cfg)),
        })


class DenseDecoder(_Decoder):
    """Counter-based decoder for the dense dataflow: every channel, every filter, in order.

    Entry ``k``'s plane offset ``k*H*W`` is a running sum per port: a header request clears it, each
    entry request answers it and adds ``plane``. That is exact because each requester (loader,
    sequencer) asks for the entries of a tile in order ``k = 0, 1, ...`` right after the tile's
    header, each once; ``k`` itself is not needed. The sum wraps only after the last channel, whose
    offset ``(C-1)*H*W < act_depth`` still fits.
    """

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        for q in (self.loader, self.seq):
            offset = Signal(cfg.chan_bits)  # plane offset of the port's next entry
            m.d.comb += [q.step_r.eq(0), q.step_s.eq(1), q.empty.eq(0)]  # C >= 1: no group is empty
            with m.If(q.en):
                with m.If(q.header):
                    m.d.sync += [q.count.eq(self.channels), offset.eq(0)]
                with m.Else():
                    m.d.sync += [q.count.eq(q.mg), q.chan.eq(offset), offset.eq(offset + q.plane)]
        with m.If(self.unit.en):
            m.d.sync += self.unit.slot.eq(self.unit.kc)
        m.d.comb += [self.unit.r0.eq(0), self.unit.s0.eq(0)]
        return m


class IndexedDecoder(_Decoder):
    """Memory-based decoder: the channel index and the unit index as the encoder laid them out."""

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        cb, nb, pb, sb = cfg.chan_bits, cfg.count_bits, cfg.pos_bits, cfg.slot_bits
        m = Module()
        m.submodules.chan_mem = chan_mem = memory.Memory(shape=cfg.chan_index_bits, depth=cfg.index_depth, init=[])
        m.submodules.unit_mem = unit_mem = memory.Memory(shape=cfg.unit_index_bits, depth=cfg.index_depth, init=[])
        cw = chan_mem.write_port()
        uw = unit_mem.write_port()
        m.d.comb += [
            cw.addr.eq(self.wr.addr), cw.data.eq(self.wr.data), cw.en.eq(self.wr.en & ~self.wr.unit),
            uw.addr.eq(self.wr.addr), uw.data.eq(self.wr.data), uw.en.eq(self.wr.en & self.wr.unit),
        ]
        words = {}
        for name, q in (("loader", self.loader), ("seq", self.seq)):
            words[name] = rp = chan_mem.read_port()
            m.d.comb += [rp.addr.eq(q.addr), rp.en.eq(q.en), q.chan.eq(rp.data[:cb]), q.count.eq(rp.data[cb:cb + nb]),
                         q.empty.eq(rp.data[0])]  # meaningful in a header answer only
            if cfg.dataflow == "strided":
                m.d.comb += [q.step_r.eq(rp.data[cb + nb + 2 * pb:][:pb]), q.step_s.eq(rp.data[cb + nb + 3 * pb:][:pb])]
            else:
                m.d.comb += [q.step_r.eq(0), q.step_s.eq(1)]
        up = unit_mem.read_port()
        m.d.comb += [up.addr.eq(self.unit.addr), up.en.eq(self.unit.en), self.unit.slot.eq(up.data[:sb])]
        if cfg.dataflow == "strided":
            # every kernel of a channel starts at the channel's phase: the sequencer's entry answer holds it
            # from before the entry's first unit until after its last one
            phase = words["seq"].data[cb + nb:]
            m.d.comb += [self.unit.r0.eq(phase[:pb]), self.unit.s0.eq(phase[pb:][:pb])]
        elif cfg.dataflow in ("vector", "element"):
            m.d.comb += self.unit.r0.eq(up.data[sb:][:pb])
            if cfg.dataflow == "element":
                m.d.comb += self.unit.s0.eq(up.data[sb + pb:][:pb])
        return m


def make_decoder(cfg: ArrayConfig) -> _Decoder:
    """The decoder of ``cfg.dataflow``."""
    return DenseDecoder(cfg) if cfg.dataflow == "dense" else IndexedDecoder(cfg)
