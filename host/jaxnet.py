"""A ``host.graph`` network executed in JAX on a batch, differentiable in its weights, with optional int8
fake quantization: what ``host.train`` optimises.

The same :class:`~host.graph.Graph` that ``host.net`` quantizes and runs on the array is interpreted
here op by op, so training sees exactly the network the array will run (no second model definition
to drift). :data:`OPS` maps an op kind to its batched function; a new ``host.graph`` op is one entry.
Weights are not read from the ``Op`` s but from a parameter dict keyed by ONNX initializer name
(:class:`Binding`), the pytree the optimiser updates and ``host.train`` writes back into the model.

With ``qat`` the forward pass rounds as ``host.quant`` does (its :func:`~host.quant.weight_scales` and
:func:`~host.quant.act_scale`, ``rint`` half to even, saturation to the signed range): weights per
output channel, the input and every Conv/Gemm/Add output (after a fused ReLU) per tensor, with the
straight-through estimator for the gradient. Activation scales come from the batch at hand, where
``host.quant`` takes them from its calibration images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .graph import Graph, Op
from .quant import act_scale, qmax, weight_scales

Params = dict[str, jax.Array]


@dataclass(frozen=True)
class Binding:
    """Which initializers hold each weighted op's parameters: ``weights[op.name]`` is the key of its
    weight (in ``host.graph`` layout: ``(M, C, R, S)`` for Conv, ``(out, in)`` for Gemm), ``biases[op.name]``
    that of its bias (absent when the op has none)."""

    weights: dict[str, str]
    biases: dict[str, str]


@dataclass(frozen=True)
class Quant:
    """Fake-quantization widths (``host.quant``'s ``ArrayConfig.weight_bits`` / ``act_bits``)."""

    weight_bits: int = 8
    act_bits: int = 8


def fake_quant(x: jax.Array, scale: jax.Array, bits: int) -> jax.Array:
    """``x`` rounded to the integer grid of ``scale`` and saturated (``host.quant``'s rule); the gradient
    passes straight through (STE), since rounding's own is zero almost everywhere."""
    q = qmax(bits)
    scale = jax.lax.stop_gradient(scale)
    y = jnp.clip(jnp.round(x / scale), -q - 1, q) * scale
    return x + jax.lax.stop_gradient(y - x)


def _quant_weight(w: jax.Array, quant: Quant | None) -> jax.Array:
    if quant is None:
        return w
    s = weight_scales(w, quant.weight_bits)
    return fake_quant(w, s.reshape((-1,) + (1,) * (w.ndim - 1)), quant.weight_bits)


def _conv(op: Op, w: jax.Array, b: jax.Array | None, x: jax.Array) -> jax.Array:
    s, p = op.attrs["stride"], op.attrs["pad"]
    y = jax.lax.conv_general_dilated(x, w, (s, s), [(p, p), (p, p)], dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y if b is None else y + b[None, :, None, None]


def _gemm(op: Op, w: jax.Array, b: jax.Array | None, x: jax.Array) -> jax.Array:
    y = x.reshape(x.shape[0], -1) @ w.T
    return y if b is None else y + b


def _window(x: jax.Array, op: Op, init: float, fn: Callable) -> jax.Array:
    k, s, p = op.attrs["kernel"], op.attrs["stride"], op.attrs["pad"]
    return jax.lax.reduce_window(x, init, fn, (1, 1, k, k), (1, 1, s, s), ((0, 0), (0, 0), (p, p), (p, p)))


def _maxpool(op: Op, x: jax.Array) -> jax.Array:
    return _window(x, op, -jnp.inf, jax.lax.max)


def _avgpool(op: Op, x: jax.Array) -> jax.Array:
    """ONNX's average: padded positions count only with ``count_include_pad`` (``host.graph.window_sums``)."""
    total = _window(x, op, 0.0, jax.lax.add)
    if op.attrs["pad"] and not op.attrs.get("count_include_pad", 0):
        return total / _window(jnp.ones((1, 1) + x.shape[2:], x.dtype), op, 0.0, jax.lax.add)
    return total / op.attrs["kernel"] ** 2


WEIGHTED: dict[str, Callable[[Op, jax.Array, jax.Array | None, jax.Array], jax.Array]] = {
    "Conv": _conv,
    "Gemm": _gemm,
}
"""Ops with a weight and an optional bias: ``f(op, w, b, x)``."""

OPS: dict[str, Callable[..., jax.Array]] = {
    "Relu": lambda op, x: jnp.maximum(x, 0),
    "Clip": lambda op, x: jnp.clip(x, op.attrs["lo"], op.attrs["hi"]),
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "GlobalAveragePool": lambda op, x: x.mean(axis=(2, 3), keepdims=True),
    "Flatten": lambda op, x: x.reshape(x.shape[0], -1),
    "Add": lambda op, a, b: a + b,
}
"""Ops without weights, on a batch: ``f(op, *inputs)``."""


def supported(graph: Graph) -> str | None:
    """The first op of ``graph`` this interpreter has no entry for (as ``name (kind)``), or ``None``."""
    for op in graph.ops:
        if op.kind not in WEIGHTED and op.kind not in OPS:
            return f"{op.name} ({op.kind})"
    return None


def requantized(graph: Graph) -> set[str]:
    """Tensors ``host.quant`` gives their own calibrated scale: the input and each Conv/Gemm/Add output,
    taken after the ReLU that is its only consumer (fused). Everything else keeps its input's grid."""
    out = {graph.input}
    for op in graph.ops:
        if op.kind in ("Conv", "Gemm", "Add"):
            users = graph.consumers(op.output)
            out.add(users[0].output if len(users) == 1 and users[0].kind == "Relu" else op.output)
    return out


def forward(graph: Graph, binding: Binding, params: Params, x: jax.Array, quant: Quant | None = None) -> jax.Array:
    """The graph's output for the batch ``x`` ``(N, C, H, W)`` with weights from ``params``."""
    grid = requantized(graph) if quant is not None else set()

    def store(name: str, value: jax.Array) -> None:
        t[name] = fake_quant(value, act_scale(value, quant.act_bits), quant.act_bits) if name in grid else value

    t: dict[str, jax.Array] = {}
    store(graph.input, x)
    for op in graph.ops:
        a = [t[i] for i in op.inputs]
        if op.kind in WEIGHTED:
            w = _quant_weight(params[binding.weights[op.name]], quant)
            b = params[binding.biases[op.name]] if op.name in binding.biases else None
            store(op.output, WEIGHTED[op.kind](op, w, b, a[0]))
        else:
            store(op.output, OPS[op.kind](op, *a))
    return t[graph.output]


def group_norm_penalty(w: jax.Array, ids: np.ndarray, groups: int) -> jax.Array:
    """SSL's group Lasso term: the sum over groups of each group's L2 norm, groups given per weight by
    ``golden.prune.group_index`` (so the penalty acts on exactly the groups pruning ranks). The small
    epsilon keeps the gradient finite at a group that reached zero."""
    sq = jax.ops.segment_sum((w * w).reshape(-1), jnp.asarray(ids.reshape(-1)), num_segments=groups)
    return jnp.sqrt(sq + 1e-12).sum()
