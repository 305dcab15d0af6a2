"""Networks from ONNX (``host.net``): the graph reader, the int8 network, and a small CNN on the RTL."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.models import Builder, small_cnn
from golden.config import ArrayConfig
from host.graph import GraphError, load_onnx, run_float
from host.net import ArrayRun, main, rtl_runner, run_network
from host.quant import quantize
from tests.support import EPILOGUE_ARRAY, assert_one_line_error, run_main

SMALL_ARRAY = EPILOGUE_ARRAY
"""Buffers small enough that the small CNN's convs run in bands and channel chunks."""


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return small_cnn(tmp_path_factory.mktemp("net") / "small.onnx")


def test_the_graph_reader_takes_every_supported_op_and_runs_it_in_float(small):
    g = load_onnx(small)
    assert [op.kind for op in g.ops] == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "Conv", "Add", "Relu", "Conv",
                                         "Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    x = np.random.default_rng(0).random(g.input_shape)
    t = run_float(g, x)
    assert t[g.output].shape == (10,)
    assert t[g.ops[2].output].shape == (8, 6, 6)  # 12x12 pooled by 2


def test_unsupported_models_are_refused_naming_the_node(tmp_path):
    b = Builder(2, 6)
    x = b.conv("x", 4, 3)
    name = b._name("sigmoid")
    b.nodes.append(b.helper.make_node("Sigmoid", [x], [name], name=name))
    path = b.save(name, tmp_path / "sig.onnx", "sig")
    with pytest.raises(GraphError, match=r"node sigmoid\d+: op Sigmoid is not supported"):
        load_onnx(path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(GraphError, match="is not an ONNX model"):
        load_onnx(junk)


def test_int8_network_tracks_the_float_model_without_pruning(small):
    g = load_onnx(small)
    x = np.random.default_rng(1).random(g.input_shape)
    cfg = ArrayConfig(**SMALL_ARRAY)
    net = quantize(g, x, cfg)
    rep = run_network(net, x, ArrayRun(cfg, "none", 0, 0))
    assert rep["int8_matches_reference"] and rep["total"]["golden_matches_reference"]
    assert rep["float_vs_int8"]["top1_agree"]
    assert rep["float_vs_int8"]["max_abs_error"] < 0.1 * rep["float_vs_int8"]["output_range"]


def test_a_small_cnn_runs_end_to_end_on_the_rtl_exactly(small):
    """Conv + ReLU, pooling, a residual add, global pooling and a fully connected layer, kernel-pruned,
    every conv in passes (bands, channel chunks) with its bias, ReLU and requantization in the array:
    every pass bit- and cycle-exact on Verilator (the native driver), and the int8 outputs equal the NumPy
    int8 reference."""
    g = load_onnx(small)
    x = np.random.default_rng(2).random(g.input_shape)
    cfg = ArrayConfig(dataflow="kernel", **SMALL_ARRAY)
    net = quantize(g, x, cfg, ("kernel", 0.5))
    rep = run_network(net, x, ArrayRun(cfg, "all", 0, 0, run_rtl=rtl_runner({"seed": 2, "load_gap": 0.2,
                                                                             "backpressure": 0.3,
                                                                             "target": "native"})))
    assert rep["int8_matches_reference"]
    assert rep["total"]["rtl_ok"] and rep["total"]["rtl_passes"] == rep["total"]["passes"] > 5
    plans = [s["plan"] for s in rep["steps"] if s["on"] == "array" and s["plan"]]
    assert any(p["channels"] < 8 for p in plans) and any(p["rows"] < 12 for p in plans)
    assert rep["total"]["speedup"] > 1.3  # half the kernels pruned away
    assert [s["on"] for s in rep["steps"]].count("host") == 4  # pool, add, global pool, flatten


def test_net_command_errors_are_one_line(small, tmp_path, capsys):
    code, _, err = run_main(main, ["--model", str(small), "--prune", "kernel"], capsys)
    assert code == 2
    assert_one_line_error(err, "python -m host.net", "--prune must be GRANULARITY:SPARSITY, e.g. kernel:0.75, "
                                                     "not 'kernel'")
    code, _, err = run_main(main, ["--model", str(tmp_path / "none.onnx")], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = run_main(main, ["--model", str(small), "--epilogue", "0"], capsys)
    assert code == 2 and "keep --epilogue 1" in err
    code, _, err = run_main(main, ["--model", str(small), "--workers", "0"], capsys)
    assert_one_line_error(err, "python -m host.net", "--workers must be at least 1, not 0")


def test_the_net_command_runs_every_pass_on_the_native_driver_in_two_processes(small, tmp_path, capsys):
    """The command's defaults (native driver) with a layer's passes split over two local processes:
    every pass exact, the int8 outputs equal to the reference, the report written."""
    report = tmp_path / "small.json"
    argv = ["--model", str(small), "--prune", "kernel:0.5", "--rtl", "all", "--workers", "2", "--json", str(report),
            *(f"--{k.replace('_', '-')}={v}" for k, v in SMALL_ARRAY.items())]
    code, _, err = run_main(main, argv, capsys)
    assert code == 0, err
    rep = json.loads(report.read_text())
    assert rep["int8_matches_reference"] and rep["total"]["rtl_ok"]
    assert rep["total"]["rtl_passes"] == rep["total"]["passes"] > 5


def _net(small, capsys, *argv) -> tuple[int, str, str]:
    """``host.net`` on the small CNN with ``argv``, on a 2x2 array (the golden model only unless --rtl)."""
    return run_main(main, ["--model", str(small), "--rows", "2", "--cols", "2", *argv], capsys)


def test_net_input_npz_holding_one_image_runs_as_the_npy_does(small, tmp_path, capsys):
    x = np.random.default_rng(7).random(load_onnx(small).input_shape)
    np.save(tmp_path / "x.npy", x[None])  # the batch axis of 1 is taken off
    np.savez(tmp_path / "x.npz", image=x)
    reports = []
    for name in ("x.npy", "x.npz"):
        code, _, err = _net(small, capsys, "--input", str(tmp_path / name), "--json", str(tmp_path / "r.json"))
        assert code == 0, err
        rep = json.loads((tmp_path / "r.json").read_text())
        reports.append((rep["total"], rep["float_vs_int8"], rep["int8_matches_reference"]))
    assert reports[0] == reports[1]


BAD_INPUTS = {  # file name: (how to write it from the image x, the error after "--input PATH ")
    "two.npz": (lambda p, x: np.savez(p, a=x, b=x),
                "holds 2 arrays (a, b), not one image; save just the image, e.g. numpy.savez(path, x=image)"),
    "x.txt": (lambda p, x: p.write_text("0.1 0.2 0.3\n"),
              "is not a .npy array of numbers (numpy.save), or an .npz holding one (numpy.savez)"),
    "batch.npy": (lambda p, x: np.save(p, np.stack([x, x])),
                  "has shape (2, 3, 12, 12); the model takes (3, 12, 12) or (1, 3, 12, 12)"),
    "nan.npy": (lambda p, x: np.save(p, np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x)),
                "holds NaN or infinite values (1, the first at (0, 0, 5)); the input must be finite"),
    "inf.npz": (lambda p, x: np.savez(p, x=np.full(x.shape, -np.inf)),
                "holds NaN or infinite values (432, the first at (0, 0, 0)); the input must be finite"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_net_bad_input_gets_one_line_saying_what_it_is_not(small, tmp_path, capsys, name):
    """Never numpy's AttributeError on an .npz, its "allow_pickle" advice on a text file, a batch cut to its
    first image, or a RuntimeWarning from the quantizer's cast of a NaN (pytest makes warnings errors, and
    the error must be the only line)."""
    write, message = BAD_INPUTS[name]
    path = tmp_path / name
    write(path, np.random.default_rng(7).random(load_onnx(small).input_shape))
    code, out, err = _net(small, capsys, "--input", str(path))
    assert code == 2 and out == ""
    assert_one_line_error(err, "python -m host.net", f"--input {path} {message}")


def test_net_summary_says_when_the_rtl_was_not_run(small, tmp_path, capsys):
    code, _, err = _net(small, capsys, "--rtl", "none", "--json", str(tmp_path / "r.json"))
    assert code == 0, err
    lines = err.splitlines()
    assert all(line.endswith("the RTL was not run") for line in lines[:-1])  # one line per array layer
    assert "the RTL was not run; int8 network == reference: True" in lines[-1]
    assert "0 passes" not in err
