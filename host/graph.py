"""A CNN as an ordered list of operations, read from ONNX, and its float execution in NumPy.

``host.net`` runs networks layer after layer: the conv layers on the array, the rest on the host. This
module is the graph side: :func:`load_onnx` turns an ONNX model (batch 1, NCHW) into :class:`Op` s in
the model's (topological) order with their weights as NumPy arrays, refusing what the runner cannot do
with one line naming the node; :func:`run_float` executes the graph in float64, the reference that
quantization is calibrated on and compared against.

Supported: ``Conv`` (group 1, symmetric padding, no dilation; optional bias), ``Relu``,
``MaxPool``/``AveragePool`` (square, symmetric padding), ``GlobalAveragePool``, ``Flatten``, ``Gemm``
(``alpha = beta = 1``, ``transA = 0``) and ``MatMul`` with a weight initializer (both as a fully
connected layer), ``Add`` of two tensors of one shape (residual connections).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SUPPORTED = ("Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Gemm", "MatMul", "Add")


@dataclass
class Op:
    """One operation: ``kind`` (an ONNX op type, ``Gemm`` also for ``MatMul``), its input and output tensor
    names, its weights (``w``: ``(M, C, R, S)`` for Conv, ``(M, C)`` for Gemm; ``b``: ``(M,)`` or None) and
    its attributes (``stride``, ``pad``, ``kernel``)."""

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

    def consumers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]


class GraphError(ValueError):
    """A model the runner cannot take (one line, naming the node)."""


def _square(name: str, values: list[int], what: str) -> int:
    if len(set(values)) != 1:
        raise GraphError(f"node {name}: {what} {values} is not the same on every side/axis; only square, symmetric "
                         f"{what} is supported")
    return int(values[0])


def load_onnx(path: str | Path) -> Graph:
    """The graph of the ONNX model at ``path`` (``GraphError`` naming the first thing it cannot run)."""
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
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        raise GraphError(f"the model has {len(inputs)} inputs; one image input is supported")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if not dims or dims[0] not in (0, 1) or any(d <= 0 for d in dims[1:]):
        raise GraphError(f"input {inputs[0].name} has shape {dims}; give a fixed shape with batch 1, "
                         f"e.g. (1, 3, 224, 224)")
    ops = []
    for k, node in enumerate(g.node):
        name = node.name or f"{node.op_type}_{k}"
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        if node.op_type not in SUPPORTED:
            raise GraphError(f"node {name}: op {node.op_type} is not supported (supported: {', '.join(SUPPORTED)})")
        op = Op(name, node.op_type, [i for i in node.input if i and i not in inits], node.output[0])
        if node.op_type == "Conv":
            if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
                raise GraphError(f"node {name}: grouped or dilated convolution is not supported")
            op.w = inits[node.input[1]]
            op.b = inits[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            op.attrs = dict(stride=_square(name, list(a.get("strides", [1, 1])), "stride"),
                            pad=_square(name, list(a.get("pads", [0, 0, 0, 0])), "padding"))
        elif node.op_type in ("MaxPool", "AveragePool"):
            if a.get("ceil_mode", 0):
                raise GraphError(f"node {name}: ceil_mode pooling is not supported")
            kernel = _square(name, list(a["kernel_shape"]), "kernel")
            op.attrs = dict(kernel=kernel, stride=_square(name, list(a.get("strides", [kernel, kernel])), "stride"),
                            pad=_square(name, list(a.get("pads", [0, 0, 0, 0])), "padding"),
                            count_include_pad=int(a.get("count_include_pad", 0)))
        elif node.op_type in ("Gemm", "MatMul"):
            wname = node.input[1]
            if wname not in inits:
                raise GraphError(f"node {name}: the second input must be a weight initializer")
            w = inits[wname]
            if node.op_type == "Gemm":
                if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                    raise GraphError(f"node {name}: Gemm with alpha/beta != 1 or transA is not supported")
                w = w if a.get("transB", 0) else w.T
                op.b = inits[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            else:
                w = w.T
            op.kind, op.w = "Gemm", w  # (out, in)
        elif node.op_type == "Add" and len(op.inputs) != 2:
            raise GraphError(f"node {name}: Add of a tensor and a constant is not supported")
        ops.append(op)
    return Graph(ops, inputs[0].name, tuple(dims[1:]), g.output[0].name)


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
    m, c, r, s = w.shape
    xp = _pad(x, pad)
    out_h, out_w = (xp.shape[1] - r) // stride + 1, (xp.shape[2] - s) // stride + 1
    cols = np.empty((c * r * s, out_h * out_w))
    for i in range(r):
        for j in range(s):
            patch = xp[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            cols[(np.arange(c) * r + i) * s + j] = patch.reshape(c, -1)
    return (w.reshape(m, -1) @ cols).reshape(m, out_h, out_w)


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
    """Every tensor of ``graph`` on input ``x`` (float64, batch dimension dropped)."""
    t = {graph.input: np.asarray(x, dtype=np.float64)}
    for op in graph.ops:
        a = [t[i] for i in op.inputs]
        if op.kind == "Conv":
            y = conv_float(op.w, a[0], op.attrs["stride"], op.attrs["pad"])
            y = y + op.b[:, None, None] if op.b is not None else y
        elif op.kind == "Relu":
            y = np.maximum(a[0], 0)
        elif op.kind in ("MaxPool", "AveragePool"):
            y = pool(a[0], op.kind, **op.attrs)
        elif op.kind == "GlobalAveragePool":
            y = a[0].mean(axis=(1, 2), keepdims=True)
        elif op.kind == "Flatten":
            y = a[0].reshape(-1)
        elif op.kind == "Gemm":
            y = op.w @ a[0].reshape(-1) + (op.b if op.b is not None else 0)
        else:  # Add
            y = a[0] + a[1]
        t[op.output] = y
    return t
