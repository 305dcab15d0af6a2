"""``python -m host.net``: a CNN from ONNX, quantized to int8, pruned, run layer after layer on the array.

The conv layers (and the fully connected ones, as 1x1 convs) run on the array, each in the passes its
buffers need (``golden.passes``), with the bias, ReLU and requantization in the array's output stage
(``--epilogue 1``, on by default here); pooling, residual adds and flattening run on the host in
NumPy (``host.quant``). Every pass is predicted exactly by the golden model (cycles, counters); with
``--rtl`` passes also run on the array's RTL and are checked bit- and cycle-exact: on Verilator (the
default ``--target native``, or ``cocotb``), in Amaranth's simulator (``pysim``) or on a programmed
board (``board:PORT``), all through one host API (:mod:`host.array`). The network's
integer outputs are checked against the NumPy int8 reference of the same graph (every conv computed
whole, ``Layer.expected``), and the float model's outputs are set against the int8 network's
(top-1 agreement, largest error) so the quantization loss is visible.

The report (``--json``): per step what ran where, and for the array's layers their passes, cycles,
the dense array's cycles and the speedup, utilization, lane utilization, words transferred in and out,
index bits and the RTL's verdicts; the network's totals.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from golden import metrics
from golden.cli import OutputFile, Parser
from golden.config import ArrayConfig
from golden.encode import encode
from golden.layer import Layer
from golden.passes import Plan, fit_or_plan
from golden.prune import GRANULARITIES
from golden.timing import simulate
from hdl.generate import add_array_arguments, array_config_from_args

from .array import TARGET_HELP, Target, run_layers
from .graph import GraphError, load_onnx, run_float
from .quant import QuantNet, QuantOp, quantize, run_int


def _passes(layer: Layer, cfg: ArrayConfig) -> tuple[list[Layer], Plan | None]:
    """The layers the array runs for ``layer``: itself, or its passes (and their plan)."""
    pl = fit_or_plan(layer, cfg)
    return ([layer], None) if pl is None else ([p.layer for p in pl.passes], pl)


class ArrayRun:
    """Runs the network's array layers: golden for every pass, the RTL for the chosen ones."""

    def __init__(self, cfg: ArrayConfig, rtl: str, sample: int, seed: int, progress=None, run_rtl=None,
                 whole: tuple[str, ...] = ()):
        self.cfg, self.rtl, self.sample, self.whole = cfg, rtl, sample, set(whole)
        self.rng = random.Random(seed)
        self.dense = replace(cfg, dataflow="dense")
        self.layers: list[dict] = []
        self.progress = progress or (lambda msg: None)
        self.run_rtl = run_rtl

    def __call__(self, step: QuantOp, layer: Layer) -> np.ndarray:
        cfg = self.cfg
        t0 = time.monotonic()
        try:
            parts, pl = _passes(layer, cfg)
            dense_parts, _ = _passes(layer, self.dense)  # the dense array on the same buffers
        except ValueError as e:
            raise ValueError(f"layer {step.op.name}: {e}") from None
        outs = []
        totals = dict(cycles=0, dense_cycles=0, mac_cycles=0, weight_reads=0, words_in=0, words_out=0, index_bits=0)
        for p in parts:
            enc = encode(p, cfg)
            pred = simulate(enc).to_dict()
            words_in = sum(len(v) for v in enc.images().values())
            totals["cycles"] += pred["busy_cycles"]
            totals["mac_cycles"] += pred["mac_cycles"]
            totals["weight_reads"] += pred["weight_reads"]
            totals["words_in"] += words_in
            totals["words_out"] += p.m * p.e * p.f
            totals["index_bits"] += metrics.storage_bits(enc)["index_bits"]
            outs.append(p.expected(cfg))
        totals["dense_cycles"] = sum(simulate(encode(p, self.dense)).busy_cycles for p in dense_parts)
        chosen = list(range(len(parts))) if self.rtl == "all" or step.op.name in self.whole else \
            sorted(self.rng.sample(range(len(parts)), min(self.sample, len(parts)))) if self.rtl == "sample" else []
        rtl = []
        if chosen:
            results = self.run_rtl(cfg, [parts[i] for i in chosen], step.op.name)
            for i, res in zip(chosen, results, strict=True):
                ok = bool(res["outputs_match"] and res["cycles"] == res["predicted_cycles"]
                          and res["perf"] == res["predicted_perf"])
                rtl.append({"pass": i, "ok": ok, "cycles": res["cycles"], "problems": res["problems"]})
                if res["outputs"] is not None:
                    outs[i] = res["outputs"]  # the RTL's own outputs go on
        y = pl.assemble(outs) if pl is not None else outs[0]
        ref = layer.expected(cfg)
        sparsity = metrics.sparsity(layer.weights)
        useful = metrics.useful_macs(layer)
        row = {
            "name": step.op.name, "op": step.op.kind, "on": "array", "fused": step.skipped,
            "layer": {"M": layer.m, "C": layer.c, "H": layer.h, "W": layer.w, "R": layer.r, "S": layer.s,
                      "stride": layer.stride, "padding": layer.padding},
            "passes": len(parts),
            "plan": None if pl is None else {"filters": pl.chunk, "rows": pl.band, "channels": pl.channel_chunk},
            **totals,
            "speedup": totals["dense_cycles"] / totals["cycles"],
            "utilization": useful / (totals["cycles"] * cfg.pes),
            "lane_utilization": (totals["weight_reads"] / (totals["mac_cycles"] * cfg.lanes)
                                 if totals["mac_cycles"] else 0.0),
            "sparsity": sparsity,
            "golden_matches_reference": bool(np.array_equal(y, ref)),
            "rtl_passes": len(rtl), "rtl_ok": all(r["ok"] for r in rtl),
            "rtl": [r for r in rtl if not r["ok"]],
            "seconds": round(time.monotonic() - t0, 2),
        }
        self.layers.append(row)
        self.progress(f"{step.op.name}: {len(parts)} passes, {totals['cycles']} cycles "
                      f"({row['speedup']:.2f}x over dense), rtl {len(rtl)} passes "
                      f"{'exact' if row['rtl_ok'] else 'MISMATCH'}")
        return y


def rtl_runner(kw: dict, executor=None, workers: int = 1):
    """``run(cfg, layers, name)``: a layer's passes on the array in ``workers`` jobs on ``executor`` (a
    ``concurrent.futures`` executor from ``sim.parallel.make_executor``; ``None``: one job here), through
    :func:`host.array.run_layers` with ``kw`` (``target`` and its options). Passes are independent (each
    carries its own partial sums), so they split freely; the results carry their outputs as arrays, so a
    worker on another machine (Dask) returns everything the caller needs."""
    def run(cfg: ArrayConfig, layers: list[Layer], name: str) -> list[dict]:
        if executor is None or workers <= 1 or len(layers) == 1:
            return run_layers(cfg, layers, name=f"net-{name}", **kw)
        from sim.parallel import InlineExecutor, chunks

        parts = chunks(layers, -(-len(layers) // workers))
        futures = [executor.submit(run_layers, cfg, part, name=f"net-{name}-{k}", **kw)
                   for k, part in enumerate(parts)]
        if isinstance(executor, InlineExecutor):
            for _ in futures:
                executor.run_next()
        return [r for f in futures for r in f.result()]
    return run


def run_network(net: QuantNet, x: np.ndarray, runner: ArrayRun) -> dict:
    """Run ``net`` on float input ``x``: the array path (``runner``), the NumPy int8 reference and the
    float model; the report (module docstring)."""
    cfg = net.cfg
    xq = net.quantize_input(x)
    t0 = time.monotonic()
    ref = run_int(net, xq, lambda step, layer: layer.expected(cfg))
    ref_s = time.monotonic() - t0
    t0 = time.monotonic()
    got = run_int(net, xq, runner)
    out = net.graph.output
    fl = run_float(net.graph, x)[out]
    deq = got[out] * net.scales[out]
    steps = []
    array_rows = iter(runner.layers)
    for step in net.steps:
        if step.op.kind in ("Conv", "Gemm"):
            steps.append(next(array_rows))
        else:
            steps.append({"name": step.op.name, "op": step.op.kind, "on": "host", "fused": step.skipped})
    layers = runner.layers
    total = {k: sum(r[k] for r in layers) for k in ("cycles", "dense_cycles", "words_in", "words_out", "index_bits",
                                                    "passes", "rtl_passes")}
    return {
        "array": cfg.to_dict(),
        "steps": steps,
        "total": {**total, "speedup": total["dense_cycles"] / total["cycles"] if total["cycles"] else None,
                  "rtl_ok": all(r["rtl_ok"] for r in layers),
                  "golden_matches_reference": all(r["golden_matches_reference"] for r in layers)},
        "int8_matches_reference": bool(np.array_equal(got[out], ref[out])),
        "float_vs_int8": {"top1_agree": bool(np.argmax(fl) == np.argmax(deq)),
                          "max_abs_error": float(np.abs(fl - deq).max()),
                          "output_range": float(np.abs(fl).max())},
        "seconds": {"reference": round(ref_s, 1), "array": round(time.monotonic() - t0, 1)},
    }


def _prune_spec(text: str) -> tuple[str, float]:
    try:
        gran, frac = text.split(":")
        frac_v = float(frac)
    except ValueError:
        raise ValueError(f"--prune must be GRANULARITY:SPARSITY, e.g. kernel:0.75, not {text!r}") from None
    if gran not in GRANULARITIES:
        raise ValueError(f"--prune granularity {gran!r} is not one of {', '.join(GRANULARITIES)}")
    if not 0.0 <= frac_v < 1.0:
        raise ValueError(f"--prune sparsity must be in [0, 1), not {frac_v}")
    return gran, frac_v


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m host.net", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("--model", type=Path, required=True, metavar="MODEL.onnx", help="the network (batch 1, NCHW)")
    parser.add_argument("--input", type=Path, metavar="X.npy",
                        help="the input image (C,H,W) or (1,C,H,W), float; also the calibration input "
                             "(default: uniform random in [0, 1), seeded by --seed)")
    parser.add_argument("--prune", metavar="G:S", default=None,
                        help="prune every conv's int8 weights at granularity G to sparsity S, e.g. kernel:0.75 "
                             f"(granularities: {', '.join(GRANULARITIES)}; default: no pruning)")
    add_array_arguments(parser)
    parser.set_defaults(epilogue=1)
    parser.add_argument("--rtl", default="none", metavar="all|sample|none",
                        help="run passes on the --target too: every pass, a random sample of --sample per "
                             "layer, or none (default: %(default)s)")
    parser.add_argument("--sample", type=int, default=2, metavar="N", help="passes per layer with --rtl sample")
    parser.add_argument("--rtl-layer", action="append", default=[], metavar="NAME",
                        help="also run every pass of this layer (an ONNX node name) on the RTL; repeatable")
    parser.add_argument("--target", default="native", metavar="TARGET", help=TARGET_HELP + " (default: %(default)s)")
    parser.add_argument("--baud", type=int, default=115_200, metavar="N",
                        help="UART baud rate of a board target (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="split each layer's RTL passes into N jobs run in N local processes "
                             "(default: %(default)s)")
    parser.add_argument("--dask-scheduler", metavar="ADDR",
                        help="run those jobs on this Dask scheduler (e.g. tcp://host:8786) instead of locally; "
                             "needs dask[distributed]")
    parser.add_argument("--seed", type=int, default=0, help="random input and pass sample (default: %(default)s)")
    parser.add_argument("--json", metavar="REPORT.json", action=OutputFile, help="write the report here")
    args = parser.parse_args(argv)
    cfg = array_config_from_args(parser, args)
    if args.rtl not in ("all", "sample", "none"):
        parser.error(f"--rtl must be all, sample or none, not {args.rtl!r}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    try:
        target = Target.parse(args.target)
    except ValueError as e:
        parser.error(f"--target: {e}")
    if not target.parallel and (args.workers > 1 or args.dask_scheduler):
        parser.error(f"--target {target} runs one pass at a time: drop --workers/--dask-scheduler")
    try:
        spec = _prune_spec(args.prune) if args.prune else None
        graph = load_onnx(args.model)
        if args.input is not None:
            x = np.load(args.input)
            x = x[0] if x.ndim == len(graph.input_shape) + 1 else x
            if x.shape != graph.input_shape:
                raise ValueError(f"--input has shape {x.shape}, the model takes {graph.input_shape}")
        else:
            x = np.random.default_rng(args.seed).random(graph.input_shape)
        if not cfg.epilogue:
            raise ValueError("the network's layers requantize in the array: keep --epilogue 1")
        net = quantize(graph, x, cfg, spec)
    except (GraphError, ValueError, OSError) as e:
        parser.error(str(e))

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    names = {op.name for op in graph.ops if op.kind in ("Conv", "Gemm")}
    unknown = [n for n in args.rtl_layer if n not in names]
    if unknown:
        parser.error(f"--rtl-layer {unknown[0]} is not a conv or fully connected node of the model "
                     f"(they are: {', '.join(sorted(names))})")
    from sim.parallel import make_executor

    kw = {"target": target, "seed": args.seed, "baud": args.baud}
    with make_executor(args.workers, args.dask_scheduler) as executor:
        runner = ArrayRun(cfg, args.rtl, args.sample, args.seed, progress, rtl_runner(kw, executor, args.workers),
                          tuple(args.rtl_layer))
        try:
            rep = run_network(net, x, runner)
        except ValueError as e:
            print(f"{parser.prog}: error: {e}", file=sys.stderr)
            return 1
    rep["model"] = str(args.model)
    rep["prune"] = args.prune
    text = json.dumps(rep, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    t = rep["total"]
    print(f"{len(rep['steps'])} steps, {t['passes']} passes on the array: {t['cycles']} cycles "
          f"({t['speedup']:.2f}x over the dense array), rtl {t['rtl_passes']} passes "
          f"{'exact' if t['rtl_ok'] else 'MISMATCH'}; int8 network == reference: {rep['int8_matches_reference']}; "
          f"float top-1 agrees: {rep['float_vs_int8']['top1_agree']}", file=sys.stderr)
    ok = rep["int8_matches_reference"] and t["rtl_ok"] and t["golden_matches_reference"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
