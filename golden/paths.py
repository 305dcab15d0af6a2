"""Where the project keeps what it builds, and how generated files name paths.

The packages run either from a **source checkout** (the clone, installed with ``pip install -e`` or
run in place: ``pyproject.toml`` sits next to the packages) or from an **installed** copy
(``pip install ./clone`` or a wheel: the packages are in ``site-packages``). Nothing may be written
into an installed tree, so caches and builds (Verilator models, FPGA builds, failing regression
layers) go to one root, :func:`cache_root`, chosen by one rule:

1. ``$SPARSE_PE_CACHE`` if it is set (the user names the directory);
2. else ``build/`` of the source checkout the code runs from (what the README and the tests describe:
   ``build/verilator/``, ``build/synth/``, ``build/regress/``);
3. else the user's cache directory, ``$XDG_CACHE_HOME/sparse-pe-gen`` (``~/.cache/sparse-pe-gen`` when
   ``XDG_CACHE_HOME`` is unset).

Commands with ``--build-dir``/``-o`` still take the directory the user names over all three.

The measurement commands (``bench``) keep their records in ``bench/results/`` of :func:`records_root`:
the checkout, or the current directory when installed. Generated files (reports, result records)
name files by :func:`display_path`: relative to the
checkout, never an absolute path of the machine that wrote them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CACHE_ENV = "SPARSE_PE_CACHE"
"""Environment variable naming the cache and build root (rule 1 of :func:`cache_root`)."""
APP_NAME = "sparse-pe-gen"
"""The distribution's name (``pyproject.toml``): the directory name in the user's cache directory."""
PACKAGES_ROOT = Path(__file__).resolve().parent.parent
"""The directory that holds the project's packages: the checkout, or ``site-packages`` when installed."""


def source_checkout() -> Path | None:
    """The source checkout the packages run from, or ``None`` for an installed copy (no ``pyproject.toml``
    beside the packages: ``site-packages`` has none)."""
    return PACKAGES_ROOT if (PACKAGES_ROOT / "pyproject.toml").is_file() else None


def cache_root() -> Path:
    """The root of every cache and build directory (the module docstring has the rule)."""
    named = os.environ.get(CACHE_ENV, "")
    if named:
        return Path(named).expanduser()
    checkout = source_checkout()
    if checkout is not None:
        return checkout / "build"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if xdg else Path.home() / ".cache") / APP_NAME


def cache_dir(*parts: str) -> Path:
    """``cache_root() / parts`` (not created: the writer creates it when it first writes)."""
    return cache_root().joinpath(*parts)


def records_root() -> Path:
    """The directory whose ``bench/results/`` and ``bench/report/`` the measurement commands write by
    default: the source checkout (where the records are kept under version control), else the current
    directory — an installed copy's own ``bench/`` is never written."""
    return source_checkout() or Path.cwd()


def display_path(path: str | Path) -> str:
    """``path`` as a generated file should name it: relative to the checkout when inside it (forward
    slashes), else just its file name — never the absolute path of the machine that ran the command."""
    path = Path(path).resolve()
    checkout = source_checkout()
    if checkout is not None and path.is_relative_to(checkout):
        return path.relative_to(checkout).as_posix()
    return path.name


def unrooted(text: str) -> str:
    """``text`` (a tool's log line) with the directory that holds the packages cut from the paths in it:
    source locations such as ``/home/me/clone/hdl/loader.py:134`` become ``hdl/loader.py:134``."""
    return text.replace(f"{PACKAGES_ROOT}{os.sep}", "")


def git(*args: str) -> str:
    """Output of ``git ARGS`` run in the code's own tree ("" without git or outside a checkout): read-only
    calls that let a record say which source it measured."""
    try:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                              text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def git_commit() -> str:
    """``HEAD``'s short hash, with ``+dirty`` when tracked files have changes ("" outside a checkout)."""
    head = git("rev-parse", "--short", "HEAD").strip()
    dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    return head + ("+dirty" if dirty and head else "")
