"""Models as exporters write them (``host.graph.load_onnx``): BatchNormalization folded, no-op and reshape
nodes, Clip(0, 6) as ReLU6, QDQ int8 models keeping their scales, and ``host.net`` sizing the array's
kernel to the model. Every model is built here with ``onnx.helper``, node by node, as the exporters emit them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench.models import Builder
from golden.config import ArrayConfig
from golden.epilogue import requant_params
from host.graph import GraphError, load_onnx, run_float
from host.net import main
from host.quant import quantize, run_int
from tests.support import assert_one_line_error, run_main

PROG = "python -m host.net"


def save_model(path, nodes, inits: dict[str, np.ndarray], shape: tuple, output: str, opset: int = 13):
    """An ONNX model of ``nodes`` on input ``x`` ``(1, *shape)`` with these initializers (dtype kept)."""
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *shape])],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    import onnx

    onnx.save(model, str(path))
    return path


def conv_float32(x: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    """A float32 convolution written independently of ``host.graph`` (windows and einsum)."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    return np.einsum("nchwrs,mcrs->nmhw", win, w, dtype=np.float32)


def f32(*shape, rng, scale=1.0, loc=0.0):
    return (loc + scale * rng.standard_normal(shape)).astype(np.float32)


def test_batchnorm_is_folded_into_the_conv_and_equals_the_float32_model(tmp_path):
    rng = np.random.default_rng(0)
    w, b = f32(6, 3, 3, 3, rng=rng, scale=0.3), f32(6, rng=rng, scale=0.1)
    bn = dict(gamma=f32(6, rng=rng, scale=0.2, loc=1.0), beta=f32(6, rng=rng, scale=0.1),
              mean=f32(6, rng=rng, scale=0.2), var=np.abs(f32(6, rng=rng, loc=1.0)) + 0.1)
    bn["gamma"][0] = -0.7  # a negative scale flips the filter
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["y"], name="bn",
                              epsilon=1e-3)]
    g = load_onnx(save_model(tmp_path / "bn.onnx", nodes, dict(w=w, b=b, **bn), (3, 8, 8), "y"))
    assert [op.kind for op in g.ops] == ["Conv"] and g.ops[0].attrs["folded"] == ["bn"] and g.output == "c"
    x = rng.random((4, 3, 8, 8), dtype=np.float32)
    c = conv_float32(x, w, 1) + b[:, None, None]
    ref = (c - bn["mean"][:, None, None]) / np.sqrt(bn["var"][:, None, None] + np.float32(1e-3)) \
        * bn["gamma"][:, None, None] + bn["beta"][:, None, None]
    got = run_float(g, x)[g.output]
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6 * np.abs(ref).max())  # float32 rounding only


def test_batchnorm_after_a_fully_connected_layer_is_folded_and_elsewhere_refused(tmp_path):
    rng = np.random.default_rng(1)
    w = f32(5, 12, rng=rng)
    bn = dict(gamma=f32(5, rng=rng, loc=1.0), beta=f32(5, rng=rng), mean=f32(5, rng=rng),
              var=np.abs(f32(5, rng=rng)) + 0.5)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "w"], ["m"], name="fc"),
             helper.make_node("BatchNormalization", ["m", "gamma", "beta", "mean", "var"], ["y"], name="bn")]
    g = load_onnx(save_model(tmp_path / "fc.onnx", nodes, dict(w=w.T.copy(), **bn), (3, 2, 2), "y"))
    x = rng.random((3, 3, 2, 2), dtype=np.float32)
    ref = (x.reshape(3, -1) @ w.T - bn["mean"]) / np.sqrt(bn["var"] + np.float32(1e-5)) * bn["gamma"] + bn["beta"]
    np.testing.assert_allclose(run_float(g, x)[g.output], ref, rtol=0, atol=2e-6 * np.abs(ref).max())
    nodes = [helper.make_node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"], ["y"], name="bn0")]
    with pytest.raises(GraphError, match=r"^node bn0: BatchNormalization must follow a Conv or Gemm"):
        load_onnx(save_model(tmp_path / "bn0.onnx", nodes, bn, (5, 2, 2), "y"))


def test_reshape_flatten_dropout_identity_and_constants_are_read_as_exporters_mean_them(tmp_path):
    """PyTorch's exporter: ``x.view(1, -1)`` as Reshape with a Constant or initializer shape, Dropout
    and Identity left in the graph."""
    rng = np.random.default_rng(2)
    w, fc = f32(4, 2, 3, 3, rng=rng), f32(3, 4 * 3 * 3, rng=rng)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Dropout", ["r"], ["d"], name="drop"),
             helper.make_node("MaxPool", ["d"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Identity", ["p"], ["i"], name="id"),
             helper.make_node("Constant", [], ["shape"], name="const",
                              value=numpy_helper.from_array(np.array([1, -1], np.int64))),
             helper.make_node("Reshape", ["i", "shape"], ["flat"], name="reshape"),
             helper.make_node("Gemm", ["flat", "fc"], ["y"], name="fc", transB=1)]
    g = load_onnx(save_model(tmp_path / "m.onnx", nodes, dict(w=w, fc=fc), (2, 6, 6), "y"))
    assert [op.kind for op in g.ops] == ["Conv", "Relu", "MaxPool", "Flatten", "Gemm"]
    x = rng.random((2, 6, 6))
    pooled = np.maximum(conv_float32(x[None].astype(np.float32), w, 1)[0], 0).reshape(4, 3, 2, 3, 2).max(axis=(2, 4))
    np.testing.assert_allclose(run_float(g, x)[g.output], fc @ pooled.reshape(-1), rtol=1e-5)
    nodes[6] = helper.make_node("Reshape", ["i", "shape4"], ["flat"], name="reshape")
    with pytest.raises(GraphError, match=r"^node reshape: Reshape to \[1, 4, 9, 1\] is not supported; only to 2-D"):
        load_onnx(save_model(tmp_path / "r4.onnx", nodes, dict(w=w, fc=fc, shape4=np.array([1, 4, 9, 1])),
                             (2, 6, 6), "y"))


def _relu6_model(tmp_path, rng, after_pool: bool = False):
    w = f32(4, 1, 3, 3, rng=rng, scale=4.0)  # outputs well beyond 6
    clip_in = "p" if after_pool else "c"
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             *([helper.make_node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2])]
               if after_pool else []),
             helper.make_node("Clip", [clip_in, "lo", "hi"], ["y"], name="relu6")]
    inits = dict(w=w, lo=np.array(0, np.float32), hi=np.array(6, np.float32))
    return load_onnx(save_model(tmp_path / f"clip{int(after_pool)}.onnx", nodes, inits, (1, 6, 6), "y"))


def test_clip_0_6_is_the_epilogues_relu_and_saturation(tmp_path):
    rng = np.random.default_rng(3)
    g = _relu6_model(tmp_path, rng)
    x = rng.random((8, 1, 6, 6))
    net = quantize(g, x, ArrayConfig(epilogue=1))
    (step,) = net.steps
    assert step.relu and step.skipped == ["relu6"] and step.clip is None  # no host step: saturation clips
    assert net.scales["y"] == 6 / 127
    t = run_float(g, x)
    q = run_int(net, net.quantize_input(x))["y"]
    c = t["c"]  # before the clip
    assert (c > 6.5).mean() > 0.1 and (q[c > 6.5] == 127).all() and (q[c < 5.5] < 127).all()
    assert np.abs(q * net.scales["y"] - t["y"]).max() < 0.05 * 6


def test_clip_that_cannot_fuse_runs_on_the_host_at_its_input_scale(tmp_path):
    rng = np.random.default_rng(4)
    g = _relu6_model(tmp_path, rng, after_pool=True)
    x = rng.random((8, 1, 6, 6))
    net = quantize(g, x, ArrayConfig(epilogue=1))
    clip = net.steps[-1]
    s = net.scales["p"]
    assert clip.op.kind == "Clip" and net.scales["y"] == s and clip.clip == (0, int(np.rint(6 / s)))
    q = run_int(net, net.quantize_input(x))["y"]
    assert q.max() == int(np.rint(6 / s)) and q.min() == 0


def _qdq_model(tmp_path, zero_point: np.generic | None = None):
    """What onnxruntime's ``quantize_static(QuantFormat.QDQ, per_channel=True)`` writes for conv, ReLU,
    global pool and a fully connected layer: int8 weights and an int32 bias behind DequantizeLinear, a
    QuantizeLinear/DequantizeLinear pair on every activation (and one on the fully connected layer's
    float weights, as a QAT export has)."""
    rng = np.random.default_rng(5)
    wq = rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)
    s_w = np.array([0.01, 0.02, 0.005, 0.03], np.float32)
    s_x, s_r = np.float32(0.02), np.float32(0.05)
    bq = rng.integers(-500, 500, 4).astype(np.int32)
    fc = f32(3, 4, rng=rng)
    zp = np.array(np.int8(0) if zero_point is None else zero_point)
    inits = dict(wq=wq, s_w=s_w, zp_w=np.zeros(4, np.int8), bq=bq, s_b=(s_x * s_w).astype(np.float32),
                 zp_b=np.zeros(4, np.int32), s_x=s_x, zp=zp, s_r=s_r, fc=fc, s_fc=np.float32(0.01))
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_x", "zp"], ["xq"], name="qx"),
             helper.make_node("DequantizeLinear", ["xq", "s_x", "zp"], ["xd"], name="dqx"),
             helper.make_node("DequantizeLinear", ["wq", "s_w", "zp_w"], ["wd"], name="dqw", axis=0),
             helper.make_node("DequantizeLinear", ["bq", "s_b", "zp_b"], ["bd"], name="dqb", axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("QuantizeLinear", ["r", "s_r", "zp"], ["rq"], name="qr"),
             helper.make_node("DequantizeLinear", ["rq", "s_r", "zp"], ["rd"], name="dqr"),
             helper.make_node("GlobalAveragePool", ["rd"], ["gap"], name="gap"),
             helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
             helper.make_node("QuantizeLinear", ["fc", "s_fc", "zp"], ["fcq"], name="qfc"),
             helper.make_node("DequantizeLinear", ["fcq", "s_fc", "zp"], ["fcd"], name="dqfc"),
             helper.make_node("Gemm", ["flat", "fcd"], ["y"], name="fc", transB=1)]
    return save_model(tmp_path / "qdq.onnx", nodes, inits, (2, 5, 5), "y"), inits


def test_a_qdq_model_keeps_its_scales_and_integers(tmp_path):
    path, q = _qdq_model(tmp_path)
    g = load_onnx(path)
    assert [op.kind for op in g.ops] == ["Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    assert g.scales == {"x": pytest.approx(0.02), "r": pytest.approx(0.05)}
    x = np.random.default_rng(6).random((16, 2, 5, 5)) * 3  # calibration would give max|x| / 127 ~ 0.024
    net = quantize(g, x, ArrayConfig(epilogue=1))
    assert net.scales["x"] == np.float32(0.02) and net.scales["r"] == np.float32(0.05)
    conv, fc = net.steps[0], net.steps[-1]
    assert np.array_equal(conv.weights, q["wq"]) and np.array_equal(conv.stage.bias, q["bq"])
    s_w = q["s_w"].astype(np.float64)
    assert [(int(m), int(s)) for m, s in zip(conv.stage.mult, conv.stage.shift, strict=True)] == \
        [requant_params(float(np.float32(0.02) * sw / np.float32(0.05))) for sw in s_w]
    assert np.array_equal(fc.weights[:, :, 0, 0], np.clip(np.rint(q["fc"] / np.float32(0.01)), -128, 127))


def test_qdq_with_a_zero_point_or_uint8_is_refused_in_one_line(tmp_path):
    path, _ = _qdq_model(tmp_path, np.int8(3))
    with pytest.raises(GraphError, match=r"^node qx: zero point \[3\] is not 0; the array computes symmetric int8"):
        load_onnx(path)
    path, _ = _qdq_model(tmp_path, np.uint8(0))
    with pytest.raises(GraphError, match=r"^node qx: QuantizeLinear to uint8; the array computes symmetric int8"):
        load_onnx(path)
    conv = helper.make_node("Conv", ["x", "wd"], ["y"], name="conv", kernel_shape=[1, 1])
    for dtype, ok in ((np.int8, True), (np.uint8, False)):  # no zero point: the weights' own type, 0
        nodes = [helper.make_node("DequantizeLinear", ["wq", "s"], ["wd"], name="dqw"), conv]
        path = save_model(tmp_path / "w.onnx", nodes, dict(wq=np.ones((2, 1, 1, 1), dtype), s=np.float32(0.5)),
                          (1, 2, 2), "y")
        if ok:
            assert load_onnx(path).ops[0].attrs["weight_scale"].tolist() == [0.5, 0.5]
        else:
            with pytest.raises(GraphError, match=r"^node dqw: DequantizeLinear of uint8; the array computes"):
                load_onnx(path)


def _bn_net(tmp_path, k: int, stride: int = 1) -> str:
    """Conv k x k + BatchNormalization + ReLU, a 3x3 conv, global pool, fully connected."""
    b = Builder(3, 12, seed=7)
    x = b.conv("x", 4, k, stride=stride, relu=False)
    rng = np.random.default_rng(7)
    names = [b._init(f"bn_{p}", v) for p, v in (("g", rng.normal(1, 0.1, 4)), ("b", rng.normal(0, 0.1, 4)),
                                                ("m", rng.normal(0, 0.1, 4)), ("v", rng.uniform(0.5, 2, 4)))]
    b.nodes.append(helper.make_node("BatchNormalization", [x, *names], ["bn"], name="bn"))
    x = b.conv(b.relu("bn"), 6, 3)
    return str(b.save(b.head(x, 5), tmp_path / f"bn{k}.onnx", "bn"))


def test_a_7x7_network_with_batchnorm_runs_without_flags(tmp_path, capsys):
    model = _bn_net(tmp_path, 7)
    report = tmp_path / "r.json"
    code, _, err = run_main(main, ["--model", model, "--json", str(report)], capsys)
    assert code == 0, err
    rep = json.loads(report.read_text())
    assert rep["array"]["max_kernel"] == 7 and rep["int8_matches_reference"]
    assert rep["steps"][0]["layer"]["R"] == 7 and rep["steps"][0]["fused"] == ["relu2"]


def test_a_model_that_does_not_fit_exits_2_with_one_line(tmp_path, capsys):
    model = _bn_net(tmp_path, 5)
    code, _, err = run_main(main, ["--model", model, "--max-kernel", "3"], capsys)
    assert code == 2 and err.count("\n") == 1 and "usage:" not in err
    assert err.startswith(f"{PROG}: error: layer conv1: ") and "--max-kernel" in err
    model = _bn_net(tmp_path, 3, stride=3)
    code, _, err = run_main(main, ["--model", model], capsys)
    assert code == 2 and err.count("\n") == 1 and "--max-stride" in err
    b = Builder(1, 20)
    big = b.save(b.head(b.conv("x", 2, 17), 3), tmp_path / "k17.onnx", "k17")
    code, _, err = run_main(main, ["--model", str(big)], capsys)
    assert_one_line_error(err, PROG, "the model's largest kernel is 17x17, beyond the array: max_kernel must be "
                                     "in [1, 15], not 17")
    code, _, err = run_main(main, ["--model", model, "--eval"], capsys)
    assert_one_line_error(err, PROG, "--eval needs --data D (digits, or an .npz with x_train, y_train, x_test, "
                                     "y_test) and --eval")


def test_an_exported_model_reads_as_onnxs_reference_runtime_runs_it(tmp_path):
    """Conv, BatchNormalization, ReLU6, Dropout, MaxPool, Identity, Reshape, Gemm: ``run_float`` of the
    graph as read equals ONNX's own reference evaluator (float32) on the model as written."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(8)
    inits = dict(w=f32(5, 2, 5, 5, rng=rng, scale=0.5), b=f32(5, rng=rng), gamma=f32(5, rng=rng, loc=1.0),
                 beta=f32(5, rng=rng), mean=f32(5, rng=rng), var=np.abs(f32(5, rng=rng)) + 0.3,
                 lo=np.array(0, np.float32), hi=np.array(6, np.float32), shape=np.array([1, -1]),
                 fc=f32(4, 5 * 4 * 4, rng=rng), fb=f32(4, rng=rng))
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[5, 5], pads=[2] * 4),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], name="bn"),
             helper.make_node("Clip", ["n", "lo", "hi"], ["r"], name="relu6"),
             helper.make_node("Dropout", ["r"], ["d"], name="drop"),
             helper.make_node("MaxPool", ["d"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Identity", ["p"], ["i"], name="id"),
             helper.make_node("Reshape", ["i", "shape"], ["f"], name="reshape"),
             helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], name="fc", transB=1)]
    # opset 15, as recent exporters write: onnx.reference's BatchNormalization-9 (opsets 9 to 13) mixes the
    # batch's own statistics in (momentum's default), where exporters mean the stored ones; its -14 does not
    path = save_model(tmp_path / "exported.onnx", nodes, inits, (2, 8, 8), "y", opset=15)
    g = load_onnx(path)
    assert [op.kind for op in g.ops] == ["Conv", "Clip", "MaxPool", "Flatten", "Gemm"]
    ref = ReferenceEvaluator(str(path))
    for x in rng.random((3, 2, 8, 8), dtype=np.float32) * 2:
        want = ref.run(None, {"x": x[None]})[0][0]
        np.testing.assert_allclose(run_float(g, x)[g.output], want, rtol=0, atol=1e-5 * np.abs(want).max())
