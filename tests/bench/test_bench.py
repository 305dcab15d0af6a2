"""bench: layer shapes, sweep planning, a tiny RTL sweep (resumable, exported), the report, Dask.

The RTL tests run the default 4x4 array (the build the other suites use) on two tiny layers; everything
else is pure Python.
"""

from __future__ import annotations

import csv
import json
import re
import sys

import numpy as np
import pytest

import golden.config
from bench import grid, store, sweep, synth_sweep
from bench import layers as bl
from golden.config import ArrayConfig
from golden.encode import encode

TINY = ["--arrays", "4x4", "--layers", "tiny", "--sparsities", "0.5", "--dataflows", "dense,kernel",
        "--workers", "1", "--no-progress"]


# --------------------------------------------------------------------------------------------------
# layers


@pytest.mark.parametrize("spec", [s for net in ("cifar-s4", "alexnet-s8") for s in bl.NETS[net]], ids=lambda s: s.name)
def test_scaled_layers_fit_default_buffers_and_are_deterministic(spec):
    w = bl.dense_weights(spec, 0)
    assert np.array_equal(w, bl.dense_weights(spec, 0))
    assert not np.array_equal(w, bl.dense_weights(spec, 1))
    assert np.count_nonzero(w) == w.size and np.abs(w).max() <= 127
    for dataflow in ("dense", "kernel"):
        layer, _ = bl.make_layer(spec, None if dataflow == "dense" else "kernel", 0.75)
        encode(layer, ArrayConfig(dataflow=dataflow))  # raises if it does not fit the default buffers
    layer, pruned = bl.make_layer(spec, "kernel", 0.75)
    assert pruned is not None and abs(pruned.sparsity - 0.75) < 0.05
    assert 0.0 < bl.kept_energy(spec, layer.weights) < 1.0


@pytest.mark.parametrize("spec", [s for net in bl.PUBLISHED for s in bl.PUBLISHED[net]], ids=lambda s: s.name)
def test_published_layers_run_in_passes_on_the_sweep_arrays(spec):
    """At their published sizes the layers exceed the default buffers; the sweep's arrays (default
    parameters plus ``grid.DEFAULT_PARAMS``) run them in passes, input-channel chunks included."""
    from golden.passes import fit_or_plan

    layer, _ = bl.make_layer(spec, "kernel", 0.75)
    for rows, cols in ((4, 4), (2, 8)):
        pl = fit_or_plan(layer, ArrayConfig(dataflow="kernel", rows=rows, cols=cols, **grid.DEFAULT_PARAMS))
        if spec.c * spec.h * spec.w > ArrayConfig().act_depth:
            assert pl is not None and len(pl.passes) > 1
    scaled = next(s for s in bl.NETS[f"{spec.name.split('.')[0]}-s{bl.SCALES[spec.name.split('.')[0]]}"]
                  if s.name.split(".")[1] == spec.name.split(".")[1])
    assert scaled.r == spec.r and scaled.h == spec.h and scaled.m * bl.SCALES[spec.name.split(".")[0]] == spec.m


def test_layer_sets_by_network_and_by_name():
    assert [s.name for s in bl.layer_specs(["alexnet"])] == ["alexnet.conv3", "alexnet.conv4", "alexnet.conv5"]
    assert [s.name for s in bl.layer_specs(["tiny.b", "tiny"])] == ["tiny.b", "tiny.a"]
    with pytest.raises(ValueError, match=r"unknown layer set 'vgg'"):
        bl.layer_specs(["vgg"])


# --------------------------------------------------------------------------------------------------
# planning and keys (no RTL)


def test_plan_pairs_every_dataflow_of_golden_config_with_its_granularity(monkeypatch):
    monkeypatch.setattr(golden.config, "DATAFLOWS", ("dense", "kernel", "vector", "strided", "element"))
    flows = grid.available_dataflows()
    assert flows == ("dense", "kernel", "vector", "strided", "element")
    runs = grid.plan(flows, [0.5, 0.9], [{"rows": 2, "cols": 2}], ["tiny"])
    pairs = {(r.dataflow, r.granularity) for r in runs}
    assert pairs == {("dense", "none"), ("kernel", "kernel"), ("vector", "vector"), ("strided", "strided"),
                     ("element", "element")}
    assert {r.target_sparsity for r in runs if r.dataflow == "dense"} == {0.0}  # the baseline is never pruned
    assert len(runs) == 2 * (1 + 4 * 2)
    assert len({r.key for r in runs}) == len(runs)


def test_dense_baseline_is_added_and_keys_are_stable():
    runs = grid.plan(["kernel"], [0.5], [{"rows": 2, "cols": 2}], ["tiny.a"])
    assert [(r.dataflow, r.target_sparsity) for r in runs] == [("dense", 0.0), ("kernel", 0.5)]
    again = grid.plan(["kernel"], [0.5], [{"rows": 2, "cols": 2}], ["tiny.a"])
    assert [r.key for r in runs] == [r.key for r in again]
    other = grid.plan(["kernel"], [0.5], [{"rows": 2, "cols": 2}], ["tiny.a"], seeds=[1])
    assert runs[1].key != other[1].key
    assert grid.RunSpec.from_dict(runs[1].to_dict()) == runs[1]


def test_unknown_dataflow_and_bad_grid_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        sweep.main(["--dataflows", "dense,nope", "--dry-run"])
    assert e.value.code == 2
    assert "dataflow(s) nope not built by this generator" in capsys.readouterr().err
    for argv, msg in ((["--arrays", "4by4"], "ROWSxCOLS"), (["--sparsities", "1.0"], r"in \[0, 1\)"),
                      (["--param", "bogus=3"], "unknown parameter 'bogus'")):
        with pytest.raises(SystemExit):
            sweep.main([*argv, "--dry-run"])
        assert re.search(msg, capsys.readouterr().err)


def test_error_records_are_retried_and_torn_lines_ignored(tmp_path):
    path = tmp_path / "r.jsonl"
    runs = grid.plan(["kernel"], [0.5], [{"rows": 2, "cols": 2}], ["tiny.a"])
    store.append_records(path, [{"key": runs[0].key, "status": "ok"}, {"key": runs[1].key, "status": "error"}])
    with open(path, "a") as f:
        f.write('{"key": "torn')
    assert store.done_keys(path) == {runs[0].key}


def test_layers_that_do_not_fit_are_recorded_as_skipped_without_a_build(tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    argv = [*TINY, "--param", "act_depth=16", "--results", str(results)]
    assert sweep.main(argv) == 0
    recs = store.load_records(results)
    assert len(recs) == 4 and {r["status"] for r in recs} == {"skipped"}
    assert all("act_depth" in r["error"] for r in recs)
    capsys.readouterr()
    assert sweep.main(argv) == 0
    assert "4 already in" in capsys.readouterr().err
    assert len(store.load_records(results)) == 4


def test_a_sweep_killed_mid_write_and_resumed_keeps_every_record(tmp_path, capsys):
    # A kill in the middle of a write leaves a partial last line; the resumed sweep must not write its
    # first record onto it (both would be lost): every line valid JSON, every planned run recorded.
    results = tmp_path / "r.jsonl"
    argv = [*TINY, "--param", "act_depth=16", "--results", str(results)]  # records without a build
    assert sweep.main(argv) == 0
    whole = results.read_bytes()
    results.write_bytes(whole[:-len(whole.splitlines()[-1]) // 2 - 1])  # the last record cut in half
    assert sweep.main(argv) == 0
    lines = results.read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["skipped"] * 4
    assert len({json.loads(line)["key"] for line in lines}) == 4
    assert "dropped a partial last line" in capsys.readouterr().err


def test_synth_without_hdl_synth_is_skipped_with_a_message(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "hdl.synth", None)  # import fails as if the module did not exist
    mods, why = synth_sweep.load_synth()
    assert mods is None and "hdl.synth is not available" in why
    argv = [*TINY, "--param", "act_depth=16", "--results", str(tmp_path / "r.jsonl"), "--synth", "icebreaker"]
    assert sweep.main(argv) == 0  # nothing fits act_depth=16: no build, no RTL run
    assert "--synth icebreaker: skipped, hdl.synth is not available" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# a tiny sweep on the RTL


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    results = tmp_path_factory.mktemp("bench") / "results.jsonl"
    rc = sweep.main([*TINY, "--results", str(results)])
    return results, rc


def test_tiny_sweep_runs_on_the_rtl_exactly(tiny_sweep):
    results, rc = tiny_sweep
    assert rc == 0
    recs = store.load_records(results)
    assert len(recs) == 4  # 2 layers x (dense + kernel at 0.5)
    for r in recs:
        assert r["status"] == "ok", r.get("error")
        assert r["outputs_match"] and r["cycles_match"] and r["counters_match"]
        assert r["cycles"] == r["predicted_cycles"]


def test_a_published_layer_runs_in_passes_and_sums_them(tmp_path):
    """cifar.conv1 at its published size (3->32 on 32x32) exceeds the default activation and output
    buffers: the sweep runs it in passes on the same builds, exact, with the pass count recorded and
    cycles, counters and memory references summed over the passes."""
    results = tmp_path / "r.jsonl"
    argv = ["--arrays", "4x4", "--layers", "cifar.conv1", "--sparsities", "0.5", "--dataflows", "dense,kernel",
            "--workers", "1", "--no-progress", "--results", str(results)]
    assert sweep.main(argv) == 0
    recs = store.load_records(results)
    assert len(recs) == 2
    for r in recs:
        assert r["status"] == "ok", r.get("error")
        assert r["passes"] > 1 and r["outputs_match"] and r["cycles_match"] and r["counters_match"]
        assert r["perf"]["busy_cycles"] == r["cycles"]
        assert r["memory_references"]["output_writes_words"] == 32 * 32 * 32  # every output written once


def test_rerun_does_no_new_work(tiny_sweep, capsys):
    results, _ = tiny_sweep
    before = results.read_text()
    assert sweep.main([*TINY, "--results", str(results)]) == 0
    err = capsys.readouterr().err
    assert "4 already in" in err and "0 to run on 0 array builds" in err
    assert results.read_text() == before


def test_csv_and_json_export_every_run_with_speedup(tiny_sweep):
    results, _ = tiny_sweep
    with open(results.with_suffix(".csv")) as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == store.EXPORT_COLUMNS
        rows = list(reader)
    assert len(rows) == 4
    for needed in ("cycles", "predicted_cycles", "utilization", "speedup", "compression_ratio", "ops_saved",
                   "mem_words", "mem_bits", "mem_words_per_mac", "mem_bits_per_mac", "sparsity"):
        assert all(r[needed] != "" for r in rows), needed
    for r in rows:
        assert float(r["speedup"]) == pytest.approx(int(r["dense_cycles"]) / int(r["cycles"]))
        if r["dataflow"] == "dense":
            assert float(r["speedup"]) == 1.0 and float(r["compression_ratio"]) == 1.0
        else:
            assert float(r["sparsity"]) == pytest.approx(0.5, abs=0.1) and float(r["speedup"]) > 1.0
    data = json.loads(results.with_suffix(".json").read_text())
    assert len(data["runs"]) == 4 and data["synth"] == []


def test_report_writes_markdown_and_plots(tiny_sweep, tmp_path):
    pytest.importorskip("matplotlib")
    from bench import report

    results, _ = tiny_sweep
    md = report.make_report(results, tmp_path)
    text = md.read_text()
    assert "## Headline: 4x4 array" in text and "Against the seeds' claims" in text
    # no path of the machine that wrote it (issue 22): the results file is named, not its directory
    assert f"from `{results.name}`" in text and str(results.parent) not in text
    for png in ("speedup_vs_sparsity", "utilization_vs_sparsity", "memrefs_per_mac", "compression_vs_sparsity"):
        path = tmp_path / f"{png}.png"
        assert path.stat().st_size > 1000 and f"]({png}.png)" in text


def test_sweep_on_a_dask_local_cluster(tmp_path):
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    results = tmp_path / "r.jsonl"
    argv = ["--arrays", "4x4", "--layers", "tiny.a", "--sparsities", "0.75", "--dataflows", "kernel",
            "--no-progress", "--results", str(results)]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      worker_dashboard_address=None) as cluster:
        assert sweep.main([*argv, "--dask-scheduler", cluster.scheduler_address]) == 0
    recs = store.load_records(results)
    assert [r["status"] for r in recs] == ["ok", "ok"]
    assert all(r["cycles"] == r["predicted_cycles"] and r["outputs_match"] for r in recs)


def test_dask_scheduler_without_dask_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)
    runs = grid.plan(["kernel"], [0.5], [{"rows": 2, "cols": 2}], ["tiny.a"])
    with pytest.raises(SystemExit, match=r"pip install 'dask\[distributed\]'"):
        sweep.sweep(runs, tmp_path / "r.jsonl", dask_scheduler="tcp://127.0.0.1:1", progress=False)


@pytest.mark.parametrize("e,f", [(13, 13), (7, 7), (3, 2), (1, 1), (5, 1), (2, 17)])
def test_chunk_mapping_covers_every_output_once_in_raster_order(e, f):
    """``bench.shapes``' buildable raster mapping: every output in exactly one output-row segment of a PE
    row, in raster order, a segment at most ``cols`` outputs; with outputs at least ``cols`` wide, as few
    tiles as the PEs allow (what its utilization counts)."""
    from bench.shapes import _chunk_tiles
    from golden.layer import Layer
    cfg = ArrayConfig()
    layer = Layer(np.zeros((1, 1, 1, 1), np.int8), np.zeros((1, e, f), np.int8))
    tiles = _chunk_tiles(layer, cfg)
    order = [(y, n) for segs in tiles for n, y in segs]
    assert sum(n for _, n in order) == e * f
    rows_seen = [y for y, _ in order]
    assert rows_seen == sorted(rows_seen)
    assert all(0 < n <= cfg.cols for _, n in order)
    if f >= cfg.cols:  # only a narrow output leaves PE slots empty before the layer's last tile
        assert len(tiles) == -(-e * f // cfg.pes)
