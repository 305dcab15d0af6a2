"""``python -m bench.report``: Markdown report and PNG plots from a sweep's results (``bench.sweep``).

The report holds the setup (arrays, layers with their shapes and passes), the correctness of the
RTL runs (outputs bit-exact, cycles equal to the golden prediction), a headline table per array, the
plots, and a section that sets the measured numbers against the seeds' claims (BRIEF §7). The claims
are data, one record each in ``bench/claims.json`` (paper, statement, prose); the record names the
measurement that tests it, and only the measurements (:data:`MEASUREMENTS`) are code here.

Aggregates over several layers are *network totals*, never means of ratios: speedup = sum of dense
cycles / sum of cycles, utilization = sum of useful MACs / (PEs x lanes x sum of cycles), memory references per
useful MAC = sum of references / sum of useful MACs, compression = sum of dense weight bits / sum of
stored weight + index bits, sparsity = zero weights / weights.

matplotlib is an optional dependency (in the ``dev`` extra); without it the Markdown is still written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.layers import SCALES, layer_specs
from bench.store import DEFAULT_RESULTS, export_rows, latest, load_records, synth_rows
from golden.cli import OutputDir, Parser
from golden.dataflow import DATAFLOW_TABLE
from golden.paths import display_path, records_root

DEFAULT_OUT = records_root() / "bench" / "report"
LANES_RESULTS = DEFAULT_RESULTS.parent / "lanes.json"
CLAIMS_FILE = Path(__file__).with_name("claims.json")
ORDER = tuple(DATAFLOW_TABLE)
COLORS = {"dense": "#444444", "kernel": "#1f77b4", "vector": "#2ca02c", "strided": "#9467bd", "element": "#d62728"}
MARKERS = {"dense": "s", "kernel": "o", "vector": "^", "strided": "D", "element": "x"}
MEM_PARTS = (("act_bits_read", "activation reads"), ("weight_bits_read", "weight reads"),
             ("index_bits_read", "index reads"), ("output_bits_written", "output writes"))


def _flow_order(flows) -> list[str]:
    return sorted(set(flows), key=lambda d: (ORDER.index(d) if d in ORDER else len(ORDER), d))


def _array_order(arrays) -> list[str]:
    return sorted(set(arrays), key=lambda a: (a != "4x4", a))


class Agg:
    """Network totals of a set of result rows (see the module docstring)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.n = len(rows)
        ok = [r for r in rows if r["cycles"]]
        self.cycles = sum(r["cycles"] for r in ok)
        self.dense_cycles = sum(r["dense_cycles"] or 0 for r in ok)
        self.has_dense = all(r["dense_cycles"] for r in ok) and bool(ok)
        self.useful = sum(r["useful_macs"] for r in ok)
        self.dense_macs = sum(r["dense_macs"] for r in ok)
        # multipliers = PEs x lanes: what a utilization divides by (golden.metrics)
        self.multipliers = ok[0]["pes"] * (ok[0].get("array_config") or {}).get("lanes", 1) if ok else 1
        weights = [r["M"] * r["C"] * r["R"] * r["S"] for r in ok]
        self.weights = sum(weights)
        self.nonzero = sum(w * (1 - r["sparsity"]) for w, r in zip(weights, ok, strict=True))
        stored = [r["weight_bits_stored"] + r["index_bits_stored"] for r in ok]
        self.stored_bits = sum(stored)
        self.dense_bits = sum(r["compression_ratio"] * s for r, s in zip(ok, stored, strict=True))
        self.index_bits = sum(r["index_bits_stored"] for r in ok)
        self.mem_words = sum(r["mem_words"] for r in ok)
        self.mem_bits = sum(r["mem_bits"] for r in ok)
        self.parts = {k: sum(r[k] or 0 for r in ok) for k, _ in MEM_PARTS}
        self.load_stall = sum(r["load_stall_cycles"] or 0 for r in ok)
        self.mac_cycles = sum(r["mac_cycles"] or 0 for r in ok)
        self.kept_energy = (sum(r["kept_energy"] * w for r, w in zip(ok, weights, strict=True)) / self.weights
                            if self.weights else float("nan"))  # weight-count weighted, a rough proxy
        self.tile_loads = sum(r["tile_loads"] or 0 for r in ok)
        self.layers = len({r["layer"] for r in ok})
        self.exact = sum(bool(r["outputs_match"] and r["cycles_match"] and r["counters_match"]) for r in ok)

    def _div(self, a, b):
        return a / b if b else float("nan")

    speedup = property(lambda self: self._div(self.dense_cycles, self.cycles) if self.has_dense else float("nan"))
    ideal = property(lambda self: self._div(self.dense_macs, self.useful))
    utilization = property(lambda self: self._div(self.useful, self.multipliers * self.cycles))
    sparsity = property(lambda self: 1 - self._div(self.nonzero, self.weights))
    compression = property(lambda self: self._div(self.dense_bits, self.stored_bits))
    words_per_mac = property(lambda self: self._div(self.mem_words, self.useful))
    bits_per_mac = property(lambda self: self._div(self.mem_bits, self.useful))
    ops_saved = property(lambda self: 1 - self._div(self.useful, self.dense_macs))
    stall_share = property(lambda self: self._div(self.load_stall, self.cycles))


class Results:
    """Result rows indexed for the report."""

    def __init__(self, rows: list[dict], synth: list[dict], synth_errors: list[dict] | None = None):
        self.all = rows
        self.ok = [r for r in rows if r["status"] == "ok"]
        self.synth = synth
        self.synth_errors = synth_errors or []
        self.configs: dict[str, dict] = {}  # array label -> ArrayConfig dict of its runs
        self.arrays = _array_order(r["array"] for r in self.ok)
        self.flows = _flow_order(r["dataflow"] for r in self.ok)
        self.nets = sorted({r["net"] for r in self.ok}, key=lambda n: (n == "tiny", n))
        self.levels = sorted({r["target_sparsity"] for r in self.ok if r["dataflow"] != "dense"})

    def select(self, array=None, dataflow=None, sparsity=None, net=None, layer=None, layers=None) -> list[dict]:
        return [r for r in self.ok
                if (array is None or r["array"] == array) and (dataflow is None or r["dataflow"] == dataflow)
                and (sparsity is None or math.isclose(r["target_sparsity"], sparsity))
                and (net is None or r["net"] == net) and (layer is None or r["layer"] == layer)
                and (layers is None or r["layer"] in layers)]

    def common(self, flows: Sequence[str], sparsity: float, array: str, net: str | None = None) -> dict[str, Agg]:
        """Totals of each flow over the layers that ALL ``flows`` ran at ``sparsity`` (fair comparisons)."""
        sets = [{r["layer"] for r in self.select(array=array, dataflow=f, sparsity=sparsity, net=net)} for f in flows]
        layers = set.intersection(*sets) if sets else set()
        if not layers:
            return {}
        return {f: Agg(self.select(array=array, dataflow=f, sparsity=sparsity, layers=layers)) for f in flows}

    def agg(self, **kw) -> Agg | None:
        rows = self.select(**kw)
        return Agg(rows) if rows else None

    def flow_levels(self, flow: str) -> list[float]:
        return [0.0] if flow == "dense" else self.levels


def _f(x, fmt="{:.2f}", none="–") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return none
    return fmt.format(x)


# --------------------------------------------------------------------------------------------------
# plots


def _plt():
    # lazy: matplotlib is optional (the ``dev`` extra) and slow to import; without it the Markdown is still written
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ideal_line(ax, smax: float, label: str) -> None:
    xs = [i / 200 * smax for i in range(201)]
    ax.plot(xs, [1 / (1 - x) for x in xs], "k--", lw=1, label=label)


def _per_array_axes(plt, res: Results, title: str, ylabel: str):
    n = len(res.arrays)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False, sharey=True)
    fig.suptitle(title)
    for ax, arr in zip(axes[0], res.arrays, strict=True):
        ax.set_title(f"{arr} array")
        ax.set_xlabel("achieved weight sparsity")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    return fig, axes[0]


def _scatter_metric(res: Results, ax, arr: str, metric: str) -> None:
    for flow in res.flows:
        rows = res.select(array=arr, dataflow=flow)
        pts = [(r["sparsity"], r[metric]) for r in rows if r.get(metric) is not None]
        if not pts:
            continue
        ax.scatter(*zip(*pts, strict=True), s=14, alpha=0.35, color=COLORS.get(flow), marker=MARKERS.get(flow, "o"))
        line = []
        for s in res.flow_levels(flow):
            a = res.agg(array=arr, dataflow=flow, sparsity=s)
            if a:
                val = {"speedup": a.speedup, "utilization": a.utilization, "compression_ratio": a.compression}[metric]
                line.append((a.sparsity, val))
        ax.plot(*zip(*sorted(line), strict=True), "-", color=COLORS.get(flow), marker=MARKERS.get(flow, "o"),
                label=flow)


def plot_speedup(res: Results, out: Path, plt) -> Path:
    fig, axes = _per_array_axes(plt, res, "Speedup over the dense dataflow (same layer, same array)",
                                "speedup (dense cycles / cycles)")
    smax = max([r["sparsity"] for r in res.ok] + [0.5]) + 0.02
    for ax, arr in zip(axes, res.arrays, strict=True):
        _ideal_line(ax, smax, "ideal 1/density")
        _scatter_metric(res, ax, arr, "speedup")
        ax.set_yscale("log", base=2)
    axes[0].legend(fontsize=8)
    fig.text(0.5, -0.02, "points: single layers; lines: network totals per target sparsity", ha="center", fontsize=8)
    return _save(fig, out / "speedup_vs_sparsity.png", plt)


def plot_utilization(res: Results, out: Path, plt) -> Path:
    fig, axes = _per_array_axes(plt, res, "utilization = useful MACs / (PEs x lanes x cycles)", "utilization")
    for ax, arr in zip(axes, res.arrays, strict=True):
        _scatter_metric(res, ax, arr, "utilization")
        ax.set_ylim(0, 1.05)
    axes[0].legend(fontsize=8)
    return _save(fig, out / "utilization_vs_sparsity.png", plt)


def plot_compression(res: Results, out: Path, plt) -> Path:
    fig, axes = _per_array_axes(plt, res, "Compression ratio = dense weight bits / (stored weight + index bits)",
                                "compression ratio")
    smax = max([r["sparsity"] for r in res.ok] + [0.5]) + 0.02
    for ax, arr in zip(axes, res.arrays, strict=True):
        _ideal_line(ax, smax, "no-index bound 1/density")
        _scatter_metric(res, ax, arr, "compression_ratio")
        ax.set_yscale("log", base=2)
    axes[0].legend(fontsize=8)
    return _save(fig, out / "compression_vs_sparsity.png", plt)


def plot_memrefs(res: Results, out: Path, plt) -> Path:
    arr = res.arrays[0]
    groups = [(f, s) for f in res.flows for s in res.flow_levels(f)]
    aggs = [(f, s, res.agg(array=arr, dataflow=f, sparsity=s)) for f, s in groups]
    aggs = [(f, s, a) for f, s, a in aggs if a]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8.0, 0.6 * len(aggs)), 7.5))
    fig.suptitle(f"Memory references per useful MAC ({arr} array, all layers)")
    xs = range(len(aggs))
    labels = [f"{f}\n{s:g}" if f != "dense" else "dense" for f, s, _ in aggs]
    ax1.bar(xs, [a.words_per_mac for *_, a in aggs], color=[COLORS.get(f, "#888") for f, *_ in aggs])
    ax1.set_ylabel("words / useful MAC")
    bottom = [0.0] * len(aggs)
    for (key, name), shade in zip(MEM_PARTS, ("#8fbbd9", "#f5b971", "#d98f8f", "#aaaaaa"), strict=True):
        vals = [a.parts[key] / a.useful if a.useful else 0 for *_, a in aggs]
        ax2.bar(xs, vals, bottom=bottom, color=shade, label=name)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax2.set_ylabel("bits / useful MAC")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_xlabel("dataflow / target sparsity")
        ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, out / "memrefs_per_mac.png", plt)


SYNTH_KEYS = ("lc", "lut", "ff", "dsp", "bram", "spram", "fmax_mhz")


def _synth_columns(rows: list[dict]) -> list[str]:
    """Resource counts and Fmax present in the synthesis rows (iCE40 reports LCs, ECP5 LUTs)."""
    have = {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return sorted((k for k in have if k.lower() in SYNTH_KEYS), key=lambda k: SYNTH_KEYS.index(k.lower()))


def plot_synth(res: Results, out: Path, plt) -> Path | None:
    cols = _synth_columns(res.synth)
    if not cols:
        return None
    rows = sorted(res.synth, key=lambda r: (r["board"], r["array"], ORDER.index(r["dataflow"])
                                            if r["dataflow"] in ORDER else 99))
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 3.8), squeeze=False)
    fig.suptitle("Synthesis per dataflow")
    for ax, c in zip(axes[0], cols, strict=True):
        vals = [r.get(c) or 0 for r in rows]
        ax.bar(range(len(rows)), vals, color=[COLORS.get(r["dataflow"], "#888") for r in rows])
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([f"{r['dataflow']}\n{r['array']}\n{r['board']}" for r in rows], fontsize=6)
        ax.set_title(c, fontsize=9)
    return _save(fig, out / "area_fmax.png", plt)


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------------
# Markdown


def headline_table(res: Results, arr: str) -> list[str]:
    nets = [n for n in res.nets]
    head = (["dataflow", "target", "sparsity"] + [f"speedup {n}" for n in nets]
            + ["speedup all", "ideal 1/density", "utilization", "compression", "mem words/MAC", "mem bits/MAC",
               "index bits", "RTL exact"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for flow in res.flows:
        for s in res.flow_levels(flow):
            a = res.agg(array=arr, dataflow=flow, sparsity=s)
            if not a:
                continue
            per_net = []
            for n in nets:
                an = res.agg(array=arr, dataflow=flow, sparsity=s, net=n)
                per_net.append(_f(an.speedup, "{:.2f}×") if an else "–")
            cells = ([flow, f"{s:g}", _f(a.sparsity, "{:.3f}")] + per_net
                     + [_f(a.speedup, "{:.2f}×"), _f(a.ideal, "{:.2f}×"), _f(a.utilization, "{:.3f}"),
                        _f(a.compression, "{:.2f}"), _f(a.words_per_mac, "{:.3f}"), _f(a.bits_per_mac, "{:.1f}"),
                        _f(a.index_bits, "{:,.0f}"), f"{a.exact}/{a.n}"])
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def layer_table(res: Results) -> list[str]:
    lines = ["| layer | run shape (C→M, kernel, input) | note | dense MACs | "
             + " | ".join(f"dense cycles (passes) {a}" for a in res.arrays) + " |",
             "|---|---|---|---|" + "---|" * len(res.arrays)]
    names = sorted({r["layer"] for r in res.ok}, key=lambda n: (n.startswith("tiny"), n))
    for name in names:
        try:
            spec = layer_specs([name])[0]
        except ValueError:
            continue
        dense = [res.select(array=a, dataflow="dense", layer=name) for a in res.arrays]
        cyc = [f"{_f(d[0]['cycles'], '{:,}')} ({d[0].get('passes', 1)})" if d else "–" for d in dense]
        lines.append(f"| {name} | {spec.describe()} | {spec.original} | {spec.dense_macs:,} | " + " | ".join(cyc)
                     + " |")
    return lines


def _pick(levels: list[float], want: float) -> float | None:
    return min(levels, key=lambda s: abs(s - want)) if levels else None


def _pct_less(a: float, b: float) -> str:
    """'29 % fewer' / '5 % more': how ``a`` compares with ``b``."""
    if not (b and math.isfinite(a) and math.isfinite(b)):
        return "–"
    d = 1 - a / b
    return f"{abs(100 * d):.0f} % {'fewer' if d >= 0 else 'more'}"


# --------------------------------------------------------------------------------------------------
# the seeds' claims: records in claims.json, each tested by one measurement below


@dataclass(frozen=True)
class Claim:
    """One claim of a seed paper (a record of ``claims.json``; its ``about`` says what each field is)."""

    id: str
    source: str
    statement: str
    scope: str
    measurement: str
    text: dict[str, str]
    missing: str
    notes: tuple[str, ...]


MeasureFn = Callable[[Results, str, dict[str, str]], list[str] | None]


@dataclass(frozen=True)
class Measurement:
    """What tests a claim: ``run(res, array, text)`` returns the section's lines (the numbers, set into
    the record's ``text`` templates) or None when the results lack what it needs; ``texts`` names the
    templates it fills, which a record must give exactly."""

    run: MeasureFn
    texts: frozenset[str]


MEASUREMENTS: dict[str, Measurement] = {}
"""Measurement name (a record's ``measurement``) -> the function that computes it."""


def measurement(name: str, *texts: str) -> Callable[[MeasureFn], MeasureFn]:
    """Register the decorated function as the measurement ``name``, filling the templates ``texts``."""
    def register(run: MeasureFn) -> MeasureFn:
        MEASUREMENTS[name] = Measurement(run, frozenset(texts))
        return run
    return register


def load_claims(path: Path = CLAIMS_FILE) -> list[Claim]:
    """The records of ``path``, checked: every field there, a known measurement, its templates exactly.
    A bad record is a ValueError naming the file and the record (``main`` turns it into a usage error)."""
    try:
        records = json.loads(path.read_text())["claims"]
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the claims ({e}); it needs a JSON object with a 'claims' list") from e
    fields = [f.name for f in dataclasses.fields(Claim)]
    claims = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: claim {i} is a {type(rec).__name__}; a claim is an object with {fields}")
        where = f"{path}: claim {i} ({rec.get('id', 'no id')})"
        if set(rec) != set(fields):
            raise ValueError(f"{where}: lacks {sorted(set(fields) - set(rec))}, has unknown "
                             f"{sorted(set(rec) - set(fields))}; a claim has exactly {fields}")
        m = MEASUREMENTS.get(rec["measurement"])
        if m is None:
            raise ValueError(f"{where}: unknown measurement {rec['measurement']!r}; known: {sorted(MEASUREMENTS)}")
        if set(rec["text"]) != m.texts:
            raise ValueError(f"{where}: text has {sorted(rec['text'])}; {rec['measurement']} fills {sorted(m.texts)}")
        claims.append(Claim(**{**rec, "notes": tuple(rec["notes"])}))
    return claims


def claims_section(res: Results, arr: str, claims: Sequence[Claim] | None = None) -> list[str]:
    """The seeds' claims (BRIEF §7, ``claims.json``) set against the measured numbers, with the reason
    for any gap: per claim its heading, its measurement's lines and its notes.

    Dataflows are compared on the layers that all of them ran at that sparsity (a layer skipped by one
    dataflow because it does not fit is left out of that comparison for all).
    """
    L: list[str] = []
    for i, claim in enumerate(load_claims() if claims is None else claims):
        if i:
            L.append("")
        L.append(f"**{claim.source} — {claim.statement}**" + (f" {claim.scope}" if claim.scope else ""))
        lines = MEASUREMENTS[claim.measurement].run(res, arr, claim.text)
        if lines is None:
            lines = [claim.missing] if claim.missing else []
        L += [f"- {line}" for line in [*lines, *claim.notes]]
    return L


IDEAL_MARGIN = 0.2
"""TETRIS's "ideal": a speedup within this share of 1/density."""
EVEN_UTILIZATION = 0.01
"""Schulte et al.: element's utilization this close to the best structured one counts as no overhead."""


def _compared(res: Results) -> tuple[list[str], str | None, list[float], float | None]:
    """The structured dataflows present, the unstructured one (or None), the sparse target levels and
    the one nearest 0.75 (where single-level comparisons are made)."""
    coarse = [f for f in ("kernel", "vector", "strided") if f in res.flows]
    fine = "element" if "element" in res.flows else None
    levels = [s for s in res.levels if s > 0]
    return coarse, fine, levels, _pick(levels, 0.75)


def _targets(levels: Sequence[float]) -> str:
    return ", ".join(f"{s:g}" for s in levels)


@measurement("memory_references", "traffic", "tile_loads", "verdict", "size_arxiv", "size_workshop",
             "size_smaller", "accuracy")
def memory_references(res: Results, arr: str, text: dict[str, str]) -> list[str] | None:
    """Compression and memory references per useful MAC, kernel (and the other structured flows) vs element."""
    coarse, fine, levels, mid = _compared(res)
    if not (fine and "kernel" in res.flows and levels):
        return None
    L = []
    for s in levels:
        c = res.common(["kernel", *[f for f in coarse if f != "kernel"], fine], s, arr)
        if not c:
            continue
        k, e = c["kernel"], c[fine]
        others = "; ".join(f"{f} {_f(c[f].compression)}× / {_f(c[f].bits_per_mac, '{:.2f}')} bits/MAC"
                           for f in coarse if f != "kernel")
        L.append(f"target {s:g} ({k.layers} layers all ran): compression kernel {_f(k.compression)}× vs element "
                 f"{_f(e.compression)}×; memory references kernel {_f(k.bits_per_mac, '{:.2f}')} vs element "
                 f"{_f(e.bits_per_mac, '{:.2f}')} bits per useful MAC ({_pct_less(k.bits_per_mac, e.bits_per_mac)}"
                 f" bits, {_pct_less(k.words_per_mac, e.words_per_mac)} words)" + (f"; {others}" if others else "")
                 + ".")
    c = res.common(["kernel", fine], mid, arr)
    if c:
        k, e = c["kernel"], c[fine]
        parts = ", ".join(f"{name} {k.parts[key] / k.useful:.2f} vs {e.parts[key] / e.useful:.2f}"
                          for key, name in MEM_PARTS)
        top = res.common(["kernel", fine], levels[-1], arr)
        loads = (text["tile_loads"].format(target=f"{levels[-1]:g}", kernel=f"{top['kernel'].tile_loads:,}",
                                           element=f"{top[fine].tile_loads:,}") if top else "")
        L.append(text["traffic"].format(target=f"{mid:g}", parts=parts, tile_loads=loads))
    savings = []
    for s in levels:
        c = res.common(["kernel", fine], s, arr)
        if c and c[fine].mem_bits:
            savings.append((s, 1 - c["kernel"].bits_per_mac / c[fine].bits_per_mac, c["kernel"]))
    if savings:
        s_best, best, _ = max(savings, key=lambda t: t[1])
        s_top, _, k_top = savings[-1]
        # the claim's two sizes: ~2x fewer references (arXiv), 30-35 % fewer (workshop)
        size = text["size_arxiv" if best >= 0.45 else "size_workshop" if best >= 0.25 else "size_smaller"]
        out_share = k_top.parts["output_bits_written"] / k_top.mem_bits if k_top.mem_bits else float("nan")
        L.append(text["verdict"].format(saving=f"{100 * best:.0f}", target=f"{s_best:g}", size=size,
                                        output_share=f"{100 * out_share:.0f}", top=f"{s_top:g}"))
    kept = res.common(["kernel", fine], mid, arr)
    if kept:
        L.append(text["accuracy"].format(target=f"{mid:g}", kernel=f"{kept['kernel'].kept_energy:.2f}",
                                         element=f"{kept[fine].kept_energy:.2f}"))
    return L


@measurement("alexnet_speedup", "speedups", "ratio", "direction_only", "no_advantage", "why", "lanes")
def alexnet_speedup(res: Results, arr: str, text: dict[str, str]) -> list[str] | None:
    """AlexNet's network-total speedups, structured over unstructured, and the same ratio on wide PEs."""
    coarse, fine, levels, _ = _compared(res)
    if not ("alexnet" in res.nets and levels):
        return None
    row = []
    for f in [*coarse, *([fine] if fine else [])]:
        vals = [f"{_f(x.speedup, '{:.2f}×')} @ {x.sparsity:.2f}" for s in levels
                for x in [res.agg(array=arr, dataflow=f, sparsity=s, net="alexnet")] if x]
        if vals:
            row.append(f"{f} " + ", ".join(vals))
    L = [text["speedups"].format(rows="; ".join(row))]
    if fine and "kernel" in res.flows:
        ratios = [(s, c["kernel"], c[fine]) for s in levels
                  for c in [res.common(["kernel", fine], s, arr, net="alexnet")] if c]
        if ratios:
            txt = "; ".join(f"{s:g}: {_f(k.speedup, '{:.2f}×')} / {_f(e.speedup, '{:.2f}×')} = "
                            f"{k.speedup / e.speedup:.2f}" for s, k, e in ratios)
            best = max(k.speedup / e.speedup for _, k, e in ratios)
            s, k, e = ratios[-1]
            verdict = text["direction_only"].format(best=f"{best:.2f}") if best > 1.02 else text["no_advantage"]
            L.append(text["ratio"].format(ratios=txt, verdict=verdict, target=f"{s:g}",
                                          kernel_loads=_f(k.tile_loads, "{:,}"), element_loads=_f(e.tile_loads, "{:,}"),
                                          kernel_stalls=f"{100 * k.stall_share:.0f}",
                                          element_stalls=f"{100 * e.stall_share:.0f}"))
    L.append(text["why"])
    L.extend(lanes_lines(text["lanes"]))
    return L


def lanes_lines(template: str, path: Path = LANES_RESULTS) -> list[str]:
    """The structured-over-unstructured ratio on wide PEs, from ``bench.lanes --json`` (the golden
    model of the wide RTL on ``bench.granularity``'s headline layer), so that the claim's V > 1 side is
    read from its one measurement rather than restated; empty when that file is absent."""
    try:
        rows = json.loads(path.read_text())["sweep"]
    except (OSError, KeyError, ValueError):
        return []
    at = {(r["lanes"], r["case"], r["sparsity"]): r for r in rows}
    parts = []
    for v in sorted({r["lanes"] for r in rows}):
        pairs = [(s, at[v, "kernel", s], at[v, "element", s]) for s in sorted({r["sparsity"] for r in rows})
                 if (v, "kernel", s) in at and (v, "element", s) in at]
        if pairs:
            parts.append(f"V = {v}: " + ", ".join(
                f"{k['speedup'] / e['speedup']:.2f} at {s:g} (element lane utilization {e['lane_utilization']:.2f})"
                for s, k, e in pairs))
    return [template.format(file=path.name, ratios="; ".join(parts))] if parts else []


@measurement("speedup_vs_ideal", "reach", "short", "reasons")
def speedup_vs_ideal(res: Results, arr: str, text: dict[str, str]) -> list[str]:
    """Each sparse dataflow's speedup against the ideal 1/density, with its load-stall share."""
    coarse, fine, levels, _ = _compared(res)
    L = []
    for f in [*coarse, *([fine] if fine else [])]:
        vals = []
        for s in levels:
            x = res.agg(array=arr, dataflow=f, sparsity=s)
            if x:
                vals.append(f"{_f(x.speedup, '{:.2f}×')} of {_f(x.ideal, '{:.2f}×')} "
                            f"({100 * x.speedup / x.ideal:.0f} %, load stalls {100 * x.stall_share:.0f} % of cycles)")
        if vals:
            L.append(f"{f}: " + "; ".join(vals) + ".")
    near = [s for s in levels if (x := res.agg(array=arr, dataflow=coarse[0] if coarse else "dense", sparsity=s))
            and x.speedup >= (1 - IDEAL_MARGIN) * x.ideal]
    reach = (text["reach"].format(margin=f"{100 * IDEAL_MARGIN:.0f}", target=f"{max(near):g}", flow=coarse[0])
             if near and coarse else text["short"])
    L.append(text["reasons"].format(reach=reach))
    return L


@measurement("strided_pruning", "levels", "versus")
def strided_pruning(res: Results, arr: str, text: dict[str, str]) -> list[str] | None:
    """The strided dataflow on the CIFAR-style net: sparsity, speedup, kept magnitude; against kernel."""
    _, _, levels, mid = _compared(res)
    if not ("strided" in res.flows and "cifar" in res.nets):
        return None
    vals = [f"target {s:g} → {x.sparsity:.2f}, speedup {_f(x.speedup, '{:.2f}×')}, kept magnitude "
            f"{x.kept_energy:.2f}" for s in levels for x in [res.agg(array=arr, dataflow="strided", sparsity=s,
                                                                      net="cifar")] if x]
    L = [text["levels"].format(levels="; ".join(vals))]
    c = res.common(["strided", "kernel"], mid, arr, net="cifar") if "kernel" in res.flows else {}
    if c:
        st, k = c["strided"], c["kernel"]
        L.append(text["versus"].format(target=f"{mid:g}", strided_kept=f"{st.kept_energy:.2f}",
                                       kernel_kept=f"{k.kept_energy:.2f}", strided_speedup=_f(st.speedup, "{:.2f}×"),
                                       kernel_speedup=_f(k.speedup, "{:.2f}×"), strided_compression=_f(st.compression),
                                       kernel_compression=_f(k.compression)))
    return L


@measurement("unstructured_utilization", "verdict", "even", "behind")
def unstructured_utilization(res: Results, arr: str, text: dict[str, str]) -> list[str] | None:
    """Utilization of the structured dataflows and element on the same layers, per target sparsity."""
    coarse, fine, levels, _ = _compared(res)
    if not (fine and coarse and levels):
        return None
    L, behind = [], []
    for s in levels:
        c = res.common([*coarse, fine], s, arr)
        if c:
            L.append(f"target {s:g}, utilization (same {c[fine].layers} layers): "
                     + ", ".join(f"{f} {c[f].utilization:.3f}" for f in [*coarse, fine]) + ".")
            if c[fine].utilization < max(c[f].utilization for f in coarse) - EVEN_UTILIZATION:
                behind.append(s)
    even = [s for s in levels if s not in behind]
    L.append(text["verdict"].format(
        even=text["even"].format(tolerance=f"{EVEN_UTILIZATION:g}", targets=_targets(even)) if even else "",
        behind=text["behind"].format(targets=_targets(behind)) if behind else ""))
    return L


def render(res: Results, plots: dict[str, Path | None], out: Path, results_path: Path) -> str:
    n_ok = len(res.ok)
    skipped = [r for r in res.all if r["status"] == "skipped"]
    errors = [r for r in res.all if r["status"] == "error"]
    exact = sum(bool(r["outputs_match"] and r["cycles_match"] and r["counters_match"]) for r in res.ok)
    commits = sorted({r["git_commit"] for r in res.ok if r.get("git_commit")})
    L = ["# Sparse PE array: sweep report", ""]
    L.append(f"Generated by `python -m bench.report` from `{display_path(results_path)}` ({n_ok} RTL runs"
             + (f", {len(skipped)} skipped because the layer does not fit the buffers" if skipped else "")
             + (f", {len(errors)} errors" if errors else "") + ")"
             + (f"; code: {', '.join(commits)}" if commits else "") + ".")
    L += ["", "## Setup", ""]
    L.append(f"- Dataflows: {', '.join(res.flows)} (each paired with its pruning granularity: dense → none, "
             "kernel → kernel, vector → vector, strided → strided, element → element; magnitude pruning, L2 "
             "group norm, `golden.prune`).")
    for a in res.arrays:
        c = res.configs.get(a)
        if c:
            L.append(f"- Array {a}: acc_depth {c['acc_depth']}, {c['weight_bits']}-bit weights, {c['act_bits']}-bit "
                     f"activations, {c['acc_bits']}-bit accumulators, buffers act {c['act_depth']} / weight "
                     f"{c['weight_depth']} / index {c['index_depth']} / out {c['out_depth']} words, max kernel "
                     f"{c['max_kernel']}, max stride {c['max_stride']}.")
    L.append(f"- Target sparsities: {', '.join(f'{s:g}' for s in res.levels)}; achieved sparsities are reported "
             "(golden.prune reaches the target to within one pruning group).")
    scaled = [n for n in res.nets if n.split("-s")[0] in SCALES and "-s" in n]
    L.append("- Layers: " + (f"{', '.join(scaled)} have their channels scaled to fit the default buffers in one run; "
                             if scaled else "") +
             "the others are at their published sizes (one of the two groups of AlexNet conv4/conv5) and run in "
             "the passes the buffers need (`golden.passes`: filter chunks, bands of output rows, input-channel "
             "chunks through the output stage); cycles, counters and memory references are summed over the passes, "
             "storage is one image per filter and channel chunk. Weights: deterministic int8, Gaussian × log-normal "
             "per-kernel scale, no zeros before pruning.")
    L += ["", *layer_table(res), ""]
    L += ["## Correctness", ""]
    L.append(f"{exact} of {n_ok} runs were exact on the RTL: outputs bit-identical to `golden.conv`, cycles equal "
             "to `golden.timing`'s prediction, every performance counter equal.")
    bad = [r for r in res.ok if not (r["outputs_match"] and r["cycles_match"] and r["counters_match"])]
    for r in bad[:20]:
        L.append(f"- MISMATCH {r['dataflow']} {r['array']} {r['layer']} s={r['target_sparsity']:g}: outputs "
                 f"{r['outputs_match']}, cycles {r['cycles']} vs predicted {r['predicted_cycles']}, counters "
                 f"{r['counters_match']}")
    if skipped:
        L.append("")
        L.append("Skipped (do not fit the default buffers; the sweep records them and moves on):")
        seen = set()
        for r in skipped:
            k = (r["dataflow"], r["array"], r["layer"], r["target_sparsity"])
            if k not in seen:
                seen.add(k)
                L.append(f"- {r['dataflow']} {r['array']} {r['layer']} s={r['target_sparsity']:g}: {r['error']}")
    if errors:
        L.append("")
        L.append("Errors (a rerun of the sweep retries them):")
        for r in errors[:20]:
            L.append(f"- {r['dataflow']} {r['array']} {r['layer']} s={r['target_sparsity']:g}: {r['error']}")
    for arr in res.arrays:
        L += ["", f"## Headline: {arr} array (network totals over all layers)", ""]
        L += headline_table(res, arr)
    L += ["", "Columns: *sparsity* = achieved fraction of zero weights; *speedup* = dense-dataflow cycles / cycles "
          "(same layers, same array, measured on the RTL); *ideal* = dense MACs / useful MACs = 1/density; "
          "*utilization* = useful MACs / (PEs × lanes × cycles); *compression* = dense weight bits / "
          "(stored weight bits + index bits); *mem words/bits per MAC* = (activation + weight + index reads + "
          "output writes) / useful MACs; *index bits* = stored index size; *RTL exact* = runs bit- and cycle-exact "
          "/ runs. A row with fewer runs than layers leaves out layers that did not fit the buffers (listed under "
          "Correctness), so its totals cover fewer layers; the comparisons below use the layers common to the "
          "dataflows compared."]
    L += ["", "## Plots", ""]
    captions = {"speedup": "Speedup vs sparsity, with the ideal 1/density line",
                "utilization": "Utilization vs sparsity", "memrefs": "Memory references per useful MAC",
                "compression": "Compression ratio vs sparsity", "synth": "Area and Fmax per dataflow"}
    for k, cap in captions.items():
        p = plots.get(k)
        if p:
            L.append(f"![{cap}]({p.relative_to(out) if p.is_relative_to(out) else p})")
            L.append("")
    if not any(plots.values()):
        L.append("(no plots: matplotlib is not installed; `pip install -e '.[dev]'`)")
    if res.synth or res.synth_errors:
        L += ["## Synthesis", ""]
    if res.synth:
        cols = _synth_columns(res.synth)
        L += ["| dataflow | array | board | " + " | ".join(cols) + " |", "|---|---|---|" + "---|" * len(cols)]
        for r in res.synth:
            L.append(f"| {r['dataflow']} | {r['array']} | {r['board']} | "
                     + " | ".join(_f(r.get(c), "{:g}") for c in cols) + " |")
        L.append("")
    for r in res.synth_errors:
        L.append(f"- {r['dataflow']} {r['array']['rows']}x{r['array']['cols']} on {r['board']}: not synthesized, "
                 f"{r.get('error')}")
    if res.synth_errors:
        L.append("")
    if res.arrays:
        L += ["", f"## Against the seeds' claims (BRIEF §7), {res.arrays[0]} array", ""]
        L += claims_section(res, res.arrays[0])
    return "\n".join(L) + "\n"


def make_report(results: Path, out: Path) -> Path:
    """Write ``out/report.md`` and its PNG plots; return the Markdown path."""
    records = load_records(results)
    synth_errors = [r for r in latest(records).values() if r.get("kind") == "synth" and r.get("status") != "ok"]
    res = Results(export_rows(records), synth_rows(records), synth_errors)
    for r in latest(records).values():
        if r.get("kind", "run") == "run" and r.get("status") == "ok" and r.get("dataflow") == "dense":
            res.configs.setdefault(f"{r['array']['rows']}x{r['array']['cols']}", r["array_config"])
    if not res.ok:
        raise ValueError(f"{results} holds no successful runs; run python -m bench.sweep first")
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path | None] = {}
    try:
        plt = _plt()
    except ImportError:
        print("warning: matplotlib is not installed, writing the report without plots "
              "(pip install -e '.[dev]')", file=sys.stderr)
        plt = None
    if plt is not None:
        plots = {"speedup": plot_speedup(res, out, plt), "utilization": plot_utilization(res, out, plt),
                 "memrefs": plot_memrefs(res, out, plt), "compression": plot_compression(res, out, plt),
                 "synth": plot_synth(res, out, plt)}
    md = out / "report.md"
    md.write_text(render(res, plots, out, results))
    return md


def main(argv: Sequence[str] | None = None) -> int:
    p = Parser(prog="python -m bench.report",
               description="Markdown report and PNG plots from bench.sweep results.")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="FILE.jsonl",
                   help="results of python -m bench.sweep (default: bench/results/results.jsonl)")
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT, metavar="DIR", action=OutputDir,
                   help="directory for report.md and the PNGs, created if missing (default: bench/report)")
    args = p.parse_args(argv)
    try:
        md = make_report(args.results, args.output)
    except ValueError as e:
        p.error(str(e))
    pngs = sorted(args.output.glob("*.png"))
    print(f"wrote {md}" + "".join(f"\n      {x}" for x in pngs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

