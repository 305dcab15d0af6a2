"""``python -m hdl.generate``: emit the Verilog of one PE array and its JSON manifest.

The manifest is the one description of the generated hardware that the testbenches, the layer
runner and synthesis read: every generator parameter, derived sizes, the ports with their widths and
the bit offsets of every packed struct field.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from golden.cli import OutputDir, Parser, add_array_arguments, array_config_from_args, describe
from golden.config import ArrayConfig
from golden.words import host_layouts, load_targets

from .accelerator import Accelerator

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


def to_verilog(top: wiring.Component, name: str) -> str:
    """The Verilog of ``top`` as every generated top is written (the array's here, the bridge's in
    ``sim.verilator``): no source locations (the text depends on the design only), compact memory inits."""
    return compact_zero_inits(verilog.convert(top, name=name, emit_src=False))


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
        "layouts": {name: layout.manifest() for name, layout in host_layouts(cfg).items()},
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
    text = to_verilog(Accelerator(cfg), TOP)
    v_path = out_dir / f"{TOP}.v"
    j_path = out_dir / f"{TOP}.json"
    v_path.write_text(text)
    j_path.write_text(json.dumps(manifest(cfg), indent=2) + "\n")
    return v_path, j_path


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
