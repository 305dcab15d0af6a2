"""``bench.accuracy``: a one-point study on a digits subset runs, writes valid records, resumes without
recomputing and refuses bad grids with one line; the granularity -> dataflow pairing is complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")  # the [train] extra: imported at module level below

from bench import accuracy  # noqa: E402
from golden.dataflow import DATAFLOW_TABLE, EXPLOITED_BY, dataflow_for  # noqa: E402
from golden.jsonl import read_jsonl  # noqa: E402
from golden.prune import GRANULARITIES  # noqa: E402
from host.data import digits  # noqa: E402


def test_every_granularity_has_a_built_dataflow():
    assert set(EXPLOITED_BY) == set(GRANULARITIES)
    assert all(dataflow_for(g) in DATAFLOW_TABLE for g in GRANULARITIES)
    assert dataflow_for("block") == "kernel" and dataflow_for("balanced") == "element"
    with pytest.raises(ValueError, match="no dataflow exploits"):
        dataflow_for("diagonal")


def test_fpga_logic_reads_the_committed_area_reports():
    """V = 9 reads the 4x4 V = 9 ECP5 report, V = 1 a V = 1 report; LUTs are the report's own."""
    root = Path(accuracy.__file__).parent / "results"
    r9 = accuracy.fpga_logic("kernel", 9, 4, 4, root)
    rep = json.loads((root / r9["source"]).read_text())["kernel"]
    assert rep["array"]["lanes"] == 9 and r9["used"] == rep["utilization"]["LUT"]["used"] and r9["routed"]
    r1 = accuracy.fpga_logic("element", 1, 4, 4, root)
    assert r1 is not None and json.loads((root / r1["source"]).read_text())["element"]["array"].get("lanes", 1) == 1
    assert accuracy.fpga_logic("element", 7, 4, 4, root) is None


def test_a_record_of_another_feed_is_run_again():
    """The key names the point, not the array: a record made on an older default feed (``V = 1`` drained
    one output per cycle before issue 24) or before the chunk mapping is neither resumed nor reported."""
    from golden.config import ArrayConfig

    rec = {"key": "k", "status": "ok", "lanes": 1, "rtl_exact": True, "golden_matches_reference": True,
           "array": ArrayConfig().to_dict()}
    assert accuracy.verified(rec) and accuracy.latest([rec], {"k"}) == [rec]
    old = {**rec, "array": {**rec["array"], "drain_lanes": 1}}
    assert not accuracy.verified(old) and accuracy.latest([old], {"k"}) == []
    tiles = {**rec, "array": {k: v for k, v in rec["array"].items() if k != "chunks"}}  # before the chunk mapping
    assert not accuracy.verified(tiles) and accuracy.latest([tiles], {"k"}) == []


@pytest.mark.parametrize("flag, value, words", [
    ("--granularities", "kernel,diagonal", "granularity 'diagonal' is not one of"),
    ("--sparsities", "0.5,1.5", "sparsity 1.5 must be in (0, 1)"),
    ("--sparsities", "half", "sparsity 'half' is not a number"),
    ("--lanes", "0", "lane count '0' must be a positive integer"),
])
def test_bad_grid_is_one_line_exit_2(capsys, flag, value, words):
    with pytest.raises(SystemExit) as e:
        accuracy.main([flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("python -m bench.accuracy: error:") and words in err


def test_one_point_study_runs_and_resumes(tmp_path, capsys):
    d = digits()
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=d.x_train[:256], y_train=d.y_train[:256], x_test=d.x_test[:24], y_test=d.y_test[:24])
    results = tmp_path / "acc.jsonl"
    argv = ["--data", str(data), "--granularities", "kernel", "--sparsities", "0.5", "--lanes", "1",
            "--epochs", "1", "--base-epochs", "1", "--rtl-sample", "0", "--workers", "1",
            "--results", str(results), "--report-dir", str(tmp_path / "report")]
    assert accuracy.main(argv) == 0
    recs = sorted(read_jsonl(results), key=lambda r: r["target_sparsity"])
    points = [(r["granularity"], r["target_sparsity"], r["lanes"]) for r in recs]
    assert points == [("dense", 0.0, 1), ("kernel", 0.5, 1)]
    dense, kernel = recs
    assert all(r["status"] == "ok" and r["golden_matches_reference"] and r["rtl_exact"] is None for r in recs)
    assert kernel["dataflow"] == "kernel" and kernel["epochs"] == 1 and kernel["sparsity"] >= 0.49
    assert kernel["cycles_per_image"] < dense["cycles_per_image"] == kernel["dense_cycles_per_image"]
    assert kernel["acc_float_base"] == dense["acc_float_pruned"]
    assert kernel["pruning_loss"] == pytest.approx(kernel["acc_float_base"] - kernel["acc_float_pruned"])
    assert (tmp_path / "report" / "accuracy.png").stat().st_size > 0
    assert "| kernel | 0.50" in (tmp_path / "report" / "accuracy.md").read_text()
    assert json.loads(results.with_suffix(".json").read_text()) and results.with_suffix(".csv").exists()
    before = results.read_text()
    capsys.readouterr()
    assert accuracy.main(argv) == 0  # resumed: nothing recomputed, nothing appended
    assert results.read_text() == before
    assert "2 already in" in capsys.readouterr().err


def test_native_build_is_generated_once_per_process(tmp_path, monkeypatch):
    """A network asks for the same array once per layer: the second ask must not generate or compile
    again; a model removed from disk is compiled again from the Verilog generated before."""
    from golden.config import ArrayConfig
    from sim import native
    from sim import verilator as sv

    calls, compiles = [], []

    def fake_generate(cfg, out):
        calls.append(cfg)
        (out / "sparse_pe_array.v").write_text("module m; endmodule\n")
        (out / "sparse_pe_array.json").write_text("{}")
        return out / "sparse_pe_array.v", out / "sparse_pe_array.json"

    def fake_compile(root, label, v, j, top, verbose, **kw):
        compiles.append(label)
        d = root / label
        d.mkdir(parents=True, exist_ok=True)
        (d / "BUILT").write_text("ok\n")
        (d / "sparse_pe_array.json").write_text("{}")
        return d

    monkeypatch.setattr(sv, "generate", fake_generate)
    monkeypatch.setattr(native, "compile_cached", fake_compile)
    monkeypatch.setattr(native, "ensure_verilator", lambda: None)
    monkeypatch.setattr(native, "_BUILT", {})
    cfg = ArrayConfig()
    a = native.build_native(cfg, tmp_path)
    b = native.build_native(cfg, tmp_path)
    assert a is b and len(calls) == 1 and len(compiles) == 1
    (a.directory / "BUILT").unlink()  # removed from disk: compiled again, not generated again
    native.build_native(cfg, tmp_path)
    assert len(calls) == 1 and len(compiles) == 2


def test_network_rtl_jobs_have_unique_names(monkeypatch):
    """Two processes running networks on one array share its build's runs/ directory: a job named
    only after its layer let one overwrite the other's job files (seen as RTL mismatches in this study)."""
    from host import net

    names = []
    monkeypatch.setattr(net, "run_layers", lambda cfg, layers, name, **kw: names.append(name) or [])
    run = net.rtl_runner({})
    run(None, [], "conv1")
    run(None, [], "conv1")
    assert len(set(names)) == 2 and all(n.startswith("net-conv1-") for n in names)


def test_mismatches_are_run_again():
    from golden.config import ArrayConfig

    ok = {"status": "ok", "lanes": 1, "array": ArrayConfig().to_dict(), "rtl_exact": True,
          "golden_matches_reference": True}
    assert accuracy.verified(ok) and accuracy.verified({**ok, "rtl_exact": None})
    assert not accuracy.verified({**ok, "rtl_exact": False}) and not accuracy.verified({"status": "error"})


def test_blocks_as_kernels_are_the_given_order_blocks():
    """Kernel pruning of the regrouped tensor ranks exactly ``golden.prune``'s unreordered blocks."""
    from golden.prune import group_norms

    for shape in ((8, 12, 3, 3), (8, 1, 3, 3)):
        w = np.random.default_rng(0).normal(size=shape)
        assert np.allclose(group_norms(accuracy._blocks_as_kernels(w, (4, 4)), "kernel"), group_norms(w, "block"))
    assert accuracy._blocks_as_kernels(np.zeros((6, 8, 3, 3)), (4, 4)) is None  # 4 + 2 filters: unequal blocks


def test_kept_magnitude_reordering_keeps_more_than_the_given_order(monkeypatch):
    """TETRIS's reordering never keeps less than the same blocks unreordered, and element keeps the most;
    the study attaches the numbers to its block points only."""
    model = Path(accuracy.__file__).parent / "models" / "digits-small.onnx"
    k = accuracy.kept_magnitude(model, 0.75, 0)
    assert 0 < k["block_given_order"] <= k["block_reordered"] <= k["element"] < 1
    ctx = {"seed": 0, "results": "unused.jsonl"}
    recs = [{"granularity": "block", "target_sparsity": 0.75}, {"granularity": "kernel", "target_sparsity": 0.75}]
    monkeypatch.setattr(accuracy, "base_model", lambda ctx: model)
    block, kernel = accuracy.with_kept_magnitude(recs, ctx)
    assert block["kept_magnitude"] == k and "kept_magnitude" not in kernel
    assert accuracy.flat(block)["kept_block_reordered"] == k["block_reordered"]
