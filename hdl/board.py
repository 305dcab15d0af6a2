"""The accelerator on a board: board definitions, clocking, the UART host bridge and the board top.

The host side of the bridge (commands, sessions, serial and simulated links, the ``run`` command)
is the :mod:`host` package: ``python -m host.board run``.

Bridge protocol (host → board bytes; multi-byte fields little-endian). The host waits for each
command's reply before sending the next one; the sizes ``LW``/``CW``/``PW``/``OW`` are the packed
``load``/``cfg``/``perf`` structs and one accumulator, rounded up to bytes (:func:`wire_sizes`):

=========  =================================  ==============================================
command    request                            reply
=========  =================================  ==============================================
INFO       ``'I'``                            ``b"SPA"``, protocol version, CRC-32 of the
                                              array configuration (4 bytes): 8 bytes
LOAD       ``'L'`` n (2 bytes), n words       ``'L'`` once all n words are in the buffers
           (``LW`` bytes each)
START      ``'S'`` layer config (``CW`` bytes) ``'S'`` once ``start`` has been pulsed with it
STATUS     ``'?'``                            status byte (:data:`STATUS_BITS`); error bits
                                              are cleared by the read
PERF       ``'P'``                            the ``perf`` struct: ``PW`` bytes
READ       ``'R'`` n (2 bytes)                the next n outputs: n x ``OW`` bytes
other      any other byte                     ``'!'`` (and the ``bad_opcode`` status bit)
=========  =================================  ==============================================

Only LOAD and START while the array is not busy (the array latches the config at ``start``). If
the host stops in the middle of a command for longer than the bridge's timeout (0.1 s), the bridge
drops the command, sets ``timeout`` and waits for a new opcode, so a crashed host never leaves the
board stuck.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.hdl import C, ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from golden.config import ArrayConfig
from golden.paths import source_checkout

from .accelerator import Accelerator
from .generate import manifest
from .uart import UARTReceiver, UARTTransmitter

CONSTRAINTS_DIR = (source_checkout() or Path(__file__).resolve().parent) / "constraints"
"""The board files: ``constraints/`` of a source checkout; a wheel ships them as ``hdl/constraints/``
(``pyproject.toml`` maps the directory there), since an installed copy has no checkout around it."""
PROTOCOL_VERSION = 1
OP_INFO, OP_LOAD, OP_START, OP_STATUS, OP_PERF, OP_READ = (ord(c) for c in "ILS?PR")
NAK = ord("!")
MAX_CHUNK = 0xFFFF
"""Largest word count of one LOAD or READ command (the host splits longer transfers)."""
PERF_PICK_ONE_STEP = 32
"""Counter bytes the bridge picks for sending in one step; a larger counter set takes two (HostBridge)."""
STATUS_BITS = {"busy": 0, "done": 1, "overrun": 2, "frame_error": 3, "bad_opcode": 4, "timeout": 5}
ERROR_BITS = ("overrun", "frame_error", "bad_opcode", "timeout")


# --- board descriptions (constraints/<board>.json) ---

@dataclass(frozen=True)
class BoardSpec:
    """One board's build settings, read from ``constraints/<name>.json`` (see constraints/README.md)."""

    name: str
    platform: str
    clock_mhz: float
    baud: int
    array: dict
    synth_opts: list = field(default_factory=list)
    nextpnr_opts: list = field(default_factory=list)
    dsp_scope: str = "all"
    dsp_max: int | None = None
    replicate: bool = False
    floorplan: dict | None = None
    resources: dict = field(default_factory=dict)
    leds: dict = field(default_factory=dict)
    drive_high: list = field(default_factory=list)
    seed: int = 1
    presets: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)  # array flag -> why the board's default differs from ArrayConfig's

    def preset(self, name: str) -> dict:
        """Preset ``name`` (``{"array": {...}, "router": ..., "about": ...}``): a second measured build of
        this board, e.g. the wide-PE array; ``ValueError`` naming the choices for an unknown one."""
        if name not in self.presets:
            have = ", ".join(sorted(self.presets)) or "none"
            raise ValueError(f"board {self.name!r} has no preset {name!r} (presets: {have}; "
                             f"see constraints/{self.name}.json)")
        return self.presets[name]

    def build_defaults(self, preset: str | None = None) -> dict:
        """Defaults of a build command (``hdl.synth``, ``bench.fpga_area``): the board's array flags, those
        of ``preset`` over them, and ``router`` where the preset names one. ``ValueError`` for an unknown
        preset."""
        chosen = self.preset(preset) if preset is not None else {}
        return {**self.array, **chosen.get("array", {}), **({"router": chosen["router"]} if "router" in chosen else {})}

    @classmethod
    def load(cls, name: str) -> BoardSpec:
        path = CONSTRAINTS_DIR / f"{name}.json"
        if not path.exists():
            raise ValueError(f"unknown board {name!r}; choose one of {', '.join(board_names())}")
        raw = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__) - {"name"}
        unknown = sorted(set(raw) - known)
        if unknown:  # a misspelt setting must not be ignored silently
            raise ValueError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(name=name, **raw)

    def platform_class(self) -> type:
        import importlib

        module, _, attr = self.platform.rpartition(".")
        return getattr(importlib.import_module(module), attr)


def board_names() -> list[str]:
    return sorted(p.stem for p in CONSTRAINTS_DIR.glob("*.json"))


# --- clock generation ---

@dataclass(frozen=True)
class ClockPlan:
    """The design clock: the board oscillator itself, or a PLL output (``pll`` = primitive parameters)."""

    freq_hz: float
    pll: dict | None = None


def ice40_pll(f_in: float, f_out: float) -> tuple[dict, float]:
    """``SB_PLL40_PAD`` parameters (simple feedback) closest to ``f_out``; same search as ``icepll``."""
    best = None
    for divr in range(16):
        pfd = f_in / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                f = vco / 2 ** divq
                if not 16e6 <= f <= 275e6:
                    continue
                if best is None or abs(f - f_out) < abs(best[1] - f_out):
                    rng = next(i for i, top in enumerate((17e6, 26e6, 44e6, 66e6, 101e6, float("inf")), 1)
                               if pfd < top)
                    best = (dict(DIVR=divr, DIVF=divf, DIVQ=divq, FILTER_RANGE=rng), f)
    if best is None or abs(best[1] - f_out) > 0.1 * f_out:
        raise ValueError(f"the iCE40 PLL cannot make {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz "
                         f"(its output range is 16-275 MHz)")
    return best


def ecp5_pll(f_in: float, f_out: float) -> tuple[dict, float]:
    """``EHXPLLL`` parameters (feedback from CLKOP) closest to ``f_out``, VCO nearest 600 MHz."""
    best = None
    for clki in range(1, 129):
        pfd = f_in / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb in range(1, 81):
            f = pfd * clkfb
            if not 3.125e6 <= f <= 400e6:
                continue
            divs = [d for d in range(1, 129) if 400e6 <= f * d <= 800e6]
            if not divs:
                continue
            clkop = min(divs, key=lambda d: abs(f * d - 600e6))
            if best is None or abs(f - f_out) < abs(best[1] - f_out):
                best = (dict(CLKI_DIV=clki, CLKFB_DIV=clkfb, CLKOP_DIV=clkop, CLKOP_CPHASE=clkop - 1), f)
    if best is None:
        raise ValueError(f"the ECP5 PLL cannot make {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz")
    return best


def plan_clock(family: str, osc_hz: float, requested_hz: float) -> ClockPlan:
    """Run from the oscillator when it is the requested clock, else from a PLL set as close as possible."""
    if abs(requested_hz - osc_hz) < 1:
        return ClockPlan(osc_hz)
    params, f = (ice40_pll if family == "iCE40" else ecp5_pll)(osc_hz, requested_hz)
    return ClockPlan(f, params)


# --- gateware ---

def array_manifest(cfg: ArrayConfig) -> dict:
    """The manifest of ``cfg`` without elaborating an array (only its signature is read)."""
    return manifest(cfg)


def wire_sizes(man: dict) -> dict[str, int]:
    """Bytes of one load word, the config struct, the perf struct and one output on the wire."""
    def nbytes(layout: dict) -> int:
        return -(-max(f["offset"] + f["width"] for f in layout.values()) // 8)

    lay = man["layouts"]
    return {"load": nbytes(lay["load"]), "cfg": nbytes(lay["cfg"]), "perf": nbytes(lay["perf"]),
            "out": -(-man["params"]["acc_bits"] // 8)}


def config_crc(cfg: ArrayConfig) -> int:
    """CRC-32 of the array configuration, so the host can tell that the bitstream matches its flags."""
    return zlib.crc32(json.dumps(cfg.to_dict(), sort_keys=True).encode())


def info_reply(cfg: ArrayConfig) -> bytes:
    return b"SPA" + bytes([PROTOCOL_VERSION]) + config_crc(cfg).to_bytes(4, "little")


class HostBridge(wiring.Component):
    """UART ↔ accelerator: decodes the command protocol (module docstring) and drives the array.

    One shift register collects every multi-byte request field (new bytes enter at the top, so a
    ``k``-byte field ends up in its top ``k`` bytes) and drives the array's ``load`` payload and
    ``cfg`` straight from there (the array latches ``cfg`` at ``start``); replies are picked a byte
    at a time from their source (``perf``, the output word). Nothing is copied, because on the
    iCE40 every flip-flop of the bridge is a logic cell the array cannot have.
    """

    def __init__(self, cfg: ArrayConfig, *, clk_freq: float, baud: int, timeout: int | None = None):
        self._cfg = cfg
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
        m.submodules.accel = acc = self.accel
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
                        with m.Case(OP_INFO):
                            m.next = "SEND_INFO"
                        with m.Case(OP_LOAD, OP_READ):
                            m.next = "COUNT"
                        with m.Case(OP_START):
                            m.next = "CONFIG"
                        with m.Case(OP_STATUS):
                            m.next = "SEND_STATUS"
                        with m.Case(OP_PERF):
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
                    with m.If(op == OP_LOAD):
                        m.next = "ACK"
                with m.Elif(op == OP_LOAD):
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
            with m.State("READ"):
                wait_input()
                with m.If(acc.o.valid):
                    m.d.sync += idx.eq(0)
                    m.next = "READ_SEND"
            with m.State("READ_SEND"):
                last = idx == sz["out"] - 1
                send(out_bytes.word_select(idx, 8), last & cnt_one, "IDLE")
                with m.If(~tx_full & last):  # the word's last byte is picked: the word is done with
                    m.d.comb += acc.o.ready.eq(1)
                with m.If(taken & last):
                    m.d.sync += [cnt.eq(cnt - 1), cnt_one.eq(cnt == 2), idx.eq(0)]
                    with m.If(~cnt_one):
                        m.next = "READ"
        return m


class BoardTop(Elaboratable):
    """Bridge + accelerator on a board: clock (PLL unless the oscillator is the requested clock),
    power-on reset, the USB-UART, status LEDs and the board's extra pin settings."""

    def __init__(self, cfg: ArrayConfig, spec: BoardSpec, *, clock: ClockPlan, baud: int):
        self.spec = spec
        self.clock = clock
        self.bridge = HostBridge(cfg, clk_freq=clock.freq_hz, baud=baud)

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.clock.pll is not None:
            self._pll_domain(m, platform)
        uart = platform.request("uart", 0, dir="-")  # flow-control lines (ULX3S) stay unused
        m.submodules.bridge = br = self.bridge
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [br.rx.eq(rx.i), tx.o.eq(br.tx)]
        for what, (name, number) in self.spec.leds.items():
            m.submodules[f"led_{what}"] = led = io.Buffer("o", platform.request(name, number, dir="-"))
            m.d.comb += led.o.eq(getattr(br, what))
        for name, number, sub in self.spec.drive_high:
            pins = platform.request(name, number, dir="-")  # the other subsignals stay unused
            m.submodules[f"{name}_{sub}"] = pin = io.Buffer("o", getattr(pins, sub))
            m.d.comb += pin.o.eq(1)
        return m

    def _pll_domain(self, m: Module, platform) -> None:
        """``sync`` from the PLL, held in reset until the PLL has locked and 15 us have passed.

        The wait also covers the iCE40 block RAMs, which read as zero for ~3 us after configuration.

        ``pll_clk`` carries the design's clock constraint, so it is kept (``keep``): nextpnr finds a
        constraint's net by the names the netlist keeps, and in the flattened design Yosys kept only
        ``bridge.accel.array.clk`` of the clock net's names, so nextpnr ignored the constraint ("net
        'pll_clk' does not exist") and timed the clock at what it derived through the PLL instead.
        """
        pll_clk = Signal(name="pll_clk", attrs={"keep": 1})
        lock, lock_s = Signal(name="pll_lock"), Signal(name="pll_lock_s")
        clk_pin = platform.request(platform.default_clk, dir="-")
        p = self.clock.pll
        if platform.family == "iCE40":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"], p_FILTER_RANGE=p["FILTER_RANGE"],
                i_PACKAGEPIN=clk_pin.io, i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=pll_clk, o_LOCK=lock)
        else:
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_pin)
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{platform.default_clk_frequency / 1e6:g}",
                a_FREQUENCY_PIN_CLKOP=f"{self.clock.freq_hz / 1e6:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", **{f"p_{k}": v for k, v in p.items()},
                i_RST=0, i_STDBY=0, i_CLKI=clk_buf.i, i_CLKFB=pll_clk, i_PHASESEL0=0, i_PHASESEL1=0,
                i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=pll_clk, o_LOCK=lock)
        m.domains.por = ClockDomain(reset_less=True, local=True)
        m.domains.sync = cd_sync = ClockDomain()
        m.d.comb += [ClockSignal("por").eq(pll_clk), cd_sync.clk.eq(pll_clk)]
        m.submodules.lock_sync = FFSynchronizer(lock, lock_s, o_domain="por")
        delay = int(15e-6 * self.clock.freq_hz)
        timer = Signal(range(delay + 1))
        # ``rst`` is a flip-flop (the reset net's huge fan-out starts there, not at a compare) and is also
        # the timer's enable, so the timer's own decision is flip-flops too: with "count while
        # timer != delay" the compare sat next to ``rst`` at the array's centre and its result came back
        # to the timer, the ECP5 8x8 build's worst path (10.3 ns)
        rst = Signal(init=1)
        with m.If(~lock_s):
            m.d.por += [timer.eq(0), rst.eq(1)]
        with m.Elif(rst):
            m.d.por += [timer.eq(timer + 1), rst.eq(timer != delay - 1)]
        m.d.comb += cd_sync.rst.eq(rst)
        platform.add_clock_constraint(pll_clk, self.clock.freq_hz)
