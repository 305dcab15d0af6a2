"""On-chip buffers that are more than one ``lib.memory.Memory``: the activation buffer's read-port
copies, the output buffer's banks and the index streams' block-sized banks.

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

**Index memories** (:class:`BlockBanks`, ``hdl.decoder``): a memory deeper than one block RAM holds
at its width is several block RAMs, and the synthesizer chose to stack them in depth and mux their read
data, late in the cycle, in front of whatever register takes it (on the 8x8 ECP5 array the channel
index's eight 512 x 36 blocks, their mux and a route to a landing register by the sequencer were the
worst path, 11.32 ns). Built here as bit slices of the widest block mode deep enough (a 4096 x 27
index: seven 4K x 4 blocks), every block's output goes to the landing register with no mux; only
memories deeper than a block's deepest mode are banks in depth, landed and picked after the landing
register, as the read-back does with the output buffer's banks.

The read-back (``hdl.prefetch.read_ahead`` in ``hdl.accelerator``) reads it in address order through
:meth:`OutputBuffer.read_port`: every bank reads word ``p // W`` and the read data is all ``W`` banks'
words; the bank ``p mod W`` is picked (:meth:`OutputBuffer.pick`) after the read-back's landing
register, not in front of it (a bank mux after a block RAM's late read data was the 2x2 wide ECP5
build's only failing path). The output stage (``hdl.epilogue``, arrays built with ``epilogue``) reads
the partial sums at the ``W`` addresses the drain is about to write (``psum_*``), mapped to banks
like the write; it reads during a run, the read-back after it, so the two share the banks' read ports.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In

from golden.config import ArrayConfig, bits_for
from golden.timing import PSUM_LATENCY

from .delay import delay
from .signatures import act_read, mem_read, mem_write, output_write, psum_read


class ActivationBuffer(wiring.Component):
    """``act_ports`` copies of the activation buffer: one write port to all, one read port each.

    Members
    -------
    rd : In(act_read(cfg))
        The tile loader's reads, one per copy (``rd_addr__<p>``, ``rd_en__<p>``, ``rd_data__<p>``).
    wr : In(mem_write(.., signed(act_bits), prefix="act_wr_"))
        The load's write port (``act_wr_addr``, ``act_wr_en``, ``act_wr_data``): every copy takes the word.
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__({
            "rd": In(act_read(cfg)),
            "wr": In(mem_write(bits_for(cfg.act_depth - 1), signed(cfg.act_bits), prefix="act_wr_")),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        wr = self.wr
        for p in range(cfg.act_ports):
            copy = memory.Memory(shape=signed(cfg.act_bits), depth=cfg.act_depth, init=[])
            m.submodules["mem" if cfg.act_ports == 1 else f"copy{p}"] = copy
            wp, rp = copy.write_port(), copy.read_port()
            m.d.comb += [wp.addr.eq(wr.addr), wp.data.eq(wr.data), wp.en.eq(wr.en),
                         rp.addr.eq(self.rd.addr[p]), rp.en.eq(self.rd.en[p]), self.rd.data[p].eq(rp.data)]
        return m


class OutputBuffer(wiring.Component):
    """``W`` banks of ``out_depth / W`` words; write ``W`` consecutive addresses from ``wr_addr`` per cycle.

    Members
    -------
    wr : In(output_write(cfg))
        The drain's or the output stage's write (``wr_addr``, ``wr_data__<l>``, ``wr_en__<l>``), or
        the load's partial sums (lane 0) while idle.
    psum : In(psum_read(cfg))
        The output stage's read of the partial sums at the ``W`` addresses it is about to write
        (``psum_addr``, ``psum_en``, ``psum_data__<l>``).
    rd : In(mem_read(.., W * acc_bits, prefix="out_rd_"))
        The read-back's port (:meth:`read_port`).
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        lanes = cfg.drain_lanes
        super().__init__({
            "wr": In(output_write(cfg)), "psum": In(psum_read(cfg)),
            "rd": In(mem_read(bits_for(cfg.out_depth - 1), lanes * cfg.acc_bits, prefix="out_rd_")),
        })

    def read_port(self) -> wiring.PureInterface:
        """The buffer's one read port, as a ``lib.memory`` read port looks from outside (``addr``,
        ``en``, ``data``: for ``hdl.prefetch.read_ahead``). The address is in output order; the cycle
        after an enabled read, ``data`` holds the words of every bank at that row: :meth:`pick` takes
        the addressed one."""
        return wiring.flipped(self.rd)

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
        base = self.wr.addr[:k]
        data, en = Array(self.wr.data), Array(self.wr.en)
        pbase = self.psum.addr[:k]

        def bank_word(addr: Value, b: int) -> Value:
            """Bank ``b``'s word of the ``W`` consecutive addresses from ``addr``: one more where they
            wrapped past it (``b < addr mod W``; the last bank never is)."""
            return addr[k:] + ((addr[:k] > b) if b < lanes - 1 else 0)

        rd = self.rd
        reads = []
        for b, bank in enumerate(banks):
            wp, rp = bank.write_port(), bank.read_port()
            if lanes == 1:
                m.d.comb += [wp.addr.eq(self.wr.addr), wp.data.eq(self.wr.data[0]), wp.en.eq(self.wr.en[0])]
            else:
                lane = Signal(k, name=f"bank{b}_lane")  # (b - base) mod W
                m.d.comb += [lane.eq(b - base), wp.addr.eq(bank_word(self.wr.addr, b)),
                             wp.data.eq(data[lane]), wp.en.eq(en[lane])]
            # the psum read, mapped like the write; the read-back reads one row of every bank
            m.d.comb += [rp.addr.eq(Mux(self.psum.en, bank_word(self.psum.addr, b), rd.addr[k:])),
                         rp.en.eq(rd.en | self.psum.en)]
            reads.append(rp.data)
        # psum lane l is bank (base + l) mod W: every bank's word landed in a register first, then picked
        # (``golden.timing.PSUM_LATENCY``: the read port's own register, then landing registers, so no
        # logic sits between a block RAM's late read data and a register)
        landed = delay(m, Cat(*reads), PSUM_LATENCY - 1, name="psum_land", reset_less=True)
        pbase_d = delay(m, pbase if lanes > 1 else 0, PSUM_LATENCY, name="psum_base{k}", shape=max(k, 1),
                        reset_less=True)
        for lane in range(lanes):
            word = landed if lanes == 1 else landed.word_select((pbase_d + lane)[:k], cfg.acc_bits)
            m.d.comb += self.psum.data[lane].eq(word.as_signed())
        m.d.comb += rd.data.eq(Cat(*reads))
        return m


BLOCK_MODES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
"""``(width, depth)`` of a 16-Kbit block RAM's modes (the ECP5's DP16KD): the deepest block a word of a
given width fits in. (An iCE40 EBR holds 4 Kbit; its index memories are a block deep or less.)"""


def block_depth(width: int) -> int:
    """Words of ``width`` bits one block RAM holds (:data:`BLOCK_MODES`; wider words: several blocks side
    by side, each as deep as the widest mode)."""
    return next((depth for w, depth in BLOCK_MODES if width <= w), BLOCK_MODES[-1][1])


class BlockBanks:
    """A ``depth``-word memory of ``shape`` built from whole block RAMs, for ``hdl.prefetch.read_ahead``.

    As deep as a block RAM's deepest mode (16 K words) or less, it is **bit slices**: the widest mode
    (:data:`BLOCK_MODES`) that holds ``depth`` words, side by side across the word, each a memory of its
    own (``<name>_s<k>``), so every block is read at the same address and its output goes straight to the
    stream's landing register: no block RAM's read data passes a mux (a 4096 x 27 channel index is
    seven 4K x 4 blocks, where the synthesizer built eight 512 x 36 blocks and a mux of their outputs).
    Deeper, it is **banks** of :func:`block_depth` words (the last one shorter), each read at the same
    word: the read port returns every bank's word and :meth:`pick` takes the addressed one after the
    stream's landing register. Builds its memories into ``m`` (submodule ``<name>`` when it is one).
    """

    def __init__(self, m: Module, name: str, shape, depth: int):
        self._m, self._shape, self._name, self._reads = m, shape, name, 0
        self._width = Shape.cast(shape).width
        self._abits = bits_for(depth - 1)
        slice_width = max((w for w, d in BLOCK_MODES if d >= depth), default=None)  # the widest deep enough
        if slice_width is not None:  # one block deep: bit slices, one bank
            self._k = self._abits
            bounds = list(range(0, self._width, slice_width)) + [self._width]
            self._slices = list(zip(bounds, bounds[1:], strict=False))
            self._banks = [[memory.Memory(shape=hi - lo, depth=depth, init=[]) for lo, hi in self._slices]]
            names = [[name if len(self._slices) == 1 else f"{name}_s{k}" for k in range(len(self._slices))]]
        else:  # deeper: banks of a block's depth at the word's width
            self._k = block_depth(self._width).bit_length() - 1  # word bits within a bank
            size = 1 << self._k
            self._slices = [(0, self._width)]
            self._banks = [[memory.Memory(shape=shape, depth=min(size, depth - b), init=[])]
                           for b in range(0, depth, size)]
            names = [[f"{name}{b}"] for b in range(len(self._banks))]
        for bank, bank_names in zip(self._banks, names, strict=True):
            for mem, sub in zip(bank, bank_names, strict=True):
                m.submodules[sub] = mem

    def _port(self, kind: str, shape) -> SimpleNamespace:
        return SimpleNamespace(addr=Signal(self._abits, name=f"{self._name}_{kind}_addr"),
                               en=Signal(name=f"{self._name}_{kind}_en"),
                               data=Signal(shape, name=f"{self._name}_{kind}_data"))

    def write_port(self) -> SimpleNamespace:
        """A write port (``addr``, ``en``, ``data``, as a ``lib.memory`` port's) into the addressed bank."""
        port = self._port("w", self._shape)
        for b, bank in enumerate(self._banks):
            hit = port.addr[self._k:] == b if len(self._banks) > 1 else 1
            for mem, (lo, hi) in zip(bank, self._slices, strict=True):
                wp = mem.write_port()
                self._m.d.comb += [wp.addr.eq(port.addr[:self._k]), wp.data.eq(Value.cast(port.data)[lo:hi]),
                                   wp.en.eq(port.en & hit)]
        return port

    def read_port(self) -> SimpleNamespace:
        """A read port (``addr``, ``en``; ``data``: every bank's word at ``addr``'s row, the cycle after)."""
        self._reads += 1
        port = self._port(f"r{self._reads}", len(self._banks) * self._width)
        words = []
        for bank in self._banks:
            for mem in bank:
                rp = mem.read_port()
                self._m.d.comb += [rp.addr.eq(port.addr[:self._k]), rp.en.eq(port.en)]
                words.append(rp.data)
        self._m.d.comb += port.data.eq(Cat(*words))
        return port

    def pick(self, data: Value, addr: Value) -> Value:
        """The word at ``addr`` from a read port's ``data`` of a read at ``addr``."""
        if len(self._banks) == 1:
            return data
        return data.word_select(addr[self._k:], self._width)
