"""One host API for every way the array runs layers: :func:`run_layers` ``(cfg, layers, target)``.

A **target** says what runs the generated array:

* ``native``: the Verilated model driven by the C++ driver of :mod:`sim.native` (fast; the default);
* ``cocotb``: the Verilated model driven by the cocotb testbench :mod:`sim.tb_accelerator`;
* ``pysim``: the array in Amaranth's Python simulator (:mod:`sim.pysim`; no Verilator, slow);
* ``board:PORT``: a board programmed with ``python -m hdl.synth``, over its USB-UART at ``PORT``
  (:mod:`golden.protocol`); ``board:sim`` sends the same byte stream to the UART bridge in Amaranth's
  simulator instead (:func:`host.link.simulate_session`).

Every target returns the same per-layer results (the outputs as an array, the cycles measured from
``start`` to ``done`` where the target can measure them independently of the counters, the counters,
and the golden model's verdicts through :func:`golden.check.check_run`), so a caller such as
``host.net`` is written once, and a layer larger than the buffers runs in passes on any target through
:func:`sim.run.run_passes` (``host.board run`` does). Random load gaps and output backpressure exist on
the Verilator targets only (a board's link sets its own pace, and neither changes the cycle count).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.check import check_run
from golden.config import ArrayConfig
from golden.encode import encode
from golden.protocol import Protocol, drive, layer_session
from hdl.generate import manifest
from sim.pysim import run_pysim
from sim.run import verilator_runner
from sim.verilator import DEFAULT_BUILD_ROOT

from .link import serial_exchange, simulate_session

TARGETS = ("native", "cocotb", "pysim", "board:PORT", "board:sim")
TARGET_HELP = ("what runs the array: native (Verilator, C++ driver), cocotb (Verilator, cocotb testbench), pysim "
               "(Amaranth's simulator), board:PORT (a programmed board on serial port PORT), board:sim (the board's "
               "UART bridge in Amaranth's simulator)")


@dataclass(frozen=True)
class Target:
    """A parsed target: ``kind`` is ``native``, ``cocotb``, ``pysim`` or ``board`` (then ``port``)."""

    kind: str
    port: str | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        kind, _, port = text.partition(":")
        if kind in ("native", "cocotb", "pysim") and not port:
            return cls(kind)
        if kind == "board" and port:
            return cls(kind, port)
        raise ValueError(f"unknown target {text!r}; choose native, cocotb, pysim, board:PORT (e.g. "
                         f"board:/dev/ttyUSB0) or board:sim")

    @property
    def parallel(self) -> bool:
        """Whether several jobs may run at once (a board runs one layer at a time)."""
        return self.kind != "board"

    def __str__(self) -> str:
        return self.kind if self.port is None else f"{self.kind}:{self.port}"


def result(enc, outputs: np.ndarray, perf: dict[str, int], cycles: int | None) -> dict:
    """One layer's result in the common form (that of :func:`sim.verilator.run_layers`, outputs as an
    array); ``cycles`` ``None``: the target measures none apart from the counters."""
    verdict = check_run(enc, outputs, perf, cycles)
    return {"outputs": outputs, "outputs_match": verdict.outputs_match,
            "cycles": perf["busy_cycles"] if cycles is None else cycles,
            "predicted_cycles": verdict.predicted["busy_cycles"], "perf": perf, "predicted_perf": verdict.predicted,
            "problems": verdict.problems}


def run_layers(cfg: ArrayConfig, layers: list, target: Target | str = "native", *, name: str = "layers",
               seed: int = 0, load_gap: float = 0.0, backpressure: float = 0.0, baud: int = 115_200,
               timeout: float = 5.0, build_root: Path | None = None) -> list[dict]:
    """Run ``layers`` (``golden.layer.Layer``) on ``target``, in order; one result per layer (see the
    module docstring). ``seed``, ``load_gap``, ``backpressure``: the Verilator targets' stalls;
    ``baud``, ``timeout`` (seconds per reply): a board's link. Never raises on a mismatch."""
    t = target if isinstance(target, Target) else Target.parse(target)
    if t.kind in ("native", "cocotb"):
        kw = dict(seed=seed, load_gap=load_gap, backpressure=backpressure, check=False,
                  root=build_root or DEFAULT_BUILD_ROOT, harness=t.kind)
        return verilator_runner(kw, name)(cfg, layers)
    encs = [encode(layer, cfg) for layer in layers]
    if t.kind == "pysim":
        runs = [run_pysim(enc) for enc in encs]
        return [result(enc, r.outputs, r.perf, r.cycles) for enc, r in zip(encs, runs, strict=True)]
    proto = Protocol(manifest(cfg))
    out = []
    for enc in encs:
        session = layer_session(proto, enc)
        run = (simulate_session(cfg, session, baud=baud) if t.port == "sim"
               else drive(session, serial_exchange(t.port, baud, timeout)))
        out.append(result(enc, run.outputs, run.perf, None))
    return out
