"""Reading a memory in order through a small register queue, so its read data reaches no logic.

A block RAM's read data arrives late in the cycle (5.8 ns into a 10 ns cycle on an ECP5, and later
still where a deep memory is built from several blocks and their outputs are muxed), so a design
that decides anything from it in the same cycle cannot clock fast. Every memory this design reads
in order (the index streams of ``hdl.decoder``, the output buffer's read-back in
``hdl.accelerator``) is therefore read ahead: the read port is always enabled, its data goes
unconditionally into a landing register (no enable, no mux: the placer can put it next to the
block RAM), from there into one of :data:`QUEUE_DEPTH` registers, and the consumer sees the
oldest word held (the landing register or a queue register, through a small mux) and pops it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from amaranth.hdl import Array, Module, Mux, Signal, Value
from amaranth.lib import memory

from golden.timing import STREAM_LATENCY

from .delay import require

if TYPE_CHECKING:
    from .buffers import BlockBanks

QUEUE_DEPTH = 3
"""Words queued, landed or in flight at most: the fewest with which a consumer popping every cycle
never finds the stream empty (a word is on the read port's data the cycle after its read and in the
landing register the cycle after that, so in the steady state one word is landed and one in flight)."""

@dataclass(frozen=True)
class ReadAhead:
    head: Value  # the oldest word not yet popped
    first: Value  # the word read at ``restart``, from a register, in the cycle it reaches the head
    valid: Value  # the queue holds a word
    ptr: Signal  # address of the next word to read


def read_ahead(m: Module, mem: memory.Memory | BlockBanks, *, restart: Value, start: Value, pop: Value, name: str,
               more: Callable[[Signal], Value] | None = None,
               pick: Callable[[Value, Value], Value] | None = None) -> ReadAhead:
    """Stream ``mem`` from word ``start`` on; ``restart`` drops what is queued or in flight and reads
    ``start`` in the same cycle (its word is at the head ``golden.timing.STREAM_LATENCY`` cycles later: the
    read, the landing register).

    ``more(ptr)``, if given, says whether word ``ptr`` is to be read at all (a stream with an end);
    reads otherwise run ahead freely, at most ``QUEUE_DEPTH`` words past the last pop. Popping an
    empty queue is a contract violation of the consumer.

    ``pick(data, addr)``, if given, makes the word from the read port's data and the word's address,
    *after* the landing register: for a memory of several banks read at once (``hdl.buffers``), whose
    bank select in front of the landing register would lengthen the block RAM's late data path.
    """
    require("STREAM_LATENCY", STREAM_LATENCY, STREAM_LATENCY == 2,
            "hdl.prefetch reads into one landing register, and its queue and flags are sized for that")
    rp = mem.read_port()
    land = Signal(len(rp.data), name=f"{name}_land", reset_less=True)  # the read port's data, a cycle later
    if pick is not None:  # the landed word's address: the read's, two registers on
        addr_r = Signal.like(rp.addr, name=f"{name}_raddr", reset_less=True)
        land_addr = Signal.like(rp.addr, name=f"{name}_land_addr", reset_less=True)
        m.d.sync += [addr_r.eq(rp.addr), land_addr.eq(addr_r)]
        word = pick(land, land_addr)
    else:
        word = land
    width = len(word)
    queue = [Signal(width, name=f"{name}_q{k}", reset_less=True) for k in range(QUEUE_DEPTH)]
    # the pointers are set up by ``restart``; only the fill state has a reset
    wr = Signal(range(QUEUE_DEPTH), name=f"{name}_wr", reset_less=True)
    rd = Signal(range(QUEUE_DEPTH), name=f"{name}_rd", reset_less=True)
    held = Signal(range(QUEUE_DEPTH + 1), name=f"{name}_held")  # words in the queue registers
    empty = Signal(init=1, name=f"{name}_empty")  # held == 0, registered with it
    inflight = Signal(name=f"{name}_inflight")  # a word read last cycle is on the read port's data now
    landed = Signal(name=f"{name}_landed")  # ``land`` holds a word (read two cycles ago)
    # one bit more than the address: ``more`` can see the end of a full memory
    ptr = Signal(len(rp.addr) + 1, name=f"{name}_ptr", reset_less=True)
    issue = Signal(name=f"{name}_issue")
    room = held + landed + inflight < QUEUE_DEPTH
    m.d.comb += [rp.en.eq(1), issue.eq(room & more(ptr) if more is not None else room)]
    m.d.sync += land.eq(rp.data)
    # the oldest word is in the queue if it holds any, else in ``land``; a landed word that is not
    # popped at once moves into the queue (``land`` takes the next read's data every cycle)
    from_queue = pop & ~empty
    enqueue = landed & ~(pop & empty)

    def succ(index: Signal) -> Value:
        return Mux(index == QUEUE_DEPTH - 1, 0, index + 1)

    with m.If(restart):
        m.d.comb += rp.addr.eq(start)  # addresses wrap modulo the depth
        m.d.sync += [ptr.eq(start + 1), inflight.eq(1), landed.eq(0), held.eq(0), empty.eq(1),
                     wr.eq(0), rd.eq(0)]
    with m.Else():
        m.d.comb += rp.addr.eq(ptr)
        held_next = held + enqueue - from_queue
        m.d.sync += [ptr.eq(ptr + issue), inflight.eq(issue), landed.eq(inflight),
                     held.eq(held_next), empty.eq(held_next == 0)]
        with m.If(enqueue):
            m.d.sync += wr.eq(succ(wr))
        with m.If(from_queue):
            m.d.sync += rd.eq(succ(rd))
        # the landed word is written into the free register at ``wr`` whether or not it is popped at
        # once (then ``wr`` does not advance and the register stays free): the registers' enables do
        # not wait for the consumer's ``pop``. ``landed`` implies a free register (at most
        # ``QUEUE_DEPTH`` words in all).
        for k in range(QUEUE_DEPTH):
            with m.If(landed & (wr == k)):
                m.d.sync += queue[k].eq(word)
    head = Signal(width, name=f"{name}_head")
    m.d.comb += head.eq(Mux(empty, word, Array(queue)[rd]))
    return ReadAhead(head, word, ~empty | landed, ptr)
