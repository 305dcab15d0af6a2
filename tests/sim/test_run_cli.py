"""The ``sim.run`` layer runner: a report for a good layer, one-line errors (exit 2) for a bad one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from golden.layer import Layer
from golden.layerio import save_layer
from sim.run import main
from tests.support import random_layer


def _flags(params: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in params.items()]


def test_run_reports_on_the_default_harness(tmp_path, epilogue_array):
    """The cocotb testbench (``sim.run``'s default harness) on the output-stage array (a model the other
    tests share)."""
    rng = np.random.default_rng(5)
    layer_path = tmp_path / "layer.npz"
    save_layer(layer_path, random_layer(rng, 6, 3, 8, 8, padding=1, kernel_density=0.3))
    report, out = tmp_path / "r.json", tmp_path / "o.npz"
    rc = main(["--sparsity", "kernel", "--layer", str(layer_path), "--json", str(report), "--out-npz", str(out),
               "--load-gap", "0.2", "--backpressure", "0.2", *_flags(epilogue_array)])
    assert rc == 0
    rep = json.loads(report.read_text())
    assert rep["outputs_match"] and rep["cycles"] == rep["predicted_cycles"]
    for key in ("useful_macs", "utilization", "sparsity", "traffic", "compression_ratio", "memory_references"):
        assert key in rep
    assert rep["mapping"] in ("tile", "chunks")  # the faster on this 2x2 array (``golden.encode.pick_mapping``)
    assert np.load(out)["outputs"].shape == (6, 8, 8)


def _bad(tmp_path, **arrays):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    return p


@pytest.mark.parametrize("make,msg", [
    (lambda t: _bad(t, weights=np.full((2, 2, 3, 3), 300), activations=np.zeros((2, 5, 5), int)),
     "weights range [300, 300] does not fit 8-bit signed [-128, 127] (requantize or regenerate with --weight-bits 10)"),
    (lambda t: _bad(t, weights=np.ones((2, 2, 5, 5), int), activations=np.zeros((2, 6, 6), int)),
     "kernel 5x5 exceeds max_kernel=3"),
    # too big for the buffer, and a single output row of a single channel (3 input rows of 2800) too: no
    # passes, no channel chunks either
    (lambda t: _bad(t, weights=np.ones((2, 1, 3, 3), int), activations=np.zeros((1, 3, 2800), int)),
     "activations need 8400 words but act_depth is 8192"),
    (lambda t: _bad(t, activations=np.zeros((2, 6, 6), int)), "has no 'weights' array"),
    (lambda t: _bad(t, weights=np.ones((2, 2, 3, 3)), activations=np.zeros((2, 6, 6), int)),
     "weights must have an integer dtype, not float64"),
    (lambda t: t / "missing.npz", "does not exist"),
])
def test_run_rejects_bad_layers_before_building(tmp_path, capsys, make, msg):
    path = make(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["--layer", str(path), "--build-dir", str(tmp_path / "never")])
    assert e.value.code == 2
    assert msg in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "never").exists()  # no partial run


def test_layer_file_roundtrip(tmp_path):
    ly = Layer(np.ones((1, 1, 3, 3), np.int64), np.ones((1, 4, 4), np.int64), 2, 1)
    save_layer(tmp_path / "x.npz", ly)
    from golden.layerio import load_layer
    back = load_layer(tmp_path / "x.npz")
    assert back.stride == 2 and back.padding == 1 and np.array_equal(back.weights, ly.weights)


def test_compact_runs_the_smaller_layer_restores_outputs_and_compares_dense(tmp_path, odd_wide_array):
    """``--compact --compare-dense`` on the native harness and the odd 3-lane array (the kernel and dense
    models ``test_verilator.py`` builds); 6-bit weights and 5-bit activations, whose sums fit its 16-bit
    accumulators."""
    from golden.compact import compact, expand_outputs
    from golden.conv import conv2d

    rng = np.random.default_rng(9)
    ly = random_layer(rng, 7, 6, 6, 6, padding=1, zero_filters=(1, 4), zero_channels=(0, 5), wbits=6, abits=5)
    c = compact(ly)
    assert c.layer.m == 5 and c.layer.c == 4
    ref = conv2d(ly.weights, ly.activations, 1, 1)
    assert np.array_equal(expand_outputs(c, conv2d(c.layer.weights, c.layer.activations, 1, 1)), ref)
    path = tmp_path / "f.npz"
    save_layer(path, ly)
    rep_path, out = tmp_path / "r.json", tmp_path / "o.npz"
    assert main(["--sparsity", "kernel", "--layer", str(path), "--compact", "--compare-dense", "--harness", "native",
                 "--json", str(rep_path), "--out-npz", str(out), *_flags(odd_wide_array)]) == 0
    rep = json.loads(rep_path.read_text())
    assert rep["compacted"] == {"M": 5, "C": 4, "original_M": 7, "original_C": 6} and rep["outputs_match"]
    assert rep["dense_outputs_match"] and rep["speedup"] == rep["dense_cycles"] / rep["cycles"]
    assert np.array_equal(np.load(out)["outputs"], ref)


# --- reports at V > 1, a fed wide array, the default array's output stage (issue 22) ---

def _kernel_pruned(path, seed=22, m=32, c=24, hw=14):
    """A held-out layer (not the benchmarks'), 75 % kernel-pruned: what wide PEs are built for."""
    from golden.prune import prune

    rng = np.random.default_rng(seed)
    w = np.clip(np.round(rng.normal(0, 40, (m, c, 3, 3))), -128, 127).astype(np.int64)
    save_layer(path, Layer(prune(w, "kernel", 0.75).weights, rng.integers(-128, 128, (c, hw, hw)), 1, 1))
    return path


@pytest.fixture
def golden_array(monkeypatch, tmp_path):
    """``sim.run`` on the golden model instead of Verilator: every result exactly what the RTL must give
    (the RTL's own agreement is what the slow test and the regression check)."""
    import sim.run
    from golden.encode import encode
    from golden.timing import simulate

    def run_layers(cfg, layers, name, **kw):
        out = []
        for i, ly in enumerate(layers):
            perf = simulate(encode(ly, cfg)).to_dict()
            np.save(tmp_path / f"{name}-{i}.npy", ly.expected(cfg))
            out.append(dict(outputs=str(tmp_path / f"{name}-{i}.npy"), outputs_match=True, problems=[],
                            cycles=perf["busy_cycles"], predicted_cycles=perf["busy_cycles"], perf=perf,
                            predicted_perf=perf))
        return out

    monkeypatch.setattr(sim.run, "run_layers", run_layers)


def test_wide_report_divides_by_every_multiplier(tmp_path, golden_array, capsys):
    """``--lanes 9``: utilization and the ideal count every lane (<= 1), the report has the lane
    utilization, and with no feed flags the array gets the wide feed and is bound by its MACs."""
    from golden import metrics
    from golden.lanes import WIDE_FEED

    layer = _kernel_pruned(tmp_path / "k75.npz")
    assert main(["--lanes", "9", "--layer", str(layer), "--json", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert 0 < rep["utilization"] <= 1 and 0 < rep["lane_utilization"] <= 1
    assert rep["utilization"] == rep["useful_macs"] / (16 * 9 * rep["cycles"])
    assert rep["ideal_cycles"] == -(-rep["useful_macs"] // (16 * 9)) <= rep["cycles"]
    assert rep["lane_utilization"] == rep["useful_macs"] / (16 * 9 * rep["traffic"]["mac_cycles"])
    assert {k: rep["array"][k] for k in WIDE_FEED} == WIDE_FEED and rep["bound"] == "mac"
    out, err = capsys.readouterr()
    assert f"lane_utilization={rep['lane_utilization']:.3f}" in out and "bounds this run" not in err
    # the V = 1 feed on the same array starves it: the report says the loader bounds the run
    assert main(["--lanes", "9", "--act-lanes", "2", "--act-rows", "1", "--drain-lanes", "1", "--layer", str(layer),
                 "--json", str(tmp_path / "s.json")]) == 0
    starved = json.loads((tmp_path / "s.json").read_text())
    assert starved["bound"] == "loader" and starved["cycles"] > 1.5 * rep["cycles"]
    assert metrics.bound(starved["traffic"]) == "loader"
    err = capsys.readouterr().err
    assert err.startswith("note: the loader, not the MACs, bounds this run: the sequencer waited "
                          f"{starved['traffic']['load_stall_cycles']} of its {starved['cycles']} cycles")


def test_a_strided_1x1_layer_runs_on_the_pixels_it_reads_and_says_so(tmp_path, golden_array, capsys):
    """A 1x1 stride-2 layer that fits runs as one pass at stride 1 on a quarter of its input
    (``golden.passes.subsampled``), with the layer's outputs; the command says so on stderr."""
    rng = np.random.default_rng(12)
    layer = tmp_path / "pw.npz"
    save_layer(layer, random_layer(rng, 8, 4, 11, 11, r=1, s=1, stride=2))
    assert main(["--layer", str(layer), "--json", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["outputs_match"] and rep["plan"]["passes"] == 1 and rep["plan"]["subsample"] == 2
    assert rep["traffic"]["act_reads"] == 4 * 6 * 6  # each of the 6x6 pixels of each channel read once
    assert "a 1x1 layer of stride 2 runs at stride 1 on the pixels it reads (one in 4)" in capsys.readouterr().err


def _channels96(path):
    rng = np.random.default_rng(96)
    save_layer(path, random_layer(rng, 8, 96, 30, 30, padding=1, kernel_density=0.5))
    return path


def test_default_array_plans_a_96_channel_layer_in_channel_chunks(tmp_path, golden_array):
    """96 channels of 30x30 need 86400 activation words: the default array (output stage on) runs them
    in channel chunks with partial sums; without the output stage the layer is refused."""
    layer = _channels96(tmp_path / "c96.npz")
    assert main(["--layer", str(layer), "--json", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["array"]["epilogue"] == 1 and rep["outputs_match"] and rep["plan"]["channels_per_pass"] < 96
    with pytest.raises(SystemExit) as e:
        main(["--epilogue", "0", "--layer", str(layer)])
    assert e.value.code == 2


@pytest.mark.slow
def test_default_array_runs_a_96_channel_layer_exactly_on_the_rtl(tmp_path):
    """The same layer on the RTL (native harness): every pass bit- and cycle-exact, the assembled layer
    equal to its golden outputs."""
    layer = _channels96(tmp_path / "c96.npz")
    assert main(["--layer", str(layer), "--harness", "native", "--json", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["outputs_match"] and rep["cycles_match"] and rep["counters_match"]
    assert rep["plan"]["channels_per_pass"] < 96


@pytest.mark.slow
def test_nine_lanes_with_no_feed_flags_run_at_the_wide_feeds_cycles_on_the_rtl(tmp_path):
    """``sim.run --lanes 9`` on a 75 % kernel-pruned layer, no feed flags: exact on the RTL, and its
    cycles within 5 % of the README's wide feed (the default is that feed)."""
    from golden.config import ArrayConfig
    from golden.encode import encode
    from golden.lanes import WIDE_FEED
    from golden.layerio import load_layer
    from golden.timing import simulate

    layer = _kernel_pruned(tmp_path / "k75.npz")
    assert main(["--lanes", "9", "--layer", str(layer), "--harness", "native", "--json", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    wide = simulate(encode(load_layer(layer), ArrayConfig(lanes=9, **WIDE_FEED))).busy_cycles
    assert rep["cycles"] == rep["predicted_cycles"] and rep["cycles"] <= 1.05 * wide
    assert rep["utilization"] <= 1 and 0 < rep["lane_utilization"] <= 1
