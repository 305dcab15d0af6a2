"""On-chip buffers that are more than one ``lib.memory.Memory``: the activation buffer's read-port
copies and the output buffer's banks.

**Activation buffer** (:class:`ActivationBuffer`): the tile loader reads ``act_ports`` activations per
cycle (``ArrayConfig.act_ports``, window rows x lanes), at positions of a window that no bank mapping
keeps conflict-free for every stride, kernel and window position. It is therefore ``act_ports``
copies of one ``act_depth``-word memory, each with one write port (the load writes every copy) and
one read port: the simple dual-port shape a block RAM has. That is what Yosys' memory mapper builds
from one memory with many read ports too, but it searches the mapping of all ports together, and with
12 read ports (``golden.lanes.WIDE_FEED``) the YoWASP Yosys aborted there (a WebAssembly exception in
``memory_libmap``); copies made here are mapped one by one. RAM: ``act_ports x act_depth x act_bits``
bits (12 x 64 kbit on the ECP5 wide build).

**Output buffer** (:class:`OutputBuffer`): ``drain_lanes`` banks so that the drain writes that many
outputs per cycle.
Output ``(m, y, x)`` is at address ``p = m*E*F + y*F + x`` whatever the banking (the host reads the
buffer back as a dense ``(M, E, F)`` array, ``hdl.drain``), in bank ``p mod W`` at word ``p // W``
(``W = drain_lanes``, a power of two, so both are bit fields). The drain writes ``W`` consecutive
addresses per cycle (consecutive columns of one PE row: lane ``l`` at ``base + l``), which fall in
``W`` different banks: bank ``b`` takes lane ``(b - base) mod W``, at word ``base // W`` plus one where
the lane wrapped past the bank (``b < base mod W``). Each bank is a memory with one write and one read
port, like the single buffer it replaces, so ``W`` times the write bandwidth costs no RAM bits.

The read-back (``hdl.prefetch.read_ahead`` in ``hdl.accelerator``) reads it in address order through
:meth:`OutputBuffer.read_port`: every bank reads word ``p // W`` and the read data is all ``W`` banks'
words; the bank ``p mod W`` is picked (:meth:`OutputBuffer.pick`) after the read-back's landing
register, not in front of it (a bank mux after a block RAM's late read data was the 2x2 wide ECP5
build's only failing path). The output stage (``hdl.epilogue``, arrays built with ``epilogue``) reads
the partial sums at the ``W`` addresses the drain is about to write (``psum_*``), mapped to banks
like the write; it reads during a run, the read-back after it, so the two share the banks' read ports.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for
from golden.timing import PSUM_LATENCY

from .delay import delay


@dataclass(frozen=True)
class Port:
    """A buffer's port as the logic around it sees it, like a ``lib.memory`` port: ``addr``, ``en`` and
    ``data`` (read data a cycle after an enabled read, or write data)."""

    addr: Signal
    en: Signal
    data: Signal


class ActivationBuffer(wiring.Component):
    """``act_ports`` copies of the activation buffer: one write port to all, one read port each."""

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        abits = bits_for(cfg.act_depth - 1)
        super().__init__({
            "rd_addr": In(abits).array(cfg.act_ports), "rd_en": In(1).array(cfg.act_ports),
            "rd_data": Out(signed(cfg.act_bits)).array(cfg.act_ports),
        })
        self._write = Port(Signal(abits, name="act_wr_addr"), Signal(name="act_wr_en"),
                           Signal(signed(cfg.act_bits), name="act_wr_data"))

    def write_port(self) -> Port:
        """The load's write port (every copy takes the word)."""
        return self._write

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        wr = self._write
        for p in range(cfg.act_ports):
            copy = memory.Memory(shape=signed(cfg.act_bits), depth=cfg.act_depth, init=[])
            m.submodules["mem" if cfg.act_ports == 1 else f"copy{p}"] = copy
            wp, rp = copy.write_port(), copy.read_port()
            m.d.comb += [wp.addr.eq(wr.addr), wp.data.eq(wr.data), wp.en.eq(wr.en),
                         rp.addr.eq(self.rd_addr[p]), rp.en.eq(self.rd_en[p]), self.rd_data[p].eq(rp.data)]
        return m


class OutputBuffer(wiring.Component):
    """``W`` banks of ``out_depth / W`` words; write ``W`` consecutive addresses from ``wr_addr`` per cycle."""

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        lanes = cfg.drain_lanes
        super().__init__({
            "wr_addr": In(bits_for(cfg.out_depth - 1)),
            "wr_data": In(signed(cfg.acc_bits)).array(lanes), "wr_en": In(1).array(lanes),
            "psum_addr": In(bits_for(cfg.out_depth - 1)), "psum_en": In(1),
            "psum_data": Out(signed(cfg.acc_bits)).array(lanes),
        })
        self._read = Port(Signal(bits_for(cfg.out_depth - 1), name="out_rd_addr"), Signal(name="out_rd_en"),
                          Signal(lanes * cfg.acc_bits, name="out_rd_data"))

    def read_port(self) -> Port:
        """The buffer's one read port (address in output order; the cycle after an enabled read, the
        words of every bank at that row: :meth:`pick` takes the addressed one)."""
        return self._read

    def pick(self, data: Value, addr: Value) -> Value:
        """The word at ``addr`` from the read port's ``data`` of a read at ``addr``."""
        k = self._cfg.drain_lanes.bit_length() - 1
        word = data if k == 0 else data.word_select(addr[:k], self._cfg.acc_bits)
        return word.as_signed()

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        lanes = cfg.drain_lanes
        k = lanes.bit_length() - 1  # W = 2**k
        banks = [memory.Memory(shape=signed(cfg.acc_bits), depth=cfg.out_depth // lanes, init=[])
                 for _ in range(lanes)]
        for b, bank in enumerate(banks):
            m.submodules[f"bank{b}" if lanes > 1 else "mem"] = bank
        base = self.wr_addr[:k]
        data, en = Array(self.wr_data), Array(self.wr_en)
        pbase = self.psum_addr[:k]

        def bank_word(addr: Value, b: int) -> Value:
            """Bank ``b``'s word of the ``W`` consecutive addresses from ``addr``: one more where they
            wrapped past it (``b < addr mod W``; the last bank never is)."""
            return addr[k:] + ((addr[:k] > b) if b < lanes - 1 else 0)

        rd = self._read
        reads = []
        for b, bank in enumerate(banks):
            wp, rp = bank.write_port(), bank.read_port()
            if lanes == 1:
                m.d.comb += [wp.addr.eq(self.wr_addr), wp.data.eq(self.wr_data[0]), wp.en.eq(self.wr_en[0])]
            else:
                lane = Signal(k, name=f"bank{b}_lane")  # (b - base) mod W
                m.d.comb += [lane.eq(b - base), wp.addr.eq(bank_word(self.wr_addr, b)),
                             wp.data.eq(data[lane]), wp.en.eq(en[lane])]
            # the psum read, mapped like the write; the read-back reads one row of every bank
            m.d.comb += [rp.addr.eq(Mux(self.psum_en, bank_word(self.psum_addr, b), rd.addr[k:])),
                         rp.en.eq(rd.en | self.psum_en)]
            reads.append(rp.data)
        # psum lane l is bank (base + l) mod W: every bank's word landed in a register first, then picked
        # (``golden.timing.PSUM_LATENCY``: the read port's own register, then landing registers, so no
        # logic sits between a block RAM's late read data and a register)
        landed = delay(m, Cat(*reads), PSUM_LATENCY - 1, name="psum_land", reset_less=True)
        pbase_d = delay(m, pbase if lanes > 1 else 0, PSUM_LATENCY, name="psum_base{k}", shape=max(k, 1),
                        reset_less=True)
        for lane in range(lanes):
            word = landed if lanes == 1 else landed.word_select((pbase_d + lane)[:k], cfg.acc_bits)
            m.d.comb += self.psum_data[lane].eq(word.as_signed())
        m.d.comb += rd.data.eq(Cat(*reads))
        return m
