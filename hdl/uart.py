"""8N1 UART receiver and transmitter for the board's USB-UART bridge.

Both are parameterized by the clock frequency and the baud rate and count whole clock cycles per
bit (``divisor = round(clk_freq / baud)``), so the same gateware runs in simulation at a tiny
divisor and on a board at 115200 baud. The divisor is checked up front: below 4 cycles per bit
the receiver cannot find the middle of a bit, and a rounding error above 2% would accumulate past
half a bit by the stop bit (10 bits x 2% = 20%, with margin for the host's own error).

Streams follow ``amaranth.lib.stream`` semantics. The receiver cannot stall the line, so its ``o``
stream has no real backpressure: a byte that completes while the previous one is still unread is
dropped and ``overrun`` pulses; a byte whose stop bit reads 0 is dropped and ``frame_error`` pulses.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

MIN_DIVISOR = 4
MAX_BAUD_ERROR = 0.02


def baud_divisor(clk_freq: float, baud: int) -> int:
    """Clock cycles per bit; ``ValueError`` naming the fix if the clock cannot make this baud rate."""
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud rate must be a positive integer, not {baud!r}")
    if not clk_freq > 0:
        raise ValueError(f"clock frequency must be positive, not {clk_freq!r}")
    divisor = round(clk_freq / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud rate {baud} needs at least {MIN_DIVISOR} clock cycles per bit but a "
                         f"{clk_freq / 1e6:g} MHz clock gives {clk_freq / baud:.2f}; lower the baud rate "
                         f"to at most {int(clk_freq // MIN_DIVISOR)}")
    error = abs(clk_freq / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"baud rate {baud} is {error:.1%} off at {clk_freq / 1e6:g} MHz (divisor {divisor}); "
                         f"choose a baud rate within {MAX_BAUD_ERROR:.0%} of clk/N")
    return divisor


class _UART(wiring.Component):
    """A UART side clocked from the design clock (``baud_divisor`` cycles per bit).

    Members
    -------
    (none of its own)
        The subclasses give the members (:class:`UARTReceiver`, :class:`UARTTransmitter`); this base
        holds the bit timing they share.
    """

    def __init__(self, signature: dict, *, clk_freq: float, baud: int):
        self._divisor = baud_divisor(clk_freq, baud)
        self._clk_freq = clk_freq
        self._baud = baud
        super().__init__(signature)

    @property
    def divisor(self) -> int:
        """Clock cycles per bit."""
        return self._divisor

    @property
    def actual_baud(self) -> float:
        return self._clk_freq / self._divisor


class UARTReceiver(_UART):
    """8N1 receiver: ``rx`` is the (asynchronous) line, ``o`` the received bytes.

    The line is synchronized through two flip-flops; a start bit is accepted if it is still low
    half a bit after the falling edge, then every bit is sampled in its middle. The receiver goes
    back to idle in the middle of the stop bit, so back-to-back bytes from a slightly faster
    sender are still caught.

    Members
    -------
    rx : In(1, init=1)
        The serial line (idle high).
    o : Out(stream.Signature(8))
        The received bytes.
    """

    def __init__(self, *, clk_freq: float, baud: int):
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "overrun": Out(1), "frame_error": Out(1),
        }, clk_freq=clk_freq, baud=baud)

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self.divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(d))
        bits = Signal(range(9))
        shift = Signal(8)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM(name="rx"):
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), bits.eq(0)]
                    with m.If(rx):  # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), shift.eq(Cat(shift[1:], rx)),
                                 bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.comb += self.frame_error.eq(1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "IDLE"
        return m


class UARTTransmitter(_UART):
    """8N1 transmitter: bytes from ``i`` go out on ``tx`` (idle high), LSB first.

    Members
    -------
    i : In(stream.Signature(8))
        The bytes to send.
    tx : Out(1, init=1)
        The serial line.
    """

    def __init__(self, *, clk_freq: float, baud: int):
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        }, clk_freq=clk_freq, baud=baud)

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        shift = Signal(9, init=0x1FF)  # data bits then the stop bit; the start bit goes out first
        left = Signal(range(11))  # bits still to send, including the current one
        idle = Signal(init=1)  # left == 0, as a flip-flop: ``i.ready`` gates the host bridge's readback path
        m.d.comb += self.i.ready.eq(idle)
        with m.If(idle):
            with m.If(self.i.valid):
                m.d.sync += [self.tx.eq(0), shift.eq(self.i.payload | (1 << 8)), left.eq(10), timer.eq(d - 1),
                             idle.eq(0)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                # after the 8 data bits shift[0] is the stop bit, then idle-high fill
                m.d.sync += [timer.eq(d - 1), left.eq(left - 1), self.tx.eq(shift[0]), shift.eq(Cat(shift[1:], 1)),
                             idle.eq(left == 1)]
        return m
