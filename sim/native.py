"""Run layers on the Verilated array with a native C++ driver: no Python and no VPI in the per-cycle loop.

The cocotb testbench (:mod:`sim.tb_accelerator`) awaits one clock edge from Python per load word and
per output read, which bounds a whole network's simulation by Python, not by the model
(``bench.simspeed`` measures both). This harness compiles the same Verilated model (same options,
:data:`sim.verilator.MODEL_ARGS`) with a small C++ driver (``sim/native_main.cpp``) and hands it a job
file of whole layers: it loads every word, runs, reads every output back, with the same handshake and
the same kind of random load gaps and output backpressure as the cocotb testbench, and writes the
results; Python packs the job before and checks the results against the golden model after
(:func:`golden.check.check_run`, the verdict every harness shares). The results have the form of
:func:`sim.verilator.run_layers`', so a caller switches harness with one argument.

The stalls are drawn by the driver's own generator (splitmix64 from the job's or the layer's seed): a
seed reproduces the same run here, not the same stall pattern as in the cocotb testbench.

The driver runs as ``Vsparse_pe_array JOB RESULTS [WAVES]``: a model built with ``trace=`` (see
:func:`build_native`) takes a third argument and dumps every eval there, VCD or FST as it was built.

Job file (text, whitespace-separated tokens, written by :func:`write_job`)::

    sparse-pe-native-job-1
    seed <stall seed of the job>
    layer <load words> <outputs> <timeout cycles> <load gap> <backpressure> <stall seed or -> <config hex>
    <load word hex> ...                       (then the next "layer")

Results file (written by the driver)::

    sparse-pe-native-results-1
    clocked <edges> seconds <wall seconds of the simulation loop>
    load|compute|read <edges> <seconds>       (one line per phase)
    layer done|hang <cycles start to done> <perf hex or -> <outputs read>
    <output hex> ...                          (then the next "layer")
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.check import check_run
from golden.config import ArrayConfig
from golden.encode import encode
from golden.timing import simulate
from golden.words import Packing, to_signed
from hdl.generate import TOP

from .verilator import (
    DEFAULT_BUILD_ROOT,
    MODEL_ARGS,
    TRACE_FORMATS,
    build_label,
    check_fits,
    compile_cached,
    ensure_verilator,
    generated,
    make_flags,
    trace_format,
)

DRIVER = Path(__file__).with_name("native_main.cpp")
JOB_MAGIC = "sparse-pe-native-job-1"
RESULTS_MAGIC = "sparse-pe-native-results-1"
QUIET_CYCLES = 1000
"""Cycles without an output after which the driver stops reading a layer (as the cocotb testbench)."""


@dataclass(frozen=True)
class NativeBuild:
    cfg: ArrayConfig
    directory: Path
    binary: Path
    manifest: dict


@dataclass
class Rates:
    """Where a native job's time went: the driver's own loop (``clocked`` edges in ``seconds``, and per
    phase: load, compute, read), and the wall seconds of the job's three steps as Python saw them:
    ``prepare`` (encode, pack, write the job), ``driver`` (the driver process: start, parse, simulate,
    write) and ``check`` (read the results, compare with the golden model)."""

    clocked: int
    seconds: float
    phases: dict[str, tuple[int, float]]
    prepare: float = 0.0
    driver: float = 0.0
    check: float = 0.0

    @property
    def per_second(self) -> float:
        """The model's own rate: clocked cycles per second of the driver's loop (no Python in it)."""
        return self.clocked / self.seconds if self.seconds else float("inf")


def _compile_native(v_path: Path, j_path: Path, directory: Path, top: str, verbose: bool,
                    trace: str | None = None) -> None:
    binary = ensure_verilator()
    for src in (v_path, j_path, DRIVER):
        (directory / src.name).write_bytes(src.read_bytes())
    log = directory / "build.log"
    cmd = [str(binary), "--cc", "--exe", "--build", "-j", "2", *MODEL_ARGS, *TRACE_FORMATS.get(trace, []),
           "--top-module", top, "-Mdir", "obj", "-o", f"V{top}", v_path.name, DRIVER.name]
    with make_flags(), open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=directory, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise RuntimeError(f"Verilator build of the native driver failed; see {log}")


_BUILT: dict[tuple[ArrayConfig, Path, str | None], NativeBuild] = {}
"""The builds this process has made or found, by (config, root, trace): generating the Verilog only to
hash it takes seconds to minutes, and a network run asks for the same array once per layer and image."""


def build_native(cfg: ArrayConfig, root: Path = DEFAULT_BUILD_ROOT, verbose: bool = False,
                 trace: str | None = None) -> NativeBuild:
    """Generate, and compile the model with the native driver unless an identical build exists (the
    cache of :func:`sim.verilator.build`, keyed also by the driver's source); ``trace`` (a key of
    :data:`sim.verilator.TRACE_FORMATS`) compiles the driver's waveform dump in. A build this process
    already made (still on disk) is returned without generating again (:data:`_BUILT`)."""
    known = _BUILT.get((cfg, Path(root), trace))
    if known is not None and (known.directory / "BUILT").exists():
        return known
    ensure_verilator()
    root.mkdir(parents=True, exist_ok=True)
    v_path, j_path = generated(cfg, root)
    directory = compile_cached(root, "native-" + build_label(cfg), v_path, j_path, TOP, verbose,
                                compile_fn=_compile_native, extra=DRIVER.read_bytes(), trace=trace)
    manifest = json.loads((directory / f"{TOP}.json").read_text())
    nb = _BUILT[(cfg, Path(root), trace)] = NativeBuild(cfg, directory, directory / "obj" / f"V{TOP}", manifest)
    return nb


def write_job(path: Path, pack: Packing, encs: list, stalls: list[dict], seed: int) -> None:
    """Write the job file for the encoded layers ``encs`` (each with its entry of ``stalls``)."""
    lines = [JOB_MAGIC, f"seed {seed}"]
    for enc, st in zip(encs, stalls, strict=True):
        ly = enc.layer
        words = pack.load_words(enc)
        timeout = 4 * simulate(enc).busy_cycles + 100  # as the cocotb testbench: a hang is 4x the prediction
        reseed = str(st["seed"]) if "seed" in st else "-"
        lines.append(f"layer {len(words)} {ly.m * ly.e * ly.f} {timeout} {st.get('load_gap', 0.0)!r} "
                     f"{st.get('backpressure', 0.0)!r} {reseed} {pack.config_word(enc):x}")
        lines.append("\n".join(f"{w:x}" for w in words))
    path.write_text("\n".join(lines) + "\n")


def read_results(path: Path) -> tuple[Rates, list[dict]]:
    """Parse the driver's results: its rates and, per layer, ``hang``, ``cycles``, ``perf``, ``outputs``
    (raw unsigned words)."""
    tokens = iter(path.read_text().split())
    if next(tokens, None) != RESULTS_MAGIC:
        raise RuntimeError(f"{path} is not a native driver results file")
    _, clocked, _, seconds = next(tokens), int(next(tokens)), next(tokens), float(next(tokens))
    phases = {}
    for _ in range(3):
        name = next(tokens)
        phases[name] = (int(next(tokens)), float(next(tokens)))
    layers = []
    for tok in tokens:
        assert tok == "layer", tok
        state, cycles, perf, n = next(tokens), int(next(tokens)), next(tokens), int(next(tokens))
        layers.append({"hang": state == "hang", "cycles": cycles, "perf": None if perf == "-" else int(perf, 16),
                       "outputs": [int(next(tokens), 16) for _ in range(n)]})
    return Rates(clocked, seconds, phases), layers


def run_native(b: NativeBuild, layers: list, name: str = "layers", *, seed: int = 0, load_gap: float = 0.0,
               backpressure: float = 0.0, stalls: list[dict] | None = None,
               waves: Path | None = None, mapping: str | None = None) -> tuple[list[dict], Rates]:
    """Run ``layers`` on a native build: the per-layer results (as :func:`sim.verilator.run_layers`) and
    the driver's rates. Never raises on a mismatch: every result carries its ``problems``. ``waves``:
    the driver dumps the job's waveform there (the build must be traced in that file's format); ``mapping``:
    every layer's mapping of output pixels (``golden.encode.encode``; default: the faster)."""
    cfg = b.cfg
    t0 = time.perf_counter()
    pack = Packing.from_manifest(b.manifest)
    encs = [encode(layer, cfg, mapping) for layer in layers]
    if stalls is None:
        stalls = [{"load_gap": load_gap, "backpressure": backpressure}] * len(layers)
    work = b.directory / "runs" / name
    work.mkdir(parents=True, exist_ok=True)
    job, out = work / "job.txt", work / "results.txt"
    out.unlink(missing_ok=True)
    write_job(job, pack, encs, stalls, seed)
    t1 = time.perf_counter()
    trace_arg = [str(waves)] if waves is not None else []
    proc = subprocess.run([str(b.binary), str(job), str(out), *trace_arg], capture_output=True, text=True)
    t2 = time.perf_counter()
    if proc.returncode or not out.exists():
        raise RuntimeError(f"the native driver failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-500:] or 'no message'}")
    rates, raw = read_results(out)
    if len(raw) != len(layers):
        raise RuntimeError(f"the native driver reported {len(raw)} of {len(layers)} layers")
    results = [_verdict(pack, enc, r, work / f"outputs_{i}.npy")
               for i, (enc, r) in enumerate(zip(encs, raw, strict=True))]
    rates.prepare, rates.driver, rates.check = t1 - t0, t2 - t1, time.perf_counter() - t2
    return results, rates


def _verdict(pack: Packing, enc, r: dict, out_npy: Path) -> dict:
    """One layer's result in the form of the cocotb testbench's (``sim.tb_accelerator``)."""
    ly, cfg = enc.layer, enc.cfg
    if r["hang"]:
        predicted = simulate(enc).to_dict()
        return {"npz": None, "outputs": None, "outputs_match": False, "cycles": None,
                "predicted_cycles": predicted["busy_cycles"], "perf": {}, "predicted_perf": predicted,
                "problems": ["no done within 4x the predicted cycles (hang); the array was reset"]}
    n = ly.m * ly.e * ly.f
    outs = [to_signed(v, cfg.acc_bits) for v in r["outputs"]]
    short = [] if len(outs) == n else [f"only {len(outs)} of {n} outputs came out"]
    outputs = np.array(outs + [0] * (n - len(outs)), dtype=np.int64).reshape(ly.m, ly.e, ly.f)
    np.save(out_npy, outputs)
    perf = pack.unpack("perf", r["perf"])
    verdict = check_run(enc, outputs, perf, r["cycles"])
    problems = short + verdict.problems
    return {"npz": None, "outputs": str(out_npy), "outputs_match": verdict.outputs_match and not short,
            "cycles": r["cycles"], "predicted_cycles": verdict.predicted["busy_cycles"], "perf": perf,
            "predicted_perf": verdict.predicted, "problems": problems}


def run_layers_native(cfg: ArrayConfig, layers: list, name: str = "layers", *, seed: int = 0,
                      load_gap: float = 0.0, backpressure: float = 0.0, check: bool = True,
                      root: Path = DEFAULT_BUILD_ROOT, stalls: list[dict] | None = None,
                      waves: Path | None = None, mapping: str | None = None) -> list[dict]:
    """:func:`sim.verilator.run_layers` on the native driver (same arguments, same results)."""
    if stalls is not None and len(stalls) != len(layers):
        raise ValueError(f"stalls has {len(stalls)} entries for {len(layers)} layers")
    check_fits(cfg, layers)
    trace = trace_format(waves) if waves is not None else None
    results, _ = run_native(build_native(cfg, root, trace=trace), layers, name, seed=seed, load_gap=load_gap,
                            backpressure=backpressure, stalls=stalls, waves=waves, mapping=mapping)
    errors = [f"layer {i}: " + "; ".join(r["problems"]) for i, r in enumerate(results) if r["problems"]]
    if check and errors:
        raise AssertionError("native run failed: " + "; ".join(errors))
    return results


