"""Accuracy beside cycles (``host.net --eval``, ``host.evaluate``): the int8 accuracy is the accuracy of the
network's per-image int8 outputs, calibration takes a batch of training images, a sampled test image
runs exactly on the RTL, and the batch int8 reference equals ``Layer.expected`` image by image."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.models import Builder
from golden.config import ArrayConfig
from golden.epilogue import epilogue
from host.data import load_dataset
from host.evaluate import accuracy, evaluate, int8_logits, pruned_graph
from host.graph import load_onnx
from host.net import ArrayRun, main, run_network
from host.quant import quantize, run_int
from tests.support import EPILOGUE_ARRAY, assert_one_line_error, run_main

PROG = "python -m host.net"


def digits_cnn(path, seed: int = 0):
    """A small CNN for 8x8 grey digits, randomly initialised (``bench.models.Builder``)."""
    b = Builder(1, 8, seed)
    x = b.conv("x", 8, 3)
    x = b.maxpool(x, 2, 2)
    x = b.conv(x, 12, 3)
    return b.save(b.head(x, 10), path, "digits_cnn")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return digits_cnn(tmp_path_factory.mktemp("eval") / "digits.onnx")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_eval_reports_three_accuracies_cycles_and_speedup(model, tmp_path, capsys):
    report, logits = tmp_path / "r.json", tmp_path / "logits.npy"
    code, _, err = run_main(main, ["--model", str(model), "--data", "digits", "--eval", "--prune", "kernel:0.5",
                                   "--sparsity", "kernel", "--calibration", "64", "--json", str(report),
                                   "--logits", str(logits)], capsys)
    assert code == 0, err
    rep = json.loads(report.read_text())
    ev = rep["eval"]
    assert ev["test_images"] == 360 and ev["calibration_images"] == 64
    a = ev["accuracy"]
    assert set(a) == {"float", "float_pruned", "int8"} and all(0 <= v <= 1 for v in a.values())
    assert ev["loss"] == {"pruning": a["float"] - a["float_pruned"], "quantization": a["float_pruned"] - a["int8"]}
    assert ev["cycles_per_image"] == rep["total"]["cycles"] and ev["speedup"] == rep["total"]["speedup"] > 1.3
    assert ev["pruning"].startswith("--prune kernel:0.5") and all(v == 0 for v in ev["model_weight_sparsity"].values())
    convs = {op.name for op in load_onnx(model).ops if op.kind == "Conv"}
    sparsity = ev["int8_weight_sparsity"]
    assert set(sparsity) > convs  # the convs are pruned, the classifier (--prune-classifier not given) is not
    assert all(0.45 < v < 0.55 if name in convs else v < 0.05 for name, v in sparsity.items())
    out = np.load(logits)
    assert out.shape == (360, 10) and accuracy(out, load_dataset("digits").y_test) == a["int8"]
    assert f"-> int8 {a['int8']:.4f} on 360 test images" in err


def test_int8_accuracy_is_the_accuracy_of_the_per_image_int8_outputs(model, digits):
    """The batch reference (one integer product for the test split) equals ``Layer.expected`` run image
    by image, which is what the array's every pass is checked against."""
    g = load_onnx(model)
    cfg = ArrayConfig(dataflow="kernel", epilogue=1)
    net = quantize(g, digits.calibration_subset(64, 1), cfg, ("kernel", 0.5))
    q, logits = int8_logits(net, digits.x_test)
    xq = net.quantize_input(digits.x_test)
    per_image = np.stack([run_int(net, xi, lambda step, layer: layer.expected(cfg))[g.output] for xi in xq])
    assert np.array_equal(q, per_image)
    assert accuracy(logits, digits.y_test) == accuracy(per_image, digits.y_test)


def test_calibration_takes_a_batch_of_training_images(model, digits):
    g = load_onnx(model)
    cfg = ArrayConfig(epilogue=1)
    calib = digits.calibration_subset(32, 0)
    batch, one = quantize(g, calib, cfg), quantize(g, calib[0], cfg)
    assert batch.scales["x"] == np.abs(calib).max() / 127 != one.scales["x"]
    hidden = g.ops[0].output
    assert batch.scales[g.consumers(hidden)[0].output] != one.scales[g.consumers(hidden)[0].output]


def test_float_pruned_is_the_float_model_with_the_int8_pruning_mask(model, digits):
    g = load_onnx(model)
    net = quantize(g, digits.calibration_subset(16, 0), ArrayConfig(epilogue=1), ("vector", 0.6))
    pg = pruned_graph(net)
    for step in net.steps:
        if step.kept is not None:
            op = next(o for o in pg.ops if o.name == step.op.name)
            assert np.array_equal(op.w == 0, ~step.kept) and np.array_equal(op.w[step.kept], step.op.w[step.kept])


def test_an_already_pruned_model_says_so(tmp_path, digits):
    path = digits_cnn(tmp_path / "pruned.onnx")
    g = load_onnx(path)
    g.ops[0].w[::2] = 0  # half the first layer's filters pruned before export
    net = quantize(g, digits.calibration_subset(16, 0), ArrayConfig(epilogue=1))
    cost = run_network(net, digits.x_test[0], ArrayRun(net.cfg, "none", 0, 0))
    ev, _ = evaluate(net, digits, 16, None, cost, [], None)
    assert ev["pruning"] == "none: float pruned is the model as given (already pruned: see model_weight_sparsity)"
    assert ev["model_weight_sparsity"]["conv1"] == 0.5 and ev["accuracy"]["float"] == ev["accuracy"]["float_pruned"]


def test_a_sampled_test_image_runs_exactly_on_the_rtl(model, tmp_path, capsys):
    """One test image through every pass of every layer on the native driver (the output-stage tests'
    array: bands and channel chunks), equal to the batch reference's outputs for that image."""
    report = tmp_path / "r.json"
    argv = ["--model", str(model), "--data", "digits", "--eval", "--calibration", "32", "--prune", "kernel:0.5",
            "--sparsity", "kernel", "--rtl", "sample", "--sample", "1", "--seed", "3", "--json", str(report),
            *(f"--{k.replace('_', '-')}={v}" for k, v in EPILOGUE_ARRAY.items())]
    code, _, err = run_main(main, argv, capsys)
    assert code == 0, err
    rep = json.loads(report.read_text())
    ev = rep["eval"]
    assert len(ev["rtl_images"]) == 1 and ev["rtl_exact"]
    assert ev["rtl_images"][0]["passes"] == rep["total"]["passes"] == 3  # every pass of its three layers
    assert "1 images on the RTL exact" in err


def test_eval_errors_are_one_line(model, tmp_path, capsys):
    code, _, err = run_main(main, ["--model", str(model), "--data", "digits"], capsys)
    assert code == 2
    assert_one_line_error(err, PROG, "--data is read by --eval: add --eval")
    b = Builder(3, 8)
    rgb = b.save(b.head(b.conv("x", 4, 3), 10), tmp_path / "rgb.onnx", "rgb")
    code, _, err = run_main(main, ["--model", str(rgb), "--data", "digits", "--eval"], capsys)
    assert_one_line_error(err, PROG, "digits images are (1, 8, 8) but the model takes (3, 8, 8)")
    code, _, err = run_main(main, ["--model", str(model), "--data", "digits", "--eval", "--calibration", "0"], capsys)
    assert code == 2 and "calibration needs 1..1437 images" in err


def test_the_vectorised_epilogue_equals_python_integers():
    """``golden.epilogue.epilogue`` computes in int64 when no step can overflow; the rule is the
    Python-integer one (round half up, ReLU first, saturate), checked at every shift and both ends."""
    rng = np.random.default_rng(0)
    m = 64
    acc = rng.integers(-(1 << 31), 1 << 31, (m, 3, 5))
    acc[:, 0, 0] = [-(1 << 31), (1 << 31) - 1] * (m // 2)
    mult = rng.integers(0, 1 << 16, m)
    mult[:2] = (0, (1 << 16) - 1)
    shift = np.arange(m)
    for relu in (False, True):
        got = epilogue(acc, mult, shift, relu=relu)
        for (i, e, f), v in np.ndenumerate(acc):
            v = max(int(v), 0) if relu else int(v)
            z = v * int(mult[i])
            z = (z + (1 << (int(shift[i]) - 1))) >> int(shift[i]) if shift[i] else z
            assert got[i, e, f] == min(127, max(-128, z))


def test_prune_leaves_the_classifier_dense_unless_asked(model, digits):
    """``--prune`` prunes every conv, as its help says; the fully connected layers only with
    ``--prune-classifier`` (as ``host.train``)."""
    g = load_onnx(model)
    calib = digits.calibration_subset(16, 0)
    for classifier in (False, True):
        net = quantize(g, calib, ArrayConfig(epilogue=1), ("kernel", 0.75), classifier)
        kinds = {s.op.kind: s.kept is not None for s in net.steps if s.op.kind in ("Conv", "Gemm")}
        assert kinds == {"Conv": True, "Gemm": classifier}
