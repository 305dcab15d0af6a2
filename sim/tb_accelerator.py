"""cocotb testbench: run encoded layers on the generated array and check them against the golden model.

Driven by a job file (``SPARSE_PE_JOB``, written by :func:`sim.verilator.run_job`). For every layer:

1. load every image through ``load`` with random idle cycles (``load_gap``),
2. pulse ``start`` and wait for ``done`` on an edge trigger (no per-cycle polling during compute),
3. read the ``M*E*F`` outputs from ``o`` under random backpressure (``backpressure``),
4. compare outputs (bit-exact vs ``golden.conv``), cycles (exact vs ``golden.timing``) and every
   performance counter; record everything in the results file, and fail the test on a mismatch when
   the job says ``check``.

A layer item may carry its own ``seed``, ``load_gap`` and ``backpressure`` (``sim.regress``: every
layer's stalls are then those of a one-layer job with that seed, so a failure reproduces alone). A
layer that never raises ``done`` is recorded as a hang and the array is reset before the next one.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout

from golden.check import check_run
from golden.config import ArrayConfig
from golden.encode import encode
from golden.layerio import load_layer
from golden.timing import simulate
from golden.words import Packing, to_signed

PERIOD_NS = 10


class ArrayTB:
    """Owns the clock, the load driver and the output monitor of one DUT."""

    def __init__(self, dut, manifest: dict, seed: int):
        self.dut = dut
        self.cfg = ArrayConfig.from_dict(manifest["params"])
        self.pack = Packing.from_manifest(manifest)
        self.rng = random.Random(seed)
        self.log = dut._log.getChild("tb")

    async def reset(self, clock: bool = True) -> None:
        """Hold ``rst`` for three cycles with every input idle (``clock``: start the clock first)."""
        if clock:
            cocotb.start_soon(Clock(self.dut.clk, PERIOD_NS, unit="ns").start())
        d = self.dut
        d.rst.value = 1
        d.load__valid.value = 0
        d.o__ready.value = 0
        d.start.value = 0
        d.cfg.value = 0
        for _ in range(3):
            await RisingEdge(d.clk)
        d.rst.value = 0
        await RisingEdge(d.clk)

    async def load(self, words: list[int], gap: float) -> None:
        d = self.dut
        for w in words:
            while gap and self.rng.random() < gap:
                d.load__valid.value = 0
                await RisingEdge(d.clk)
            d.load__payload.value = w
            d.load__valid.value = 1
            await RisingEdge(d.clk)
            while not d.load__ready.value:
                await RisingEdge(d.clk)
        d.load__valid.value = 0

    async def run(self, config_word: int, timeout_cycles: int) -> int:
        """Start the layer and return the cycles from ``start`` to ``done`` (fail after ``timeout_cycles``)."""
        d = self.dut
        d.cfg.value = config_word
        d.start.value = 1
        await RisingEdge(d.clk)
        t0 = cocotb.utils.get_sim_time(unit="ns")
        d.start.value = 0
        await with_timeout(RisingEdge(d.done), timeout_cycles * PERIOD_NS, "ns")
        t1 = cocotb.utils.get_sim_time(unit="ns")
        return round((t1 - t0) / PERIOD_NS)

    async def read_outputs(self, n: int, backpressure: float) -> list[int]:
        """Read ``n`` outputs; fewer if the array offers none for 1000 cycles in a row (a bug: say so)."""
        d = self.dut
        out: list[int] = []
        quiet = 0
        while len(out) < n and quiet < 1000:
            ready = not (backpressure and self.rng.random() < backpressure)
            d.o__ready.value = int(ready)
            await RisingEdge(d.clk)
            quiet += 1
            if ready and d.o__valid.value:
                out.append(to_signed(int(d.o__payload.value), self.cfg.acc_bits))
                quiet = 0
        d.o__ready.value = 0
        return out


async def run_one(tb: ArrayTB, layer, item: dict, job: dict) -> dict:
    """Load, run and read back one layer; the verdict and what was measured (never raises on a mismatch)."""
    dut = tb.dut
    if "seed" in item:  # stalls of this layer alone, as in a one-layer job with that seed (sim.regress)
        tb.rng.seed(item["seed"])
    enc = encode(layer, tb.cfg)
    await tb.load(tb.pack.load_words(enc), item.get("load_gap", job.get("load_gap", 0.0)))
    timeout = 4 * simulate(enc).busy_cycles + 100
    cycles = await tb.run(tb.pack.config_word(enc), timeout)
    n = layer.m * layer.e * layer.f
    outs = await tb.read_outputs(n, item.get("backpressure", job.get("backpressure", 0.0)))
    perf = tb.pack.unpack("perf", int(dut.perf.value))  # settled one cycle after done
    short = [] if len(outs) == n else [f"only {len(outs)} of {n} outputs came out"]
    outputs = np.array(outs + [0] * (n - len(outs)), dtype=np.int64).reshape(layer.m, layer.e, layer.f)
    verdict = check_run(enc, outputs, perf, cycles)
    return {"outputs": outputs, "outputs_match": verdict.outputs_match and not short, "cycles": cycles,
            "predicted_cycles": verdict.predicted["busy_cycles"], "perf": perf, "predicted_perf": verdict.predicted,
            "problems": short + verdict.problems}


@cocotb.test()
async def run_layers(dut):
    job = json.loads(Path(os.environ["SPARSE_PE_JOB"]).read_text())
    manifest = json.loads(Path(job["manifest"]).read_text())
    tb = ArrayTB(dut, manifest, job.get("seed", 0))
    await tb.reset()
    results = []
    errors = []
    for i, item in enumerate(job["layers"]):
        layer = load_layer(item["npz"])
        out_npy = Path(job["results"]).with_name(f"outputs_{i}.npy")
        try:
            run = await run_one(tb, layer, item, job)
        except SimTimeoutError:
            # a hang: record it, reset the array and go on with the next layer of the job
            predicted = simulate(encode(layer, tb.cfg)).to_dict()
            run = {"outputs": None, "outputs_match": False, "cycles": None,
                   "predicted_cycles": predicted["busy_cycles"], "perf": {}, "predicted_perf": predicted,
                   "problems": ["no done within 4x the predicted cycles (hang); the array was reset"]}
            await tb.reset(clock=False)
        if run["outputs"] is not None:
            np.save(out_npy, run["outputs"])
        res = {"npz": item["npz"], "outputs": str(out_npy) if run["outputs"] is not None else None,
               **{k: run[k] for k in ("outputs_match", "cycles", "predicted_cycles", "perf", "predicted_perf",
                                      "problems")}}
        if run["problems"]:
            res["error"] = f"layer {i} ({item['npz']}): " + "; ".join(run["problems"])
            errors.append(res["error"])
            tb.log.error(res["error"])
        else:
            tb.log.info("layer %d ok: %d cycles", i, run["cycles"])
        results.append(res)
    Path(job["results"]).write_text(json.dumps(results, indent=1))
    if job.get("check", True):
        assert not errors, "\n".join(errors)
