"""What every command line of the project shares: one-line errors and early checks of output paths.

``Parser`` is ``argparse.ArgumentParser`` whose errors are ONE line on stderr, exit status 2::

    python -m sim.run: error: --rows must be in [1, 64], not 0 (see python -m sim.run --help)

instead of the whole usage block before the line that matters. Subparsers (``add_subparsers``) inherit it.

``OutputFile`` and ``OutputDir`` are argparse actions for arguments that name something the command
writes. They check the path while the command line is parsed, i.e. before any work (a simulation or a
synthesis may take minutes), so a typo in an output path never costs a run:

* ``OutputFile``: a file; its directory must exist and it must not be a directory;
* ``OutputDir``: a directory the command creates (with its parents); it must not be a file.

The array flags (one ``--flag`` per :class:`~golden.config.ArrayConfig` field, :func:`add_array_arguments`)
live here too, so every command that builds or runs an array (``hdl.generate``, ``hdl.synth``, ``sim.run``,
``sim.regress``, ``host.board``, ``host.net``, ``bench.fpga_area``) spells and checks them the same way.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import NoReturn

from .config import DATAFLOWS, FEED_RULE, ArrayConfig, feed_for


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


# --- the array flags ---

_ARRAY_HELP = {
    "rows": "PE rows (output pixel rows per tile)",
    "cols": "PE columns (output pixel columns per tile)",
    "acc_depth": "accumulators per PE = filters processed together",
    "act_bits": "signed activation width",
    "weight_bits": "signed weight width",
    "acc_bits": "accumulator width (wraps, two's complement)",
    "max_kernel": "largest kernel size R, S supported",
    "max_stride": "largest stride supported",
    "lanes": "multiply lanes per PE: kernel positions issued per cycle (1 .. max_kernel**2); the loader and "
             "drain follow it unless --act-lanes, --act-rows or --drain-lanes are given",
    "act_lanes": "activations of a window row the tile loader reads per cycle",
    "act_rows": "window rows the tile loader reads at once (act_rows*act_lanes activation-buffer read ports)",
    "drain_lanes": "outputs the drain writes per cycle (output-buffer banks; a power of two <= cols, capped there)",
    "act_depth": "activation buffer depth in words (>= C*H*W)",
    "weight_depth": "weight buffer depth in words (>= stored weights)",
    "index_depth": "each index buffer's depth in words (sparse dataflows)",
    "out_depth": "output buffer depth in words (>= M*E*F)",
    "acc_pipeline": "1: registered accumulator read + forwarding (fast clocks); 0: one-cycle read-add-write (small)",
    "epilogue": "1: an output stage in the drain: bias or partial sums added to the sums, ReLU, "
                "requantization and saturation to act_bits (int8 layers in passes, channel chunks; "
                "2*drain_lanes more multipliers); 0: raw sums, layers must fit the buffers channel-wise",
    "param_depth": "output channels per pass the output stage holds a bias and requantization for (with --epilogue 1)",
    "perf_bits": "performance-counter width (a run must take < 2**N cycles)",
    "dsp_packing": "products per multiplier: 2 shares one 18x18 multiplier (per lane) between neighbouring PE "
                   "columns, half the DSP blocks for a small correction, same results (one pipeline cycle more; 8-bit "
                   "operands at most; ECP5)",
    "chunks": "1: also build the chunk mapping (PE rows take runs of cols consecutive outputs in raster order: "
              "less PE idle at output edges; the host picks the faster mapping per layer); 0: pixel tiles only",
}


def add_array_arguments(parser: argparse.ArgumentParser, dataflow: bool = True, lanes: bool = True) -> None:
    """Add one ``--flag`` per :class:`ArrayConfig` field (shared by every command that builds an array);
    ``dataflow=False`` leaves out ``--sparsity`` and ``lanes=False`` ``--lanes`` for a command that takes
    several (it must then set ``args.dataflow`` or ``args.lanes`` itself before :func:`array_config_from_args`)."""
    defaults = ArrayConfig()
    if dataflow:
        parser.add_argument("--sparsity", "--dataflow", dest="dataflow", choices=DATAFLOWS,
                            default=defaults.dataflow, help="dataflow: which zeros the sequencer skips "
                                                            "(default: %(default)s)")
    feed_fields = set(feed_for(defaults.lanes, defaults.cols))
    for f in fields(ArrayConfig):
        if f.name == "dataflow" or (f.name == "lanes" and not lanes):
            continue
        if f.name in feed_fields:  # None: ArrayConfig resolves it from --lanes (golden.config.feed_for)
            parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=None, metavar="N",
                                help=f"{_ARRAY_HELP[f.name]} (default: by --lanes: {_feed_rule(f.name)})")
            continue
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=getattr(defaults, f.name),
                            metavar="N", help=f"{_ARRAY_HELP[f.name]} (default: %(default)s)")


def _feed_rule(name: str) -> str:
    """``golden.config.FEED_RULE``'s values of one feed field, for its flag's help: ``V>=1: 2, V>=5: 3, ...``."""
    return ", ".join(f"V>={v}: {feed[name]}" for v, feed in FEED_RULE)


def describe(cfg: ArrayConfig) -> str:
    """One line naming the array: dataflow, shape, lanes, filters per pass and every other parameter that
    differs from the default array's (a feed that followed the lanes included)."""
    rest = "".join(f", {k} {v}" for k, v in cfg.changed().items()
                   if k not in ("dataflow", "rows", "cols", "lanes", "acc_depth"))
    return (f"{cfg.dataflow} array {cfg.rows}x{cfg.cols}, {cfg.lanes} lane{'s' if cfg.lanes > 1 else ''} per PE, "
            f"acc_depth {cfg.acc_depth}{rest}")


def array_config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ArrayConfig:
    """Build the :class:`ArrayConfig`, turning a bad parameter into a one-line error (exit 2)."""
    try:
        return ArrayConfig(**{f.name: getattr(args, f.name) for f in fields(ArrayConfig)})
    except ValueError as e:
        msg = str(e)
        for f in fields(ArrayConfig):  # name the command-line flag, not the Python field
            if msg.startswith(f.name + " "):
                msg = "--" + f.name.replace("_", "-") + msg[len(f.name):]
                break
        parser.error(msg)
