"""The results store of ``bench.sweep``: one JSONL file of run (and synthesis) records, and its export.

Records are appended as they finish (locked and flushed, :mod:`golden.jsonl`), so a sweep can be
interrupted and resumed: the last record of a key wins, and keys stored as ``ok`` or ``skipped``
(:data:`DONE_STATUSES`) are not run again. :func:`export` flattens the latest run records into the CSV
and JSON tables ``bench.report`` reads (:data:`EXPORT_COLUMNS`), each joined with its dense baseline.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from golden.dataflow import DATAFLOW_TABLE
from golden.jsonl import append_jsonl, read_jsonl
from golden.paths import records_root

DEFAULT_RESULTS = records_root() / "bench" / "results" / "results.jsonl"
"""Where the sweep keeps its runs: ``bench/results/`` of the checkout, of the current directory when installed."""
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
