"""The board protocol, host side: commands as transactions, one layer's exchange as a session.

The byte protocol itself (opcodes, status bits, field sizes) is defined with the gateware that
implements it, in :mod:`hdl.board`. A :data:`Session` is written once and driven by any link
(:mod:`host.link`): a serial port, the bridge in Amaranth's simulator, or the bridge's Verilog under
cocotb (``sim.tb_bridge``), so every path runs exactly the byte stream a board sees.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from golden.config import ArrayConfig
from hdl.board import (
    ERROR_BITS,
    MAX_CHUNK,
    OP_INFO,
    OP_LOAD,
    OP_PERF,
    OP_READ,
    OP_START,
    OP_STATUS,
    PROTOCOL_VERSION,
    STATUS_BITS,
    array_manifest,
    info_reply,
    wire_sizes,
)

from .packing import Packing, to_signed


@dataclass(frozen=True)
class Transaction:
    """One command: the bytes to send and how many reply bytes to wait for."""

    request: bytes
    reply_len: int
    what: str


class BridgeError(RuntimeError):
    pass


class Protocol:
    """Encodes commands and decodes replies for one array configuration (sizes from its manifest)."""

    def __init__(self, cfg: ArrayConfig):
        self.cfg = cfg
        man = array_manifest(cfg)
        self.packing = Packing.from_manifest(man)
        self.sizes = wire_sizes(man)

    def info(self) -> Transaction:
        return Transaction(bytes([OP_INFO]), 8, "INFO")

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
            out.append(Transaction(bytes([OP_LOAD]) + len(chunk).to_bytes(2, "little") + body, 1, "LOAD"))
        return out

    def start(self, config_word: int) -> Transaction:
        return Transaction(bytes([OP_START]) + int(config_word).to_bytes(self.sizes["cfg"], "little"), 1, "START")

    def status(self) -> Transaction:
        return Transaction(bytes([OP_STATUS]), 1, "STATUS")

    def perf(self) -> Transaction:
        return Transaction(bytes([OP_PERF]), self.sizes["perf"], "PERF")

    def read(self, n: int) -> list[Transaction]:
        ow = self.sizes["out"]
        return [Transaction(bytes([OP_READ]) + min(MAX_CHUNK, n - i).to_bytes(2, "little"),
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


def layer_session(proto: Protocol, enc, max_polls: int = 1_000_000) -> Session:
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
