"""The UART host bridge: the gateware end of the board protocol (:mod:`golden.protocol`).

:class:`HostBridge` decodes the protocol's commands from a UART receiver, drives the accelerator's
``load`` and ``cfg`` from them and answers through a UART transmitter. The protocol's bytes (opcodes,
status bits, the INFO reply, field sizes) are defined in :mod:`golden.protocol`, which the host side
(``host.link``, ``host.board``) and the cocotb testbench (``sim.tb_bridge``) read as well.
"""

from __future__ import annotations

from amaranth.hdl import C, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig
from golden.protocol import ERROR_BITS, NAK, STATUS_BITS, Op, info_reply, wire_sizes

from .accelerator import Accelerator
from .generate import manifest
from .reset import ResetCopies
from .uart import UARTReceiver, UARTTransmitter

PERF_PICK_ONE_STEP = 32
"""Counter bytes the bridge picks for sending in one step; a larger counter set takes two (HostBridge)."""


class HostBridge(wiring.Component):
    """UART ↔ accelerator: decodes the command protocol (:mod:`golden.protocol`) and drives the array.

    One shift register collects every multi-byte request field (new bytes enter at the top, so a
    ``k``-byte field ends up in its top ``k`` bytes) and drives the array's ``load`` payload and
    ``cfg`` straight from there (the array latches ``cfg`` at ``start``); replies are picked a byte
    at a time from their source (``perf``, the output word). Nothing is copied, because on the
    iCE40 every flip-flop of the bridge is a logic cell the array cannot have; with ``word_register``
    (boards that spend registers on timing, ``replicate`` in constraints/<board>.json) the output word
    is popped into a register of the bridge's before its bytes are picked.

    Members
    -------
    rx : In(1, init=1)
        The host's serial line (idle high).
    tx : Out(1, init=1)
        The serial line to the host.
    busy, done : Out(1)
        The array's ``busy`` and ``done`` (for LEDs).
    error : Out(1)
        One of the sticky error flags is set (``golden.protocol.ERROR_BITS``, reported in the status byte).
    """

    def __init__(self, cfg: ArrayConfig, *, clk_freq: float, baud: int, timeout: int | None = None,
                 word_register: bool = False):
        self._cfg = cfg
        self._word_register = word_register
        self.accel = Accelerator(cfg)
        self.rxu = UARTReceiver(clk_freq=clk_freq, baud=baud)
        self.txu = UARTTransmitter(clk_freq=clk_freq, baud=baud)
        self.sizes = wire_sizes(manifest(cfg))
        self.timeout = int(clk_freq // 10) if timeout is None else timeout
        if self.timeout < 1:
            raise ValueError(f"bridge timeout must be at least 1 cycle, not {self.timeout}")
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1), "done": Out(1),
                          "error": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        # the accelerator's own registers (the tile buffers' full flags, its counters' controls) from a reset
        # copy of their own, as its subsystems have theirs (``hdl.reset``): from the board's one reset
        # flip-flop, a corner of the die, the full flags' reset was the 8x8 ECP5 array's worst path (9.0 ns
        # of routing); the accelerator leaves reset a cycle after the bridge, long before a command arrives
        acc = self.accel
        m.submodules.accel = ResetCopies(m)("accel", acc)
        m.submodules.rxu = rxu = self.rxu
        m.submodules.txu = txu = self.txu
        sz = self.sizes
        m.d.comb += [rxu.rx.eq(self.rx), self.tx.eq(txu.tx), self.busy.eq(acc.busy), self.done.eq(acc.done)]

        nb = max(sz["load"], sz["cfg"], 2)
        word = Signal(8 * nb)
        shifted = Signal(8 * nb)
        got = Signal()
        m.d.comb += [shifted.eq(word[8:] | (rxu.o.payload << (8 * nb - 8))), got.eq(rxu.o.valid & rxu.o.ready)]
        # A received field byte enters ``word`` the cycle after it arrives, from a register (``shift``
        # enables every bit of ``word``: a net of a few hundred loads, driven by one flip-flop rather
        # than by the state decode). Whatever uses the whole word waits for that cycle (PUSH, START).
        shift, byte = Signal(), Signal(8)
        m.d.sync += shift.eq(0)
        with m.If(shift):
            m.d.sync += word.eq(word[8:] | (byte << (8 * nb - 8)))

        def take_byte():
            m.d.sync += [shift.eq(1), byte.eq(rxu.o.payload), idx.eq(idx + 1)]

        def top(nbytes):
            return shifted[8 * (nb - nbytes):]

        op = Signal(8)
        cnt = Signal(16)  # words left in a LOAD / READ
        cnt_one, cnt_zero = Signal(), Signal()  # cnt == 1, cnt == 0: registered with cnt
        idx = Signal(range(max(nb, sz["perf"], sz["out"], 8) + 1))  # byte index within a field
        m.d.comb += [acc.cfg.as_value().eq(word[8 * (nb - sz["cfg"]):]),
                     acc.load.payload.as_value().eq(word[8 * (nb - sz["load"]):])]

        flags = {name: Signal(name=name) for name in ERROR_BITS}
        m.d.comb += self.error.eq(sum(f.as_unsigned() for f in flags.values()) != 0)
        status = Signal(8)
        m.d.comb += status.eq(acc.busy | (acc.done << 1) | sum(f << STATUS_BITS[n] for n, f in flags.items()))
        with m.If(rxu.overrun):
            m.d.sync += flags["overrun"].eq(1)
        with m.If(rxu.frame_error):
            m.d.sync += flags["frame_error"].eq(1)

        start = Signal()
        m.d.sync += start.eq(0)
        m.d.comb += acc.start.eq(start)

        # waiting for the host (or the array) in the middle of a command: give up after `timeout` cycles.
        # The timer's compare is registered (``at_limit`` is "timer == timeout" a cycle early), so the
        # state decisions see one flip-flop, not a compare of the timer's width.
        waiting = Signal()
        timer = Signal(range(self.timeout + 1))
        at_limit = Signal()
        with m.If(waiting & ~got):
            m.d.sync += [timer.eq(timer + 1), at_limit.eq(timer == self.timeout - 1)]
        with m.Else():
            m.d.sync += [timer.eq(0), at_limit.eq(0)]
        expired = Signal()
        m.d.comb += expired.eq(waiting & at_limit)

        info = Const(int.from_bytes(info_reply(self._cfg), "little"), 64)
        perf = acc.perf.as_value()
        perf_bytes = Signal(8 * sz["perf"])
        out_bytes = Signal(8 * sz["out"])
        m.d.comb += [perf_bytes.eq(perf), out_bytes.eq(acc.o.payload)]
        # with ``word_register`` an output word is popped into a register of the bridge's before its bytes
        # are picked, so the byte pick and its ``idx`` select stay inside the bridge: picking from the
        # read-back queue's head and popping it with the last byte made one path from ``idx`` through the
        # queue's head mux into the transmit byte, across the die (the 8x8 ECP5 array's worst path at one
        # seed, 9.5 ns routing); without, the bytes are picked from the head (16 LCs fewer on the iCE40)
        out_word = Signal(8 * sz["out"], reset_less=True) if self._word_register else None
        out_pick = out_bytes if out_word is None else out_word  # where READ_SEND picks the word's bytes

        def wait_input():
            """This state waits for the host (or the array); drop the command if that takes too long."""
            m.d.comb += waiting.eq(1)
            with m.If(expired):
                m.d.sync += flags["timeout"].eq(1)
                m.next = "IDLE"

        # The byte to send is picked into a register first (``tx_byte``, then offered to the transmitter
        # from the next cycle): the pick is a wide mux (a byte of the counters, of an output word), and
        # the transmitter's load decision must not wait for it. One more cycle per byte at UART speed.
        tx_byte, tx_full, tx_last = Signal(8), Signal(), Signal()
        taken = Signal()  # the transmitter takes ``tx_byte`` in this cycle
        m.d.comb += [txu.i.valid.eq(tx_full), txu.i.payload.eq(tx_byte), taken.eq(tx_full & txu.i.ready)]
        with m.If(taken):
            m.d.sync += tx_full.eq(0)

        # Wide counter sets (more than PERF_PICK_ONE_STEP bytes: the 48-bit default is 60) have their
        # bytes picked in two registered steps: the group of 8 bytes that holds byte ``idx``
        # (``perf_group``, remembering which group it is), then the byte; a byte is sent once its group is
        # the right one. A one-step pick of one of 60 bytes is the bridge's widest mux, and its ``idx``
        # select the bridge's longest path at 100 MHz. Narrow sets (the iCE40's 24-bit counters: 30
        # bytes) are picked in one step, which saves the 64-bit group register and its mux (~150 LCs).
        if sz["perf"] > PERF_PICK_ONE_STEP:
            groups = -(-sz["perf"] // 8)
            perf_group = Signal(64, reset_less=True)
            perf_gidx = Signal(range(groups), reset_less=True)
            gidx = idx[3:3 + len(perf_gidx)]
            perf_padded = Signal(64 * groups)
            m.d.comb += perf_padded.eq(perf_bytes)
            m.d.sync += [perf_group.eq(perf_padded.word_select(gidx, 64)), perf_gidx.eq(gidx)]
            perf_byte, perf_ready = perf_group.word_select(idx[:3], 8), perf_gidx == gidx
        else:
            perf_byte, perf_ready = perf_bytes.word_select(idx, 8), C(1)

        def send(byte, last, after="IDLE", ready=1):
            """Send ``byte`` (once ``ready``); when it is taken, advance ``idx`` or, on ``last``, go to ``after``."""
            with m.If(~tx_full & ready):
                m.d.sync += [tx_byte.eq(byte), tx_full.eq(1), tx_last.eq(last)]
            with m.If(taken):
                m.d.sync += idx.eq(idx + 1)
                with m.If(tx_last):
                    m.next = after

        with m.FSM(name="bridge"):
            with m.State("IDLE"):
                m.d.comb += rxu.o.ready.eq(1)
                with m.If(got):
                    m.d.sync += [op.eq(rxu.o.payload), idx.eq(0)]
                    with m.Switch(rxu.o.payload):
                        with m.Case(Op.INFO):
                            m.next = "SEND_INFO"
                        with m.Case(Op.LOAD, Op.READ):
                            m.next = "COUNT"
                        with m.Case(Op.START):
                            m.next = "CONFIG"
                        with m.Case(Op.STATUS):
                            m.next = "SEND_STATUS"
                        with m.Case(Op.PERF):
                            m.next = "SEND_PERF"
                        with m.Default():
                            m.d.sync += flags["bad_opcode"].eq(1)
                            m.next = "NAK"
            with m.State("COUNT"):
                m.d.comb += rxu.o.ready.eq(1)
                wait_input()
                with m.If(got):
                    take_byte()
                    with m.If(idx == 1):
                        m.d.sync += [cnt.eq(top(2)), cnt_one.eq(top(2) == 1), cnt_zero.eq(top(2) == 0), idx.eq(0)]
                        m.next = "COUNTED"
            with m.State("COUNTED"):  # decide on the registered count
                with m.If(cnt_zero):  # nothing to do: LOAD acknowledges, READ sends nothing
                    m.next = "IDLE"
                    with m.If(op == Op.LOAD):
                        m.next = "ACK"
                with m.Elif(op == Op.LOAD):
                    m.next = "LOAD"
                with m.Else():
                    m.next = "READ"
            with m.State("LOAD"):
                m.d.comb += rxu.o.ready.eq(1)
                wait_input()
                with m.If(got):
                    take_byte()
                    with m.If(idx == sz["load"] - 1):
                        m.d.sync += idx.eq(0)
                        m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += acc.load.valid.eq(~shift)  # once the word's last byte is in
                with m.If(acc.load.ready & ~shift):
                    m.d.sync += [cnt.eq(cnt - 1), cnt_one.eq(cnt == 2)]
                    with m.If(cnt_one):
                        m.next = "ACK"
                    with m.Else():
                        m.next = "LOAD"
            with m.State("CONFIG"):
                m.d.comb += rxu.o.ready.eq(1)
                wait_input()
                with m.If(got):
                    take_byte()
                    with m.If(idx == sz["cfg"] - 1):
                        m.next = "START"
            with m.State("START"):
                with m.If(~shift):  # the configuration's last byte is in
                    m.d.sync += start.eq(1)
                    m.next = "ACK"
            with m.State("ACK"):
                send(op, 1)
            with m.State("NAK"):
                send(NAK, 1)
            with m.State("SEND_STATUS"):
                send(status, 1)
                with m.If(~tx_full):  # the status is read: its error bits start afresh
                    m.d.sync += [f.eq(0) for f in flags.values()]
            with m.State("SEND_INFO"):
                send(info.word_select(idx[:3], 8), idx == 7)
            with m.State("SEND_PERF"):
                send(perf_byte, idx == sz["perf"] - 1, ready=perf_ready)
            with m.State("READ"):  # the next output word is there (with ``word_register``: take it)
                wait_input()
                if out_word is not None:
                    m.d.comb += acc.o.ready.eq(1)
                with m.If(acc.o.valid):
                    m.d.sync += idx.eq(0)
                    if out_word is not None:
                        m.d.sync += out_word.eq(out_bytes)
                    m.next = "READ_SEND"
            with m.State("READ_SEND"):
                last = idx == sz["out"] - 1
                send(out_pick.word_select(idx, 8), last & cnt_one, "IDLE")
                if out_word is None:
                    with m.If(~tx_full & last):  # the word's last byte is picked: the word is done with
                        m.d.comb += acc.o.ready.eq(1)
                with m.If(taken & last):
                    m.d.sync += [cnt.eq(cnt - 1), cnt_one.eq(cnt == 2), idx.eq(0)]
                    with m.If(~cnt_one):
                        m.next = "READ"
        return m
