"""What every command line of the project shares: one-line errors and early checks of output paths.

``Parser`` is ``argparse.ArgumentParser`` whose errors are ONE line on stderr, exit status 2::

    python -m sim.run: error: --rows must be in [1, 64], not 0 (see python -m sim.run --help)

instead of the whole usage block before the line that matters. Subparsers (``add_subparsers``) inherit it.

``OutputFile`` and ``OutputDir`` are argparse actions for arguments that name something the command
writes. They check the path while the command line is parsed, i.e. before any work (a simulation or a
synthesis may take minutes), so a typo in an output path never costs a run:

* ``OutputFile``: a file; its directory must exist and it must not be a directory;
* ``OutputDir``: a directory the command creates (with its parents); it must not be a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line ``<prog>: error: <message> (see <prog> --help)``
    on stderr, exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def output_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written as a file (its directory missing, or it is a directory), or ``None``."""
    parent = path.parent
    if path.is_dir():
        return f"{path} is a directory; give a file name"
    if not parent.exists():
        return f"directory {parent} does not exist; create it first"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    return None


def output_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be created or used as a directory (it or an ancestor is a file), or ``None``."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else f"{p} is a file, not a directory"
    return None


class _Output(argparse.Action):
    _problem = staticmethod(output_file_problem)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        path = Path(values)  # type: ignore[arg-type]
        problem = self._problem(path)
        if problem:
            parser.error(f"{option_string or self.dest}: {problem}")
        setattr(namespace, self.dest, path)


class OutputFile(_Output):
    """``add_argument(..., action=OutputFile)``: a file the command writes (a ``Path``); its directory must
    exist, checked while parsing."""


class OutputDir(_Output):
    """``add_argument(..., action=OutputDir)``: a directory the command creates (a ``Path``); it must not
    be a file, checked while parsing."""

    _problem = staticmethod(output_dir_problem)

