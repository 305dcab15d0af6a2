"""The drain's output stage (arrays built with ``epilogue``): bias or partial sums in, the int8 epilogue out.

Sits between the drain and the output buffer and does, per drain lane, exactly what
``golden.epilogue.OutputStage.apply`` specifies, bit for bit:

1. **base**: the output's bias (a parameter-memory word per output channel) or its partial sum from
   the earlier channel chunks (the output buffer's word at the output's own address, loaded by the host
   before the run: each address is read before the drain writes it, once per run), or nothing (the
   run-time field ``init``), added to the drain's sum and wrapped to ``acc_bits``;
2. with ``requant``: ReLU if ``relu``, then ``y * mult`` exactly, as partial products of
   :data:`PIECE_BITS`-bit pieces of ``y``, each a multiplier with its operand and product registers
   (``hdl.multiplier``: inside an ECP5 DSP block; two per lane for 32-bit accumulators), summed;
3. rounding half up and the arithmetic right shift by ``shift``, clamped to the product's width
   (any larger shift gives 0, as the rounding term then dominates: the golden model's result too);
4. saturation to ``act_bits``.

Without ``requant`` the multiplier is fed 1 and the shift 0, so the sum passes unchanged and
unsaturated (a channel chunk's partial sums). Every stage is one register, so the output buffer is
written ``golden.timing.EPILOGUE_LATENCY`` cycles after the drain's output, for every output
(its stages: ``golden.timing.EPILOGUE_STAGES``).

Why the partial sums come from the output buffer rather than being loaded into the accumulators: the
accumulators are the PEs' LUT RAM, written by the MACs; a load path into every PE would be as wide
as the drain's read path and cost its cycles per tile, while the output buffer is already where a
pass's outputs are, with a read port the drain does not use during a run. The array adds the chunk
sums itself either way; here it costs ``EPILOGUE_LATENCY`` cycles per run, not per tile.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for
from golden.epilogue import INIT_CODES, MULT_BITS, SHIFT_BITS
from golden.timing import EPILOGUE_LATENCY, EPILOGUE_STAGES
from golden.words import requant_word

from .delay import delay, delay_line
from .layouts import word_view
from .multiplier import RegisteredMultiplier
from .signatures import drained, mem_write, output_write, psum_read

PIECE_BITS = 16
"""Bits of ``y`` per partial product: with the multiplier's sign bit a piece and ``mult`` are 17-bit
signed operands, which an 18x18 DSP multiplier takes in one."""


def pieces(acc_bits: int) -> list[tuple[int, int, bool]]:
    """``y``'s pieces as ``(low bit, width, signed)``: unsigned :data:`PIECE_BITS`-bit pieces from the
    bottom, the rest (at most ``PIECE_BITS + 1`` bits) signed on top."""
    out, lo = [], 0
    while acc_bits - lo > PIECE_BITS + 1:
        out.append((lo, PIECE_BITS, False))
        lo += PIECE_BITS
    out.append((lo, acc_bits - lo, True))
    return out


class OutputStage(wiring.Component):
    """``drain_lanes`` outputs per cycle in (``inp``: ``en``/``addr``/``filt``/``data``), written to the output
    buffer ``golden.timing.EPILOGUE_LATENCY`` cycles later (``out_*``); ``psum_*`` reads the buffer's old words.

    Members
    -------
    init, requant, relu : In(..), In(1), In(1)
        The layer's output mode (``golden.words.INIT_CODES``: what the accumulator starts from),
        whether to requantize, and ReLU.
    inp : In(drained(cfg))
        The drain's outputs (``en__<l>``, ``addr``, ``data__<l>``, ``filt``): per lane an enable and the
        word, at ``addr + lane``, of output channel ``filt`` (the parameters' address).
    psum : Out(psum_read(cfg))
        The read of the partial sums already in the output buffer at those addresses (``psum_*``).
    out : Out(output_write(cfg))
        The write of the finished outputs into the output buffer (``out_*``).
    quiet : Out(1)
        Nothing in flight but the last write.
    bias_wr, requant_wr : In(mem_write(..))
        The load's ports into the bias memory (word ``m``: output channel ``m``'s bias) and the
        requantization memory (word ``m``: output channel ``m``'s ``golden.words.requant_word``).
    """

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        pbits = bits_for(cfg.param_depth - 1)
        super().__init__({
            "init": In(bits_for(max(INIT_CODES.values()))), "requant": In(1), "relu": In(1),
            "inp": In(drained(cfg, prefix="")),
            "psum": Out(psum_read(cfg)), "out": Out(output_write(cfg)), "quiet": Out(1),
            "bias_wr": In(mem_write(pbits, signed(cfg.acc_bits))),
            "requant_wr": In(mem_write(pbits, requant_word().width)),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        W, ab = cfg.drain_lanes, cfg.acc_bits
        prod_bits = ab + MULT_BITS  # |y * mult| < 2**(ab - 1) * 2**MULT_BITS

        # the parameter memories, read at the output's filter in stage 0, their data landed at the end of
        # the ``base`` stage (like the output buffer's partial sums, ``golden.timing.PSUM_LATENCY``): the
        # read port's register, then landing registers
        params = {}
        for name, port, shape in (("bias", self.bias_wr, signed(ab)),
                                  ("requant", self.requant_wr, unsigned(requant_word().width))):
            mem = memory.Memory(shape=shape, depth=cfg.param_depth, init=[])
            m.submodules[f"{name}_mem"] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(port.addr), wp.data.eq(port.data), wp.en.eq(port.en),
                         rp.addr.eq(self.inp.filt), rp.en.eq(1)]
            params[name] = delay(m, rp.data, EPILOGUE_STAGES["base"] - 1, name=f"{name}_land", shape=shape,
                                 reset_less=True)
        valid_in = Cat(*self.inp.en)
        m.d.comb += [self.psum.addr.eq(self.inp.addr),
                     self.psum.en.eq(valid_in.any() & (self.init == INIT_CODES["psum"]))]

        # the valid bits and the address travel with the data, stage by stage
        valid = delay_line(m, valid_in, EPILOGUE_LATENCY, name="valid{k}")
        addr = delay_line(m, self.inp.addr, EPILOGUE_LATENCY, name="addr{k}", reset_less=True)
        requant = Signal(name="requant_r", reset_less=True)  # static during a run
        relu = Signal(name="relu_r", reset_less=True)
        init = Signal.like(self.init, name="init_r", reset_less=True)
        m.d.sync += [requant.eq(self.requant), relu.eq(self.relu & self.requant), init.eq(self.init)]

        for lane in range(W):
            self._lane(m, lane, params, requant, relu, init, prod_bits)
        m.d.comb += self.out.addr.eq(addr[EPILOGUE_LATENCY])
        for lane in range(W):
            m.d.comb += self.out.en[lane].eq(valid[EPILOGUE_LATENCY][lane])
        quiet = Const(1)
        for v in valid[1:EPILOGUE_LATENCY]:
            quiet = quiet & ~v.any()
        m.d.comb += self.quiet.eq(quiet)
        return m

    def _lane(self, m: Module, lane: int, params: dict, requant, relu, init, prod_bits: int) -> None:
        """Lane ``lane``'s pipeline: the stages of ``golden.timing.EPILOGUE_STAGES``, each as many registers
        as the table gives it (stage numbers below are for the table's one register per arithmetic stage)."""
        cfg = self._cfg
        ab = cfg.acc_bits
        pre = f"l{lane}_"

        def stage(value, key: str, name: str, shape) -> Value:
            """``value`` registered through stage ``key`` (``EPILOGUE_STAGES[key]`` registers)."""
            return delay(m, value, EPILOGUE_STAGES[key], name=pre + name, shape=shape, reset_less=True)

        # stages 1, 2: the drain's sum waits for its base's read and landing register
        data = stage(self.inp.data[lane], "base", "data{k}", signed(ab))
        base = Mux(init == INIT_CODES["bias"], params["bias"],
                   Mux(init == INIT_CODES["psum"], self.psum.data[lane], 0))
        # stage 3: the sum wrapped to acc_bits; the multiplier and the shift (1 and 0 without requant)
        y = stage(data + base, "sum", "sum", signed(ab))
        word = word_view(requant_word(), params["requant"])
        mult = stage(Mux(requant, word.mult, 1), "sum", "mult", unsigned(MULT_BITS))
        shift = stage(Mux(requant, word.shift, 0), "sum", "shift", unsigned(SHIFT_BITS))
        # stages 4, 5: the partial products (the multipliers' operand and product registers)
        yr = Mux(relu & y[-1], 0, y)
        products = []
        for k, (lo, width, is_signed) in enumerate(pieces(ab)):
            piece = yr.as_unsigned()[lo:lo + width]
            mul = RegisteredMultiplier(signed(width + (0 if is_signed else 1)), signed(MULT_BITS + 1))
            m.submodules[f"{pre}mul{k}"] = mul
            m.d.comb += [mul.a.eq(piece.as_signed() if is_signed else piece), mul.b.eq(mult)]
            products.append((lo, mul.p))
        # the shift travels with the products, clamped to the product's width (beyond it the result is 0)
        n = shift
        for _ in range(EPILOGUE_STAGES["multiply"]):
            nxt = Signal(range(prod_bits + 1), name=f"{pre}shift_d", reset_less=True)
            m.d.sync += nxt.eq(Mux(n > prod_bits, prod_bits, n))
            n = nxt
        sat = Signal(name=f"{pre}saturate_d", reset_less=True)
        m.d.sync += sat.eq(requant)
        # stage 6: the product, and the rounding term 2**(n-1) (none for n = 0)
        width = prod_bits + 1  # the product plus the rounding term never overflows this
        product = stage(sum((p << lo) for lo, p in products), "products", "product", signed(width))
        half = stage((Const(1, width + 1) << n) >> 1, "products", "half", unsigned(width))
        n6 = stage(n, "products", "shift6", range(prod_bits + 1))
        # stage 7: rounded
        rounded = stage(product + half, "round", "rounded", signed(width))
        n7 = stage(n6, "round", "shift7", range(prod_bits + 1))
        # stage 8: shifted (arithmetic)
        shifted = stage(rounded >> n7, "shift", "shifted", signed(width))
        sat8 = stage(sat, "shift", "saturate8", 1)
        # stage 9: saturated to act_bits (without requant: the sum itself, which fits acc_bits), in the
        # stage's first register, then its others
        lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
        out = Signal(signed(ab), name=pre + "out", reset_less=True)
        with m.If(sat8 & (shifted > hi)):
            m.d.sync += out.eq(hi)
        with m.Elif(sat8 & (shifted < lo)):
            m.d.sync += out.eq(lo)
        with m.Else():
            m.d.sync += out.eq(shifted)
        m.d.comb += self.out.data[lane].eq(delay(m, out, EPILOGUE_STAGES["saturate"] - 1, name=pre + "out",
                                                 reset_less=True))
