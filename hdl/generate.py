"""``python -m hdl.generate``: emit the Verilog of one PE array and its JSON manifest.

The manifest is the one description of the generated hardware that the testbenches, the layer
runner and synthesis read: every generator parameter, derived sizes, the ports with their widths and
the bit offsets of every packed struct field.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import fields
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from golden.cli import OutputDir, Parser
from golden.config import DATAFLOWS, FEED_RULE, ArrayConfig, feed_for
from golden.encode import load_targets

from .accelerator import Accelerator
from .layouts import config_layout, load_layout, perf_layout

TOP = "sparse_pe_array"
MANIFEST_VERSION = 1

_ZERO_INIT = re.compile(
    r"  initial begin\n((?:    (\\?\S+?) ?\[\d+\] = \d+'[hbd]0+;\n)+)  end\n")


def compact_zero_inits(text: str) -> str:
    """Replace Yosys' one-line-per-word zero initialisation of memories by a loop.

    Amaranth 0.5 always zero-initialises ``lib.memory.Memory`` and Yosys writes one assignment per
    word (amaranth-lang/amaranth#1522): megabytes of Verilog for our buffers and minutes of Verilator
    compile time. A ``for`` loop is equivalent, so only the text changes, never the behaviour.
    """
    counter = 0

    def repl(match: re.Match) -> str:
        nonlocal counter
        lines = match.group(1).splitlines()
        name = match.group(2)
        depth = len(lines)
        counter += 1
        var = f"_zinit{counter}"
        return (f"  integer {var};\n  initial begin\n    for ({var} = 0; {var} < {depth}; {var} = {var} + 1)\n"
                f"      {name} [{var}] = 0;\n  end\n")

    return _ZERO_INIT.sub(repl, text)


def _fields(layout: data.StructLayout) -> dict[str, dict[str, int]]:
    return {name: {"offset": f.offset, "width": f.width} for name, f in layout}


def manifest(cfg: ArrayConfig) -> dict:
    """JSON-serialisable description of the array ``cfg`` describes (ports from its signature)."""
    ports = {}
    for path, member in Accelerator.signature_for(cfg).members.flatten():
        if not member.is_port:  # sub-interfaces (streams) are listed port by port
            continue
        name = "__".join(str(p) for p in path)
        ports[name] = {"direction": "in" if member.flow == wiring.In else "out",
                       "width": Shape.cast(member.shape).width}
    return {
        "manifest_version": MANIFEST_VERSION,
        "top": TOP,
        "params": cfg.to_dict(),
        "derived": {
            "pes": cfg.pes, "tile_rows": cfg.tile_rows, "tile_cols": cfg.tile_cols, "dim_bits": cfg.dim_bits,
            "slot_bits": cfg.slot_bits, "chan_bits": cfg.chan_bits, "count_bits": cfg.count_bits,
            "chan_index_bits": cfg.chan_index_bits, "unit_index_bits": cfg.unit_index_bits, "pos_bits": cfg.pos_bits,
        },
        "buffers": _buffers(cfg),
        "load_targets": load_targets(cfg),
        "layouts": {"cfg": _fields(config_layout(cfg)), "load": _fields(load_layout(cfg)),
                    "perf": _fields(perf_layout(cfg))},
        "ports": ports,
    }


def _buffers(cfg: ArrayConfig) -> dict[str, dict[str, int]]:
    bufs = {
        "act": {"depth": cfg.act_depth, "width": cfg.act_bits},
        "weight": {"depth": cfg.weight_depth, "width": cfg.weight_bits},
        "out": {"depth": cfg.out_depth, "width": cfg.acc_bits},
        "accumulators": {"depth": 2 << cfg.slot_bits, "width": cfg.acc_bits, "count": cfg.pes},
        "tile": {"depth": 2 * cfg.tile_rows * cfg.tile_cols, "width": cfg.act_bits},
    }
    if cfg.has_index:
        bufs["chan_index"] = {"depth": cfg.index_depth, "width": cfg.chan_index_bits}
        bufs["unit_index"] = {"depth": cfg.index_depth, "width": cfg.unit_index_bits}
    bufs["total_bits"] = {"bits": sum(b["depth"] * b["width"] * b.get("count", 1) for b in bufs.values())}
    return bufs


def generate(cfg: ArrayConfig, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<top>.v`` and ``<top>.json`` for ``cfg`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    top = Accelerator(cfg)
    text = compact_zero_inits(verilog.convert(top, name=TOP, emit_src=False))
    v_path = out_dir / f"{TOP}.v"
    j_path = out_dir / f"{TOP}.json"
    v_path.write_text(text)
    j_path.write_text(json.dumps(manifest(cfg), indent=2) + "\n")
    return v_path, j_path


_HELP = {
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
                                help=f"{_HELP[f.name]} (default: by --lanes: {_feed_rule(f.name)})")
            continue
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=getattr(defaults, f.name),
                            metavar="N", help=f"{_HELP[f.name]} (default: %(default)s)")


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


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m hdl.generate",
        description="Generate the Verilog of a sparse PE array and its JSON manifest.",
        epilog="Writes DIR/sparse_pe_array.v and DIR/sparse_pe_array.json.")
    add_array_arguments(parser)
    parser.add_argument("-o", "--output", type=Path, default=Path("build"), metavar="DIR", action=OutputDir,
                        help="output directory, created if missing (default: %(default)s)")
    args = parser.parse_args(argv)
    cfg = array_config_from_args(parser, args)
    v_path, j_path = generate(cfg, args.output)
    print(f"{describe(cfg)}: wrote {v_path} and {j_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
