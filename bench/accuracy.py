"""``python -m bench.accuracy``: accuracy beside cycles, granularity by granularity (issue 21, item 6).

A speedup means nothing without the accuracy it costs. For each pruning granularity x sparsity this
study fine-tunes the network once (accuracy does not depend on the array) and then, for each lane count
``V``, runs it on the dataflow that exploits that granularity (:data:`golden.dataflow.EXPLOITED_BY`):

* **accuracy**: float unpruned (the base model), float pruned (fine-tuned, ``host.train``), int8 on the
  array's arithmetic (``host.net --eval``: the NumPy int8 reference, bit-exact with the RTL) — so the
  pruning loss and the quantization loss are measured apart, on the same held-out test images;
* **cost**: cycles per image on the golden model (exact) and the speedup over the dense array of the same
  ``V`` (``V = 9`` with the wide feed: ``ArrayConfig``'s feed follows the lanes, ``golden.config.feed_for``),
  index bits and memory traffic (words loaded and written) per image;
* **logic**: the dataflow's FPGA LUTs from the committed area reports (``bench/results/fpga_area-*.json``,
  :func:`fpga_logic`; read, never typed in);
* **kept magnitude** (``block`` points): the share of the base model's conv weight energy one-shot block
  pruning keeps with TETRIS reordering and without it (:func:`kept_magnitude`), the quantity TETRIS's
  reordering is for, which accuracy after fine-tuning alone does not show;
* **RTL**: ``--rtl-sample N`` test images of every point also run on the RTL (``host.net --rtl sample``,
  ``--target``, native Verilator by default), every pass, checked bit- and cycle-exact.

The baseline is trained once (``host.train --model``, its defaults) and cached beside the results; every
point fine-tunes from it with the same seed and epochs (``host.train --init --prune G:S``), and the
fine-tuned models are cached too. The dense baseline on the dense dataflow is one more point.

* **Parallelism and resumability** as in ``bench.sweep``: one task per (granularity, sparsity) on
  ``--workers`` local processes or a Dask cluster (``--dask-scheduler``); records are appended to a JSONL
  file (:mod:`golden.jsonl`) keyed by everything that determines them, and a rerun skips the keys stored
  (except errors and RTL/golden mismatches, which it runs again).
* **Outputs**: the JSONL records, a ``.json`` and ``.csv`` summary next to them, a Markdown table and a
  Pareto plot (int8 accuracy against cycles per image, one curve per granularity, a panel per ``V``) in
  ``--report-dir``, and with ``--readme`` the table and plot between the README's
  ``<!-- bench.accuracy:begin -->`` / ``<!-- bench.accuracy:end -->`` markers.

Example::

    python -m bench.accuracy --data digits --granularities kernel,element --sparsities 0.5,0.75,0.9 --lanes 1,9
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import inspect
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from golden.cli import Parser
from golden.config import ArrayConfig
from golden.dataflow import EXPLOITED_BY
from golden.jsonl import append_jsonl, read_jsonl, record_key
from golden.paths import display_path, records_root
from golden.prune import GRANULARITIES, prune
from host import net
from host.data import load_dataset
from host.evaluate import accuracy
from host.graph import load_onnx, run_float
from sim.parallel import Progress, cancel_on_interrupt, completed, hms, make_executor

DEFAULT_RESULTS = records_root() / "bench" / "results" / "accuracy.jsonl"
DEFAULT_REPORT_DIR = records_root() / "bench" / "report"
DEFAULT_SPARSITIES = (0.5, 0.75, 0.9)
DEFAULT_LANES = (1, 9)
DENSE = "dense"
"""The unpruned base model's point (granularity and dataflow ``dense``, sparsity 0)."""
README_BEGIN, README_END = "<!-- bench.accuracy:begin -->", "<!-- bench.accuracy:end -->"
AREA_BOARD = "ulx3s-85f"
"""The board whose area reports are preferred: the ECP5 build exists at ``V = 1`` and ``V = 9``."""

CSV_COLUMNS = (
    "key", "status", "granularity", "target_sparsity", "sparsity", "lanes", "dataflow", "epochs", "seed",
    "acc_float_base", "acc_float_pruned", "acc_int8", "pruning_loss", "quantization_loss",
    "cycles_per_image", "dense_cycles_per_image", "speedup", "index_bits", "words_in", "words_out",
    "fpga_lut", "fpga_ff", "fpga_dsp", "fpga_lut_vs_dense", "fpga_source", "rtl_images", "rtl_exact",
    "kept_block_reordered", "kept_block_given_order", "kept_element", "finetune_s", "eval_s", "error",
)


# --------------------------------------------------------------------------------------------------
# points and keys


def point_key(ctx: dict, granularity: str, sparsity: float, lanes: int) -> str:
    """The record key: a hash of everything a record depends on (data, training, array, RTL sample)."""
    ident = {k: ctx[k] for k in ("data_id", "seed", "epochs", "base_epochs", "rtl_sample", "target", "rows", "cols")}
    ident.update(granularity=granularity, sparsity=round(sparsity, 6), lanes=lanes)
    return record_key(ident)


def data_id(spec: str) -> str:
    """What names a data set in keys and cache paths: ``digits``, or a file's stem and content hash."""
    if spec == "digits":
        return spec
    path = Path(spec)
    return f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}"


def model_dir(ctx: dict) -> Path:
    """Where the base and fine-tuned models of this data, seed and epochs are cached."""
    return Path(ctx["results"]).with_suffix("") / (f"{ctx['data_id']}-seed{ctx['seed']}-base{ctx['base_epochs']}"
                                                   f"-ft{ctx['epochs']}")


# --------------------------------------------------------------------------------------------------
# worker side (module-level: pickled by reference for processes and Dask workers)


def _call(main, argv: list[str]) -> str:
    """Run a command's ``main(argv)`` here with its output captured; ``RuntimeError`` with its last
    line when it fails (an argument error exits 2 through ``SystemExit``). Returns what it printed."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main(argv)
    except SystemExit as e:
        status = e.code
    text = out.getvalue()
    if status not in (0, None, 1):
        last = [line for line in text.splitlines() if line.strip()][-1:] or ["(no output)"]
        raise RuntimeError(f"{main.__module__} {' '.join(argv)}: {last[0]}")
    return text


def _train(argv: list[str], path: Path) -> None:
    """``host.train`` with ``argv`` to ``path``, written to a temporary name first so that an
    interrupted run never leaves a model that a resumed one would take for finished."""
    from host import train  # lazy: host.train needs jax, the optional [train] extra; only training pays for it

    tmp = path.with_name(path.stem + ".partial.onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    _call(train.main, [*argv, "-o", str(tmp)])
    tmp.replace(path)


def base_model(ctx: dict) -> Path:
    """The base model trained from scratch with ``host.train``'s defaults (cached)."""
    path = model_dir(ctx) / "base.onnx"
    if not path.exists():
        argv = ["--model", ctx["model"], "--data", ctx["data"], "--seed", str(ctx["seed"])]
        _train(argv + (["--epochs", str(ctx["base_epochs"])] if ctx["base_epochs"] != "default" else []), path)
    return path


def finetuned_model(ctx: dict, granularity: str, sparsity: float) -> Path:
    """The base model pruned at ``granularity`` to ``sparsity`` and fine-tuned (cached)."""
    if granularity == DENSE:
        return base_model(ctx)
    path = model_dir(ctx) / f"{granularity}-{sparsity:g}.onnx"
    if not path.exists():
        argv = ["--init", str(base_model(ctx)), "--prune", f"{granularity}:{sparsity}", "--data", ctx["data"],
                "--seed", str(ctx["seed"])]
        _train(argv + (["--epochs", str(ctx["epochs"])] if ctx["epochs"] != "default" else []), path)
    return path


def training_metadata(path: Path) -> dict:
    """What ``host.train`` recorded in the model (epochs, learning rate, test accuracy, pruned layers)."""
    from host.train import METADATA_KEY  # lazy: host.train imports jax (the optional [train] extra)

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props.get(METADATA_KEY, "{}"))


def conv_sparsity(path: Path) -> float:
    """The fraction of zero weights over the model's conv layers (the pruned ones)."""
    convs = [op.w for op in load_onnx(path).ops if op.kind == "Conv"]
    return float(sum(int((w == 0).sum()) for w in convs) / sum(w.size for w in convs))


def _blocks_as_kernels(w, block: tuple[int, int]):
    """``w`` ``(M, C, R, S)`` with every ``bm x bc`` block of kernels (in the given order) made one kernel
    ``(M/bm, C/bc, bm*R, bc*S)``, so that ``golden.prune``'s kernel pruning of it is block pruning
    *without* reordering, under the same ranking and rounding rule. A dimension smaller than its block
    is one (partial) block; ``None`` when the blocks do not tile ``w`` (unequal partial blocks)."""
    m, c, r, s = w.shape
    bm, bc = min(block[0], m), min(block[1], c)
    if m % bm or c % bc:
        return None
    return w.reshape(m // bm, bm, c // bc, bc, r, s).transpose(0, 2, 1, 4, 3, 5).reshape(m // bm, c // bc, bm * r,
                                                                                       bc * s)


def kept_magnitude(model: Path, sparsity: float, seed: int) -> dict | None:
    """The fraction of the model's conv weight energy (sum of w², the additive L2 magnitude that
    ``golden.prune`` ranks groups by and TETRIS's reordering maximizes) that one-shot pruning to
    ``sparsity`` keeps, before fine-tuning: ``block`` with ``golden.prune``'s TETRIS reordering (what
    ``host.train`` prunes with, same seed), the same blocks in the given order, and ``element`` (the most
    any granularity can keep). Why: TETRIS's claim is that reordering keeps more of the weights than plain
    block pruning at equal sparsity; accuracy after fine-tuning alone cannot show that on a small network.
    ``None`` when the blocks do not tile a conv (the given-order pruning would not be block pruning)."""
    block = inspect.signature(prune).parameters["block"].default  # what host.train prunes blocks with
    convs = [op.w.astype(np.float64) for op in load_onnx(model).ops if op.kind == "Conv"]
    tiled = [_blocks_as_kernels(w, block) for w in convs]
    if any(t is None for t in tiled):
        return None
    total = sum(float((w * w).sum()) for w in convs)

    def kept(ws, granularity: str) -> float:
        return sum(float((x * x * prune(x, granularity, sparsity, seed=seed).mask).sum()) for x in ws) / total

    return {"block_reordered": kept(convs, "block"), "block_given_order": kept(tiled, "kernel"),
            "element": kept(convs, "element")}


def with_kept_magnitude(records: list[dict], ctx: dict) -> list[dict]:
    """``records`` with :func:`kept_magnitude` of the base model added to every ``block`` point's
    (``kept_magnitude``; computed here, from the cached base model, in well under a second per sparsity,
    so records written before it existed get it too without running their point again)."""
    cache: dict[float, dict | None] = {}
    out = []
    for r in records:
        if r["granularity"] == "block":
            s = r["target_sparsity"]
            if s not in cache:
                cache[s] = kept_magnitude(base_model(ctx), s, ctx["seed"])
            r = {**r, "kept_magnitude": cache[s]}
        out.append(r)
    return out


def run_point(ctx: dict, granularity: str, sparsity: float, lanes: list[int], base_float: float) -> list[dict]:
    """One (granularity, sparsity): fine-tune (or take the cached model), then per ``V`` in ``lanes``
    evaluate it with ``host.net --eval`` on the exploiting dataflow; one record per ``V``."""
    t0 = time.monotonic()
    model = finetuned_model(ctx, granularity, sparsity)
    finetune_s = time.monotonic() - t0
    meta = training_metadata(model)
    dataflow = DENSE if granularity == DENSE else EXPLOITED_BY[granularity][0]
    records = []
    for v in lanes:
        t1 = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "eval.json"
            argv = ["--model", str(model), "--eval", "--data", ctx["data"], "--sparsity", dataflow,
                    "--lanes", str(v), "--rows", str(ctx["rows"]), "--cols", str(ctx["cols"]),
                    "--seed", str(ctx["seed"]), "--target", ctx["target"], "--json", str(out)]
            argv += ["--rtl", "sample", "--sample", str(ctx["rtl_sample"])] if ctx["rtl_sample"] else ["--rtl", "none"]
            _call(net.main, argv)
            rep = json.loads(out.read_text())
        ev, total = rep["eval"], rep["total"]
        acc = ev["accuracy"]
        records.append({
            "key": point_key(ctx, granularity, sparsity, v), "status": "ok",
            "data": ctx["data_id"], "test_images": ev["test_images"], "granularity": granularity,
            "target_sparsity": sparsity, "sparsity": round(conv_sparsity(model), 6), "lanes": v,
            "dataflow": dataflow, "array": rep["array"], "seed": ctx["seed"], "epochs": meta.get("epochs"),
            "lr": meta.get("lr"), "acc_float_base": base_float, "acc_float_pruned": acc["float"],
            "acc_int8": acc["int8"], "pruning_loss": base_float - acc["float"],
            "quantization_loss": acc["float"] - acc["int8"],
            "cycles_per_image": total["cycles"], "dense_cycles_per_image": total["dense_cycles"],
            "speedup": total["speedup"], "index_bits": total["index_bits"], "words_in": total["words_in"],
            "words_out": total["words_out"], "passes": total["passes"],
            "golden_matches_reference": total["golden_matches_reference"] and rep["int8_matches_reference"],
            "fpga": fpga_logic(dataflow, v, ctx["rows"], ctx["cols"]),
            "rtl_images": len(ev["rtl_images"]), "rtl_exact": ev["rtl_exact"] if ev["rtl_images"] else None,
            "finetune_s": round(finetune_s, 1), "eval_s": round(time.monotonic() - t1, 1),
        })
        finetune_s = 0.0  # the fine-tune is paid once per point
    return records


# --------------------------------------------------------------------------------------------------
# FPGA logic from the committed area reports


def area_reports(root: Path | None = None) -> list[tuple[Path, str, dict]]:
    """Every built dataflow of every ``fpga_area-*.json`` report: (file, dataflow, synth report)."""
    root = root or records_root() / "bench" / "results"
    out = []
    for path in sorted(root.glob("fpga_area-*.json")):
        for df, rep in json.loads(path.read_text()).items():
            if "utilization" in rep:
                out.append((path, df, rep))
    return out


def fpga_logic(dataflow: str, lanes: int, rows: int, cols: int, root: Path | None = None) -> dict | None:
    """The dataflow's logic from the area report that fits best: same ``V``, routed before placed-only,
    :data:`AREA_BOARD` first, then the same array shape. ``None`` when no report has this dataflow at
    this ``V``. Its LUTs, FFs, DSPs, LUTs over the same report's dense array, and where they come from."""
    def rank(item: tuple[Path, str, dict]) -> tuple:
        path, _, rep = item
        a = rep["array"]
        return (path.stem.endswith("-placed"), rep.get("board") != AREA_BOARD, (a["rows"], a["cols"]) != (rows, cols),
                path.name)

    reports = area_reports(root)
    fits = sorted((r for r in reports if r[1] == dataflow and r[2]["array"].get("lanes", 1) == lanes), key=rank)
    if not fits:
        return None
    path, _, rep = fits[0]
    use = rep["utilization"]
    logic = "LUT" if "LUT" in use else "LC"
    dense = next((r for p, df, r in reports if p == path and df == DENSE), None)
    base = dense["utilization"].get(logic, {}).get("used") if dense else None
    a = rep["array"]
    return {"logic": logic, "used": use[logic]["used"], "FF": use.get("FF", {}).get("used"),
            "DSP": use.get("DSP", {}).get("used"), "vs_dense": use[logic]["used"] / base if base else None,
            "source": path.name, "board": rep.get("board"), "array": f"{a['rows']}x{a['cols']}",
            "routed": not path.stem.endswith("-placed")}


# --------------------------------------------------------------------------------------------------
# the study


def plan(granularities: Sequence[str], sparsities: Sequence[float]) -> list[tuple[str, float]]:
    """The (granularity, sparsity) points: the dense base first, then the grid."""
    return [(DENSE, 0.0)] + [(g, s) for g in granularities for s in sparsities]


def study(ctx: dict, points: list[tuple[str, float]], lanes: Sequence[int], *, workers: int = 2,
          dask_scheduler: str | None = None, log=None) -> dict:
    """Run every point whose records are not yet in ``ctx['results']``; append records as they finish.
    Returns counts (planned, already done, run, errors, RTL mismatches) and the wall time."""
    log = log or sys.stderr
    t0 = time.monotonic()
    results = Path(ctx["results"])
    done = {r["key"] for r in read_jsonl(results) if verified(r)}
    todo = []
    for g, s in points:
        missing = [v for v in lanes if point_key(ctx, g, s, v) not in done]
        if missing:
            todo.append((g, s, missing))
    n_records = sum(len(m) for *_, m in todo)
    summary = {"planned": len(points) * len(lanes), "already_done": len(points) * len(lanes) - n_records,
               "ran": 0, "errors": 0, "rtl_mismatches": 0}
    print(f"accuracy: {summary['planned']} records planned ({len(points)} points x {len(lanes)} lane counts), "
          f"{summary['already_done']} already in {display_path(results)}, {len(todo)} points to run", file=log)
    if todo:
        t1 = time.monotonic()
        base = base_model(ctx)  # once, here, before the workers fine-tune from it
        data = load_dataset(ctx["data"])
        graph = load_onnx(base)
        base_float = accuracy(run_float(graph, data.x_test)[graph.output], data.y_test)
        print(f"base model {display_path(base)}: float top-1 {base_float:.4f} ({time.monotonic() - t1:.0f} s)",
              file=log)
        bar = Progress(n_records, log)
        with make_executor(workers, dask_scheduler) as ex:
            pending = {ex.submit(run_point, ctx, g, s, missing, base_float): (g, s, missing)
                       for g, s, missing in todo}
            try:
                with cancel_on_interrupt(pending, "points", log):
                    for fut, (g, s, missing) in completed(ex, pending):
                        exc = fut.exception()
                        if exc is None:
                            recs = fut.result()
                        else:
                            recs = [{"key": point_key(ctx, g, s, v), "status": "error", "granularity": g,
                                     "target_sparsity": s, "lanes": v, "error": f"{type(exc).__name__}: {exc}"}
                                    for v in missing]
                        append_jsonl(results, recs)
                        for r in recs:
                            if r["status"] == "ok":
                                summary["ran"] += 1
                                summary["rtl_mismatches"] += not verified(r)
                            else:
                                summary["errors"] += 1
                                print(f"\n{g}:{s:g} V={r['lanes']}: {r['error']}", file=log)
                        bar.update(len(recs), f"{g}:{s:g}")
            finally:
                bar.close()
    summary["wall_s"] = time.monotonic() - t0
    return summary


def current(r: dict) -> bool:
    """An ``ok`` record of the array the generator builds today for its point: every field of the record's
    array equals today's ``ArrayConfig`` with the record's own dataflow, lanes, shape and kernel size (what
    the study and ``host.net`` set; the rest are the generator's defaults). The key names the point, not
    the array, so a record made before a default changed (the feed, ``golden.config.feed_for``: issue 24
    gave ``V = 1`` a second drain lane; the chunk mapping, ``chunks``) or before a field existed is run
    again rather than reported with another array's cycles."""
    if r.get("status") != "ok":
        return False
    array = r.get("array", {})
    try:
        today = ArrayConfig(**{k: array[k] for k in ("dataflow", "lanes", "rows", "cols", "max_kernel") if k in array})
    except (TypeError, ValueError):
        return False
    return all(array.get(k) == v for k, v in today.to_dict().items())


def verified(r: dict) -> bool:
    """A record a rerun keeps: run on today's feed, and nothing disagreed (an RTL or golden mismatch is
    run again, as ``bench.sweep`` retries errors: it is a failure to look at, not a result)."""
    return current(r) and r.get("rtl_exact") is not False and bool(r.get("golden_matches_reference"))


def latest(records: list[dict], keys: set[str]) -> list[dict]:
    """The last current record of each key in ``keys`` (a rerun after an error appends a newer one)."""
    by_key = {r["key"]: r for r in records if current(r) and r["key"] in keys}
    return list(by_key.values())


# --------------------------------------------------------------------------------------------------
# outputs: summary files, table, plot, README


def flat(r: dict) -> dict:
    """A record as one CSV row (:data:`CSV_COLUMNS`)."""
    f = r.get("fpga") or {}
    row = {**r, "fpga_lut": f.get("used"), "fpga_ff": f.get("FF"), "fpga_dsp": f.get("DSP"),
           "fpga_lut_vs_dense": f.get("vs_dense"), "fpga_source": f.get("source"),
           **{f"kept_{k}": v for k, v in (r.get("kept_magnitude") or {}).items()}}
    return {k: row.get(k) for k in CSV_COLUMNS}


def write_summary(records: list[dict], results: Path) -> tuple[Path, Path]:
    """``.json`` (the records) and ``.csv`` (flattened) next to the JSONL file."""
    json_path, csv_path = results.with_suffix(".json"), results.with_suffix(".csv")
    json_path.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, CSV_COLUMNS)
        w.writeheader()
        w.writerows(flat(r) for r in records)
    return json_path, csv_path


def _order(records: list[dict]) -> list[tuple[str, float]]:
    grans = [DENSE, *GRANULARITIES]
    pts = {(r["granularity"], r["target_sparsity"]) for r in records}
    return sorted(pts, key=lambda p: (grans.index(p[0]), p[1]))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _per_lanes(rows: dict[int, dict], lanes: list[int], fmt) -> str:
    """One cell for every ``V``: the values joined by `` / `` (one value when all are equal)."""
    vals = [fmt(rows[v]) if v in rows else "–" for v in lanes]
    return vals[0] if len(set(vals)) == 1 else " / ".join(vals)


def table(records: list[dict]) -> str:
    """The Markdown table: one row per (granularity, sparsity), the lane counts side by side."""
    lanes = sorted({r["lanes"] for r in records})
    vs = "/".join(f"V={v}" for v in lanes)
    head = ["granularity", "sparsity", "dataflow", "float %", "float pruned %", "int8 %", "pruning loss",
            "quant. loss", *[f"cycles/img V={v}" for v in lanes], *[f"× dense V={v}" for v in lanes],
            f"index kbit {vs}", f"words in {vs}", f"FPGA LUT {vs}", "RTL"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by_point: dict[tuple[str, float], dict[int, dict]] = {}
    for r in records:
        by_point.setdefault((r["granularity"], r["target_sparsity"]), {})[r["lanes"]] = r
    for p in _order(records):
        rows = by_point[p]
        r0 = next(iter(rows.values()))
        rtl = [r["rtl_exact"] for r in rows.values()]
        n_img = sum(r["rtl_images"] for r in rows.values())
        rtl_cell = ("not run" if all(x is None for x in rtl) else
                    f"{n_img} img exact" if all(x is True for x in rtl) else "**MISMATCH**")
        cells = [p[0], f"{p[1]:.2f} ({r0['sparsity']:.2f})", r0["dataflow"], _pct(r0["acc_float_base"]),
                 _pct(r0["acc_float_pruned"]), _pct(r0["acc_int8"]), _pct(r0["pruning_loss"]),
                 _pct(r0["quantization_loss"]),
                 *[str(rows[v]["cycles_per_image"]) if v in rows else "–" for v in lanes],
                 *[f"{rows[v]['speedup']:.2f}" if v in rows else "–" for v in lanes],
                 _per_lanes(rows, lanes, lambda r: f"{r['index_bits'] / 1000:.1f}"),
                 _per_lanes(rows, lanes, lambda r: str(r["words_in"])),
                 _per_lanes(rows, lanes, lambda r: str(r["fpga"]["used"]) if r["fpga"] else "–"),
                 rtl_cell]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(records: list[dict]) -> str:
    """What the table's columns are and where the FPGA numbers come from (measured, one line each)."""
    r0 = records[0]
    base = next((r for r in records if r["granularity"] == DENSE), None)
    tuned = next((r for r in records if r["granularity"] != DENSE), r0)
    srcs = sorted({(r["lanes"], r["dataflow"], r["fpga"]["source"], r["fpga"]["array"], r["fpga"]["routed"])
                   for r in records if r["fpga"]})
    by_v: dict[int, set[str]] = {}
    for v, _, src, arr, routed in srcs:
        by_v.setdefault(v, set()).add(f"`{src}` ({arr}{'' if routed else ', placed only'})")
    area = "; ".join(f"V={v}: " + ", ".join(sorted(s)) for v, s in sorted(by_v.items()))
    mapping = "; ".join(f"{g} → {df}" for g, (df, _) in EXPLOITED_BY.items())
    feeds = "; ".join(f"V={v}: {al}×{ar} activations per load, {dl} outputs per drain cycle" for v, al, ar, dl in
                      sorted({(r["lanes"], r["array"]["act_lanes"], r["array"]["act_rows"], r["array"]["drain_lanes"])
                              for r in records}))
    trained = f"base model trained {base['epochs']} epochs, " if base else ""
    kept = {r["target_sparsity"]: r["kept_magnitude"] for r in records if r.get("kept_magnitude")}
    kept_note = ("" if not kept else " Conv weight energy (Σw²) one-shot pruning keeps, base model before fine-tuning "
                 "(`kept_magnitude`), block with TETRIS reordering / same blocks in the given order / element: "
                 + "; ".join(f"{100 * s:g} %: {_pct(k['block_reordered'])} / {_pct(k['block_given_order'])} / "
                             f"{_pct(k['element'])} %" for s, k in sorted(kept.items())) + ".")
    return (f"{r0['data']} test split ({r0['test_images']} images); {trained}each point fine-tuned "
            f"{tuned['epochs']} epochs from it (seed {r0['seed']}); sparsity = target (achieved over the convs). "
            f"Losses are percentage points: "
            f"pruning = float − float pruned, quantization = float pruned − int8. Cycles per image: golden "
            f"model (exact), {r0['array']['rows']}x{r0['array']['cols']} array; × dense = over the dense array "
            f"of the same V; feed ({feeds}). Index bits and words in (weights, indices, activations loaded) per image. "
            f"Dataflow per granularity (`golden.dataflow.EXPLOITED_BY`): {mapping}. FPGA LUTs: {area}.{kept_note}")


def pareto_plot(records: list[dict], path: Path) -> Path:
    """int8 accuracy against cycles per image, one curve per granularity (sparsity rising along it, from
    the dense point), one panel per ``V``; the Pareto front (fewest cycles for the accuracy) dashed."""
    # lazy: matplotlib is optional (the ``dev`` extra); the records and the table need no plotting
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lanes = sorted({r["lanes"] for r in records})
    fig, axes = plt.subplots(1, len(lanes), figsize=(6 * len(lanes), 4.6), squeeze=False)
    grans = [g for g in GRANULARITIES if any(r["granularity"] == g for r in records)]
    markers = "osD^v<>ph*"
    for ax, v in zip(axes[0], lanes, strict=True):
        rv = [r for r in records if r["lanes"] == v]
        dense = [r for r in rv if r["granularity"] == DENSE]
        for k, g in enumerate(grans):
            pts = sorted((r for r in rv if r["granularity"] == g), key=lambda r: r["target_sparsity"])
            pts = dense + pts
            ax.plot([r["cycles_per_image"] for r in pts], [100 * r["acc_int8"] for r in pts],
                    marker=markers[k % len(markers)], label=f"{g} ({EXPLOITED_BY[g][0]})", alpha=0.85)
        for r in dense:
            ax.plot(r["cycles_per_image"], 100 * r["acc_int8"], "k*", ms=12, label="dense", zorder=5)
        front, best = [], -1.0
        for r in sorted(rv, key=lambda r: (r["cycles_per_image"], -r["acc_int8"])):
            if r["acc_int8"] > best:
                front.append(r)
                best = r["acc_int8"]
        ax.step([r["cycles_per_image"] for r in front], [100 * r["acc_int8"] for r in front], "k--",
                where="post", lw=0.8, alpha=0.6, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel("cycles per image (golden model)")
        ax.set_ylabel("int8 top-1 accuracy on the array (%)")
        ax.set_title(f"V = {v}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Accuracy beside cycles: {records[0]['data']}, sparsity 0 → 0.5 → 0.75 → 0.9 along each curve")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def readme_block(records: list[dict], plot: Path, readme: Path) -> str:
    """The README's section body: the plot, the table and its notes."""
    rel = os.path.relpath(plot, readme.parent)
    return (f"{README_BEGIN}\n![accuracy against cycles per image]({rel})\n\n{table(records)}\n\n"
            f"{notes(records)}\n{README_END}")


def update_readme(readme: Path, block: str) -> None:
    """Replace the text between the README's markers with ``block`` (``ValueError`` if they are absent)."""
    text = readme.read_text()
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no {README_BEGIN} ... {README_END} markers; add them where the table goes")
    readme.write_text(text[:start] + block + text[end + len(README_END):])


# --------------------------------------------------------------------------------------------------
# command line


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_granularities(text: str) -> list[str]:
    """``G1,G2,...`` of :data:`golden.prune.GRANULARITIES` (``ArgumentTypeError`` naming a bad one)."""
    out = _csv_list(text)
    bad = [g for g in out if g not in GRANULARITIES]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"granularity {bad[0] if bad else text!r} is not one of "
                                         f"{', '.join(GRANULARITIES)}")
    return out


def parse_sparsities(text: str) -> list[float]:
    """``S1,S2,...`` in (0, 1) (``ArgumentTypeError`` naming a bad one)."""
    out = []
    for t in _csv_list(text) or [text]:
        try:
            v = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"sparsity {t!r} is not a number") from None
        if not 0.0 < v < 1.0:
            raise argparse.ArgumentTypeError(f"sparsity {t} must be in (0, 1), e.g. 0.75")
        out.append(v)
    return out


def parse_lanes(text: str) -> list[int]:
    """``V1,V2,...`` positive integers (``ArgumentTypeError`` naming a bad one)."""
    out = []
    for t in _csv_list(text) or [text]:
        if not t.isdigit() or int(t) < 1:
            raise argparse.ArgumentTypeError(f"lane count {t!r} must be a positive integer, e.g. 1,9")
        out.append(int(t))
    return out


def build_parser() -> Parser:
    p = Parser(prog="python -m bench.accuracy", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--data", default="digits", metavar="D",
                   help="'digits' (embedded) or an .npz with x_train, y_train, x_test, y_test (default: digits)")
    p.add_argument("--model", default="small", help="the network host.train builds (default: small)")
    p.add_argument("--granularities", type=parse_granularities, default=list(GRANULARITIES), metavar="G,...",
                   help=f"pruning granularities (default: all: {','.join(GRANULARITIES)})")
    p.add_argument("--sparsities", type=parse_sparsities, default=list(DEFAULT_SPARSITIES), metavar="S,...",
                   help="target sparsities in (0, 1) (default: 0.5,0.75,0.9)")
    p.add_argument("--lanes", type=parse_lanes, default=list(DEFAULT_LANES), metavar="V,...",
                   help="MAC lanes per PE; the feed follows the lanes (default: 1,9)")
    p.add_argument("--rows", type=int, default=4, metavar="N", help="PE rows (default: 4)")
    p.add_argument("--cols", type=int, default=4, metavar="N", help="PE columns (default: 4)")
    p.add_argument("--epochs", type=int, default=None, metavar="E",
                   help="fine-tuning epochs per point (default: host.train's)")
    p.add_argument("--base-epochs", type=int, default=None, metavar="E",
                   help="epochs of the base model from scratch (default: host.train's)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="training, calibration, RTL sample (default: 0)")
    p.add_argument("--rtl-sample", type=int, default=1, metavar="N",
                   help="test images per point also run on the RTL, every pass (default: 1; 0: none)")
    p.add_argument("--target", default="native", help="where the RTL images run (host.net --target; default: native)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="local worker processes (default: 2)")
    p.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                   help="run the points on this Dask scheduler (e.g. tcp://host:8786) instead of locally")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="FILE.jsonl",
                   help=f"records (resumable; default: {display_path(DEFAULT_RESULTS)}); models are cached in "
                        f"the directory of the same name")
    p.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR, metavar="DIR",
                   help=f"where accuracy.md and accuracy.png go (default: {display_path(DEFAULT_REPORT_DIR)})")
    p.add_argument("--readme", type=Path, default=None, metavar="README.md",
                   help=f"also put the table and plot between this file's {README_BEGIN} / {README_END} markers")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, value, low in (("--workers", args.workers, 1), ("--rtl-sample", args.rtl_sample, 0),
                             ("--epochs", args.epochs, 1), ("--base-epochs", args.base_epochs, 1),
                             ("--rows", args.rows, 1), ("--cols", args.cols, 1)):
        if value is not None and value < low:
            parser.error(f"{flag} must be at least {low}, not {value}")
    if args.data != "digits" and not Path(args.data).is_file():
        parser.error(f"--data {args.data} does not exist; give 'digits' or an .npz with x_train, y_train, x_test, "
                     f"y_test")
    if args.readme is not None and README_BEGIN not in (args.readme.read_text() if args.readme.is_file() else ""):
        parser.error(f"--readme {args.readme} has no {README_BEGIN} marker; add {README_BEGIN} and {README_END} "
                     f"where the table goes")
    ctx = {"data": args.data, "data_id": data_id(args.data), "model": args.model, "seed": args.seed,
           "epochs": args.epochs or "default", "base_epochs": args.base_epochs or "default",
           "rtl_sample": args.rtl_sample, "target": args.target, "rows": args.rows, "cols": args.cols,
           "results": str(args.results)}
    points = plan(args.granularities, args.sparsities)
    s = study(ctx, points, args.lanes, workers=args.workers, dask_scheduler=args.dask_scheduler)
    keys = {point_key(ctx, g, sp, v) for g, sp in points for v in args.lanes}
    records = latest(read_jsonl(args.results), keys)
    if not records:
        print("accuracy: no finished records to report", file=sys.stderr)
        return 1
    records = with_kept_magnitude(records, ctx)
    json_path, csv_path = write_summary(records, args.results)
    md = args.report_dir / "accuracy.md"
    plot = pareto_plot(records, args.report_dir / "accuracy.png")
    md.write_text(f"# Accuracy beside cycles\n\n![accuracy against cycles per image](accuracy.png)\n\n"
                  f"{table(records)}\n\n{notes(records)}\n")
    if args.readme is not None:
        update_readme(args.readme, readme_block(records, plot, args.readme))
    print(table(records))
    print(f"\naccuracy: {s['ran']} records run, {s['already_done']} already done, {s['errors']} errors, "
          f"{s['rtl_mismatches']} RTL/golden mismatches in {hms(s['wall_s'])}; {display_path(json_path)}, "
          f"{display_path(csv_path)}, {display_path(md)}, {display_path(plot)}"
          + (f", {display_path(args.readme)}" if args.readme else ""), file=sys.stderr)
    return 0 if not s["errors"] and not s["rtl_mismatches"] and len(records) == len(keys) else 1


if __name__ == "__main__":
    sys.exit(main())
