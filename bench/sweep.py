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
* **Resumability.** Results go to a JSONL file, one record per run, keyed by a hash of (dataflow, array
  parameters, layer name and shape, granularity, target sparsity, seed). A rerun skips keys already
  stored as ``ok`` or ``skipped`` (a layer that does not fit the buffers) and retries ``error`` ones.
* **Export.** After the sweep every record of the JSONL file is flattened, joined with its dense
  baseline (``speedup``) and written to ``.csv`` and ``.json`` next to it (:data:`EXPORT_COLUMNS`).

Example::

    python -m bench.sweep --dataflows dense,kernel --sparsities 0.5,0.75,0.9 --arrays 4x4,2x8 \\
        --layers cifar,alexnet --results bench/results/results.jsonl
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import importlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from golden.cli import OutputFile, Parser
from golden.dataflow import DATAFLOW_TABLE
from golden.jsonl import append_jsonl, read_jsonl
from golden.paths import cache_dir, display_path, records_root
from sim.parallel import Progress, chunks, completed, hms, make_executor
from sim.verilator import HARNESS_HELP, HARNESSES

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_RESULTS = records_root() / "bench" / "results" / "results.jsonl"
"""Where the sweep keeps its runs: ``bench/results/`` of the checkout, of the current directory when installed."""
DEFAULT_SPARSITIES = (0.0, 0.5, 0.75, 0.9)
DEFAULT_ARRAYS = ("4x4", "2x8")
DEFAULT_LAYERS = ("cifar", "alexnet")
DEFAULT_PARAMS = {"epilogue": 1}
"""Array parameters of every sweep array unless ``--param`` overrides them: the output stage, so a layer
whose output row of all input channels exceeds the activation buffer runs in input-channel chunks
(``golden.passes``); layers without an output stage pass through it unchanged."""

PAIRING = {name: d.pruning for name, d in DATAFLOW_TABLE.items()}
"""Pruning granularity of each dataflow (``golden.dataflow``; None: the dense baseline is never pruned)."""

DONE_STATUSES = ("ok", "skipped")

EXPORT_COLUMNS = (
    "key", "status", "dataflow", "granularity", "rows", "cols", "pes", "acc_depth", "array", "layer", "net",
    "M", "C", "H", "W", "R", "S", "stride", "padding", "E", "F", "seed", "target_sparsity", "sparsity",
    "cycles", "predicted_cycles", "cycles_match", "outputs_match", "counters_match",
    "dense_cycles", "speedup", "ideal_speedup", "speedup_vs_ideal",
    "useful_macs", "dense_macs", "ideal_cycles", "utilization", "compression_ratio", "ops_saved",
    "weight_bits_stored", "index_bits_stored", "mem_words", "mem_bits", "mem_words_per_mac", "mem_bits_per_mac",
    "act_reads", "weight_reads", "index_reads", "output_writes", "act_bits_read", "weight_bits_read",
    "index_bits_read", "output_bits_written", "mac_cycles", "load_stall_cycles", "drain_stall_cycles",
    "tile_loads", "kept_energy", "groups_pruned", "n_groups", "job_wall_s", "git_commit", "error",
)
"""Columns of the CSV/JSON export (BRIEF §5 names; ``mem_*`` = memory references)."""


# --------------------------------------------------------------------------------------------------
# the grid


def available_dataflows() -> tuple[str, ...]:
    """Dataflows the generator builds *now* (read at call time: another module may have grown the tuple)."""
    config = importlib.import_module("golden.config")
    return tuple(config.DATAFLOWS)


def granularity_for(dataflow: str) -> str | None:
    """The pruning granularity whose zeros ``dataflow`` can skip (None for dense)."""
    from golden.prune import GRANULARITIES

    if dataflow in PAIRING:
        return PAIRING[dataflow]
    if dataflow in GRANULARITIES:
        return dataflow
    raise ValueError(f"no pruning granularity is paired with dataflow {dataflow!r}; "
                     f"add it to golden.dataflow.DATAFLOW_TABLE")


@dataclass(frozen=True)
class RunSpec:
    """One point of the grid: a layer, pruned at one granularity and sparsity, run on one array."""

    dataflow: str
    array: tuple[tuple[str, int], ...]  # rows, cols and any --param overrides, sorted by name
    layer: str
    granularity: str  # "none" for the dense baseline
    target_sparsity: float
    seed: int

    @property
    def array_dict(self) -> dict[str, int]:
        return dict(self.array)

    @property
    def key(self) -> str:
        from bench.layers import layer_specs

        ident = {"dataflow": self.dataflow, "array": self.array_dict, "layer": self.layer,
                 "layer_shape": layer_specs([self.layer])[0].shape(), "granularity": self.granularity,
                 "sparsity": round(self.target_sparsity, 6), "seed": self.seed}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"key": self.key, "dataflow": self.dataflow, "array": self.array_dict, "layer": self.layer,
                "granularity": self.granularity, "target_sparsity": self.target_sparsity, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        return cls(d["dataflow"], tuple(sorted(d["array"].items())), d["layer"], d["granularity"],
                   float(d["target_sparsity"]), int(d["seed"]))

    def config(self):
        from golden.config import ArrayConfig

        return ArrayConfig(dataflow=self.dataflow, **self.array_dict)


def plan(dataflows: Sequence[str], sparsities: Sequence[float], arrays: Sequence[dict[str, int]],
         layers: Sequence[str], seeds: Sequence[int] = (0,)) -> list[RunSpec]:
    """Every run of the grid, dense baseline included, without repeats; in build order."""
    from bench.layers import layer_specs

    specs = layer_specs(list(layers))
    flows = ["dense"] + [d for d in dataflows if d != "dense"]
    runs: list[RunSpec] = []
    for arr in arrays:
        array = tuple(sorted(arr.items()))
        for df in flows:
            gran = granularity_for(df)
            levels = [0.0] if gran is None else list(sparsities)
            for spec in specs:
                for seed in seeds:
                    for s in levels:
                        runs.append(RunSpec(df, array, spec.name, gran or "none", float(s), int(seed)))
    return list(dict.fromkeys(runs))


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
    from bench.layers import layer_specs, make_layer
    from golden.encode import encode
    from golden.passes import fit_or_plan

    spec = layer_specs([run.layer])[0]
    gran = None if run.granularity == "none" else run.granularity
    layer, pruned = make_layer(spec, gran, run.target_sparsity, run.seed)
    cfg = run.config()
    pl = fit_or_plan(layer, cfg)
    parts = [layer] if pl is None else [p.layer for p in pl.passes]
    return Prepared(spec, layer, pruned, pl, [encode(p, cfg) for p in parts])


def _check_runs(run: RunSpec) -> None:
    """Raise ValueError if the run's layer can run neither whole nor in passes (cheap: no encoding)."""
    from bench.layers import layer_specs, make_layer
    from golden.passes import fit_or_plan

    gran = None if run.granularity == "none" else run.granularity
    fit_or_plan(make_layer(layer_specs([run.layer])[0], gran, run.target_sparsity, run.seed)[0], run.config())


def _base_record(run: RunSpec, status: str, **extra) -> dict:
    from bench.layers import layer_specs

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
    from golden import metrics

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
    from bench.layers import kept_energy
    from golden import metrics

    layer, cfg = p.layer, p.encs[0].cfg
    if any(r["outputs"] is None for r in results):  # a hang
        return _base_record(run, "error", error="; ".join(q for r in results for q in r["problems"]))
    perf = _sum_dicts([r["perf"] for r in results])
    predicted_perf = _sum_dicts([r["predicted_perf"] for r in results])
    cycles, predicted = sum(r["cycles"] for r in results), sum(r["predicted_cycles"] for r in results)
    outputs_match = all(r["outputs_match"] for r in results)
    if p.plan is not None and outputs_match:
        import numpy as np

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
    from golden.config import ArrayConfig
    from sim.native import build_native
    from sim.verilator import DEFAULT_BUILD_ROOT, build

    t0 = time.perf_counter()
    b = (build_native if harness == "native" else build)(ArrayConfig.from_dict(cfg_dict),
                                                          Path(build_root) if build_root else DEFAULT_BUILD_ROOT)
    return {"directory": str(b.directory), "seconds": time.perf_counter() - t0}


def run_chunk(runs: list[dict], build_root: str | None, job_name: str, git_commit: str = "",
              harness: str = "native") -> list[dict]:
    """Run a chunk of same-array runs (every pass of each) in ONE harness job; returns their records
    (never raises)."""
    from sim.verilator import DEFAULT_BUILD_ROOT, run_layers

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


def _load_synth():
    """``hdl.synth`` and ``hdl.board``, or None with the reason (optional modules that may be absent)."""
    try:
        synth = importlib.import_module("hdl.synth")
        board = importlib.import_module("hdl.board")
    except ImportError as e:
        if getattr(e, "name", None) in ("hdl.synth", "hdl.board", None):
            return None, f"hdl.synth is not available ({e})"
        raise
    if not callable(getattr(synth, "synthesize", None)) or not hasattr(board, "BoardSpec"):
        return None, "hdl.synth has no synthesize(spec, cfg, out_dir, ...) / hdl.board has no BoardSpec"
    return (synth, board), ""


def synth_config(dataflow: str, array: dict[str, int], board: str) -> dict:
    """The array synthesized for ``board``: the board's array defaults (``constraints/<board>.json``, sized to
    fit the device), then the sweep's dataflow, shape and ``--param`` overrides -- as ``python -m hdl.synth``."""
    mods, why = _load_synth()
    if mods is None:
        raise RuntimeError(why)
    spec = mods[1].BoardSpec.load(board)
    from golden.config import ArrayConfig

    return ArrayConfig.from_dict({**spec.array, "dataflow": dataflow, **array}).to_dict()


def synth_key(cfg_dict: dict, board: str) -> str:
    ident = {"kind": "synth", "array_config": cfg_dict, "board": board}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def synth_array(cfg_dict: dict, board: str, key: str, git_commit: str = "") -> dict:
    """Synthesize one array for ``board`` through ``hdl.synth``; a ``kind: synth`` record (never raises).

    The record's ``synth`` holds Fmax (``fmax_mhz``), ``timing_passed`` and per resource kind the cells
    used (``LC``, ``DSP``, ``BRAM``, ...) and their share of the device (``LC_pct``, ...).
    """
    from golden.config import ArrayConfig

    cfg = ArrayConfig.from_dict(cfg_dict)
    base = {"key": key, "kind": "synth", "dataflow": cfg.dataflow, "array": {"rows": cfg.rows, "cols": cfg.cols},
            "array_config": cfg_dict, "board": board, "git_commit": git_commit,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        mods, why = _load_synth()
        if mods is None:
            return {**base, "status": "error", "error": why}
        synth, boards = mods
        spec = boards.BoardSpec.load(board)
        out = cache_dir("synth") / f"{board}-{cfg.dataflow}-{cfg.rows}x{cfg.cols}-{key}"
        rep = synth.synthesize(spec, cfg, out, clock_mhz=spec.clock_mhz, baud=spec.baud)
    except Exception as e:
        return {**base, "status": "error", "error": f"{type(e).__name__}: {e}"}
    values = {"fmax_mhz": rep.get("fmax_mhz"), "timing_passed": rep.get("timing_passed"),
              "clock_mhz": rep.get("clock", {}).get("generated_mhz"), "seconds": rep.get("seconds")}
    for kind, u in rep.get("utilization", {}).items():
        values[kind] = u.get("used")
        if "percent" in u:
            values[f"{kind}_pct"] = u["percent"]
    return {**base, "status": "ok", "synth": values, "report": display_path(out / "synth_report.json")}


# --------------------------------------------------------------------------------------------------
# results file


def load_records(path: Path) -> list[dict]:
    """Every record of a JSONL results file (a torn last line from an interrupted run is ignored)."""
    return read_jsonl(path)


def latest(records: Iterable[dict]) -> dict[str, dict]:
    """The last record of every key (a retried error is superseded by its later result)."""
    out: dict[str, dict] = {}
    for r in records:
        out[r["key"]] = r
    return out


def done_keys(path: Path) -> set[str]:
    return {k for k, r in latest(load_records(path)).items() if r.get("status") in DONE_STATUSES}


def append_records(path: Path, records: list[dict]) -> None:
    """Append records as JSON lines, locked, flushed to disk, after repairing a line torn by a crash
    (:func:`golden.jsonl.append_jsonl`): safe to interrupt and resume."""
    append_jsonl(path, records)


def _array_id(r: dict) -> str:
    return json.dumps(r["array"], sort_keys=True)


def export_rows(records: Iterable[dict]) -> list[dict]:
    """Flat rows (:data:`EXPORT_COLUMNS`) of the latest run records, joined with their dense baseline."""
    runs = [r for r in latest(records).values() if r.get("kind", "run") == "run"]
    dense = {(_array_id(r), r["layer"], r["seed"]): r["cycles"]
             for r in runs if r["dataflow"] == "dense" and r["status"] == "ok"}
    rows = []
    for r in runs:
        shape = r.get("layer_shape", {})
        mem = r.get("memory_references", {})
        perf = r.get("perf", {})
        cfg = r.get("array_config", {})
        row = {
            **{k: r.get(k) for k in EXPORT_COLUMNS if k in r and not isinstance(r.get(k), dict)},
            "rows": r["array"].get("rows"), "cols": r["array"].get("cols"),
            "array": f"{r['array'].get('rows')}x{r['array'].get('cols')}",
            "acc_depth": cfg.get("acc_depth"), "pes": r.get("pes"),
            **{k: shape.get(k) for k in ("M", "C", "H", "W", "R", "S", "stride", "padding", "E", "F")},
            "mem_words": mem.get("words"), "mem_bits": mem.get("bits"),
            "act_reads": mem.get("act_reads_words"), "weight_reads": mem.get("weight_reads_words"),
            "index_reads": mem.get("index_reads_words"), "output_writes": mem.get("output_writes_words"),
            "act_bits_read": mem.get("act_reads_bits"), "weight_bits_read": mem.get("weight_reads_bits"),
            "index_bits_read": mem.get("index_reads_bits"), "output_bits_written": mem.get("output_writes_bits"),
            **{k: perf.get(k) for k in ("mac_cycles", "load_stall_cycles", "drain_stall_cycles", "tile_loads")},
        }
        d = dense.get((_array_id(r), r["layer"], r["seed"]))
        if r["status"] == "ok":
            row["dense_cycles"] = d
            row["speedup"] = d / r["cycles"] if d and r["cycles"] else None
            row["ideal_speedup"] = r["dense_macs"] / r["useful_macs"] if r["useful_macs"] else None
            if row["speedup"] and row["ideal_speedup"]:
                row["speedup_vs_ideal"] = row["speedup"] / row["ideal_speedup"]
        rows.append({k: row.get(k) for k in EXPORT_COLUMNS})
    order = {df: i for i, df in enumerate(DATAFLOW_TABLE)}
    rows.sort(key=lambda x: (x["rows"] or 0, x["cols"] or 0, order.get(x["dataflow"], 99), x["dataflow"],
                             x["layer"], x["seed"], x["target_sparsity"]))
    return rows


def synth_rows(records: Iterable[dict]) -> list[dict]:
    """Flat rows of the latest ``kind: synth`` records that succeeded."""
    out = []
    for r in latest(records).values():
        if r.get("kind") == "synth" and r.get("status") == "ok":
            out.append({"dataflow": r["dataflow"], "array": f"{r['array']['rows']}x{r['array']['cols']}",
                        "board": r["board"], **r["synth"]})
    return out


def export(results: Path, csv_path: Path | None = None, json_path: Path | None = None) -> tuple[Path, Path]:
    """Write the CSV and JSON export of ``results`` (default: next to it); return both paths."""
    import csv

    records = load_records(results)
    rows = export_rows(records)
    csv_path = csv_path or results.with_suffix(".csv")
    json_path = json_path or results.with_suffix(".json")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(EXPORT_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    json_path.write_text(json.dumps({"runs": rows, "synth": synth_rows(records)}, indent=1) + "\n")
    return csv_path, json_path


# --------------------------------------------------------------------------------------------------
# execution


def git_commit() -> str:
    """``HEAD``'s short hash, with ``+dirty`` when the work tree has changes (read-only git calls)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty and head else "")


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
        mods, why = _load_synth()
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
        except KeyboardInterrupt:
            for fut in pending:
                fut.cancel()
            print("\ninterrupted: finished runs are saved; rerun the same command to resume", file=log)
            raise
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
    from golden.config import ArrayConfig

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
        mods, _ = _load_synth()
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
