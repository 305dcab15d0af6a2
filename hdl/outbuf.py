"""The output buffer, in ``drain_lanes`` banks so that the drain writes that many outputs per cycle.

Output ``(m, y, x)`` is at address ``p = m*E*F + y*F + x`` whatever the banking (the host reads the
buffer back as a dense ``(M, E, F)`` array, ``hdl.drain``), in bank ``p mod W`` at word ``p // W``
(``W = drain_lanes``, a power of two, so both are bit fields). The drain writes ``W`` consecutive
addresses per cycle (consecutive columns of one PE row: lane ``l`` at ``base + l``), which fall in
``W`` different banks: bank ``b`` takes lane ``(b - base) mod W``, at word ``base // W`` plus one where
the lane wrapped past the bank (``b < base mod W``). Each bank is a memory with one write and one read
port, like the single buffer it replaces, so ``W`` times the write bandwidth costs no RAM bits.

The read-back (``hdl.prefetch.read_ahead`` in ``hdl.accelerator``) reads it in address order through
:meth:`OutputBuffer.read_port`: every bank reads word ``p // W`` and the bank ``p mod W`` is picked a
cycle later, with the data.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, Module, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In

from golden.config import ArrayConfig, bits_for


@dataclass(frozen=True)
class ReadPort:
    """What ``hdl.prefetch.read_ahead`` drives and reads, like a memory's synchronous read port."""

    addr: Signal
    en: Signal
    data: Signal


class OutputBuffer(wiring.Component):
    """``W`` banks of ``out_depth / W`` words; write ``W`` consecutive addresses from ``wr_addr`` per cycle."""

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        lanes = cfg.drain_lanes
        super().__init__({
            "wr_addr": In(bits_for(cfg.out_depth - 1)),
            "wr_data": In(signed(cfg.acc_bits)).array(lanes), "wr_en": In(1).array(lanes),
        })
        self._read = ReadPort(Signal(bits_for(cfg.out_depth - 1), name="out_rd_addr"), Signal(name="out_rd_en"),
                              Signal(signed(cfg.acc_bits), name="out_rd_data"))

    def read_port(self) -> ReadPort:
        """The buffer's one read port (address in output order, data the cycle after an enabled read)."""
        return self._read

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        lanes = cfg.drain_lanes
        k = lanes.bit_length() - 1  # W = 2**k
        banks = [memory.Memory(shape=signed(cfg.acc_bits), depth=cfg.out_depth // lanes, init=[])
                 for _ in range(lanes)]
        for b, bank in enumerate(banks):
            m.submodules[f"bank{b}" if lanes > 1 else "mem"] = bank
        base, word = self.wr_addr[:k], self.wr_addr[k:]
        data, en = Array(self.wr_data), Array(self.wr_en)
        rd = self._read
        reads = []
        for b, bank in enumerate(banks):
            wp, rp = bank.write_port(), bank.read_port()
            if lanes == 1:
                m.d.comb += [wp.addr.eq(self.wr_addr), wp.data.eq(self.wr_data[0]), wp.en.eq(self.wr_en[0])]
            else:
                lane = Signal(k, name=f"bank{b}_lane")  # (b - base) mod W
                wrapped = (base > b) if b < lanes - 1 else 0  # the last bank is never past ``base``
                m.d.comb += [lane.eq(b - base), wp.addr.eq(word + wrapped),
                             wp.data.eq(data[lane]), wp.en.eq(en[lane])]
            m.d.comb += [rp.addr.eq(rd.addr[k:]), rp.en.eq(rd.en)]
            reads.append(rp.data)
        if lanes == 1:
            m.d.comb += rd.data.eq(reads[0])
        else:
            picked = Signal(k, name="out_rd_bank", reset_less=True)  # the bank of the read in flight
            with m.If(rd.en):
                m.d.sync += picked.eq(rd.addr[:k])
            m.d.comb += rd.data.eq(Array(reads)[picked])
        return m
