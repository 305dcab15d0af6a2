"""Top level: buffers, the shared datapath, one dataflow's decoder, host interface and counters.

Host protocol (one layer):

1. while idle, push the encoded images through ``load`` (stream of ``{target, data}``, see
   ``golden.words.LOAD_TARGETS``); each target's buffer is written from address 0 upward;
2. drive ``cfg`` (``golden.encode.EncodedLayer.runtime_config``) and pulse ``start``; ``cfg`` is
   latched, load pointers rewind for the next layer, counters clear;
3. ``busy`` is high from the next cycle until the run ends; then ``done`` stays high, and from the
   cycle after ``done`` rises ``perf`` holds the final counters (``perf.busy_cycles`` = cycles from
   ``start`` to ``done``): counter increments are registered once, so no counter's carry chain ends
   a control path;
4. read the ``M*E*F`` outputs from ``o`` in ``(m, y, x)`` order (any backpressure).

Loading and reading back are outside the timed window by design, so stream stalls never change the
cycle count: the timed run works only from on-chip buffers, and ``golden.timing`` predicts it exactly.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for
from golden.words import LOAD_TARGETS, PERF_FIELDS, load_targets

from .array import PEArray
from .buffers import ActivationBuffer, OutputBuffer
from .decoder import make_decoder
from .delay import delay
from .drain import Drain
from .epilogue import OutputStage
from .layouts import config_layout, load_layout, perf_layout
from .loader import TileLoader
from .prefetch import read_ahead
from .replica import KEEP
from .reset import ResetCopies
from .sequencer import ComputeSequencer
from .signatures import weight_shape

PIPELINED_STROBES = ("weight_reads",)
"""Performance counters whose several strobes per cycle are each registered before they are summed: the
lanes' issue bits into the weight-read count's adder were the wide array's worst path at a 150 MHz
constraint on the ECP5 (``docs/fpga.md``). Only counters whose strobes all end before the last tile's
drain may take the extra cycle (the output writes go on until ``done``)."""


class Accelerator(wiring.Component):
    """The generated top level (``sparse_pe_array`` in Verilog).

    Members
    -------
    load : In(stream.Signature(load_layout(cfg)))
        The host's words into the buffers while idle: ``{target, data}`` (``golden.words.LOAD_TARGETS``).
    o : Out(stream.Signature(signed(acc_bits)))
        The outputs in ``(m, y, x)`` order after ``done``, with backpressure.
    cfg : In(config_layout(cfg))
        The layer's run-time configuration, latched at ``start``.
    start : In(1)
        Start a layer (ignored while busy).
    busy, done : Out(1)
        A run is under way; the last run has finished.
    perf : Out(perf_layout(cfg))
        The performance counters, final from the cycle after ``done`` rises.
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        super().__init__(self.signature_for(cfg))

    @staticmethod
    def signature_for(cfg: ArrayConfig) -> wiring.Signature:
        """The top level's ports for ``cfg``, without building the design (for manifests and drivers)."""
        return wiring.Signature({
            "load": In(stream.Signature(load_layout(cfg))),
            "o": Out(stream.Signature(signed(cfg.acc_bits))),
            "cfg": In(config_layout(cfg)),
            "start": In(1), "busy": Out(1), "done": Out(1),
            "perf": Out(perf_layout(cfg)),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        start = Signal()
        m.d.comb += start.eq(self.start & ~self.busy)
        lcfg = Signal(config_layout(cfg), reset_less=True)  # latched layer configuration (at start)
        finishing = Signal()
        self._latch_config(m, start, finishing, lcfg)

        m.submodules.act_mem = act_mem = ActivationBuffer(cfg)
        # a weight word holds the weights of every lane (``golden.words.weight_word``)
        m.submodules.w_mem = w_mem = memory.Memory(shape=weight_shape(cfg), depth=cfg.weight_depth, init=[])
        # each subsystem with resettable registers is reset by a copy of the reset of its own (``hdl.reset``)
        copies = ResetCopies(m)
        m.submodules.out_mem = copies("out_mem", out_mem := OutputBuffer(cfg))
        m.submodules.decoder = copies("decoder", dec := make_decoder(cfg))
        m.submodules.loader = copies("loader", loader := TileLoader(cfg))
        m.submodules.sequencer = copies("sequencer", seq := ComputeSequencer(cfg))
        m.submodules.drain = copies("drain", drain := Drain(cfg))
        m.submodules.array = copies("array", array := PEArray(cfg))
        ostage = None
        if cfg.epilogue:
            m.submodules.epilogue = copies("epilogue", ostage := OutputStage(cfg))

        loading_psum = self._elaborate_load(m, start, act_mem, w_mem, dec, out_mem, ostage)
        for unit in (loader, seq, drain, array):
            m.d.comb += unit.cfg.eq(lcfg)
        m.d.comb += [loader.start.eq(start), seq.start.eq(start), dec.channels.eq(lcfg.c)]
        wiring.connect(m, loader.ent, dec.loader)
        wiring.connect(m, seq.ent, dec.seq)
        wiring.connect(m, seq.unit, dec.unit)
        wiring.connect(m, seq.drain, drain.req)

        # activations -> tile buffers (full flags: set by the loader, cleared by the sequencer), one equal
        # copy for each of the two (``hdl.replica``): the loader's entry decision fans out to every
        # register of its window walk, and from one shared copy, placed by the sequencer, that route was
        # the wide ECP5 array's worst path (3.5 ns to the loader, 7.9 ns of routing in all)
        wiring.connect(m, loader.act, act_mem.rd)  # one read port per loader port (window row x lane)
        for name, port in (("loader", loader.full), ("seq", seq.full)):
            full = Signal(2, name=f"{name}_full", attrs=KEEP)
            m.d.comb += port.eq(full)
            for b in range(2):
                with m.If(loader.filled & (loader.filled_buf == b)):
                    m.d.sync += full[b].eq(1)
                with m.If(seq.consumed & (seq.consume_buf == b)):
                    m.d.sync += full[b].eq(0)
            with m.If(start):
                m.d.sync += full.eq(0)
        wiring.connect(m, loader.tile, array.tile)

        # weights -> sequencer -> operands -> PE array (stage 1)
        wiring.connect(m, seq.w, w_mem.read_port())
        wiring.connect(m, seq.op, array.op)

        # accumulators -> drain [-> output stage] -> output buffer
        wiring.connect(m, drain.rd, array.drain)
        writer = drain
        if ostage is not None:
            m.d.comb += [ostage.init.eq(lcfg.init), ostage.requant.eq(lcfg.requant), ostage.relu.eq(lcfg.relu)]
            wiring.connect(m, drain.out, ostage.inp)
            wiring.connect(m, ostage.psum, out_mem.psum)
            writer = ostage
        with m.If(~loading_psum):  # else the load writes partial sums (only while idle)
            wiring.connect(m, writer.out, out_mem.wr)
        written = list(writer.out.en)

        # run control: the last output written (with the output stage: it has left the drain, and the
        # stage holds nothing but the last write)
        drained = drain.quiet if ostage is None else drain.empty & ostage.quiet
        m.d.comb += finishing.eq(self.busy & seq.finished & loader.finished & drained)
        with m.If(start):
            m.d.sync += [self.busy.eq(1), self.done.eq(0)]
        with m.Elif(finishing):
            m.d.sync += [self.busy.eq(0), self.done.eq(1)]

        self._elaborate_readback(m, start, finishing, out_mem, written)
        self._elaborate_counters(m, start, {
            "busy_cycles": self.busy,
            "mac_cycles": seq.w.en,
            "load_stall_cycles": seq.load_stall,
            "drain_cycles": drain.active,
            "drain_stall_cycles": seq.drain_stall,
            "tile_loads": loader.filled,
            "act_reads": list(loader.act.en),
            # weights read, not words: the lanes that carried a scheduled position
            "weight_reads": seq.w.en if cfg.lanes == 1 else [seq.lane_active[lane] for lane in range(cfg.lanes)],
            "output_writes": written,
            "index_reads": [dec.loader.next, dec.seq.next, dec.unit.next] if cfg.has_index else [],
        })
        return m

    CONFIG_CHUNK = 64
    """Configuration bits latched under one enable flip-flop."""

    def _latch_config(self, m: Module, start, finishing, lcfg) -> None:
        """``lcfg`` follows ``cfg`` while the array is idle and holds it while busy.

        That is "latched at ``start``" (the last idle cycle is the ``start`` cycle), and nothing reads
        ``lcfg`` while idle. The enable is "not busy" as flip-flops, one copy per
        :data:`CONFIG_CHUNK` bits (``hdl.replica``), each updated like ``busy``: the configuration is a
        few hundred flip-flops spread over every unit, and ``start`` (the host's strobe) as their enable
        would be one net to all of them.
        """
        bits, flat = len(lcfg.as_value()), self.cfg.as_value()
        for k, lo in enumerate(range(0, bits, self.CONFIG_CHUNK)):
            idle = Signal(init=1, name=f"cfg_idle{k}", attrs=KEEP)
            with m.If(start):
                m.d.sync += idle.eq(0)
            with m.Elif(finishing):
                m.d.sync += idle.eq(1)
            hi = min(bits, lo + self.CONFIG_CHUNK)
            with m.If(idle):
                m.d.sync += lcfg.as_value()[lo:hi].eq(flat[lo:hi])

    def _elaborate_load(self, m: Module, start, act_mem, w_mem, dec, out_mem, ostage) -> Signal:
        """Load stream → buffers: each target has its own write pointer, rewound by ``start``.

        An accepted word is registered once, with its target decoded into one write flag per buffer,
        and written the cycle after: the host side's handshake logic then drives a few flip-flops
        instead of every buffer's write enable and pointer. Loading is outside the timed window, and a
        word accepted in the cycle before ``start`` is written in the ``start`` cycle, before anything
        reads a buffer, so the extra cycle is invisible.
        """
        cfg = self._cfg
        ld = self.load
        m.d.comb += ld.ready.eq(~self.busy & ~self.start)  # a word offered with ``start`` waits for the next layer
        names = list(load_targets(cfg))
        hit = {name: Signal(name=f"load_{name}") for name in names}  # registered: write this word there
        word = Signal.like(ld.payload.data, name="load_word", reset_less=True)
        accept = ld.valid & ld.ready
        m.d.sync += [hit[name].eq(accept & (ld.payload.target == LOAD_TARGETS[name])) for name in names]
        with m.If(accept):
            m.d.sync += word.eq(ld.payload.data)
        targets = {"act": act_mem.wr, "weight": w_mem.write_port()}
        if ostage is not None:
            targets.update(bias=ostage.bias_wr, requant=ostage.requant_wr)
        ptrs = {}
        for name, port in targets.items():
            ptrs[name] = ptr = Signal.like(port.addr, name=f"{name}_ptr")
            m.d.comb += [port.addr.eq(ptr), port.data.eq(word), port.en.eq(hit[name])]
        loading_psum = Signal(name="loading_psum")  # the output buffer's write port takes a partial sum
        if ostage is not None:  # partial sums into the output buffer, one word per cycle (lane 0)
            ptrs["psum"] = ptr = Signal.like(out_mem.wr.addr, name="psum_ptr")
            m.d.comb += loading_psum.eq(hit["psum"])
            with m.If(loading_psum):
                m.d.comb += [out_mem.wr.addr.eq(ptr), out_mem.wr.data[0].eq(word), out_mem.wr.en[0].eq(1)]
        if cfg.has_index:
            for name in ("chan_index", "unit_index"):
                ptrs[name] = Signal.like(dec.wr.addr, name=f"{name}_ptr")
            is_unit = hit["unit_index"]
            m.d.comb += [dec.wr.en.eq(is_unit | hit["chan_index"]), dec.wr.unit.eq(is_unit),
                         dec.wr.addr.eq(Mux(is_unit, ptrs["unit_index"], ptrs["chan_index"])),
                         dec.wr.data.eq(word)]
        for name, ptr in ptrs.items():
            with m.If(start):
                m.d.sync += ptr.eq(0)
            with m.Elif(hit[name]):
                m.d.sync += ptr.eq(ptr + 1)
        return loading_psum

    def _elaborate_readback(self, m: Module, start, finishing, out_mem, written_en) -> None:
        """Output buffer → ``o`` stream after ``done``, in address order, with full backpressure.

        The buffer is read ahead into a register queue (``hdl.prefetch``), so ``o.payload`` is a
        register: the consumer (on a board the UART bridge, which picks a byte of it) never sees the
        block RAM's late read data. The drain writes every output exactly once, so the number of
        outputs to read back is counted from its writes (``written_en``) rather than computed as
        ``M*E*F``: no multiplier. The stream restarts in the first cycle of ``done``, when the last
        write has landed, from a flip-flop of its own set with ``done`` (the restart selects the read
        address of every output block RAM; formed from ``done`` and its delayed copy it was the 8x8 ECP5
        array's worst path at one build, 8.5 ns of routing behind a LUT).
        """
        cfg = self._cfg
        total = Signal(bits_for(cfg.out_depth), reset_less=True)
        with m.If(start):
            m.d.sync += total.eq(0)
        with m.Else():
            m.d.sync += total.eq(total + sum(en.as_unsigned() for en in written_en))
        restart = Signal(name="readback_restart")  # the first cycle of ``done``: ``done`` rises with it
        m.d.sync += restart.eq(finishing & ~start)
        reading = Signal()  # the read-back has been restarted for this layer's outputs
        with m.If(start):
            m.d.sync += reading.eq(0)
        with m.Elif(self.done):
            m.d.sync += reading.eq(1)
        pop = Signal()
        ahead = read_ahead(m, out_mem, restart=restart, start=0, pop=pop, name="readback",
                           more=lambda ptr: ptr < total, pick=out_mem.pick)
        m.d.comb += [self.o.payload.eq(ahead.head), self.o.valid.eq(ahead.valid & reading),
                     pop.eq(self.o.valid & self.o.ready)]

    def _elaborate_counters(self, m: Module, start, strobes: dict) -> None:
        """One counter per ``perf`` field, cleared by ``start``; a list of strobes adds up (several per cycle).

        Each increment is registered before it is added (with a registered ``busy``), so the strobes,
        which are the ends of the control paths, drive a flip-flop rather than a ``perf_bits`` carry
        chain; the strobes of :data:`PIPELINED_STROBES` are each registered before they are summed too.
        The counters therefore settle one cycle after ``done`` rises (those two cycles after their last
        strobe, which comes before the last tile's drain); the host reads them later.
        """
        for name in PERF_FIELDS:
            # the counters are cleared a cycle after ``start``, not by the domain's reset (which would
            # then reach another ``10 * perf_bits`` flip-flops); each has its own clear and count enable
            # (``hdl.replica``), so no enable is a net to every counter bit
            clear = Signal(name=f"{name}_clear", reset_less=True, attrs=KEEP)
            count = Signal(name=f"{name}_count_en", attrs=KEEP)
            m.d.sync += [clear.eq(start), count.eq(self.busy & ~start)]
            ctr = Signal.like(getattr(self.perf, name), name=f"{name}_count", reset_less=True)
            m.d.comb += getattr(self.perf, name).eq(ctr)
            inc = strobes[name]
            if isinstance(inc, list):
                if name in PIPELINED_STROBES and len(inc) > 1:
                    inc = [delay(m, s, 1, name=f"{name}_strobe{k}", reset_less=True) for k, s in enumerate(inc)]
                inc = sum(s.as_unsigned() for s in inc) if inc else 0
            inc_r = Signal(range(max(2, self._max_increment(strobes[name]) + 1)), name=f"{name}_inc",
                           reset_less=True)  # >= 1 bit
            m.d.sync += inc_r.eq(inc)
            with m.If(clear):
                m.d.sync += ctr.eq(0)
            with m.Elif(count):
                m.d.sync += ctr.eq(ctr + inc_r)

    @staticmethod
    def _max_increment(strobe) -> int:
        """Largest per-cycle increment of a counter: the number of its one-bit strobes."""
        return len(strobe) if isinstance(strobe, list) else 1
