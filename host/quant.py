"""A float graph (``host.graph``) quantized to integers, and its exact integer execution.

The rule (symmetric, as TFLite and gemmlowp do it for int8):

* **activations**: one scale per tensor, ``s = max|t| / (2**(act_bits-1) - 1)`` over the calibration
  input's float run (1 for an all-zero tensor); pooling, ReLU and Flatten keep their input's scale;
* **weights**: one scale per output channel, ``s_w[m] = max|W[m]| / (2**(weight_bits-1) - 1)``, rounded
  half to even (``np.rint``), then pruned by ``golden.prune`` at the requested granularity and sparsity;
* **bias**: ``round(b[m] / (s_in * s_w[m]))`` into the accumulators;
* **requantization**: a conv's sums to its output's scale by ``golden.epilogue.requant_params(s_in *
  s_w[m] / s_out)``, with the ReLU that follows a conv (as its only consumer) fused into it;
* **Add**: each input requantized to the output's scale (the same rounding, no saturation), summed,
  a following ReLU fused, then saturated; **AveragePool**: the window's sum divided by its count,
  rounding half up; **MaxPool**: exact.

A conv (and a fully connected layer, as a 1x1 conv) is a ``golden.layer.Layer`` with an output stage:
what the array runs. :func:`run_int` executes the network with a caller's function for those layers,
so the same code gives the NumPy int8 reference (``Layer.expected``) and the array's run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from golden.config import ArrayConfig
from golden.epilogue import OutputStage, epilogue, requant_params
from golden.layer import Layer
from golden.prune import prune

from .graph import Graph, Op, pool, run_float, window_sums


@dataclass
class QuantOp:
    """One integer step: ``op`` and, for Conv/Gemm, its integer weights and output stage (``stage``), for
    Add the two inputs' requantization; ``relu``: a following ReLU is fused in; ``output``: the tensor
    it writes (the fused ReLU's)."""

    op: Op
    output: str
    relu: bool = False
    weights: np.ndarray | None = None
    stage: OutputStage | None = None
    add: tuple | None = None
    skipped: list[str] = field(default_factory=list)  # fused ops


@dataclass
class QuantNet:
    graph: Graph
    cfg: ArrayConfig
    scales: dict[str, float]
    steps: list[QuantOp]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        q = (1 << (self.cfg.act_bits - 1)) - 1
        return np.clip(np.rint(np.asarray(x, np.float64) / self.scales[self.graph.input]), -q - 1, q).astype(np.int64)


def _fused_relu(graph: Graph, op: Op) -> Op | None:
    users = graph.consumers(op.output)
    return users[0] if len(users) == 1 and users[0].kind == "Relu" else None


def quantize(graph: Graph, x: np.ndarray, cfg: ArrayConfig, prune_spec: tuple[str, float] | None = None) -> QuantNet:
    """The integer network of ``graph`` for an array built with ``cfg``, calibrated on input ``x``; conv
    weights pruned by ``prune_spec = (granularity, sparsity)`` if given (module docstring)."""
    t = run_float(graph, x)
    qa = (1 << (cfg.act_bits - 1)) - 1
    qw = (1 << (cfg.weight_bits - 1)) - 1
    scales = {graph.input: float(np.abs(t[graph.input]).max() / qa) or 1.0}
    for op in graph.ops:  # pooling, ReLU and Flatten keep the scale; everything else is calibrated
        keep = op.kind in ("MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Relu")
        scales[op.output] = scales[op.inputs[0]] if keep else (float(np.abs(t[op.output]).max() / qa) or 1.0)
        fused = _fused_relu(graph, op) if op.kind in ("Conv", "Gemm", "Add") else None
        if fused is not None:  # the ReLU's output keeps the calibrated scale of its own float values
            scales[op.output] = float(np.abs(t[fused.output]).max() / qa) or 1.0
    steps, skip = [], set()
    for op in graph.ops:
        if op.name in skip:
            continue
        fused = _fused_relu(graph, op) if op.kind in ("Conv", "Gemm", "Add") else None
        out = fused.output if fused is not None else op.output
        if fused is not None:
            skip.add(fused.name)
            scales[out] = scales[op.output]
        step = QuantOp(op, out, relu=fused is not None, skipped=[fused.name] if fused else [])
        if op.kind in ("Conv", "Gemm"):
            w = op.w if op.kind == "Conv" else op.w[:, :, None, None]
            s_in, s_out = scales[op.inputs[0]], scales[out]
            s_w = np.abs(w).reshape(w.shape[0], -1).max(axis=1) / qw
            s_w[s_w == 0] = 1.0
            wq = np.rint(w / s_w[:, None, None, None]).astype(np.int64)
            if prune_spec is not None and prune_spec[1] > 0:
                wq = prune(wq, prune_spec[0], prune_spec[1]).weights.astype(np.int64)
            lim = (1 << (cfg.acc_bits - 1)) - 1
            bias = np.zeros(w.shape[0], np.int64) if op.b is None else \
                np.clip(np.rint(op.b / (s_in * s_w)), -lim - 1, lim).astype(np.int64)
            rq = [requant_params(float(s_in * sw / s_out)) for sw in s_w]
            step.weights = wq
            step.stage = OutputStage(bias=bias, mult=np.array([m for m, _ in rq]), shift=np.array([s for _, s in rq]),
                                     relu=step.relu)
        elif op.kind == "Add":
            s_out = scales[out]
            step.add = tuple(requant_params(scales[i] / s_out) for i in op.inputs)
        steps.append(step)
    return QuantNet(graph, cfg, scales, steps)


def conv_layer(step: QuantOp, x: np.ndarray) -> Layer:
    """The layer the array runs for a Conv or Gemm step on integer input ``x``."""
    op = step.op
    if op.kind == "Gemm":
        return Layer(step.weights, x.reshape(-1, 1, 1), 1, 0, out=step.stage)
    return Layer(step.weights, x, op.attrs["stride"], op.attrs["pad"], out=step.stage)


def _requant_add(x: np.ndarray, params: tuple[int, int]) -> np.ndarray:
    """``x`` to the output's scale (round half up, no saturation)."""
    c = x.shape[0]
    return epilogue(x, np.full(c, params[0]), np.full(c, params[1]), relu=False, act_bits=62)


def run_int(net: QuantNet, xq: np.ndarray, conv: Callable[[QuantOp, Layer], np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor of the integer network on integer input ``xq``; ``conv(step, layer)`` gives a conv or
    fully connected layer's outputs (``layer.expected(cfg)`` for the NumPy reference)."""
    cfg = net.cfg
    qa = (1 << (cfg.act_bits - 1)) - 1
    t = {net.graph.input: xq}
    for step in net.steps:
        op = step.op
        a = [t[i] for i in op.inputs]
        if op.kind in ("Conv", "Gemm"):
            y = conv(step, conv_layer(step, a[0]))
            y = y.reshape(-1) if op.kind == "Gemm" else y
        elif op.kind == "Relu":
            y = np.maximum(a[0], 0)
        elif op.kind == "MaxPool":
            y = pool(a[0], op.kind, **op.attrs).astype(np.int64)
        elif op.kind in ("AveragePool", "GlobalAveragePool"):
            attrs = op.attrs if op.kind == "AveragePool" else dict(kernel=a[0].shape[1], stride=1, pad=0)
            y = _avg_int(a[0], **attrs)
        elif op.kind == "Flatten":
            y = a[0].reshape(-1)
        else:  # Add
            y = _requant_add(a[0], step.add[0]) + _requant_add(a[1], step.add[1])
            y = np.clip(np.maximum(y, 0) if step.relu else y, -qa - 1, qa)
        t[step.output] = y
    return t


def _avg_int(x: np.ndarray, kernel: int, stride: int, pad: int, count_include_pad: int = 0) -> np.ndarray:
    """Integer average pooling: each window's sum over its count, rounding half up."""
    total, counts = window_sums(x, kernel, stride, pad, count_include_pad)
    return (2 * total + counts) // (2 * counts)
