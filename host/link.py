"""Links that carry a :data:`golden.protocol.Session` to the bridge: a serial port to a programmed
board, or the bridge (:class:`hdl.bridge.HostBridge`) in Amaranth's simulator behind a UART model."""

from __future__ import annotations

import time
from collections.abc import Callable

from amaranth.hdl import Signal
from amaranth.sim import Simulator

from golden.config import ArrayConfig
from golden.protocol import BridgeError, Session, Transaction
from hdl.bridge import HostBridge


def simulate_session(cfg: ArrayConfig, session: Session, *, baud: int = 1_000_000, divisor: int = 4,
                     timeout: int = 100_000, word_register: bool = False):
    """Drive ``session`` through a UART model into :class:`HostBridge` in Amaranth's simulator.

    The bridge runs at ``baud * divisor`` Hz. Besides transactions the session may yield an ``int``:
    the line then idles for that many cycles (tests use it to provoke the bridge's ``timeout``).
    Returns whatever the session returns. ``word_register``: the bridge's, as boards with ``replicate`` build it.
    """
    dut = HostBridge(cfg, clk_freq=baud * divisor, baud=baud, timeout=timeout, word_register=word_register)
    received: list[int] = []
    result: dict = {}
    stop = Signal()

    async def receiver(ctx):  # the host's UART receiver, listening until the host is done
        while True:
            await ctx.changed(dut.tx, stop)
            if ctx.get(stop):
                return
            if ctx.get(dut.tx):
                continue
            await ctx.tick().repeat(divisor // 2)  # middle of the start bit
            byte = 0
            for bit in range(8):
                await ctx.tick().repeat(divisor)
                byte |= ctx.get(dut.tx) << bit
            await ctx.tick().repeat(divisor)  # stop bit
            received.append(byte)

    async def host(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(4)
        try:
            t = next(session)
            while True:
                if isinstance(t, int):
                    await ctx.tick().repeat(t)
                    t = session.send(None)
                    continue
                del received[:]
                for byte in t.request:
                    for level in (0, *((byte >> i) & 1 for i in range(8)), 1):
                        ctx.set(dut.rx, level)
                        await ctx.tick().repeat(divisor)
                waited, limit = 0, 12 * divisor * t.reply_len + 2 * timeout
                while len(received) < t.reply_len:
                    await ctx.tick().repeat(divisor)
                    waited += divisor
                    if waited > limit:
                        raise BridgeError(f"no reply to {t.what} within {limit} cycles in simulation")
                t = session.send(bytes(received[:t.reply_len]))
        except StopIteration as done:
            result["value"] = done.value
        ctx.set(stop, 1)

    sim = Simulator(dut)
    sim.add_clock(1 / (baud * divisor))
    sim.add_testbench(receiver)
    sim.add_testbench(host)
    sim.run()
    return result["value"]


def serial_exchange(port: str, baud: int, timeout: float) -> Callable[[Transaction], bytes]:
    """A blocking exchange over a serial port (pyserial); the bridge gets 0.2 s to drop a stale command."""
    try:  # pyserial is optional (the ``board`` extra): only a real board needs it
        import serial
    except ImportError:
        raise BridgeError("talking to a board needs pyserial; install it with: pip install pyserial") from None

    try:
        ser = serial.Serial(port, baud, timeout=timeout)
    except serial.SerialException as e:
        raise BridgeError(f"cannot open {port}: {e}") from e
    time.sleep(0.2)
    ser.reset_input_buffer()

    def exchange(t: Transaction) -> bytes:
        ser.write(t.request)
        reply = ser.read(t.reply_len)
        if len(reply) < t.reply_len:
            raise BridgeError(f"no reply to {t.what} from {port} ({len(reply)} of {t.reply_len} bytes in "
                              f"{timeout:g} s); is the board programmed (python -m hdl.synth) and --baud {baud} right?")
        return reply

    return exchange
