"""The ``sim.run`` layer runner: a report for a good layer, one-line errors (exit 2) for a bad one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from golden.layer import Layer
from golden.layerio import save_layer
from sim.run import main
from tests.conftest import random_layer


def test_run_reports_and_compares_dense(tmp_path):
    rng = np.random.default_rng(5)
    layer_path = tmp_path / "layer.npz"
    save_layer(layer_path, random_layer(rng, 6, 5, 8, 8, padding=1, kernel_density=0.3))
    report, out = tmp_path / "r.json", tmp_path / "o.npz"
    rc = main(["--sparsity", "kernel", "--layer", str(layer_path), "--json", str(report), "--out-npz", str(out),
               "--compare-dense", "--load-gap", "0.2", "--backpressure", "0.2"])
    assert rc == 0
    rep = json.loads(report.read_text())
    assert rep["outputs_match"] and rep["cycles"] == rep["predicted_cycles"] and rep["dense_outputs_match"]
    assert rep["speedup"] == rep["dense_cycles"] / rep["cycles"] > 1.5
    for key in ("useful_macs", "utilization", "sparsity", "traffic", "compression_ratio", "memory_references"):
        assert key in rep
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
    # too big for the buffer, and a single output row (3 input rows of 2 x 1400) too: no passes either
    (lambda t: _bad(t, weights=np.ones((2, 2, 3, 3), int), activations=np.zeros((2, 3, 1400), int)),
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


def test_compact_runs_the_smaller_layer_and_restores_outputs(tmp_path):
    from golden.compact import compact, expand_outputs
    from golden.conv import conv2d

    rng = np.random.default_rng(9)
    ly = random_layer(rng, 7, 6, 6, 6, padding=1, zero_filters=(1, 4), zero_channels=(0, 5))
    c = compact(ly)
    assert c.layer.m == 5 and c.layer.c == 4
    ref = conv2d(ly.weights, ly.activations, 1, 1)
    assert np.array_equal(expand_outputs(c, conv2d(c.layer.weights, c.layer.activations, 1, 1)), ref)
    path = tmp_path / "f.npz"
    save_layer(path, ly)
    rep_path, out = tmp_path / "r.json", tmp_path / "o.npz"
    assert main(["--sparsity", "dense", "--layer", str(path), "--compact", "--json", str(rep_path),
                 "--out-npz", str(out)]) == 0
    rep = json.loads(rep_path.read_text())
    assert rep["compacted"] == {"M": 5, "C": 4, "original_M": 7, "original_C": 6} and rep["outputs_match"]
    assert np.array_equal(np.load(out)["outputs"], ref)
