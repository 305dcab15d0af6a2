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
written :data:`LATENCY` cycles after the drain's output, for every output (``golden.timing``).

Why the partial sums come from the output buffer rather than being loaded into the accumulators: the
accumulators are the PEs' LUT RAM, written by the MACs; a load path into every PE would be as wide
as the drain's read path and cost its cycles per tile, while the output buffer is already where a
pass's outputs are, with a read port the drain does not use during a run. The array adds the chunk
sums itself either way; here it costs :data:`LATENCY` cycles per run, not per tile.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig, bits_for
from golden.epilogue import INIT_CODES, MULT_BITS, SHIFT_BITS
from golden.timing import EPILOGUE_LATENCY

from .buffers import PSUM_LATENCY, Port
from .multiplier import LATENCY as MUL_LATENCY
from .multiplier import RegisteredMultiplier

LATENCY = EPILOGUE_LATENCY
"""Cycles from an output at the inputs to its write into the output buffer (``golden.timing``)."""

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
    """``drain_lanes`` outputs per cycle in (``valid``/``addr``/``filt``/``data``), written to the output
    buffer :data:`LATENCY` cycles later (``out_*``); ``psum_*`` reads the buffer's old words."""

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        W = cfg.drain_lanes
        abits = bits_for(cfg.out_depth - 1)
        super().__init__({
            "init": In(bits_for(max(INIT_CODES.values()))), "requant": In(1), "relu": In(1),
            "valid": In(W), "addr": In(abits), "filt": In(bits_for(cfg.param_depth - 1)),
            "data": In(signed(cfg.acc_bits)).array(W),
            "psum_addr": Out(abits), "psum_en": Out(1), "psum_data": In(signed(cfg.acc_bits)).array(W),
            "out_addr": Out(abits), "out_data": Out(signed(cfg.acc_bits)).array(W), "out_en": Out(1).array(W),
            "quiet": Out(1),
        })
        pbits = bits_for(cfg.param_depth - 1)
        self._bias_write = Port(Signal(pbits, name="bias_wr_addr"), Signal(name="bias_wr_en"),
                                Signal(signed(cfg.acc_bits), name="bias_wr_data"))
        self._requant_write = Port(Signal(pbits, name="requant_wr_addr"), Signal(name="requant_wr_en"),
                                   Signal(MULT_BITS + SHIFT_BITS, name="requant_wr_data"))

    def bias_write_port(self) -> Port:
        """The load's port into the bias memory (word ``m``: output channel ``m``'s bias)."""
        return self._bias_write

    def requant_write_port(self) -> Port:
        """The load's port into the requantization memory (``golden.epilogue.OutputStage.requant_words``)."""
        return self._requant_write

    def elaborate(self, platform) -> Module:
        cfg = self._cfg
        m = Module()
        W, ab = cfg.drain_lanes, cfg.acc_bits
        prod_bits = ab + MULT_BITS  # |y * mult| < 2**(ab - 1) * 2**MULT_BITS

        # the parameter memories, read at the output's filter in stage 0, their data landed in stage 2
        # (like the output buffer's partial sums, ``hdl.buffers.PSUM_LATENCY``)
        params = {}
        for name, port, shape in (("bias", self._bias_write, signed(ab)),
                                  ("requant", self._requant_write, unsigned(MULT_BITS + SHIFT_BITS))):
            mem = memory.Memory(shape=shape, depth=cfg.param_depth, init=[])
            m.submodules[f"{name}_mem"] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(port.addr), wp.data.eq(port.data), wp.en.eq(port.en),
                         rp.addr.eq(self.filt), rp.en.eq(1)]
            params[name] = Signal(shape, name=f"{name}_land", reset_less=True)
            m.d.sync += params[name].eq(rp.data)
        m.d.comb += [self.psum_addr.eq(self.addr),
                     self.psum_en.eq(self.valid.any() & (self.init == INIT_CODES["psum"]))]

        # the valid bits and the address travel with the data, stage by stage
        valid = [self.valid] + [Signal(W, name=f"valid{k}") for k in range(1, LATENCY + 1)]
        addr = [self.addr] + [Signal.like(self.addr, name=f"addr{k}", reset_less=True) for k in range(1, LATENCY + 1)]
        m.d.sync += [valid[k].eq(valid[k - 1]) for k in range(1, LATENCY + 1)]
        m.d.sync += [addr[k].eq(addr[k - 1]) for k in range(1, LATENCY + 1)]
        requant = Signal(name="requant_r", reset_less=True)  # static during a run
        relu = Signal(name="relu_r", reset_less=True)
        init = Signal.like(self.init, name="init_r", reset_less=True)
        m.d.sync += [requant.eq(self.requant), relu.eq(self.relu & self.requant), init.eq(self.init)]

        stages = 0
        for lane in range(W):
            stages = self._lane(m, lane, params, requant, relu, init, prod_bits)
        assert stages == LATENCY
        m.d.comb += self.out_addr.eq(addr[LATENCY])
        for lane in range(W):
            m.d.comb += self.out_en[lane].eq(valid[LATENCY][lane])
        quiet = Const(1)
        for v in valid[1:LATENCY]:
            quiet = quiet & ~v.any()
        m.d.comb += self.quiet.eq(quiet)
        return m

    def _lane(self, m: Module, lane: int, params: dict, requant, relu, init, prod_bits: int) -> int:
        """Lane ``lane``'s pipeline; returns its stage count (the register stages from input to output)."""
        cfg = self._cfg
        ab = cfg.acc_bits
        pre = f"l{lane}_"

        def reg(shape, name: str) -> Signal:
            return Signal(shape, name=pre + name, reset_less=True)

        # stages 1, 2: the drain's sum waits for its base's read and landing register
        assert PSUM_LATENCY == 2
        data = self.data[lane]
        for k in (1, 2):
            nxt = reg(signed(ab), f"data{k}")
            m.d.sync += nxt.eq(data)
            data = nxt
        base = Mux(init == INIT_CODES["bias"], params["bias"],
                   Mux(init == INIT_CODES["psum"], self.psum_data[lane], 0))
        # stage 3: the sum wrapped to acc_bits; the multiplier and the shift (1 and 0 without requant)
        y = reg(signed(ab), "sum")
        m.d.sync += y.eq(data + base)
        mult = reg(unsigned(MULT_BITS), "mult")
        shift = reg(unsigned(SHIFT_BITS), "shift")
        word = params["requant"]
        m.d.sync += [mult.eq(Mux(requant, word[:MULT_BITS], 1)), shift.eq(Mux(requant, word[MULT_BITS:], 0))]
        # stages 4, 5: the partial products (operand and product registers)
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
        for _ in range(MUL_LATENCY):
            nxt = Signal(range(prod_bits + 1), name=f"{pre}shift_d", reset_less=True)
            m.d.sync += nxt.eq(Mux(n > prod_bits, prod_bits, n))
            n = nxt
        sat = Signal(name=f"{pre}saturate_d", reset_less=True)
        m.d.sync += sat.eq(requant)
        # stage 6: the product, and the rounding term 2**(n-1) (none for n = 0)
        width = prod_bits + 1  # the product plus the rounding term never overflows this
        product = reg(signed(width), "product")
        m.d.sync += product.eq(sum((p << lo) for lo, p in products))
        half = reg(unsigned(width), "half")
        m.d.sync += half.eq((Const(1, width + 1) << n) >> 1)
        n6 = reg(range(prod_bits + 1), "shift6")
        m.d.sync += n6.eq(n)
        # stage 7: rounded
        rounded = reg(signed(width), "rounded")
        m.d.sync += rounded.eq(product + half)
        n7 = reg(range(prod_bits + 1), "shift7")
        m.d.sync += n7.eq(n6)
        # stage 8: shifted (arithmetic)
        shifted = reg(signed(width), "shifted")
        m.d.sync += shifted.eq(rounded >> n7)
        sat8 = reg(1, "saturate8")
        m.d.sync += sat8.eq(sat)
        # stage 9: saturated to act_bits (without requant: the sum itself, which fits acc_bits)
        lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
        out = reg(signed(ab), "out")
        with m.If(sat8 & (shifted > hi)):
            m.d.sync += out.eq(hi)
        with m.Elif(sat8 & (shifted < lo)):
            m.d.sync += out.eq(lo)
        with m.Else():
            m.d.sync += out.eq(shifted)
        m.d.comb += self.out_data[lane].eq(out)
        return 9
