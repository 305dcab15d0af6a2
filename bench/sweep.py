"""``python -m bench.sweep``: dataflows x sparsities x array shapes x layers, run on the Verilator RTL.

Every run prunes one real layer (:mod:`bench.layers`, at its published size by default) at the
granularity its dataflow can skip, runs it on the generated array in Verilator (whole, or in the
passes its buffers need, :mod:`golden.passes`; through the native driver by default,
:func:`sim.verilator.run_layers`: outputs compared bit for bit with the golden model, cycles and
counters with ``golden.timing``, and the assembled passes with the whole layer's golden outputs) and
stores one JSON line with the measured cycles, the prediction and every BRIEF §5 metric, summed over
the passes.

* **Pairing.** dense -> no pruning, kernel -> kernel, vector -> vector, strided -> strided, element ->
  element; any other dataflow named like a :data:`golden.prune.GRANULARITIES` entry is paired with that
  granularity. The dataflows are read from :data:`golden.config.DATAFLOWS` at run time, so new ones
  join the default sweep automatically. The dense dataflow is always run (once per layer, unpruned):
  it is the baseline of ``speedup`` (its cycles do not depend on weight values).
* **Grouping.** Runs are grouped per array build (dataflow + array parameters); each group is built
  once (cached by :mod:`sim.verilator`) and run in chunks of up to ``--chunk-size`` runs (every pass
  of each), one simulation job per chunk. Builds are queued first so that workers build different
  arrays at the same time.
* **Parallelism.** ``--workers`` local processes (default 2), or ``--dask-scheduler ADDRESS`` to send
  the same tasks to a running Dask distributed cluster (its workers must be able to import this
  repository, e.g. started from a checkout: ``cd REPO && dask worker ADDRESS``).
* **Resumability.** Results go to a JSONL file, one record per run, keyed by a hash of (dataflow, the
  array it builds with every default resolved, layer name and shape, granularity, target sparsity, seed).
  A rerun skips keys already stored as ``ok`` or ``skipped`` (a layer that does not fit the buffers)
  and retries ``error`` ones.
* **Export.** After the sweep every record of the JSONL file is flattened, joined with its dense
  baseline (``speedup``) and written to ``.csv`` and ``.json`` next to it (:data:`bench.store.EXPORT_COLUMNS`).

The grid is :mod:`bench.grid`, the results store :mod:`bench.store`, the syntheses of ``--synth``
:mod:`bench.synth_sweep`; this module runs the grid on the RTL and is the command line.

Example::

    python -m bench.sweep --dataflows dense,kernel --sparsities 0.5,0.75,0.9 --arrays 4x4,2x8 \\
        --layers cifar,alexnet --results bench/results/results.jsonl
"""


from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import shutil
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from golden import metrics
from golden.cli import OutputFile, Parser
from golden.config import ArrayConfig
from golden.encode import encode
from golden.passes import fit_or_plan
from golden.paths import git_commit
from sim.native import build_native
from sim.parallel import Progress, cancel_on_interrupt, chunks, completed, hms, make_executor
from sim.verilator import DEFAULT_BUILD_ROOT, HARNESS_HELP, HARNESSES, build, run_layers

from .grid import DEFAULT_ARRAYS, DEFAULT_LAYERS, DEFAULT_PARAMS, DEFAULT_SPARSITIES, RunSpec, available_dataflows, plan
from .layers import kept_energy, layer_specs, make_layer
from .store import DEFAULT_RESULTS, append_records, done_keys, export
from .synth_sweep import load_synth, synth_array, synth_config, synth_key

# --------------------------------------------------------------------------------------------------
# worker side (module-level functions: pickled by reference for processes and Dask workers)


@dataclass(frozen=True)
class Prepared:
    """One run's layer, prune result, pass plan (``None``: it fits in one run) and the encodings of the
    layers the array runs (the layer itself, or its passes)."""

    spec: object
    layer: object
    pruned: object
    plan: object
    encs: list

    @property
    def parts(self) -> list:
        return [e.layer for e in self.encs]


def _prepare(run: RunSpec) -> Prepared:
    """Layer, prune result, passes and encodings of one run (deterministic; raises ValueError if the layer
    can run neither whole nor in passes on the array)."""
    spec = layer_specs([run.layer])[0]
    gran = None if run.granularity == "none" else run.granularity
    layer, pruned = make_layer(spec, gran, run.target_sparsity, run.seed)
    cfg = run.config()
    pl = fit_or_plan(layer, cfg)
    parts = [layer] if pl is None else [p.layer for p in pl.passes]
    return Prepared(spec, layer, pruned, pl, [encode(p, cfg) for p in parts])


def _check_runs(run: RunSpec) -> None:
    """Raise ValueError if the run's layer can run neither whole nor in passes (cheap: no encoding)."""
    gran = None if run.granularity == "none" else run.granularity
    fit_or_plan(make_layer(layer_specs([run.layer])[0], gran, run.target_sparsity, run.seed)[0], run.config())


def _base_record(run: RunSpec, status: str, **extra) -> dict:
    spec = layer_specs([run.layer])[0]
    return {**run.to_dict(), "kind": "run", "status": status, "net": run.layer.split(".")[0],
            "layer_shape": {**spec.shape(), "E": spec.e, "F": spec.f}, "layer_original": spec.original,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}


def _sum_dicts(dicts: list[dict]) -> dict:
    return {k: sum(d[k] for d in dicts) for k in dicts[0]}


def stored_bits(p: Prepared) -> dict[str, int]:
    """Bits the layer's weights and index occupy: one run's images, or, in passes, one image per (filter
    chunk, channel chunk) (the bands of a chunk load the same weights again: that is traffic, counted
    by the memory references, not storage)."""
    if p.plan is None:
        return metrics.storage_bits(p.encs[0])
    first = {}
    for ps, enc in zip(p.plan.passes, p.encs, strict=True):
        first.setdefault((ps.m0, ps.c0), enc)
    return _sum_dicts([metrics.storage_bits(e) for e in first.values()])


def make_record(run: RunSpec, p: Prepared, results: list[dict], job_wall_s: float) -> dict:
    """One JSONL record from the RTL results of the run's layer or passes (``run_layers`` items) and the
    golden metrics of the layer. Cycles, counters and memory references are summed over the passes;
    the outputs match when every pass is exact and the assembled passes equal the layer's golden ones."""
    layer, cfg = p.layer, p.encs[0].cfg
    if any(r["outputs"] is None for r in results):  # a hang
        return _base_record(run, "error", error="; ".join(q for r in results for q in r["problems"]))
    perf = _sum_dicts([r["perf"] for r in results])
    predicted_perf = _sum_dicts([r["predicted_perf"] for r in results])
    cycles, predicted = sum(r["cycles"] for r in results), sum(r["predicted_cycles"] for r in results)
    outputs_match = all(r["outputs_match"] for r in results)
    if p.plan is not None and outputs_match:
        outputs_match = bool(np.array_equal(p.plan.assemble([np.load(r["outputs"]) for r in results]),
                                            layer.expected(cfg)))
    useful = metrics.useful_macs(layer)
    mem = _sum_dicts([metrics.memory_references(e, r["perf"]) for e, r in zip(p.encs, results, strict=True)])
    st = stored_bits(p)
    return _base_record(
        run, "ok",
        array_config=cfg.to_dict(), pes=cfg.pes,
        sparsity=metrics.sparsity(layer.weights), passes=len(p.encs),
        cycles=cycles, predicted_cycles=predicted,
        cycles_match=cycles == predicted,
        outputs_match=outputs_match,
        counters_match=perf == predicted_perf,
        useful_macs=useful, dense_macs=metrics.dense_macs(layer),
        ideal_cycles=metrics.ideal_cycles(layer, cfg.multipliers),
        utilization=metrics.utilization(layer, cfg.multipliers, cycles),
        compression_ratio=layer.weights.size * cfg.weight_bits / (st["weight_bits"] + st["index_bits"]),
        ops_saved=metrics.ops_saved(layer),
        weight_bits_stored=st["weight_bits"], index_bits_stored=st["index_bits"],
        memory_references=mem, perf=perf,
        mem_words_per_mac=mem["words"] / useful if useful else None,
        mem_bits_per_mac=mem["bits"] / useful if useful else None,
        kept_energy=kept_energy(p.spec, layer.weights, run.seed),
        groups_pruned=p.pruned.groups_pruned if p.pruned else 0, n_groups=p.pruned.n_groups if p.pruned else 0,
        job_wall_s=job_wall_s,
    )


def build_array(cfg_dict: dict, build_root: str | None, harness: str = "native") -> dict:
    """Generate and compile (or find cached) one array for ``harness``; returns where it is and how long
    it took."""
    t0 = time.perf_counter()
    b = (build_native if harness == "native" else build)(ArrayConfig.from_dict(cfg_dict),
                                                          Path(build_root) if build_root else DEFAULT_BUILD_ROOT)
    return {"directory": str(b.directory), "seconds": time.perf_counter() - t0}


def run_chunk(runs: list[dict], build_root: str | None, job_name: str, git_commit: str = "",
              harness: str = "native") -> list[dict]:
    """Run a chunk of same-array runs (every pass of each) in ONE harness job; returns their records
    (never raises)."""
    specs = [RunSpec.from_dict(r) for r in runs]
    t0 = time.perf_counter()
    try:
        prepared = [_prepare(s) for s in specs]
        results = run_layers(specs[0].config(), [q for p in prepared for q in p.parts], name=job_name, check=False,
                             root=Path(build_root) if build_root else DEFAULT_BUILD_ROOT, harness=harness)
    except Exception as e:  # one bad chunk must not end the sweep: record it, a rerun retries it
        msg = f"{type(e).__name__}: {e}"
        return [_base_record(s, "error", error=msg, git_commit=git_commit) for s in specs]
    wall = time.perf_counter() - t0
    records, k = [], 0
    total = sum(r["predicted_cycles"] for r in results) or 1
    for s, p in zip(specs, prepared, strict=True):
        mine, k = results[k:k + len(p.encs)], k + len(p.encs)
        share = wall * sum(r["predicted_cycles"] for r in mine) / total  # the job's wall time, by cycles
        records.append(dict(make_record(s, p, mine, share), git_commit=git_commit))
    written = [r["outputs"] for r in results if r["outputs"] is not None]
    if written:  # the job's layer files and output arrays are not needed once recorded
        shutil.rmtree(Path(written[0]).parent, ignore_errors=True)
    return records


# --------------------------------------------------------------------------------------------------
# execution


@dataclass
class SweepSummary:
    planned: int = 0
    already_done: int = 0
    ran: int = 0
    skipped: int = 0
    errors: int = 0
    mismatches: int = 0
    synth: int = 0
    wall_s: float = 0.0


def sweep(runs: list[RunSpec], results: Path, *, workers: int = 2, dask_scheduler: str | None = None,
          chunk_size: int = 12, build_root: str | None = None, synth_board: str | None = None,
          progress: bool = True, log=None, harness: str = "native") -> SweepSummary:
    """Run every run of ``runs`` not already in ``results``; append their records as they finish."""
    log = log or sys.stderr
    t0 = time.monotonic()
    summary = SweepSummary(planned=len(runs))
    done = done_keys(results)
    todo = [r for r in runs if r.key not in done]
    summary.already_done = len(runs) - len(todo)
    commit = git_commit()

    # fit check in this process: a layer that does not fit the buffers is recorded, not run
    groups: dict[str, list[RunSpec]] = {}
    cfgs: dict[str, dict] = {}
    skipped = []
    for r in todo:
        try:
            _check_runs(r)
        except ValueError as e:
            skipped.append(_base_record(r, "skipped", error=str(e), git_commit=commit))
            continue
        gid = json.dumps(r.config().to_dict(), sort_keys=True)
        groups.setdefault(gid, []).append(r)
        cfgs[gid] = r.config().to_dict()
    if skipped:
        append_records(results, skipped)
        summary.skipped = len(skipped)
    synth_jobs = []
    if synth_board:
        mods, why = load_synth()
        if mods is None:
            print(f"--synth {synth_board}: skipped, {why}", file=log)
        else:
            have = done_keys(results)
            wanted = {}
            for r in runs:
                c = synth_config(r.dataflow, r.array_dict, synth_board)
                wanted[synth_key(c, synth_board)] = c
            synth_jobs = [(c, k) for k, c in wanted.items() if k not in have]

    n_run = sum(len(v) for v in groups.values())
    print(f"sweep: {len(runs)} runs planned, {summary.already_done} already in {results}, "
          f"{len(skipped)} do not fit the buffers (recorded as skipped), {n_run} to run on "
          f"{len(groups)} array builds" + (f", {len(synth_jobs)} syntheses" if synth_jobs else ""), file=log)
    bar = Progress(n_run, log) if progress and n_run else None
    if not n_run and not synth_jobs:
        summary.wall_s = time.monotonic() - t0
        return summary

    with make_executor(workers, dask_scheduler) as ex:
        pending: dict[cf.Future, tuple] = {}
        for gid in groups:
            pending[ex.submit(build_array, cfgs[gid], build_root, harness)] = ("build", gid)
        for c, k in synth_jobs:
            pending[ex.submit(synth_array, c, synth_board, k, commit)] = ("synth", c)
        try:
            with cancel_on_interrupt(pending, "runs", log):
                for fut, (what, item) in completed(ex, pending):
                    if what == "build":
                        group = groups[item]
                        label = f"{group[0].dataflow} {group[0].array_dict['rows']}x{group[0].array_dict['cols']}"
                        exc = fut.exception()
                        if exc is not None:
                            recs = [_base_record(r, "error", error=f"build failed: {exc}", git_commit=commit)
                                    for r in group]
                            append_records(results, recs)
                            summary.errors += len(recs)
                            if bar:
                                bar.update(len(recs), f"BUILD FAILED {label}")
                            continue
                        for chunk in chunks(group, chunk_size):
                            # unique per submission: concurrent sweeps share the build's runs/ directory
                            name = f"bench-{uuid.uuid4().hex[:12]}"
                            fut2 = ex.submit(run_chunk, [r.to_dict() for r in chunk], build_root, name, commit,
                                             harness)
                            pending[fut2] = ("chunk", (label, chunk))
                    elif what == "chunk":
                        label, chunk = item
                        exc = fut.exception()
                        recs = (fut.result() if exc is None else
                                [_base_record(r, "error", error=f"{type(exc).__name__}: {exc}", git_commit=commit)
                                 for r in chunk])
                        append_records(results, recs)
                        for rec in recs:
                            if rec["status"] == "ok":
                                summary.ran += 1
                                if not (rec["outputs_match"] and rec["cycles_match"] and rec["counters_match"]):
                                    summary.mismatches += 1
                            else:
                                summary.errors += 1
                        if bar:
                            bar.update(len(recs), label)
                    else:  # synth
                        rec = fut.result()
                        append_records(results, [rec])
                        summary.synth += 1
                        state = "ok" if rec["status"] == "ok" else rec["error"]
                        print(f"synth {rec['dataflow']} {rec['array']['rows']}x{rec['array']['cols']}: {state}",
                              file=log)
        finally:
            if bar:
                bar.close()
    summary.wall_s = time.monotonic() - t0
    return summary


# --------------------------------------------------------------------------------------------------
# command line


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _parse_sparsities(text: str) -> list[float]:
    out = []
    for t in _csv_list(text):
        try:
            v = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"sparsity {t!r} is not a number") from None
        if not 0.0 <= v < 1.0:
            raise argparse.ArgumentTypeError(f"sparsity must be in [0, 1), not {v}")
        out.append(v)
    if not out:
        raise argparse.ArgumentTypeError("give at least one sparsity")
    return out


def _parse_arrays(text: str) -> list[dict[str, int]]:
    out = []
    for t in _csv_list(text):
        parts = t.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
            raise argparse.ArgumentTypeError(f"array shape must be ROWSxCOLS, e.g. 4x4, not {t!r}")
        out.append({"rows": int(parts[0]), "cols": int(parts[1])})
    if not out:
        raise argparse.ArgumentTypeError("give at least one array shape")
    return out


def _parse_seeds(text: str) -> list[int]:
    try:
        return [int(t) for t in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers, not {text!r}") from None


def build_parser() -> Parser:
    p = Parser(
        prog="python -m bench.sweep",
        description="Sweep dataflows x sparsities x array shapes x real layers on the Verilator RTL; "
                    "resumable JSONL results plus CSV/JSON export.",
        epilog="The dense dataflow is always run once per layer and array: it is the speedup baseline.")
    p.add_argument("--dataflows", default="all", metavar="LIST",
                   help="comma-separated dataflows, or 'all' = every one in golden.config.DATAFLOWS now "
                        "(default: %(default)s)")
    p.add_argument("--sparsities", type=_parse_sparsities, default=list(DEFAULT_SPARSITIES), metavar="LIST",
                   help="target weight sparsities for the pruned dataflows (default: "
                        f"{','.join(map(str, DEFAULT_SPARSITIES))})")
    p.add_argument("--arrays", type=_parse_arrays, default=_parse_arrays(",".join(DEFAULT_ARRAYS)), metavar="LIST",
                   help=f"array shapes ROWSxCOLS (default: {','.join(DEFAULT_ARRAYS)})")
    p.add_argument("--layers", default=",".join(DEFAULT_LAYERS), metavar="LIST",
                   help="networks (cifar, alexnet, tiny) or single layers (alexnet.conv4) (default: %(default)s)")
    p.add_argument("--seeds", type=_parse_seeds, default=[0], metavar="LIST",
                   help="seeds of the random weights/activations (default: 0)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=N",
                   help="override an ArrayConfig parameter for every array, e.g. --param acc_depth=16 (repeatable; "
                        + ", ".join(f"{k}={v}" for k, v in DEFAULT_PARAMS.items()) + " unless overridden)")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="FILE.jsonl",
                   help="resumable results file (default: bench/results/results.jsonl)")
    p.add_argument("--csv", type=Path, default=None, metavar="FILE.csv", help="export (default: next to --results)")
    p.add_argument("--json", default=None, metavar="FILE.json", action=OutputFile,
                   help="export (default: next to --results; its directory must exist)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="local worker processes; 1 runs everything in this process (default: %(default)s)")
    p.add_argument("--chunk-size", type=int, default=12, metavar="N",
                   help="runs per simulation job (every pass of each) (default: %(default)s)")
    p.add_argument("--harness", choices=HARNESSES, default="native", help=HARNESS_HELP + " (default: %(default)s)")
    p.add_argument("--build-dir", default=None, metavar="DIR",
                   help="Verilator build cache (default: verilator/ in the cache directory, build/ of a checkout: "
                        "golden.paths)")
    p.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                   help="run the tasks on this Dask distributed scheduler (e.g. tcp://host:8786) instead")
    p.add_argument("--synth", default=None, metavar="BOARD",
                   help="also synthesize every array for BOARD through hdl.synth (skipped if it is missing)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.add_argument("--export-only", action="store_true", help="only rewrite the CSV/JSON export of --results")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _parse_params(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, int]:
    names = {f.name for f in fields(ArrayConfig)} - {"dataflow", "rows", "cols"}
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if name not in names:
            parser.error(f"--param {item!r}: unknown parameter {name!r}; choose one of {', '.join(sorted(names))}")
        try:
            out[name] = int(value)
        except ValueError:
            parser.error(f"--param {item!r}: value must be an integer")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    results: Path = args.results
    if args.export_only:
        csv_path, json_path = export(results, args.csv, args.json)
        print(f"exported {csv_path} and {json_path}")
        return 0
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, not {args.workers}")
    if args.chunk_size < 1:
        parser.error(f"--chunk-size must be >= 1, not {args.chunk_size}")
    have = available_dataflows()
    if args.dataflows.strip() == "all":
        dataflows = list(have)
    else:
        dataflows = _csv_list(args.dataflows)
        unknown = [d for d in dataflows if d not in have]
        if unknown:
            parser.error(f"dataflow(s) {', '.join(unknown)} not built by this generator; "
                         f"golden.config.DATAFLOWS has {', '.join(have)}")
    params = _parse_params(parser, args.param)
    if args.synth:
        mods, _ = load_synth()
        if mods is not None and args.synth not in mods[1].board_names():
            parser.error(f"--synth: unknown board {args.synth!r}; choose one of {', '.join(mods[1].board_names())}")
    arrays = [{**a, **DEFAULT_PARAMS, **params} for a in args.arrays]
    try:
        for a in arrays:
            RunSpec("dense", tuple(sorted(a.items())), "tiny.a", "none", 0.0, 0).config()
        runs = plan(dataflows, args.sparsities, arrays, _csv_list(args.layers), args.seeds)
    except ValueError as e:
        parser.error(str(e))
    if args.dry_run:
        done = done_keys(results)
        todo = [r for r in runs if r.key not in done]
        builds = {(r.dataflow, r.array) for r in todo}
        print(f"{len(runs)} runs ({len(runs) - len(todo)} already in {results}), {len(todo)} to run on "
              f"{len(builds)} array builds; dataflows: {', '.join(['dense'] + [d for d in dataflows if d != 'dense'])}")
        return 0
    s = sweep(runs, results, workers=args.workers, dask_scheduler=args.dask_scheduler, chunk_size=args.chunk_size,
              build_root=args.build_dir, synth_board=args.synth, progress=not args.no_progress,
              harness=args.harness)
    csv_path, json_path = export(results, args.csv, args.json)
    print(f"done in {hms(s.wall_s)} ({s.wall_s:.0f} s): {s.ran} runs, {s.skipped} skipped (do not fit), "
          f"{s.errors} errors, {s.mismatches} RTL/golden mismatches, {s.already_done} already done"
          + (f", {s.synth} syntheses" if s.synth else ""))
    print(f"results: {results}\nexport:  {csv_path}\n         {json_path}")
    return 1 if s.errors or s.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
