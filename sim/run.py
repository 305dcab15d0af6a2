"""``python -m sim.run``: run one conv layer on the generated RTL (Verilator) and report.

The layer is checked against the hardware's limits and encoded before anything is built, so a layer
that cannot run fails with one line and no partial run. A layer larger than the buffers runs as
passes (``golden.passes``: filter chunks and bands of output rows, each pass a layer that fits) whose
outputs are put together on the host; the report then has one entry per pass and the layer's totals.
The report holds the RTL-measured cycles next to the golden prediction, the bit-exact comparison,
utilization and lane utilization (over PEs x lanes multipliers, ``golden.metrics``), what bounds the
run (the MACs, or a loader or drain too narrow for them: then a note on stderr) and every counter.
``--waves FILE.vcd|FILE.fst`` dumps the run's waveform (all passes in order) from a traced build of
the array (``sim.verilator.TRACE_FORMATS``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from golden import metrics
from golden.cli import OutputFile, Parser, add_array_arguments, array_config_from_args
from golden.compact import compact, expand_outputs
from golden.config import ArrayConfig
from golden.encode import encode
from golden.layer import Layer
from golden.layerio import load_layer
from golden.passes import Plan, fit_or_plan

from .verilator import DEFAULT_BUILD_ROOT, HARNESS_HELP, HARNESSES, WAVES_HELP, WavesFile, run_layers


def _run_fields(ly, cfg, outputs_match: bool, cycles: int, predicted: int, counters_match: bool,
                counters: dict[str, int]) -> dict:
    """The report fields of a run of ``ly`` on ``cfg`` (one layer, or the sum of its passes) whose
    performance counters (summed over the passes) are ``counters``."""
    return {
        "dataflow": cfg.dataflow,
        "array": {"rows": cfg.rows, "cols": cfg.cols, "acc_depth": cfg.acc_depth, "lanes": cfg.lanes,
                  "act_lanes": cfg.act_lanes, "act_rows": cfg.act_rows, "drain_lanes": cfg.drain_lanes,
                  "epilogue": cfg.epilogue},
        "layer": {"M": ly.m, "C": ly.c, "H": ly.h, "W": ly.w, "R": ly.r, "S": ly.s, "stride": ly.stride,
                  "padding": ly.padding, "E": ly.e, "F": ly.f},
        "outputs_match": outputs_match,
        "cycles": cycles,
        "predicted_cycles": predicted,
        "cycles_match": cycles == predicted,
        "counters_match": counters_match,
        "useful_macs": metrics.useful_macs(ly),
        "ideal_cycles": metrics.ideal_cycles(ly, cfg.multipliers),
        "utilization": metrics.utilization(ly, cfg.multipliers, cycles),
        "lane_utilization": metrics.lane_utilization(ly, cfg, counters),
        "bound": metrics.bound(counters),
        "sparsity": metrics.sparsity(ly.weights),
        "ops_saved": metrics.ops_saved(ly),
    }


def report(enc, result: dict) -> dict:
    return {
        **_run_fields(enc.layer, enc.cfg, result["outputs_match"], result["cycles"], result["predicted_cycles"],
                      result["perf"] == result["predicted_perf"], result["perf"]),
        "mapping": "chunks" if enc.chunks else "tile",  # how output pixels map to PEs (``golden.chunks``)
        "compression_ratio": metrics.compression_ratio(enc),
        "storage": metrics.storage_bits(enc),
        "memory_references": metrics.memory_references(enc, result["perf"]),
        "traffic": result["perf"],
    }


_WIDER = {"loader": "--act-lanes/--act-rows", "drain": "--drain-lanes"}


def bound_note(rep: dict) -> str:
    """One line saying that the loader or the drain, not the MACs, bounded a run (``golden.metrics.bound``),
    from its counters, and which flags widen it."""
    t = rep["traffic"]
    stalls = t[metrics.BOUNDS[rep["bound"]]]
    return (f"note: the {rep['bound']}, not the MACs, bounds this run: the sequencer waited {stalls} of its "
            f"{rep['cycles']} cycles for it against {t['mac_cycles']} MAC cycles (a wider {_WIDER[rep['bound']]} "
            f"feeds it faster)")


def _add_counters(results: list[dict], key: str) -> dict:
    return {k: sum(r[key][k] for r in results) for k in results[0][key]}


Runner = Callable[[ArrayConfig, list[Layer]], list[dict]]
"""``run(cfg, layers)``: the layers run in order on some target, one result each in the form of
:func:`sim.verilator.run_layers` with the outputs as an array (``None`` if the layer hung):
:func:`verilator_runner` here, any target of :func:`host.array.run_layers` on the host (a board)."""


def verilator_runner(kw: dict, name: str) -> Runner:
    """A :data:`Runner` on the RTL in Verilator: :func:`sim.verilator.run_layers` with ``kw`` and the build
    ``name``, its outputs loaded."""
    def run(cfg: ArrayConfig, layers: list[Layer]) -> list[dict]:
        return [dict(r, outputs=None if r["outputs"] is None else np.load(r["outputs"]))
                for r in run_layers(cfg, layers, name=name, **kw)]
    return run


def run_passes(layer: Layer, pl: Plan, run: Runner) -> tuple[dict, np.ndarray | None]:
    """Run the passes of ``pl`` with ``run``: the layer's report (totals and one entry per pass) and its
    assembled outputs (``None`` if a pass hung). Written once for every target, so a board assembles
    and checks passes exactly as the simulators do."""
    cfg = pl.cfg
    results = run(cfg, [p.layer for p in pl.passes])
    hung = [r for r in results if r["outputs"] is None]
    passes = [{"filters": [p.m0, p.m1], "rows": [p.e0, p.e1], "channels": [p.c0, p.c1],
               **report(encode(p.layer, cfg), r)}
              for p, r in zip(pl.passes, results, strict=True) if r["outputs"] is not None]
    if hung:
        return {"passes": passes, "problems": [q for r in hung for q in r["problems"]]}, None
    outputs = pl.assemble([r["outputs"] for r in results])
    golden = layer.expected(cfg)
    cycles, predicted = sum(r["cycles"] for r in results), sum(r["predicted_cycles"] for r in results)
    traffic = _add_counters(results, "perf")
    rep = {
        **_run_fields(layer, cfg, bool(np.array_equal(outputs, golden)) and all(r["outputs_match"] for r in results),
                      cycles, predicted, all(r["perf"] == r["predicted_perf"] for r in results), traffic),
        "plan": {"passes": len(pl.passes), "filters_per_pass": pl.chunk, "rows_per_pass": pl.band,
                 "channels_per_pass": pl.channel_chunk, "transfer_words": pl.transfer_words,
                 "subsample": pl.subsample},
        "traffic": traffic,
        "passes": passes,
    }
    return rep, outputs


def run_layer(layer: Layer, cfg: ArrayConfig, pl: Plan | None, run: Runner) -> tuple[dict, np.ndarray | None]:
    """Run ``layer`` with ``run``, whole (``pl`` ``None``) or in the passes of ``pl``
    (``golden.passes.fit_or_plan``): its report and outputs (``None`` if it hung; the report then has
    the ``problems``)."""
    if pl is not None:
        return run_passes(layer, pl, run)
    result = run(cfg, [layer])[0]
    if result["outputs"] is None:
        return {"problems": result["problems"]}, None
    return report(encode(layer, cfg), result), result["outputs"]


def passes_notice(pl: Plan) -> str:
    """The line that says how a layer runs: in passes (how it is split), and or at stride 1 on the pixels
    a strided 1x1 layer reads (``golden.passes.subsampled``)."""
    notes = []
    if pl.subsample > 1:
        notes.append(f"a 1x1 layer of stride {pl.subsample} runs at stride 1 on the pixels it reads "
                     f"(one in {pl.subsample ** 2})")
    if len(pl.passes) > 1:
        notes.append(f"the layer does not fit the buffers in one run: {len(pl.passes)} passes of {pl.chunk} "
                     f"filters x {pl.band} output rows x {pl.channel_chunk} input channels")
    return "; ".join(notes)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m sim.run",
        description="Run a conv layer on the generated PE array in Verilator and check it against the golden model.")
    parser.add_argument("--layer", type=Path, required=True, metavar="LAYER.npz",
                        help="weights (M,C,R,S), activations (C,H,W), optional scalars stride, padding")
    add_array_arguments(parser)
    parser.add_argument("--json", metavar="REPORT.json", action=OutputFile,
                        help="write the report here (default: stdout); its directory must exist")
    parser.add_argument("--out-npz", metavar="OUT.npz", action=OutputFile,
                        help="save the RTL outputs (M,E,F) as 'outputs'; its directory must exist")
    parser.add_argument("--compare-dense", action="store_true",
                        help="also run the layer on the dense array; adds dense_cycles and speedup")
    parser.add_argument("--load-gap", type=float, default=0.0, metavar="P",
                        help="probability of an idle cycle between load words (default: %(default)s)")
    parser.add_argument("--backpressure", type=float, default=0.0, metavar="P",
                        help="probability that the output stream is not ready in a cycle (default: %(default)s)")
    parser.add_argument("--compact", action="store_true",
                        help="drop all-zero filters and unused input channels first (filter/channel pruning), "
                             "run the smaller layer and put its outputs back in place")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stall generators (default: %(default)s)")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_ROOT, metavar="DIR",
                        help="Verilator build cache (default: %(default)s)")
    parser.add_argument("--harness", choices=HARNESSES, default="cocotb", help=HARNESS_HELP + " (default: %(default)s)")
    parser.add_argument("--waves", metavar="FILE.vcd|FILE.fst", action=WavesFile,
                        help=WAVES_HELP + "; a layer run as passes gives one trace of all its passes in order; "
                             "--compare-dense's dense run is not traced")
    args = parser.parse_args(argv)
    cfg = array_config_from_args(parser, args)
    for name in ("load_gap", "backpressure"):
        if not 0.0 <= getattr(args, name) < 1.0:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1), not {getattr(args, name)}")
    try:
        layer = original = load_layer(args.layer)
        compacted = compact(layer) if args.compact else None
        if compacted:
            layer = compacted.layer
        dense_cfg = replace(cfg, dataflow="dense")
        plans = {c.dataflow: fit_or_plan(layer, c) for c in [cfg] + ([dense_cfg] if args.compare_dense else [])}
    except ValueError as e:
        parser.error(str(e))
    kw = dict(seed=args.seed, load_gap=args.load_gap, backpressure=args.backpressure, check=False,
              root=args.build_dir, harness=args.harness)
    name = f"run-{args.layer.stem}"
    if plans[cfg.dataflow] is not None:
        print(passes_notice(plans[cfg.dataflow]), file=sys.stderr)
    rep, outputs = run_layer(layer, cfg, plans[cfg.dataflow], verilator_runner(dict(kw, waves=args.waves), name))
    if args.waves:
        passes = plans[cfg.dataflow] and len(plans[cfg.dataflow].passes)
        print(f"waveform of the run in {args.waves}" + (f" ({passes} passes, in order)" if passes else ""),
              file=sys.stderr)
    if outputs is None:  # the array never raised done (the testbench reset it)
        print(f"error: {'; '.join(rep['problems'])}", file=sys.stderr)
        return 1
    if compacted:
        outputs = expand_outputs(compacted, outputs)
        rep["compacted"] = {"M": layer.m, "C": layer.c, "original_M": original.m, "original_C": original.c}
        rep["sparsity"] = metrics.sparsity(original.weights)  # of the user's layer; the compact one is denser
        rep["ops_saved"] = metrics.ops_saved(original)
        golden = original.expected(cfg)
        rep["outputs_match"] = rep["outputs_match"] and bool(np.array_equal(outputs, golden))
    if args.compare_dense:
        if plans["dense"] is not None:
            dense, _ = run_passes(layer, plans["dense"], verilator_runner(kw, name))
        else:
            dense = run_layers(dense_cfg, [layer], name=name, **kw)[0]
        rep["dense_cycles"] = dense["cycles"]
        rep["dense_outputs_match"] = dense["outputs_match"]
        rep["speedup"] = dense["cycles"] / rep["cycles"]
    if args.out_npz:
        np.savez(args.out_npz, outputs=outputs)
    text = json.dumps(rep, indent=2)
    if rep["bound"] != "mac":
        print(bound_note(rep), file=sys.stderr)
    if args.json:
        args.json.write_text(text + "\n")
        summary = (f"{cfg.dataflow}: outputs_match={rep['outputs_match']} cycles={rep['cycles']} "
                   f"(predicted {rep['predicted_cycles']}) utilization={rep['utilization']:.3f} "
                   f"lane_utilization={rep['lane_utilization']:.3f}")
        if "speedup" in rep:
            summary += f" speedup={rep['speedup']:.2f}x"
        print(summary)
    else:
        print(text)
    ok = rep["outputs_match"] and rep["cycles_match"] and rep["counters_match"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
