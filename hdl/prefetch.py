"""Reading a memory in order through a small register queue, so its read data reaches no logic.

A block RAM's read data arrives late in the cycle (5.8 ns into a 10 ns cycle on an ECP5), so a
design that decides anything from it in the same cycle cannot clock fast. Every memory this design
reads in order (the index streams of ``hdl.decoder``, the output buffer's read-back in
``hdl.accelerator``) is therefore read ahead: the read port is always enabled, its data goes
straight into one of :data:`QUEUE_DEPTH` registers the cycle after each read, and the consumer sees
the queue's head (a register, through a small mux) and pops it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.hdl import Array, Module, Mux, Signal, Value
from amaranth.lib import memory

QUEUE_DEPTH = 3
"""Words a queue holds: the fewest with which a consumer popping every cycle never finds it empty
(a read lands in the queue the cycle after it is issued, and reads stop at ``QUEUE_DEPTH`` words
held or in flight, so one word is held and one in flight in the steady state)."""

LATENCY = 2
"""Cycles from ``restart`` to the first word at the head."""


@dataclass(frozen=True)
class ReadAhead:
    head: Value  # the oldest word not yet popped
    valid: Value  # the queue holds a word
    ptr: Signal  # address of the next word to read


def read_ahead(m: Module, mem: memory.Memory, *, restart: Value, start: Value, pop: Value, name: str,
               more: Callable[[Signal], Value] | None = None) -> ReadAhead:
    """Stream ``mem`` from word ``start`` on; ``restart`` drops what is queued or in flight and reads
    ``start`` in the same cycle (its word is at the head :data:`LATENCY` cycles later).

    ``more(ptr)``, if given, says whether word ``ptr`` is to be read at all (a stream with an end);
    reads otherwise run ahead freely, at most ``QUEUE_DEPTH`` words past the last pop. Popping an
    empty queue is a contract violation of the consumer.
    """
    rp = mem.read_port()
    queue = [Signal(len(rp.data), name=f"{name}_q{k}", reset_less=True) for k in range(QUEUE_DEPTH)]
    # the pointers are set up by ``restart``; only the fill state has a reset
    wr = Signal(range(QUEUE_DEPTH), name=f"{name}_wr", reset_less=True)
    rd = Signal(range(QUEUE_DEPTH), name=f"{name}_rd", reset_less=True)
    held = Signal(range(QUEUE_DEPTH + 1), name=f"{name}_held")
    inflight = Signal(name=f"{name}_inflight")  # a word read last cycle is on the read port's data now
    # one bit more than the address: ``more`` can see the end of a full memory
    ptr = Signal(len(rp.addr) + 1, name=f"{name}_ptr", reset_less=True)
    issue = Signal(name=f"{name}_issue")
    room = held + inflight < QUEUE_DEPTH
    m.d.comb += [rp.en.eq(1), issue.eq(room & more(ptr) if more is not None else room)]

    def succ(index: Signal) -> Value:
        return Mux(index == QUEUE_DEPTH - 1, 0, index + 1)

    with m.If(restart):
        m.d.comb += rp.addr.eq(start)  # addresses wrap modulo the depth
        m.d.sync += [ptr.eq(start + 1), inflight.eq(1), held.eq(0), wr.eq(0), rd.eq(0)]
    with m.Else():
        m.d.comb += rp.addr.eq(ptr)
        m.d.sync += [ptr.eq(ptr + issue), inflight.eq(issue), held.eq(held + inflight - pop)]
        with m.If(inflight):
            m.d.sync += wr.eq(succ(wr))
        with m.If(pop):
            m.d.sync += rd.eq(succ(rd))
        for k in range(QUEUE_DEPTH):
            with m.If(inflight & (wr == k)):
                m.d.sync += queue[k].eq(rp.data)
    head = Signal(len(rp.data), name=f"{name}_head")
    m.d.comb += head.eq(Array(queue)[rd])
    return ReadAhead(head, held != 0, ptr)
