"""An install that is not editable works: the wheel carries what the code reads, and writes nowhere in it.

``pip install ./clone`` (no ``-e``) once gave a tool whose native driver, board files and lint waivers
were missing (they are data, not modules) and whose Verilator cache went into ``site-packages``. The
default test builds the wheel and checks its file list; the slow one installs it into a fresh virtual
environment and runs the tool from a directory outside the clone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

from golden.paths import CACHE_ENV, source_checkout

CHECKOUT = source_checkout()
PACKAGE_DATA = ("hdl/lint.vlt", "sim/native_main.cpp", "hdl/constraints/icebreaker.json",
                "hdl/constraints/ulx3s-85f.json", "hdl/constraints/README.md", "host/digits.npz",
                "bench/claims.json")
"""Files the code reads at run time (``pyproject.toml``'s package-data)."""

pytestmark = pytest.mark.skipif(CHECKOUT is None, reason="builds the wheel from the source checkout")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built by pip from a copy of the checkout (so that the build's own ``build/``
    and ``*.egg-info`` never touch the checkout, whose ``build/`` holds the Verilator cache)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(CHECKOUT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".*venv*", "tests", "docs", "results", "report"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"),
                           str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (built,) = (work / "dist").glob("sparse_pe_gen-*.whl")
    return built


def test_wheel_carries_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGE_DATA) <= names
    assert not any(n.startswith(("build/", "tests/", "constraints/")) for n in names)


def _run(venv_python: Path, args: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run([str(venv_python), *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_installed_wheel_runs_from_another_directory(wheel, tmp_path):
    # A fresh venv with the wheel installed (not editable). Its dependencies come from this environment
    # through a plain path in a .pth file: that adds the directory to sys.path *after* the venv's own
    # site-packages and does not run the .pth files in it, so this checkout's editable finder stays out.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps-of-the-test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "-q", str(wheel)], check=True)
    installed = sorted(p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", CACHE_ENV)}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")

    # the installed copy is what runs, not the checkout
    files = json.loads(_run(python, ["-c", "import json, golden, hdl, sim; "
                                     "print(json.dumps([m.__file__ for m in (golden, hdl, sim)]))"], elsewhere, env))
    assert all(Path(f).is_relative_to(site) for f in files), files

    boards = _run(python, ["-c", "from hdl.boards import board_names; print(' '.join(board_names()))"], elsewhere, env)
    assert boards.split() == ["icebreaker", "ulx3s-85f"]

    _run(python, ["-m", "hdl.generate", "--rows", "2", "--cols", "2"], elsewhere, env)
    assert (elsewhere / "build" / "sparse_pe_array.v").exists()  # -o build: relative to the user's directory

    rng = np.random.default_rng(3)
    np.savez(elsewhere / "layer.npz", weights=rng.integers(-8, 8, (2, 2, 3, 3)),
             activations=rng.integers(-8, 8, (2, 5, 5)), stride=1, padding=1)
    _run(python, ["-m", "sim.run", "--sparsity", "kernel", "--rows", "2", "--cols", "2", "--layer", "layer.npz",
                  "--harness", "native", "--json", "report.json"], elsewhere, env)
    report = json.loads((elsewhere / "report.json").read_text())
    assert report["outputs_match"] and report["cycles"] == report["predicted_cycles"]

    # the model was cached in the user's cache directory, and nothing was written into the install
    assert list((tmp_path / "cache" / "sparse-pe-gen" / "verilator").glob("native-kernel-*"))
    after = sorted(p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts)
    assert after == installed
