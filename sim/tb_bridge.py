"""cocotb testbench: the UART host bridge and the array together (``hdl.bridge.HostBridge``'s Verilog).

The host side is the one a board's driver runs: :func:`golden.protocol.layer_session` yields each command as
a :class:`~golden.protocol.Transaction` and receives its reply. Here a bit-level UART model (start bit, 8 data
bits LSB first, stop bit, at the bridge's divisor) sends the request into ``rx`` and a concurrent
receiver task collects the reply from ``tx``, so the Verilog sees exactly the byte stream a board sees,
through the same receiver, transmitter and command decoder.

Driven by a job file (``SPARSE_PE_BRIDGE_JOB``, written by :func:`sim.verilator.run_bridge_job`):

- ``bridge``: the build's description (array ``params``, UART ``divisor``, bridge ``timeout`` in cycles),
- ``items``: in order, on one DUT without reset in between, each either

  - ``{"npz": path}``: run the layer and check it with :func:`golden.check.check_run`: outputs bit-exact,
    every counter exact, and cycles exact, measured as the width of the pulse on the ``busy`` pin (not
    taken from the ``busy_cycles`` counter, so the counter is checked too), or
  - ``{"raw": [step, ...]}``: send raw steps (``{"request": hex, "reply_len": n}`` or ``{"idle": cycles}``)
    and record the replies, for the error paths (bad opcode, a command dropped mid-way by the timeout),

- ``results``: where the per-item results go (JSON); ``check`` (default true) fails the test on a problem.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import TypeVar

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, SimTimeoutError, with_timeout

from golden.check import check_run
from golden.config import ArrayConfig
from golden.encode import encode
from golden.layerio import load_layer
from golden.protocol import BridgeError, Protocol, Transaction, layer_session
from golden.timing import simulate
from hdl.generate import manifest

from .verilator import BRIDGE_JOB_ENV

T = TypeVar("T")
PERIOD_NS = 10  # the Verilog has no notion of time: only the divisor (clock cycles per bit) matters


class UARTModel:
    """The host's end of the serial line: a transmitter on the DUT's ``rx``, a receiver task on its ``tx``.

    The receiver runs on its own (:meth:`start`) because the bridge may send at any time; it wakes on
    the falling edge of a start bit and samples every bit in its middle, like a real UART would.
    """

    def __init__(self, dut, divisor: int, log):
        if divisor < 4:
            raise ValueError(f"the UART model needs at least 4 clock cycles per bit, not {divisor}")
        self.clk, self.rx, self.tx = dut.clk, dut.rx, dut.tx
        self.divisor = divisor
        self.log = log
        self.received: Queue[int] = Queue()
        self.frame_errors = 0

    def start(self) -> None:
        self.rx.value = 1  # idle line
        cocotb.start_soon(self._receive())

    async def send(self, data: bytes) -> None:
        """Transmit ``data`` back to back (8N1), holding each level for ``divisor`` cycles."""
        for byte in data:
            for level in (0, *((byte >> i) & 1 for i in range(8)), 1):
                self.rx.value = level
                await ClockCycles(self.clk, self.divisor)

    async def _receive(self) -> None:
        while True:
            await FallingEdge(self.tx)
            await ClockCycles(self.clk, self.divisor // 2)  # middle of the start bit
            if self.tx.value:
                self.log.warning("glitch on tx (high again in the middle of the start bit)")
                continue
            byte = 0
            for bit in range(8):
                await ClockCycles(self.clk, self.divisor)
                byte |= int(self.tx.value) << bit
            await ClockCycles(self.clk, self.divisor)  # middle of the stop bit: back to waiting for a start
            if not self.tx.value:
                self.frame_errors += 1
                self.log.error("frame error on tx: stop bit of byte 0x%02x is low", byte)
            else:
                self.received.put_nowait(byte)


class BridgeTB:
    """Owns the clock, the UART model and the ``busy`` pulse monitor of one bridge DUT."""

    def __init__(self, dut, bridge: dict):
        self.dut = dut
        self.cfg = ArrayConfig.from_dict(bridge["params"])
        self.divisor = bridge["divisor"]
        self.timeout = bridge["timeout"]
        self.log = dut._log.getChild("tb")
        self.uart = UARTModel(dut, self.divisor, self.log.getChild("uart"))
        self.busy_pulses: list[int] = []  # width in cycles of every busy pulse so far

    async def reset(self) -> None:
        d = self.dut
        cocotb.start_soon(Clock(d.clk, PERIOD_NS, unit="ns").start())
        self.uart.start()
        d.rst.value = 1
        await ClockCycles(d.clk, 3)
        d.rst.value = 0
        await ClockCycles(d.clk, 4)  # a few idle-line cycles before the first start bit
        cocotb.start_soon(self._watch_busy())

    async def _watch_busy(self) -> None:
        while True:
            await RisingEdge(self.dut.busy)
            t0 = get_sim_time("ns")
            await FallingEdge(self.dut.busy)
            self.busy_pulses.append(round((get_sim_time("ns") - t0) / PERIOD_NS))

    async def drive(self, session: Generator[Transaction | int, bytes | None, T]) -> T:
        """Run ``session`` as :func:`golden.protocol.drive` does, over the UART model; return its result."""
        try:
            step = next(session)
            while True:
                if isinstance(step, int):  # the host stays silent for that many cycles
                    await ClockCycles(self.dut.clk, step)
                    step = session.send(None)
                else:
                    step = session.send(await self.exchange(step))
        except StopIteration as stop:
            return stop.value

    async def exchange(self, t: Transaction) -> bytes:
        """Send one request and wait for its whole reply (or fail naming the command)."""
        if not self.uart.received.empty():
            stale = bytes(self.uart.received.get_nowait() for _ in range(self.uart.received.qsize()))
            raise BridgeError(f"the bridge sent {stale.hex()} before {t.what} although no reply was pending")
        await self.uart.send(t.request)
        limit = 12 * self.divisor * t.reply_len + 2 * self.timeout + 100  # cycles, as host.link.simulate_session
        reply = bytearray()

        async def collect() -> None:
            while len(reply) < t.reply_len:
                reply.append(await self.uart.received.get())

        try:
            await with_timeout(collect(), limit * PERIOD_NS, "ns")
        except SimTimeoutError:
            raise BridgeError(f"no reply to {t.what} within {limit} cycles (got {len(reply)} of {t.reply_len} "
                              f"bytes: {reply.hex() or 'none'})") from None
        if self.uart.frame_errors:
            raise BridgeError(f"{self.uart.frame_errors} frame error(s) on tx in the reply to {t.what}")
        return bytes(reply)

    async def run_layer(self, npz: str, out_path: Path) -> dict:
        layer = load_layer(npz)
        enc = encode(layer, self.cfg)
        predicted = simulate(enc).busy_cycles
        # give up polling after 4x the predicted run (one STATUS poll is 2 bytes = 20 bit times)
        max_polls = 4 * predicted // (20 * self.divisor) + 10
        before = len(self.busy_pulses)
        run = await self.drive(layer_session(Protocol(manifest(self.cfg)), enc, max_polls=max_polls))
        pulses = self.busy_pulses[before:]
        cycles = pulses[0] if len(pulses) == 1 else None
        verdict = check_run(enc, run.outputs, run.perf, cycles)
        problems = list(verdict.problems)
        if cycles is None:
            problems.append(f"busy pulsed {len(pulses)} times during the layer, not once")
        np.save(out_path, run.outputs)
        res = {"npz": npz, "outputs": str(out_path), "outputs_match": verdict.outputs_match,
               "cycles": cycles, "predicted_cycles": predicted,
               "perf": run.perf, "predicted_perf": verdict.predicted, "status_polls": run.status_polls}
        if problems:
            res["error"] = "; ".join(problems)
        return res

    async def run_raw(self, steps: list[dict]) -> dict:
        replies = await self.drive(_raw_session(steps))
        return {"replies": [None if r is None else r.hex() for r in replies]}


def _raw_session(steps: list[dict]) -> Generator[Transaction | int, bytes | None, list[bytes | None]]:
    """A session of raw job steps (see the module docstring); returns the replies (``None`` for idles)."""
    replies = []
    for i, s in enumerate(steps):
        if "idle" in s:
            step = int(s["idle"])
        else:
            step = Transaction(bytes.fromhex(s["request"]), int(s["reply_len"]), s.get("what", f"raw step {i}"))
        replies.append((yield step))
    return replies


@cocotb.test()
async def run_job(dut):
    job = json.loads(Path(os.environ[BRIDGE_JOB_ENV]).read_text())
    tb = BridgeTB(dut, json.loads(Path(job["bridge"]).read_text()))
    await tb.reset()
    results = []
    for i, item in enumerate(job["items"]):
        what = item.get("npz", "raw steps")
        try:
            if "npz" in item:
                res = await tb.run_layer(item["npz"], Path(job["results"]).with_name(f"outputs_{i}.npy"))
            else:
                res = await tb.run_raw(item["raw"])
        except BridgeError as e:  # the exchange is out of step now: later items would only fail confusingly
            results.append({"item": i, "error": f"item {i} ({what}): {e}"})
            tb.log.error(results[-1]["error"])
            break
        res["item"] = i
        if "error" in res:
            res["error"] = f"item {i} ({what}): {res['error']}"
            tb.log.error(res["error"])
        else:
            tb.log.info("item %d ok%s", i, f": {res['cycles']} cycles" if "cycles" in res else "")
        results.append(res)
    Path(job["results"]).write_text(json.dumps(results, indent=1))
    if job.get("check", True):
        errors = [r["error"] for r in results if "error" in r]
        assert not errors, "\n".join(errors)
