"""A CNN as an ordered list of operations, read from ONNX, and its float execution in NumPy.

``host.net`` runs networks layer after layer: the conv layers on the array, the rest on the host. This
module is the graph side: :func:`load_onnx` turns an ONNX model (batch 1, NCHW) into :class:`Op` s in
the model's (topological) order with their weights as NumPy arrays, refusing what the runner cannot do
with one line naming the node; :func:`run_float` executes the graph in float64, the reference that
quantization is calibrated on and compared against.

Supported: ``Conv`` (group 1, symmetric padding, no dilation; optional bias), ``Relu``,
``MaxPool``/``AveragePool`` (square, symmetric padding), ``GlobalAveragePool``, ``Flatten``, ``Gemm``
(``alpha = beta = 1``, ``transA = 0``) and ``MatMul`` with a weight initializer (both as a fully
connected layer), ``Add`` of two tensors of one shape (residual connections), ``Clip`` (``ReLU6`` is
``Clip(0, 6)``); and what exporters (PyTorch's, onnxruntime's quantizer) put around them:
``BatchNormalization`` after a conv (folded into it), ``Reshape`` to 2-D, ``Dropout``, ``Identity``,
``Constant``, ``QuantizeLinear``/``DequantizeLinear`` (:func:`load_onnx` says how each is read).
:func:`run_float` takes one image ``(C, H, W)`` or a batch ``(N, C, H, W)``: accuracy is measured on a
whole test split at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SUPPORTED = ("Conv", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Gemm",
             "MatMul", "Add", "BatchNormalization", "Dropout", "Identity", "Constant", "QuantizeLinear",
             "DequantizeLinear")


@dataclass
class Op:
    """One operation: ``kind`` (an ONNX op type, ``Gemm`` also for ``MatMul``), its input and output tensor
    names, its weights (``w``: ``(M, C, R, S)`` for Conv, ``(M, C)`` for Gemm; ``b``: ``(M,)`` or None) and
    its attributes (``stride``, ``pad``, ``kernel``; ``lo``, ``hi`` of a Clip; ``weight_scale`` ``(M,)`` of
    a layer whose weights the model quantized; ``folded``: the BatchNormalization nodes folded in)."""

    name: str
    kind: str
    inputs: list[str]
    output: str
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)


@dataclass
class Graph:
    ops: list[Op]
    input: str
    input_shape: tuple[int, ...]  # (C, H, W) or (C,)
    output: str
    scales: dict[str, float] = field(default_factory=dict)
    """Activation scales the model gives (its QDQ pairs), by tensor: kept instead of calibrated."""

    def consumers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]


class GraphError(ValueError):
    """A model the runner cannot take (one line, naming the node)."""


def _square(name: str, values: list[int], what: str) -> int:
    if len(set(values)) != 1:
        raise GraphError(f"node {name}: {what} {values} is not the same on every side/axis; only square, symmetric "
                         f"{what} is supported")
    return int(values[0])


QDQ_HINT = ("the array computes symmetric int8: quantize to int8 with zero point 0 (onnxruntime: "
            "activation_type=weight_type=QuantType.QInt8, extra_options ActivationSymmetric=WeightSymmetric=True)")


def _per_channel(name: str, scale: np.ndarray, m: int) -> np.ndarray:
    """One weight scale per output channel from a scale broadcast over the weights ``(M, ...)``."""
    s = scale.reshape(m, -1)
    if not np.all(s == s[:, :1]):
        raise GraphError(f"node {name}: its weight scales vary within an output channel; give one scale per output "
                         f"channel (axis of the filters) or one per tensor")
    return s[:, 0].copy()


class _Reader:
    """State of one pass over an ONNX graph's nodes: constants (initializers and everything computed from
    them alone: quantized and dequantized weights, reshaped shapes), tensors that are another under a new
    name (no-ops), the QDQ scales met so far, and the ops made."""

    def __init__(self, graph_proto, inits: dict[str, np.ndarray]):
        self.consts = dict(inits)
        self.alias: dict[str, str] = {}
        self.weight_scale: dict[str, np.ndarray] = {}  # a dequantized constant: its scale, broadcast to it
        self.quantized: dict[str, tuple[str, float]] = {}  # QuantizeLinear output: (its input, scale)
        self.scales: dict[str, float] = {}
        self.ops: list[Op] = []
        self.uses: dict[str, int] = {}
        for node in graph_proto.node:
            for i in node.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        for o in graph_proto.output:
            self.uses[o.name] = self.uses.get(o.name, 0) + 1

    def src(self, tensor: str) -> str:
        return self.alias.get(tensor, tensor)

    def const(self, name: str, node: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise GraphError(f"node {node}: its {what} must be a constant (an initializer)")
        return self.consts[name]

    def weight(self, name: str, node: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A weight or bias as float64, with its QDQ scale (broadcast to it) if it was dequantized."""
        return self.const(name, node, "weights").astype(np.float64), self.weight_scale.get(name)

    def _qparams(self, node, name: str) -> np.ndarray:
        """A Quantize/DequantizeLinear node's scale, checked: the zero point must be an int8 0 (an int32 0
        for a dequantized bias), as symmetric int8 is all the array computes."""
        scale = self.const(node.input[1], name, "scale").astype(np.float64)
        zp = self.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        x = node.input[0]
        if node.op_type == "QuantizeLinear":  # without a zero point, ONNX quantizes to uint8
            kind = "uint8 (no zero point given)" if zp is None else str(zp.dtype)
            ok = zp is not None and zp.dtype == np.int8
        else:  # the integers' own type: a constant's (int8 weights, int32 bias) or a QuantizeLinear's (int8)
            kind = str(self.consts[x].dtype if x in self.consts else np.dtype(np.int8) if zp is None else zp.dtype)
            ok = kind in ("int8", "int32")
        if not ok:
            raise GraphError(f"node {name}: {node.op_type} {'to' if node.op_type == 'QuantizeLinear' else 'of'} "
                             f"{kind}; {QDQ_HINT}")
        if zp is not None and np.any(zp != 0):
            raise GraphError(f"node {name}: zero point {zp.reshape(-1)[:4].tolist()} is not 0; {QDQ_HINT}")
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
            raise GraphError(f"node {name}: scale {scale.reshape(-1)[:4].tolist()} must be positive and finite")
        return scale

    def _scale_for(self, scale: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
        if scale.ndim == 0 or scale.size == 1:
            return np.full(shape, float(scale.reshape(-1)[0]))
        axis = axis % len(shape)
        return np.broadcast_to(scale.reshape([-1 if k == axis else 1 for k in range(len(shape))]), shape).copy()

    def node(self, k: int, node, a: dict) -> None:
        name = node.name or f"{node.op_type}_{k}"
        kind = node.op_type
        if kind not in SUPPORTED:
            raise GraphError(f"node {name}: op {kind} is not supported (supported: {', '.join(SUPPORTED)})")
        ins = list(node.input)
        out = node.output[0]
        if kind == "Constant":
            from onnx import numpy_helper

            if "value" not in a:
                raise GraphError(f"node {name}: a Constant must hold a tensor ('value')")
            self.consts[out] = numpy_helper.to_array(a["value"])
            return
        if kind in ("Identity", "Dropout"):  # inference: both pass their input on unchanged
            if ins[0] in self.consts:
                self.consts[out] = self.consts[ins[0]]
                if ins[0] in self.weight_scale:
                    self.weight_scale[out] = self.weight_scale[ins[0]]
            else:
                self.alias[out] = self.src(ins[0])
            return
        if kind == "QuantizeLinear":
            scale = self._qparams(node, name)
            if ins[0] in self.consts:  # a weight quantized in the model: keep its integer values
                x = self.consts[ins[0]].astype(np.float64)
                s = self._scale_for(scale, x.shape, a.get("axis", 1))
                self.consts[out] = np.clip(np.rint(x / s), -128, 127).astype(np.int8)
                return
            if scale.size != 1:
                raise GraphError(f"node {name}: per-channel activation scales are not supported; the array "
                                 f"requantizes to one scale per tensor")
            self.quantized[out] = (self.src(ins[0]), float(scale.reshape(-1)[0]))
            return
        if kind == "DequantizeLinear":
            scale = self._qparams(node, name)
            if ins[0] in self.consts:
                q = self.consts[ins[0]]
                s = self._scale_for(scale, q.shape, a.get("axis", 1))
                self.consts[out] = q.astype(np.float64) * s
                self.weight_scale[out] = s
                return
            if ins[0] not in self.quantized:
                raise GraphError(f"node {name}: DequantizeLinear of {ins[0]}, which no QuantizeLinear wrote; give "
                                 f"QuantizeLinear/DequantizeLinear pairs")
            tensor, s = self.quantized[ins[0]]
            if self.scales.get(tensor, s) != s:
                raise GraphError(f"node {name}: tensor {tensor} is quantized with two scales ({self.scales[tensor]} "
                                 f"and {s}); the array holds one scale per tensor")
            self.scales[tensor] = s  # the pair is the identity on the tensor, at this scale
            self.alias[out] = tensor
            return
        if kind == "Reshape":
            shape = [int(d) for d in self.const(ins[1], name, "shape")]
            if ins[0] in self.consts:
                self.consts[out] = self.consts[ins[0]].reshape(shape)
                return
            if len(shape) != 2 or shape[0] not in (-1, 0, 1):
                raise GraphError(f"node {name}: Reshape to {shape} is not supported; only to 2-D (batch, features), "
                                 f"as before a fully connected layer")
            kind = "Flatten"
        if kind == "Flatten" and a.get("axis", 1) != 1:
            raise GraphError(f"node {name}: Flatten with axis {a['axis']} is not supported; only axis 1")
        if kind == "BatchNormalization":
            self._fold_batchnorm(name, ins, out, a)
            return
        op = Op(name, kind, [self.src(i) for i in ins if i and i not in self.consts], out)
        if kind == "Conv":
            if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
                raise GraphError(f"node {name}: grouped or dilated convolution is not supported")
            op.w, scale = self.weight(ins[1], name)
            op.b = self.weight(ins[2], name)[0] if len(ins) > 2 and ins[2] else None
            op.attrs = dict(stride=_square(name, list(a.get("strides", [1, 1])), "stride"),
                            pad=_square(name, list(a.get("pads", [0, 0, 0, 0])), "padding"))
        elif kind in ("MaxPool", "AveragePool"):
            if a.get("ceil_mode", 0):
                raise GraphError(f"node {name}: ceil_mode pooling is not supported")
            kernel = _square(name, list(a["kernel_shape"]), "kernel")
            op.attrs = dict(kernel=kernel, stride=_square(name, list(a.get("strides", [kernel, kernel])), "stride"),
                            pad=_square(name, list(a.get("pads", [0, 0, 0, 0])), "padding"),
                            count_include_pad=int(a.get("count_include_pad", 0)))
        elif kind in ("Gemm", "MatMul"):
            if ins[1] not in self.consts:
                raise GraphError(f"node {name}: the second input must be a weight initializer")
            w, scale = self.weight(ins[1], name)
            if kind == "Gemm":
                if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                    raise GraphError(f"node {name}: Gemm with alpha/beta != 1 or transA is not supported")
                trans = not a.get("transB", 0)
                op.b = self.weight(ins[2], name)[0] if len(ins) > 2 and ins[2] else None
            else:
                trans = True
            op.kind, op.w = "Gemm", w.T if trans else w  # (out, in)
            scale = None if scale is None else scale.T if trans else scale
        elif kind == "Clip":
            lo = a.get("min", -np.inf) if len(ins) < 2 or not ins[1] else float(self.const(ins[1], name, "min"))
            hi = a.get("max", np.inf) if len(ins) < 3 or not ins[2] else float(self.const(ins[2], name, "max"))
            if not lo <= hi:
                raise GraphError(f"node {name}: Clip min {lo} is above its max {hi}")
            op.attrs = dict(lo=float(lo), hi=float(hi))
        elif kind == "Add" and len(op.inputs) != 2:
            raise GraphError(f"node {name}: Add of a tensor and a constant is not supported")
        if kind in ("Conv", "Gemm", "MatMul") and scale is not None:
            op.attrs["weight_scale"] = _per_channel(name, scale, op.w.shape[0])
        self.ops.append(op)

    def _fold_batchnorm(self, name: str, ins: list[str], out: str, a: dict) -> None:
        """Fold ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` into the conv (or fully connected layer)
        that writes ``x``: ``W' = W k``, ``b' = (b - mean) k + beta`` with ``k = gamma / sqrt(var + eps)``
        per output channel. Exact in real arithmetic; in float64 it differs from running the two ops in
        float32 by float32 rounding only (tested), and the array never sees the BatchNormalization."""
        if a.get("training_mode", 0):
            raise GraphError(f"node {name}: BatchNormalization in training mode; export the model in eval mode")
        x = self.src(ins[0])
        prod = next((op for op in self.ops if op.output == x), None)
        if prod is None or prod.kind not in ("Conv", "Gemm") or self.uses.get(ins[0], 0) != 1:
            raise GraphError(f"node {name}: BatchNormalization must follow a Conv or Gemm whose only consumer it is "
                             f"(it is folded into that layer's weights)")
        gamma, beta, mean, var = (self.const(i, name, "parameters").astype(np.float64) for i in ins[1:5])
        k = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        shape = (-1,) + (1,) * (prod.w.ndim - 1)
        prod.w = prod.w * k.reshape(shape)
        prod.b = ((prod.b if prod.b is not None else 0.0) - mean) * k + beta
        if "weight_scale" in prod.attrs:  # q * s * k = (q * sign k) * (s * |k|): the integers stay integers
            prod.attrs["weight_scale"] = prod.attrs["weight_scale"] * np.abs(k)
        prod.attrs.setdefault("folded", []).append(name)
        self.alias[out] = x


def load_onnx(path: str | Path) -> Graph:
    """The graph of the ONNX model at ``path`` (``GraphError`` naming the first thing it cannot run).

    What exporters add around the layers is taken as it is meant: ``BatchNormalization`` folded into the
    conv before it, ``Reshape`` to 2-D as ``Flatten``, ``Dropout`` and ``Identity`` as no-ops,
    ``Constant`` nodes as initializers, and QDQ pairs (``QuantizeLinear``/``DequantizeLinear``, as
    onnxruntime's quantizer writes them): a pair on a tensor is the identity on it and gives its scale
    (:attr:`Graph.scales`), a dequantized weight keeps its integers and its scale per output channel
    (``op.attrs["weight_scale"]``), so :func:`host.quant.quantize` keeps the model's scales."""
    import onnx
    from onnx import helper, numpy_helper

    path = Path(path)
    if not path.is_file():
        raise GraphError(f"model file {path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # a file that is not a protobuf model
        raise GraphError(f"{path} is not an ONNX model: {e}") from None
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        raise GraphError(f"the model has {len(inputs)} inputs; one image input is supported")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if not dims or dims[0] not in (0, 1) or any(d <= 0 for d in dims[1:]):
        raise GraphError(f"input {inputs[0].name} has shape {dims}; give a fixed shape with batch 1, "
                         f"e.g. (1, 3, 224, 224)")
    reader = _Reader(g, inits)
    for k, node in enumerate(g.node):
        reader.node(k, node, {at.name: helper.get_attribute_value(at) for at in node.attribute})
    return Graph(reader.ops, inputs[0].name, tuple(dims[1:]), reader.src(g.output[0].name), reader.scales)


# --- float execution (calibration and the float reference) ---

def _pad(x: np.ndarray, p: int, value: float = 0.0) -> np.ndarray:
    return np.pad(x, ((0, 0), (p, p), (p, p)), constant_values=value) if p else x


def _windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """``(C, E, F, k, k)`` view of the ``k x k`` windows of ``x`` ``(C, H, W)`` at ``stride``."""
    c, h, w = x.shape
    e, f = (h - k) // stride + 1, (w - k) // stride + 1
    s0, s1, s2 = x.strides
    return np.lib.stride_tricks.as_strided(x, (c, e, f, k, k), (s0, s1 * stride, s2 * stride, s1, s2), writeable=False)


def conv_float(w: np.ndarray, x: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Float convolution of ``x`` ``(C, H, W)`` or a batch ``(N, C, H, W)`` (im2col, one matrix product)."""
    if x.ndim == 3:
        return conv_float(w, x[None], stride, pad)[0]
    m, c, r, s = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    out_h, out_w = (xp.shape[2] - r) // stride + 1, (xp.shape[3] - s) // stride + 1
    cols = np.empty((c, r, s, len(x), out_h, out_w))
    for i in range(r):
        for j in range(s):
            cols[:, i, j] = xp[:, :, i:i + stride * (out_h - 1) + 1:stride,
                               j:j + stride * (out_w - 1) + 1:stride].transpose(1, 0, 2, 3)
    y = w.reshape(m, -1) @ cols.reshape(c * r * s, -1)
    return y.reshape(m, len(x), out_h, out_w).transpose(1, 0, 2, 3)


def batched(fn, x: np.ndarray) -> np.ndarray:
    """``fn`` (a per-channel map of ``(C, H, W)``, e.g. pooling) over a batch ``(N, C, H, W)``: the
    images' channels are stacked as one tensor of ``N * C`` channels."""
    y = fn(x.reshape(-1, *x.shape[2:]))
    return y.reshape(*x.shape[:2], *y.shape[1:])


def pool(x: np.ndarray, kind: str, kernel: int, stride: int, pad: int, count_include_pad: int = 0) -> np.ndarray:
    """Max or average pooling of ``x`` ``(C, H, W)`` (float, or integers for the max)."""
    if kind == "MaxPool":
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(np.int64).min
        return _windows(_pad(x.astype(np.float64 if x.dtype.kind == "f" else np.int64), pad, fill), kernel,
                        stride).max(axis=(3, 4))
    total, counts = window_sums(x, kernel, stride, pad, count_include_pad)
    return total / counts


def window_sums(x: np.ndarray, kernel: int, stride: int, pad: int, count_include_pad: int = 0) -> tuple:
    """Average pooling's numerators and denominators: each window's sum over ``x`` ``(C, H, W)`` and the
    count it divides by (the window's positions inside the input, or all of them with
    ``count_include_pad``, ONNX's rule). The float and the integer average share it."""
    total = _windows(_pad(x, pad), kernel, stride).sum(axis=(3, 4))
    if pad and not count_include_pad:
        counts = _windows(_pad(np.ones_like(x), pad), kernel, stride).sum(axis=(3, 4))
    else:
        counts = np.full(total.shape, kernel * kernel, dtype=np.int64)
    return total, counts


def run_float(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of ``graph`` on input ``x`` in float64: one image (tensors without a batch dimension)
    or a batch ``(N, *input_shape)`` (every tensor with one)."""
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == len(graph.input_shape)
    t = {graph.input: x[None] if single else x}
    for op in graph.ops:
        a = [t[i] for i in op.inputs]
        if op.kind == "Conv":
            y = conv_float(op.w, a[0], op.attrs["stride"], op.attrs["pad"])
            y = y + op.b[:, None, None] if op.b is not None else y
        elif op.kind == "Relu":
            y = np.maximum(a[0], 0)
        elif op.kind == "Clip":
            y = np.clip(a[0], op.attrs["lo"], op.attrs["hi"])
        elif op.kind in ("MaxPool", "AveragePool"):
            y = batched(lambda z, op=op: pool(z, op.kind, **op.attrs), a[0])
        elif op.kind == "GlobalAveragePool":
            y = a[0].mean(axis=(2, 3), keepdims=True)
        elif op.kind == "Flatten":
            y = a[0].reshape(len(a[0]), -1)
        elif op.kind == "Gemm":
            y = a[0].reshape(len(a[0]), -1) @ op.w.T + (op.b if op.b is not None else 0)
        else:  # Add
            y = a[0] + a[1]
        t[op.output] = y
    return {k: v[0] for k, v in t.items()} if single else t
