"""Run one encoded layer on the array in Amaranth's Python simulator (no Verilator needed).

Slow (thousands of cycles per second) but needs no build: used by the fast unit tests on small
layers, and as the baseline of the simulator-speed benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from golden.encode import EncodedLayer
from golden.timing import simulate
from golden.words import Packing, to_signed
from hdl.accelerator import Accelerator
from hdl.generate import manifest


@dataclass
class RunResult:
    outputs: np.ndarray  # (M, E, F) as read back from the array
    perf: dict[str, int]  # performance counters
    cycles: int  # cycles from start to done, measured by the testbench


def run_pysim(enc: EncodedLayer, vcd: str | None = None, timeout: int | None = None) -> RunResult:
    """Load ``enc``, run it, read the outputs back; fail after ``timeout`` cycles (default: 4x predicted)."""
    cfg = enc.cfg
    dut = Accelerator(cfg)
    pk = Packing.from_manifest(manifest(cfg))
    words = pk.load_words(enc)
    ly = enc.layer
    n_out = ly.m * ly.e * ly.f
    result: dict = {}
    limit = timeout if timeout is not None else 4 * simulate(enc).busy_cycles + 100

    async def testbench(ctx):
        for w in words:
            ctx.set(dut.load.payload.as_value(), w)
            ctx.set(dut.load.valid, 1)
            await ctx.tick().until(dut.load.ready)
        ctx.set(dut.load.valid, 0)
        ctx.set(dut.cfg.as_value(), pk.config_word(enc))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles = 0
        while True:
            await ctx.tick()
            cycles += 1
            if ctx.get(dut.done):
                break
            if cycles > limit:
                raise TimeoutError(f"no done after {limit} cycles")
        result["cycles"] = cycles  # done rises at the edge that ends the last busy cycle
        outs = []
        ctx.set(dut.o.ready, 1)
        while len(outs) < n_out:
            *_, payload, valid = await ctx.tick().sample(dut.o.payload, dut.o.valid)
            if valid:
                outs.append(to_signed(payload, cfg.acc_bits))
        result["outputs"] = np.array(outs, dtype=np.int64).reshape(ly.m, ly.e, ly.f)
        result["perf"] = pk.unpack("perf", ctx.get(dut.perf.as_value()))  # settled one cycle after done

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return RunResult(result["outputs"], result["perf"], result["cycles"])
