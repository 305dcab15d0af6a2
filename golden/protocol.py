"""The board protocol: the bytes between a host and the UART bridge (``hdl.bridge.HostBridge``).

Both ends read this module: the bridge's gateware decodes :class:`Op` and answers with
:func:`info_reply` and :data:`STATUS_BITS`; the host encodes commands as :class:`Transaction`\\ s and
runs one layer's exchange as a :data:`Session`. It sits in ``golden`` (no Amaranth, no serial port) so
that every driver of the bridge, from ``host.link``'s serial port and Amaranth simulation to the
cocotb testbench ``sim.tb_bridge``, runs exactly the byte stream a board sees without importing
upwards.

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
other      any other byte                     ``'!'`` (:data:`NAK`, and the ``bad_opcode``
                                              status bit)
=========  =================================  ==============================================

Only LOAD and START while the array is not busy (the array latches the config at ``start``). If
the host stops in the middle of a command for longer than the bridge's timeout (0.1 s), the bridge
drops the command, sets ``timeout`` and waits for a new opcode, so a crashed host never leaves the
board stuck.
"""

from __future__ import annotations

import enum
import json
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from .config import ArrayConfig
from .encode import EncodedLayer
from .words import Packing, to_signed

PROTOCOL_VERSION = 1


class Op(enum.IntEnum):
    """A command's opcode: its first byte, and the acknowledge of LOAD and START."""

    INFO = ord("I")
    LOAD = ord("L")
    START = ord("S")
    STATUS = ord("?")
    PERF = ord("P")
    READ = ord("R")


NAK = ord("!")
"""The bridge's reply to a byte that is no :class:`Op`."""
MAX_CHUNK = 0xFFFF
"""Largest word count of one LOAD or READ command (a 2-byte field; the host splits longer transfers)."""
STATUS_BITS = {"busy": 0, "done": 1, "overrun": 2, "frame_error": 3, "bad_opcode": 4, "timeout": 5}
ERROR_BITS = ("overrun", "frame_error", "bad_opcode", "timeout")


def wire_sizes(man: dict) -> dict[str, int]:
    """Bytes of one load word, the config struct, the perf struct and one output on the wire, from the
    array's manifest (``hdl.generate.manifest``)."""
    layouts = Packing.from_manifest(man).layouts
    return {**{name: -(-layouts[name].width // 8) for name in ("load", "cfg", "perf")},
            "out": -(-man["params"]["acc_bits"] // 8)}


def config_crc(cfg: ArrayConfig) -> int:
    """CRC-32 of the array configuration, so the host can tell that the bitstream matches its flags."""
    return zlib.crc32(json.dumps(cfg.to_dict(), sort_keys=True).encode())


def info_reply(cfg: ArrayConfig) -> bytes:
    """The bridge's 8-byte answer to INFO: magic, :data:`PROTOCOL_VERSION`, :func:`config_crc`."""
    return b"SPA" + bytes([PROTOCOL_VERSION]) + config_crc(cfg).to_bytes(4, "little")


@dataclass(frozen=True)
class Transaction:
    """One command: the bytes to send and how many reply bytes to wait for."""

    request: bytes
    reply_len: int
    what: str


class BridgeError(RuntimeError):
    """The bridge answered out of protocol, reported an error bit, or did not answer."""


class Protocol:
    """Encodes commands and decodes replies for one array, sized from its manifest
    (``hdl.generate.manifest(cfg)``: the packed layouts are the gateware's)."""

    def __init__(self, man: dict):
        self.cfg = ArrayConfig.from_dict(man["params"])
        self.packing = Packing.from_manifest(man)
        self.sizes = wire_sizes(man)

    def info(self) -> Transaction:
        return Transaction(bytes([Op.INFO]), 8, "INFO")

    def check_info(self, reply: bytes) -> None:
        want = info_reply(self.cfg)
        if reply[:4] != want[:4]:
            raise BridgeError(f"the board answered INFO with {reply.hex()}, not a sparse-PE bridge "
                              f"(protocol {PROTOCOL_VERSION}); is the bitstream loaded and --baud right?")
        if reply != want:
            raise BridgeError("the bitstream was built for a different array configuration; pass the same "
                              "--board and array flags as to hdl.synth")

    def load(self, words: list[int]) -> list[Transaction]:
        lw = self.sizes["load"]
        out = []
        for i in range(0, len(words), MAX_CHUNK):
            chunk = words[i:i + MAX_CHUNK]
            body = b"".join(int(w).to_bytes(lw, "little") for w in chunk)
            out.append(Transaction(bytes([Op.LOAD]) + len(chunk).to_bytes(2, "little") + body, 1, "LOAD"))
        return out

    def start(self, config_word: int) -> Transaction:
        return Transaction(bytes([Op.START]) + int(config_word).to_bytes(self.sizes["cfg"], "little"), 1, "START")

    def status(self) -> Transaction:
        return Transaction(bytes([Op.STATUS]), 1, "STATUS")

    def perf(self) -> Transaction:
        return Transaction(bytes([Op.PERF]), self.sizes["perf"], "PERF")

    def read(self, n: int) -> list[Transaction]:
        ow = self.sizes["out"]
        return [Transaction(bytes([Op.READ]) + min(MAX_CHUNK, n - i).to_bytes(2, "little"),
                            min(MAX_CHUNK, n - i) * ow, "READ") for i in range(0, n, MAX_CHUNK)]

    def decode_outputs(self, reply: bytes) -> list[int]:
        ow = self.sizes["out"]
        return [to_signed(int.from_bytes(reply[i:i + ow], "little"), self.cfg.acc_bits)
                for i in range(0, len(reply), ow)]


def decode_status(byte: int) -> dict[str, bool]:
    return {name: bool(byte >> bit & 1) for name, bit in STATUS_BITS.items()}


@dataclass
class BoardRun:
    outputs: np.ndarray  # (M, E, F)
    perf: dict[str, int]
    status_polls: int


Session = Generator[Transaction, bytes, BoardRun]


def layer_session(proto: Protocol, enc: EncodedLayer, max_polls: int = 1_000_000) -> Session:
    """The whole exchange for one layer, as a generator: yields each command, receives its reply.

    Written once and driven either by a serial port (:func:`drive`) or by the simulator's UART model,
    so the tests run exactly the byte stream a board sees.
    """
    def expect(t: Transaction, reply: bytes) -> None:
        if reply != bytes([t.request[0]]):
            raise BridgeError(f"{t.what} was answered with {reply.hex() or 'nothing'}, not an acknowledge; "
                              f"read STATUS to see what went wrong")

    proto.check_info((yield proto.info()))
    for t in proto.load(proto.packing.load_words(enc)):
        expect(t, (yield t))
    t = proto.start(proto.packing.config_word(enc))
    expect(t, (yield t))
    polls = 0
    while True:
        st = decode_status((yield proto.status())[0])
        bad = [n for n in ERROR_BITS if st[n]]
        if bad:
            raise BridgeError(f"bridge reported {', '.join(bad)} during the run")
        if st["done"] and not st["busy"]:
            break
        polls += 1
        if polls > max_polls:
            raise BridgeError(f"the array is still busy after {max_polls} status polls")
    perf = proto.packing.unpack("perf", int.from_bytes((yield proto.perf()), "little"))
    ly = enc.layer
    outs: list[int] = []
    for t in proto.read(ly.m * ly.e * ly.f):
        outs += proto.decode_outputs((yield t))
    st = decode_status((yield proto.status())[0])
    if any(st[n] for n in ERROR_BITS):
        raise BridgeError(f"bridge reported {', '.join(n for n in ERROR_BITS if st[n])} while reading back")
    return BoardRun(np.array(outs, dtype=np.int64).reshape(ly.m, ly.e, ly.f), perf, polls)


def drive(session: Session, exchange: Callable[[Transaction], bytes]) -> BoardRun:
    """Run ``session`` with a blocking ``exchange(transaction) -> reply``."""
    try:
        t = next(session)
        while True:
            t = session.send(None if isinstance(t, int) else exchange(t))
    except StopIteration as stop:
        return stop.value
