"""A float graph (``host.graph``) quantized to integers, and its exact integer execution.

The rule (symmetric, as TFLite and gemmlowp do it for int8):

* **activations**: one scale per tensor, ``s = max|t| / (2**(act_bits-1) - 1)`` over the float run of
  the calibration images (a batch from the training split, or one input; 1 for an all-zero tensor);
  pooling, ReLU, Clip and Flatten keep their input's scale;
* **weights**: one scale per output channel, ``s_w[m] = max|W[m]| / (2**(weight_bits-1) - 1)``, rounded
  half to even (``np.rint``), then pruned by ``golden.prune`` at the requested granularity and sparsity;
* **bias**: ``round(b[m] / (s_in * s_w[m]))`` into the accumulators;
* **requantization**: a conv's sums to its output's scale by ``golden.epilogue.requant_params(s_in *
  s_w[m] / s_out)``, with the ReLU that follows a conv (as its only consumer) fused into it; a
  ``Clip(0, hi)`` there (ReLU6) is fused too, as the epilogue's ReLU and saturation: its output scale is
  ``hi / (2**(act_bits-1) - 1)``, so ``hi`` is the int8 maximum and saturating *is* the clip (no host
  step, no extra hardware; calibrating it instead would leave values above ``hi`` unclipped or cost a
  clip after the array);
* **scales the model gives** (QDQ pairs, :attr:`host.graph.Graph.scales`, and weight scales from
  ``DequantizeLinear``) are kept instead of calibrated: a QDQ model runs with the integers its
  quantizer chose;
* **Add**: each input requantized to the output's scale (the same rounding, no saturation), summed,
  a following ReLU fused, then saturated; **AveragePool**: the window's sum divided by its count,
  rounding half up; **MaxPool**: exact; **Clip** (not fused): its bounds rounded to the tensor's scale.

A conv (and a fully connected layer, as a 1x1 conv) is a ``golden.layer.Layer`` with an output stage:
what the array runs. :func:`run_int` executes the network with a caller's function for those layers,
so the same code gives the NumPy int8 reference (``Layer.expected``) and the array's run; without one
it computes the reference for a whole batch of images at once (the arithmetic of ``Layer.expected``,
on every image as if alone), which is how a test split's int8 accuracy is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from golden.config import ArrayConfig
from golden.conv import conv2d
from golden.epilogue import OutputStage, epilogue, requant_params
from golden.layer import Layer
from golden.prune import prune

from .graph import Graph, Op, batched, pool, run_float, window_sums


@dataclass
class QuantOp:
    """One integer step: ``op`` and, for Conv/Gemm, its integer weights and output stage (``stage``), for
    Add the two inputs' requantization; ``relu``: a following ReLU (or ReLU6) is fused in; ``output``: the
    tensor it writes (the fused ReLU's); ``clip``: integer bounds applied after the step (a Clip on the
    host, or a fused ReLU6 whose scale the model fixed below ``hi / 127``); ``kept``: the pruning mask of
    the weights (True: kept), for the float model with the same weights pruned."""

    op: Op
    output: str
    relu: bool = False
    weights: np.ndarray | None = None
    stage: OutputStage | None = None
    add: tuple | None = None
    skipped: list[str] = field(default_factory=list)  # fused ops
    clip: tuple[int, int] | None = None
    kept: np.ndarray | None = None


@dataclass
class QuantNet:
    graph: Graph
    cfg: ArrayConfig
    scales: dict[str, float]
    steps: list[QuantOp]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        q = (1 << (self.cfg.act_bits - 1)) - 1
        return np.clip(np.rint(np.asarray(x, np.float64) / self.scales[self.graph.input]), -q - 1, q).astype(np.int64)


def qmax(bits: int) -> int:
    """The largest magnitude of a symmetric signed ``bits``-bit integer (127 for int8)."""
    return (1 << (bits - 1)) - 1


def act_scale(t, bits: int):
    """One tensor's activation scale, ``max|t| / qmax(bits)``, 1 for an all-zero tensor. Written with
    array methods only, so ``host.train``'s quantization-aware training computes the same rule on JAX
    arrays as calibration does on NumPy ones."""
    s = abs(t).max() / qmax(bits)
    return s + (s == 0)


def weight_scales(w, bits: int):
    """Per-output-channel weight scales ``max|W[m]| / qmax(bits)`` (1 for an all-zero filter); ``w`` is
    ``(M, ...)``, NumPy or JAX (see :func:`act_scale`)."""
    s = abs(w).reshape(w.shape[0], -1).max(axis=1) / qmax(bits)
    return s + (s == 0)


def _fused_relu(graph: Graph, op: Op) -> Op | None:
    """The ReLU or ``Clip(0, hi)`` that is ``op``'s only consumer (the epilogue does it), or None."""
    users = graph.consumers(op.output)
    u = users[0] if len(users) == 1 else None
    relu6 = u is not None and u.kind == "Clip" and u.attrs["lo"] == 0 and 0 < u.attrs["hi"] < np.inf
    return u if u is not None and (u.kind == "Relu" or relu6) else None


def _int_bounds(lo: float, hi: float, scale: float, bits: int) -> tuple[int, int]:
    """Float clip bounds on a tensor of ``scale`` as integers: ``rint`` is monotone, so clipping the
    integers there equals quantizing the clipped floats (bounds beyond the int range saturate)."""
    q = qmax(bits)
    return tuple(int(np.clip(np.rint(v / scale), -q - 1, q)) if np.isfinite(v) else (q if v > 0 else -q - 1)
                 for v in (lo, hi))


def quantize(graph: Graph, x: np.ndarray, cfg: ArrayConfig, prune_spec: tuple[str, float] | None = None,
             prune_classifier: bool = False) -> QuantNet:
    """The integer network of ``graph`` for an array built with ``cfg``, calibrated on ``x``: one input or
    a batch ``(N, *input_shape)`` of calibration images; conv weights pruned by ``prune_spec =
    (granularity, sparsity)`` if given, the fully connected layers too only with ``prune_classifier``
    (as ``host.train --prune-classifier``: a classifier is small and its rows are the classes; module
    docstring)."""
    t = run_float(graph, x)
    given = graph.scales

    def calibrated(tensor: str) -> float:
        return given[tensor] if tensor in given else float(act_scale(t[tensor], cfg.act_bits))

    scales = {graph.input: calibrated(graph.input)}
    for op in graph.ops:  # pooling, ReLU, Clip and Flatten keep the scale; everything else is calibrated
        keep = op.kind in ("MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Relu", "Clip")
        scales[op.output] = scales[op.inputs[0]] if keep else calibrated(op.output)
        fused = _fused_relu(graph, op) if op.kind in ("Conv", "Gemm", "Add") else None
        if fused is not None:  # the ReLU's output keeps the scale of its own float values; ReLU6's is 6 / 127
            scales[op.output] = (given.get(fused.output) or given.get(op.output)
                                 or (fused.attrs["hi"] / qmax(cfg.act_bits) if fused.kind == "Clip"
                                     else calibrated(fused.output)))
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
        clip = fused if fused is not None and fused.kind == "Clip" else op if op.kind == "Clip" else None
        if clip is not None:
            bounds = _int_bounds(clip.attrs["lo"], clip.attrs["hi"], scales[out], cfg.act_bits)
            step.clip = bounds if op.kind == "Clip" or bounds[1] < qmax(cfg.act_bits) else None
        if op.kind in ("Conv", "Gemm"):
            w = op.w if op.kind == "Conv" else op.w[:, :, None, None]
            s_in, s_out = scales[op.inputs[0]], scales[out]
            s_w = op.attrs["weight_scale"] if "weight_scale" in op.attrs else weight_scales(w, cfg.weight_bits)
            wq = np.rint(w / s_w[:, None, None, None]).astype(np.int64)
            if prune_spec is not None and prune_spec[1] > 0 and (op.kind == "Conv" or prune_classifier):
                pruned = prune(wq, prune_spec[0], prune_spec[1])
                wq, step.kept = pruned.weights.astype(np.int64), pruned.mask.reshape(op.w.shape)
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
    """``x`` ``(N, C, ...)`` to the output's scale (round half up, no saturation)."""
    c = x.shape[1]
    y = epilogue(np.moveaxis(x, 1, 0).reshape(c, -1, 1), np.full(c, params[0]), np.full(c, params[1]), relu=False,
                 act_bits=62)
    return np.moveaxis(y.reshape(c, x.shape[0], *x.shape[2:]), 0, 1)


def reference_conv(step: QuantOp, x: np.ndarray, cfg: ArrayConfig) -> np.ndarray:
    """A Conv or Gemm step's outputs on a batch ``x`` ``(N, C, H, W)`` (or ``(N, C)``): what
    ``conv_layer(step, x[i]).expected(cfg)`` gives for every image, in one integer product
    (``golden.conv.conv2d`` takes the batch; the output stage sees the images side by side)."""
    op = step.op
    gemm = op.kind == "Gemm"
    sums = conv2d(step.weights, x.reshape(len(x), -1, 1, 1) if gemm else x, 1 if gemm else op.attrs["stride"],
                  0 if gemm else op.attrs["pad"], cfg.acc_bits)
    n, m, e, f = sums.shape
    y = step.stage.apply(sums.transpose(1, 0, 2, 3).reshape(m, n * e, f), cfg.acc_bits, cfg.act_bits)
    return y.reshape(m, n, e, f).transpose(1, 0, 2, 3)


def run_int(net: QuantNet, xq: np.ndarray,
            conv: Callable[[QuantOp, Layer], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every tensor of the integer network on integer input ``xq``: one image, or a batch ``(N,
    *input_shape)`` (every tensor then has a batch dimension). ``conv(step, layer)`` gives a conv or fully
    connected layer's outputs for one image (``layer.expected(cfg)`` for the NumPy reference, or the
    array); without it the NumPy reference runs on the whole batch at once (:func:`reference_conv`)."""
    cfg = net.cfg
    qa = qmax(cfg.act_bits)
    single = xq.ndim == len(net.graph.input_shape)
    t = {net.graph.input: xq[None] if single else xq}
    for step in net.steps:
        op = step.op
        a = [t[i] for i in op.inputs]
        if op.kind in ("Conv", "Gemm"):
            y = reference_conv(step, a[0], cfg) if conv is None else \
                np.stack([conv(step, conv_layer(step, xi)) for xi in a[0]])
            y = y.reshape(len(y), -1) if op.kind == "Gemm" else y
        elif op.kind == "Relu":
            y = np.maximum(a[0], 0)
        elif op.kind == "Clip":
            y = a[0]  # its bounds: step.clip, below
        elif op.kind == "MaxPool":
            y = batched(lambda z, op=op: pool(z, op.kind, **op.attrs).astype(np.int64), a[0])
        elif op.kind in ("AveragePool", "GlobalAveragePool"):
            attrs = op.attrs if op.kind == "AveragePool" else dict(kernel=a[0].shape[2], stride=1, pad=0)
            y = batched(lambda z, attrs=attrs: _avg_int(z, **attrs), a[0])
        elif op.kind == "Flatten":
            y = a[0].reshape(len(a[0]), -1)
        else:  # Add
            y = _requant_add(a[0], step.add[0]) + _requant_add(a[1], step.add[1])
            y = np.clip(np.maximum(y, 0) if step.relu else y, -qa - 1, qa)
        t[step.output] = y if step.clip is None else np.clip(y, *step.clip)
    return {k: v[0] for k, v in t.items()} if single else t


def _avg_int(x: np.ndarray, kernel: int, stride: int, pad: int, count_include_pad: int = 0) -> np.ndarray:
    """Integer average pooling: each window's sum over its count, rounding half up."""
    total, counts = window_sums(x, kernel, stride, pad, count_include_pad)
    return (2 * total + counts) // (2 * counts)
