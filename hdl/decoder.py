"""Index decoders: the only per-dataflow part of the array besides the encoder.

The loader and the compute sequencer walk the same schedule: per filter group a header (number of
channel entries ``n``), then entries ``(c, nk)``; per scheduled kernel a filter slot. They ask the
decoder through :func:`channel_query` and :func:`slot_query` ports, and every answer arrives one
cycle after the request (and holds while no new request is made), whatever the dataflow, so the
walkers and their timing are shared:

* :class:`DenseDecoder` answers from counters: ``n = C``, entry ``k`` = ``(k, M_g)``, slot = kernel
  number. No index memory, no index reads.
* :class:`KernelDecoder` reads a channel-index memory (two read ports: loader and sequencer) and a
  kernel-index memory (filter slots), loaded through ``wr``.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig

from .layouts import index_addr_bits


def channel_query(cfg: ArrayConfig) -> wiring.Signature:
    """Requester's view: ask for the group header (``header``) or entry ``k`` at index word ``addr``."""
    return wiring.Signature({
        "en": Out(1), "header": Out(1), "k": Out(cfg.count_bits), "mg": Out(cfg.count_bits),
        "addr": Out(index_addr_bits(cfg)),
        "count": In(cfg.count_bits), "chan": In(cfg.chan_bits),
    })


def slot_query(cfg: ArrayConfig) -> wiring.Signature:
    """Requester's view: ask for the filter slot of kernel number ``kc`` (index word ``addr``)."""
    return wiring.Signature({
        "en": Out(1), "kc": Out(cfg.slot_bits), "addr": Out(index_addr_bits(cfg)),
        "slot": In(cfg.slot_bits),
    })


def index_write(cfg: ArrayConfig) -> wiring.Signature:
    """Writer's view: one index word into the channel index (``kernel=0``) or kernel index (``kernel=1``)."""
    return wiring.Signature({
        "en": Out(1), "kernel": Out(1), "addr": Out(index_addr_bits(cfg)),
        "data": Out(max(cfg.chan_index_bits, cfg.slot_bits)),
    })


class _Decoder(wiring.Component):
    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "channels": In(cfg.dim_bits),
            "loader": In(channel_query(cfg)),
            "seq": In(channel_query(cfg)),
            "slot": In(slot_query(cfg)),
            "wr": In(index_write(cfg)),
        })


class DenseDecoder(_Decoder):
    """Counter-based decoder for the dense dataflow: every channel, every filter, in order."""

    def elaborate(self, platform) -> Module:
        m = Module()
        for q in (self.loader, self.seq):
            with m.If(q.en):
                m.d.sync += q.chan.eq(q.k)
                with m.If(q.header):
                    m.d.sync += q.count.eq(self.channels)
                with m.Else():
                    m.d.sync += q.count.eq(q.mg)
        with m.If(self.slot.en):
            m.d.sync += self.slot.slot.eq(self.slot.kc)
        return m


class KernelDecoder(_Decoder):
    """Memory-based decoder for the kernel dataflow: only channels and kernels that are non-zero."""

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        m.submodules.chan_mem = chan_mem = memory.Memory(
            shape=cfg.chan_index_bits, depth=cfg.index_depth, init=[])
        m.submodules.kern_mem = kern_mem = memory.Memory(shape=cfg.slot_bits, depth=cfg.index_depth, init=[])
        cw = chan_mem.write_port()
        kw = kern_mem.write_port()
        m.d.comb += [
            cw.addr.eq(self.wr.addr), cw.data.eq(self.wr.data), cw.en.eq(self.wr.en & ~self.wr.kernel),
            kw.addr.eq(self.wr.addr), kw.data.eq(self.wr.data), kw.en.eq(self.wr.en & self.wr.kernel),
        ]
        for q in (self.loader, self.seq):
            rp = chan_mem.read_port()
            m.d.comb += [
                rp.addr.eq(q.addr), rp.en.eq(q.en),
                q.chan.eq(rp.data[:cfg.chan_bits]), q.count.eq(rp.data[cfg.chan_bits:]),
            ]
        kp = kern_mem.read_port()
        m.d.comb += [kp.addr.eq(self.slot.addr), kp.en.eq(self.slot.en), self.slot.slot.eq(kp.data)]
        return m


def make_decoder(cfg: ArrayConfig) -> _Decoder:
    """The decoder of ``cfg.dataflow``."""
    return {"dense": DenseDecoder, "kernel": KernelDecoder}[cfg.dataflow](cfg)

