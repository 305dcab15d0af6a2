"""``python -m bench.netlist_hashes``: fingerprint the generated Verilog over a matrix of arrays.

A refactor of the gateware that claims "no change in behaviour" proves it here: record the hashes
before the first change (``-o FILE``), and after the last one check them (``--check FILE``). A
byte-identical netlist needs no further evidence; for a configuration whose netlist did change, the
difference has to be covered by ``sim.regress`` (outputs, cycles and counters identical).

The matrix is every dataflow × ``V`` = 1, 3, 9 × output stage off and on × two array shapes (a square
4x4 and a 2x3 that is neither square nor a power of two wide), the generator's defaults otherwise.
The manifest is fingerprinted beside the Verilog: it is the contract the harnesses read.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from golden.cli import Parser
from golden.config import DATAFLOWS, ArrayConfig
from hdl.generate import generate

LANES = (1, 3, 9)
EPILOGUES = (0, 1)
SHAPES = ((4, 4), (2, 3))


def matrix() -> list[ArrayConfig]:
    """The configurations fingerprinted: dataflows × lanes × output stage × shapes."""
    return [ArrayConfig(dataflow=d, lanes=v, epilogue=e, rows=r, cols=c)
            for d, v, e, (r, c) in itertools.product(DATAFLOWS, LANES, EPILOGUES, SHAPES)]


def key(cfg: ArrayConfig) -> str:
    """A configuration's name in the record: ``kernel-4x4-v9-e1``."""
    return f"{cfg.dataflow}-{cfg.rows}x{cfg.cols}-v{cfg.lanes}-e{cfg.epilogue}"


_NUMBERED = re.compile(rb"\$\d+")


def modulo_numbering(verilog: bytes) -> bytes:
    """The Verilog's lines sorted, with the ``$N`` suffixes Yosys numbers duplicate net names by removed.

    Module headers list their ports sorted too. Two netlists equal under this view differ at most in
    which duplicate got which number and in the order of their statements, declarations and ports
    (``wiring.connect`` assigns a bus's members in name order, so wiring a bus through a signature
    reorders them): a refactor that shows only that difference has
    not changed what the nets are or how they are driven, which :func:`compare` reports apart from a
    real change (and ``sim.regress`` then checks on the RTL)."""
    lines = [_sorted_ports(line) for line in _joined_headers(_NUMBERED.sub(b"", verilog).splitlines())]
    return b"\n".join(sorted(lines))


def _joined_headers(lines: list[bytes]) -> list[bytes]:
    """``lines`` with each module header on one line (Yosys wraps a long port list)."""
    out: list[bytes] = []
    header = False
    for line in lines:
        if header:
            out[-1] += line
        else:
            out.append(line)
        if line.startswith(b"module "):
            header = True
        if header and out[-1].endswith(b");"):
            header = False
    return out


_MODULE = re.compile(rb"^(module \S+ \()(.*)(\);)$")


def _sorted_ports(line: bytes) -> bytes:
    """A module header with its ports in name order (instances connect them by name, so their order in
    the header is the order the ports were declared, not a property of the netlist)."""
    match = _MODULE.match(line)
    if match is None:
        return line
    return match[1] + b", ".join(sorted(match[2].split(b", "))) + match[3]


def fingerprint(cfg: ArrayConfig) -> dict[str, str]:
    """SHA-256 of the Verilog, of the Verilog :func:`modulo_numbering`, and of the manifest
    ``hdl.generate`` writes for ``cfg``."""
    with tempfile.TemporaryDirectory() as tmp:
        v_path, j_path = generate(cfg, Path(tmp))
        text = v_path.read_bytes()
        return {"verilog": hashlib.sha256(text).hexdigest(),
                "verilog_modulo_numbering": hashlib.sha256(modulo_numbering(text)).hexdigest(),
                "manifest": hashlib.sha256(j_path.read_bytes()).hexdigest()}


def fingerprints(jobs: int, only: str = "") -> dict[str, dict[str, str]]:
    cfgs = [c for c in matrix() if only in key(c)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return {key(c): h for c, h in zip(cfgs, pool.map(fingerprint, cfgs), strict=True)}


NUMBERING_ONLY = "differ only in the numbering of duplicate net names and the order of statements and ports"


def compare(recorded: dict[str, dict[str, str]], now: dict[str, dict[str, str]]) -> list[str]:
    """One line per configuration whose Verilog or manifest differs from the record (or is missing)."""
    lines = []
    for name in sorted(set(recorded) | set(now)):
        if name not in now or name not in recorded:
            lines.append(f"{name}: {'not recorded' if name not in recorded else 'no longer in the matrix'}")
            continue
        changed = [part for part in ("verilog", "manifest") if recorded[name][part] != now[name][part]]
        if changed == ["verilog"] and recorded[name].get("verilog_modulo_numbering") == now[name][
                "verilog_modulo_numbering"]:
            lines.append(f"{name}: {NUMBERING_ONLY}")
        elif changed:
            lines.append(f"{name}: {' and '.join(changed)} changed")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m bench.netlist_hashes",
                    description="Hash the generated Verilog and manifest of every dataflow x V=1,3,9 x output stage "
                                "off/on x 4x4 and 2x3 array; record them or check them against a record.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the hashes to FILE (JSON)")
    group.add_argument("--check", type=Path, metavar="FILE",
                       help="compare with FILE; exit 1 if any differs beyond the numbering of duplicate net names "
                            "and statement order")
    parser.add_argument("-j", "--jobs", type=int, default=2, metavar="N", help="parallel generators (default: 2)")
    parser.add_argument("-k", "--only", default="", metavar="TEXT",
                        help="only the configurations whose name (e.g. kernel-4x4-v9-e1) contains TEXT")
    args = parser.parse_args(argv)
    if args.check is not None and not args.check.is_file():
        parser.error(f"--check {args.check}: no such file; record one first with -o {args.check}")
    now = fingerprints(max(1, args.jobs), args.only)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"{len(now)} configurations hashed: wrote {args.output}")
        return 0
    recorded = {k: v for k, v in json.loads(args.check.read_text()).items() if args.only in k}
    diffs = compare(recorded, now)
    for line in diffs:
        print(line)
    renumbered = sum(NUMBERING_ONLY in line for line in diffs)
    print(f"{len(now) - len(diffs)} of {len(now)} configurations byte-identical"
          + (f", {renumbered} {NUMBERING_ONLY}" if renumbered else ""))
    return 1 if len(diffs) > renumbered else 0


if __name__ == "__main__":
    sys.exit(main())
