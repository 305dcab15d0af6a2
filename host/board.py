"""``python -m host.board run``: run one layer on a board programmed with ``python -m hdl.synth``.

``python -m host.board run --port /dev/ttyUSB0 --layer LAYER.npz [--board B] [array flags] [--baud N]``
sends the layer over the board's UART (:mod:`golden.protocol`), runs it, and checks the outputs against
``golden.conv.conv2d`` and the counters (cycles included) against ``golden.timing.simulate``. A layer
larger than the board's buffers runs in passes (``golden.passes``), each checked, and assembled on the
host: the board is one more target of :mod:`host.array`, and the passes go through the same code as
``sim.run``'s (:func:`sim.run.run_passes`).
``--port sim`` runs the same session on the bridge in Amaranth's simulator instead (clock = 4 x baud),
which is how the tests exercise the whole path.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

from golden.cli import OutputFile, Parser, add_array_arguments, array_config_from_args
from golden.config import ArrayConfig
from golden.layerio import load_layer
from golden.passes import fit_or_plan
from golden.protocol import BridgeError
from hdl.boards import BoardSpec, board_names
from sim.run import passes_notice, run_layer

from .array import Target, run_layers


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    pre = Parser(prog="python -m host.board", add_help=False)
    pre.add_argument("--board", default="icebreaker")
    board_name = pre.parse_known_args(argv)[0].board
    spec = BoardSpec.load(board_name) if board_name in board_names() else None

    parser = Parser(prog="python -m host.board",
                    description="Run layers on a board programmed with python -m hdl.synth.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one layer and check it against the golden model",
                         description="Send a layer over the board's UART, run it (in passes if it is larger than "
                                     "the buffers), check outputs and counters. Pass the same --board and array "
                                     "flags as to hdl.synth.")
    run.add_argument("--port", required=True, help="serial port (e.g. /dev/ttyUSB0), or 'sim' to run the bridge "
                                                   "in Amaranth's simulator")
    run.add_argument("--layer", type=Path, required=True, metavar="LAYER.npz",
                     help="weights (M,C,R,S), activations (C,H,W), optional scalars stride, padding")
    run.add_argument("--board", default="icebreaker", choices=board_names(),
                     help="board, for its default array flags and baud rate (default: %(default)s)")
    add_array_arguments(run)
    run.add_argument("--baud", type=int, metavar="N", help="UART baud rate (default: the board's)")
    run.add_argument("--timeout", type=float, default=5.0, metavar="S",
                     help="seconds to wait for each reply (default: %(default)s)")
    run.add_argument("--json", metavar="REPORT.json", action=OutputFile,
                     help="also write the result here (its directory must exist)")
    if spec:
        names = {f.name for f in fields(ArrayConfig)}
        run.set_defaults(**{k: v for k, v in spec.array.items() if k in names})
    args = parser.parse_args(argv)
    cfg = array_config_from_args(run, args)
    baud = args.baud if args.baud is not None else spec.baud
    try:
        layer = load_layer(args.layer)
        pl = fit_or_plan(layer, cfg)  # the one-line error of a layer that does not run, before any link is opened
        if baud <= 0:
            raise ValueError(f"--baud must be positive, not {baud}")
    except ValueError as e:
        run.error(str(e))
    if pl is not None:
        print(passes_notice(pl), file=sys.stderr)
    problems: list[str] = []  # what the golden check found wrong, pass by pass

    def run_board(cfg: ArrayConfig, layers: list) -> list[dict]:
        results = run_layers(cfg, layers, Target("board", args.port), baud=baud, timeout=args.timeout)
        problems.extend(q for r in results for q in r["problems"])
        return results

    try:
        rep, _ = run_layer(layer, cfg, pl, run_board)
    except BridgeError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    report = {"board": args.board, "port": args.port, **rep, "problems": problems}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    passes = f" in {len(pl.passes)} passes" if pl is not None else ""
    print(f"{cfg.dataflow} {cfg.rows}x{cfg.cols} on {args.port}{passes}: outputs_match={report['outputs_match']} "
          f"cycles={report['cycles']} (predicted {report['predicted_cycles']}) "
          f"counters_match={report['counters_match']}")
    return 0 if report["outputs_match"] and report["cycles_match"] and report["counters_match"] else 1


if __name__ == "__main__":
    sys.exit(main())
