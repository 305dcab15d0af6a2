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

With ``--data D --eval`` the network is calibrated on training images of ``D`` and measured on its test
split: float, float pruned and int8 top-1 accuracy beside cycles per image (:mod:`host.evaluate`); the
array's kernel size (``--max-kernel``) follows the model unless given.

The report (``--json``): per step what ran where, and for the array's layers their passes, cycles,
the dense array's cycles and the speedup, utilization, lane utilization, words transferred in and out,
index bits and the RTL's verdicts; the network's totals.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np

from golden import metrics
from golden.cli import OutputFile, Parser, add_array_arguments, array_config_from_args
from golden.config import ArrayConfig
from golden.encode import encode
from golden.layer import Layer
from golden.passes import Plan, fit_or_plan
from golden.prune import GRANULARITIES
from golden.timing import simulate
from sim.parallel import InlineExecutor, chunks, make_executor

from .array import TARGET_HELP, Target, run_layers
from .data import Dataset, load_dataset
from .evaluate import evaluate, rtl_images, summary
from .graph import Graph, GraphError, load_onnx, run_float
from .quant import QuantNet, QuantOp, quantize, run_int


def _passes(layer: Layer, cfg: ArrayConfig) -> tuple[list[Layer], Plan | None]:
    """The layers the array runs for ``layer``: itself, or its passes (and their plan)."""
    pl = fit_or_plan(layer, cfg)
    return ([layer], None) if pl is None else ([p.layer for p in pl.passes], pl)


def rtl_verdict(passes: int, ok: bool) -> str:
    """What a summary says of the RTL: how many passes ran and whether all were exact, or that it was not
    run (``--rtl none``): "0 passes exact" would read as a check that passed."""
    return f"rtl {passes} passes {'exact' if ok else 'MISMATCH'}" if passes else "the RTL was not run"


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
        row = {
            "name": step.op.name, "op": step.op.kind, "on": "array", "fused": step.skipped,
            "layer": {"M": layer.m, "C": layer.c, "H": layer.h, "W": layer.w, "R": layer.r, "S": layer.s,
                      "stride": layer.stride, "padding": layer.padding},
            "passes": len(parts),
            "plan": None if pl is None else {"filters": pl.chunk, "rows": pl.band, "channels": pl.channel_chunk},
            **totals,
            "speedup": totals["dense_cycles"] / totals["cycles"],
            "utilization": metrics.utilization(layer, cfg.multipliers, totals["cycles"]),
            "lane_utilization": metrics.lane_utilization(layer, cfg, totals),
            "sparsity": sparsity,
            "golden_matches_reference": bool(np.array_equal(y, ref)),
            "rtl_passes": len(rtl), "rtl_ok": all(r["ok"] for r in rtl),
            "rtl": [r for r in rtl if not r["ok"]],
            "seconds": round(time.monotonic() - t0, 2),
        }
        self.layers.append(row)
        self.progress(f"{step.op.name}: {len(parts)} passes, {totals['cycles']} cycles "
                      f"({row['speedup']:.2f}x over dense), {rtl_verdict(len(rtl), row['rtl_ok'])}")
        return y


def rtl_runner(kw: dict, executor=None, workers: int = 1):
    """``run(cfg, layers, name)``: a layer's passes on the array in ``workers`` jobs on ``executor`` (a
    ``concurrent.futures`` executor from ``sim.parallel.make_executor``; ``None``: one job here), through
    :func:`host.array.run_layers` with ``kw`` (``target`` and its options). Passes are independent (each
    carries its own partial sums), so they split freely; the results carry their outputs as arrays, so a
    worker on another machine (Dask) returns everything the caller needs. Every call's job names are
    unique (like ``bench.sweep``'s): two processes running networks on the same array share its build's
    ``runs/`` directory, and a name per layer alone let one overwrite the other's job files."""
    def run(cfg: ArrayConfig, layers: list[Layer], name: str) -> list[dict]:
        job = f"net-{name}-{uuid.uuid4().hex[:12]}"
        if executor is None or workers <= 1 or len(layers) == 1:
            return run_layers(cfg, layers, name=job, **kw)
        parts = chunks(layers, -(-len(layers) // workers))
        futures = [executor.submit(run_layers, cfg, part, name=f"{job}-{k}", **kw)
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


def _action(parser: Parser, dest: str) -> argparse.Action:
    return next(a for a in parser._actions if a.dest == dest)


CALIBRATION = 256
"""Calibration images ``--eval`` takes from the training split by default: enough that a tensor's range is
close to its range over the data (on the digits CNN of ``host.train --model small``, three draws of 256
set every hidden tensor's scale within 11 % of the whole 1,437-image split's, the logits' within 18 %),
few enough that calibrating costs less than evaluating."""


def _eval_data(args: argparse.Namespace, graph: Graph) -> Dataset | None:
    """The data set of ``--eval``, checked against the model (``ValueError``, one line), or None."""
    if args.data is None:
        if args.eval or args.logits:
            raise ValueError(f"{'--eval' if args.eval else '--logits'} needs --data D (digits, or an .npz with "
                             f"x_train, y_train, x_test, y_test) and --eval")
        return None
    if not args.eval:
        raise ValueError("--data is read by --eval: add --eval")
    if args.input is not None:
        raise ValueError("--eval runs the test split of --data: drop --input")
    data = load_dataset(args.data)
    if args.calibration is None:
        args.calibration = min(CALIBRATION, len(data.x_train))
    if data.input_shape != graph.input_shape:
        raise ValueError(f"{data.name} images are {data.input_shape} but the model takes {graph.input_shape}")
    outputs = run_float(graph, data.x_test[0])[graph.output].size
    if outputs != data.classes:
        raise ValueError(f"the model has {outputs} outputs but {data.name} has {data.classes} classes")
    return data


INPUT_FORMAT = "a .npy array of numbers (numpy.save), or an .npz holding one (numpy.savez)"
"""What ``--input`` takes, as the error for a file that is not one says."""


def load_input(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The float image in ``path`` (``shape``, or ``(1, *shape)``); ``ValueError`` with one line naming what
    the file is not. ``np.load`` alone returns an ``.npz`` as an archive and takes any other file for a
    pickle (its error then speaks of ``allow_pickle``), and a NaN would reach the quantizer's integer
    cast (a ``RuntimeWarning``, then an error about scales): so the format, the shape and finiteness are
    checked here, before anything is computed."""
    if not path.is_file():
        raise ValueError(f"--input {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                arrays = {k: data[k] for k in data.files}
        else:
            arrays = {"": data}
    except Exception:  # neither .npy nor a zip (numpy then tries pickle), a damaged file, or object arrays
        raise ValueError(f"--input {path} is not {INPUT_FORMAT}") from None
    if len(arrays) != 1:
        raise ValueError(f"--input {path} holds {len(arrays)} arrays ({', '.join(arrays) or 'none'}), not one "
                         f"image; save just the image, e.g. numpy.savez(path, x=image)")
    x = next(iter(arrays.values()))
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"--input {path} holds {x.dtype} values, not {INPUT_FORMAT}")
    x = x[0] if x.ndim == len(shape) + 1 and x.shape[0] == 1 else x
    if x.shape != tuple(shape):
        raise ValueError(f"--input {path} has shape {x.shape}; the model takes {tuple(shape)} or "
                         f"{(1, *shape)}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"--input {path} holds NaN or infinite values ({int(bad.sum())}, the first at "
                         f"{tuple(int(i) for i in np.argwhere(bad)[0])}); the input must be finite")
    return x.astype(np.float64)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m host.net", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("--model", type=Path, required=True, metavar="MODEL.onnx", help="the network (batch 1, NCHW)")
    parser.add_argument("--input", type=Path, metavar="X.npy",
                        help="the input image (C,H,W) or (1,C,H,W), float, in a .npy or an .npz of one array; "
                             "also the calibration input "
                             "(default: uniform random in [0, 1), seeded by --seed)")
    parser.add_argument("--prune", metavar="G:S", default=None,
                        help="prune every conv's int8 weights at granularity G to sparsity S, e.g. kernel:0.75 "
                             f"(granularities: {', '.join(GRANULARITIES)}; default: no pruning)")
    parser.add_argument("--prune-classifier", action="store_true",
                        help="--prune the fully connected layers too (default: convs only, as host.train)")
    add_array_arguments(parser)
    parser.set_defaults(epilogue=1, max_kernel=None)
    _action(parser, "max_kernel").help = ("largest kernel size R, S supported (default: the model's largest kernel, "
                                          f"at least {ArrayConfig().max_kernel})")
    parser.add_argument("--rtl", default="none", metavar="all|sample|none",
                        help="run passes on the --target too: every pass, a random sample of --sample per "
                             "layer, or none (default: %(default)s)")
    parser.add_argument("--sample", type=int, default=2, metavar="N",
                        help="passes per layer with --rtl sample (with --eval: test images, every pass of each)")
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
    ev = parser.add_argument_group("accuracy (--eval)")
    ev.add_argument("--data", metavar="D", help="the data set: 'digits' or an .npz with x_train, y_train, x_test, "
                                                "y_test (host.data)")
    ev.add_argument("--eval", action="store_true",
                    help="top-1 accuracy on D's test split: float, float pruned, int8 on the array's arithmetic, "
                         "beside cycles per image and the speedup; --rtl sample runs --sample N test images on the "
                         "RTL (every pass), --rtl all every test image")
    ev.add_argument("--calibration", type=int, default=None, metavar="N",
                    help=f"calibrate on N images of D's training split, drawn with --seed (default: {CALIBRATION}, "
                         f"or all of a smaller split)")
    ev.add_argument("--logits", metavar="FILE.npy", action=OutputFile,
                    help="write the int8 network's dequantized outputs on the test split, shape (N, classes)")
    args = parser.parse_args(argv)
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
    if args.prune_classifier and not args.prune:
        parser.error("--prune-classifier only applies with --prune G:S; add --prune or drop --prune-classifier")
    try:
        spec = _prune_spec(args.prune) if args.prune else None
        graph = load_onnx(args.model)
        if args.max_kernel is None:  # sized to the model, so a 5x5 or 7x7 network runs without a flag
            args.max_kernel = k = max([ArrayConfig().max_kernel] + [max(op.w.shape[2:]) for op in graph.ops
                                                                     if op.kind == "Conv"])
            try:
                ArrayConfig(max_kernel=k)
            except ValueError as e:
                raise ValueError(f"the model's largest kernel is {k}x{k}, beyond the array: {e}") from None
        cfg = array_config_from_args(parser, args)
        data = _eval_data(args, graph)
        if args.input is not None:
            x = load_input(args.input, graph.input_shape)
        else:
            x = np.random.default_rng(args.seed).random(graph.input_shape)
        if not cfg.epilogue:
            raise ValueError("the network's layers requantize in the array: keep --epilogue 1")
        if data is not None:  # calibrated on training images; cycles measured on the first test image
            x = data.x_test[0]
        net = quantize(graph, x if data is None else data.calibration_subset(args.calibration, args.seed), cfg, spec,
                       args.prune_classifier)
    except (GraphError, ValueError, OSError) as e:
        parser.error(str(e))

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    names = {op.name for op in graph.ops if op.kind in ("Conv", "Gemm")}
    unknown = [n for n in args.rtl_layer if n not in names]
    if unknown:
        parser.error(f"--rtl-layer {unknown[0]} is not a conv or fully connected node of the model "
                     f"(they are: {', '.join(sorted(names))})")

    kw = {"target": target, "seed": args.seed, "baud": args.baud}
    with make_executor(args.workers, args.dask_scheduler) as executor:
        runner = ArrayRun(cfg, args.rtl if data is None else "none", args.sample, args.seed, progress,
                          rtl_runner(kw, executor, args.workers), tuple(args.rtl_layer))

        def image_on_rtl(xq: np.ndarray) -> tuple[np.ndarray, list[dict]]:
            run = ArrayRun(cfg, "all", 0, args.seed, progress, rtl_runner(kw, executor, args.workers))
            return run_int(net, xq, run)[graph.output], run.layers

        try:
            rep = run_network(net, x, runner)
            if data is not None:
                images = rtl_images(args.rtl, args.sample, len(data.x_test), args.seed)
                rep["eval"], logits = evaluate(net, data, args.calibration, args.prune, rep, images, image_on_rtl)
        except ValueError as e:  # e.g. a layer the array cannot run even in passes
            parser.error(str(e))
    rep["model"] = str(args.model)
    rep["prune"] = args.prune
    text = json.dumps(rep, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    t = rep["total"]
    print(f"{len(rep['steps'])} steps, {t['passes']} passes on the array: {t['cycles']} cycles "
          f"({t['speedup']:.2f}x over the dense array), {rtl_verdict(t['rtl_passes'], t['rtl_ok'])}; "
          f"int8 network == reference: {rep['int8_matches_reference']}; "
          f"float top-1 agrees: {rep['float_vs_int8']['top1_agree']}", file=sys.stderr)
    ok = rep["int8_matches_reference"] and t["rtl_ok"] and t["golden_matches_reference"]
    if data is not None:
        if args.logits:
            np.save(args.logits, logits)
        print(summary(rep["eval"]), file=sys.stderr)
        ok = ok and rep["eval"]["rtl_exact"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
